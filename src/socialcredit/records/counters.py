"""Per-citizen counts of observed events, for formulas (``seen_<kind>``, ``total_<kind>``).

Only the kinds some formula reads are counted. ``seen_<kind>`` decays
exponentially with time constant ``decay_days`` and is kept lazily (value plus
the day it was last brought up to date), so a day costs work proportional to
its events; ``total_<kind>`` never decays. Counts go to the citizen the event
is attributed to (a misattributed camera match counts against the innocent).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from numba import njit, prange
from pydantic import Field

from socialcredit import dtypes as dt
from socialcredit.engine.events import OBSERVED
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.scenario.schema import Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation


class EventCountersConfig(Strict):
    """How observed-event counts age."""

    decay_days: float = Field(180.0, gt=0, le=1e6, description="time constant of seen_<kind> counts (days)")


@njit(cache=True, parallel=True)
def count_events(region_first_block, kind, day, tau, value, last, total, decayed, ev_flags, ev_target, kind_at):
    """Add the day's observed events of ``kind`` to their attributed citizens' counts
    (per region, so two blocks never write the same citizen concurrently)."""
    for r in prange(len(region_first_block) - 1):
        for b in range(region_first_block[r], region_first_block[r + 1]):
            for e in range(kind_at[b, kind], kind_at[b, kind + 1]):
                if ev_flags[e] & OBSERVED:
                    t = ev_target[e]
                    if decayed:
                        value[t] = value[t] * math.exp(-(day - last[t]) / tau) + 1.0
                        last[t] = day
                    else:
                        total[t] += 1.0


@njit(cache=True, parallel=True)
def decayed_values(value, last, day, tau, ids, out):
    """``value`` of ``ids`` brought to ``day`` (without writing back)."""
    for x in prange(len(ids)):
        i = ids[x]
        out[x] = value[i] * math.exp(-(day - last[i]) / tau)


@njit(cache=True, parallel=True)
def bring_up_to(value, last, day, tau):
    """Decay every non-zero count to ``day`` in place (the lazy counters' catch-up)."""
    for i in prange(len(value)):
        v = value[i]
        if v != 0.0 and last[i] != day:  # most counts are zero
            value[i] = v * math.exp(-(day - last[i]) / tau)
            last[i] = day


@register("records", "event-counters")
class EventCounters(Plugin):
    """Observed-event counts per citizen for the kinds formulas read."""

    Config = EventCountersConfig
    steps: ClassVar[dict[str, str]] = {}  # a daily step once some kind is tracked
    order = 5

    def setup(self, sim: Simulation) -> None:
        """Nothing is counted until a formula asks (``track``)."""
        self.n = sim.n
        self.kind_names = sim.kinds.names
        self.region_first_block = sim.blocks.region_first_block
        self.tracked: dict[tuple[int, bool], str] = {}
        self.arrays: dict[str, np.ndarray] = {}

    def track(self, kind: int, decayed: bool) -> None:
        """Count ``kind`` from day 0 on (decayed or total)."""
        if (kind, decayed) in self.tracked:
            return
        self.steps = {"records": "records"}
        key = f"{'seen' if decayed else 'total'}_{kind}"
        self.tracked[(kind, decayed)] = key
        self.arrays[f"{key}_value"] = np.zeros(self.n, dt.DECAYED)
        if decayed:
            self.arrays[f"{key}_last"] = np.zeros(self.n, dt.DAY)

    def records(self, sim: Simulation, day: int) -> None:
        """Count the day's observed events of every tracked kind."""
        ev = sim.events
        tau = self.config.decay_days
        dummy_last = np.zeros(1, dt.DAY)
        for (kind, decayed), key in self.tracked.items():
            value = self.arrays[f"{key}_value"]
            last = self.arrays.get(f"{key}_last", dummy_last)
            count_events(self.region_first_block, kind, day, tau, value, last, value, decayed,
                         ev.flags, ev.target, ev.kind_at)

    def everyone(self, kind_name: str, decayed: bool, day: int) -> np.ndarray:
        """Counts of every citizen (decayed ones brought up to ``day`` in place: the array itself,
        valid until the next day's counting)."""
        key = self.tracked[(self._code(kind_name), decayed)]
        value = self.arrays[f"{key}_value"]
        if decayed:
            bring_up_to(value, self.arrays[f"{key}_last"], day, self.config.decay_days)
        return value

    def at(self, kind_name: str, decayed: bool, day: int, ids: np.ndarray) -> np.ndarray:
        """Counts of ``ids`` (decayed ones brought to ``day``)."""
        key = self.tracked[(self._code(kind_name), decayed)]
        value = self.arrays[f"{key}_value"]
        if not decayed:
            return value[ids]
        out = np.empty(len(ids), np.float32)
        decayed_values(value, self.arrays[f"{key}_last"], day, self.config.decay_days, ids, out)
        return out

    def _code(self, kind_name: str) -> int:
        return self.kind_names.index(kind_name)

    def state(self) -> dict[str, np.ndarray]:
        """The counts."""
        return dict(self.arrays)

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Copy saved counts into the tracked arrays."""
        for key, value in arrays.items():
            self.arrays[key][...] = value
