"""The day's plan: an ordered list of named steps, printable and timed per stage."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

STAGES = ("behaviour", "observation", "records", "consequences", "scoring", "network", "metrics")
SCHEDULED = frozenset({"scoring", "network"})  # stages that run on a plugin's schedule


@dataclass
class Step:
    """One step of the day: ``call(sim, day)`` in ``stage``, by ``name``."""

    stage: str
    name: str
    call: Callable[[Any, int], None]
    runs_on: Callable[[int], bool] | None = None  # None: every day

    def __str__(self) -> str:
        when = "daily" if self.runs_on is None else "scheduled"
        return f"{self.stage:<13} {self.name:<28} {when}"


@dataclass
class Plan:
    """Steps in execution order, with cumulative wall time per stage."""

    steps: list[Step]
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def __iter__(self):
        return iter(self.steps)

    def __str__(self) -> str:
        return "\n".join(str(s) for s in self.steps)
