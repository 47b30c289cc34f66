"""Base class of every plugin (population, graph, behaviour, channel, ...)."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np

from socialcredit.scenario.schema import Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation


class Plugin:
    """One named part of a scenario, configured by its TOML table.

    Subclasses set ``Config`` (a pydantic model of their table without the
    ``kind`` key) and ``steps``: the pipeline stages they run in, each mapped to
    the method called for it and whether it runs every day (``"daily"``) or on
    the plugin's schedule (``"scheduled"``). ``order`` sorts plugins within a
    stage (lower first).
    """

    section: ClassVar[str]
    kind: ClassVar[str]
    Config: ClassVar[type[Strict]] = Strict
    steps: ClassVar[dict[str, str]] = {}
    order: ClassVar[int] = 50

    def __init__(self, name: str, config: Strict) -> None:
        self.name = name
        self.config = config

    def declare(self, sim: Simulation) -> None:
        """Register the event kinds this plugin defines; called before any ``setup``."""

    def setup(self, sim: Simulation) -> None:
        """Allocate arrays and resolve event kinds; called once before day 0."""

    def runs_on(self, day: int) -> bool:
        """Whether scheduled steps run on ``day`` (default: every day)."""
        return True

    def state(self) -> dict[str, np.ndarray]:
        """Arrays (0-d for scalars) that make up this plugin's mutable state, for checkpoints."""
        return {}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the state saved by ``state()`` (after ``setup``)."""
        for key, value in arrays.items():
            setattr(self, key, value)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
