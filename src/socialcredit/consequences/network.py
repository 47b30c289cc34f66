"""Consequences through the social graph: unfriending listed citizens, chilled speech."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange
from pydantic import Field

from socialcredit import dtypes as dt
from socialcredit.engine.events import OBSERVED
from socialcredit.engine.kernels import cut_edge, edge_draw
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.rng import Stream, stream_key, uniform
from socialcredit.scenario.schema import Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation

_UNFRIEND = int(Stream.UNFRIEND)
_PENALISED = dt.FLAG_SPEECH_PENALISED


class UnfriendConfig(Strict):
    """Friends drop listed citizens."""

    every_days: int = Field(ge=1, le=3650, description="runs on days t with (t + 1) % every_days == 0")
    probability: float = Field(ge=0, le=1, description="P(an active edge with a listed endpoint is cut)")


class ChillConfig(Strict):
    """Speech is chilled by one's own or one's friends' punishment for speech."""

    every_days: int = Field(ge=1, le=3650, description="runs on days t with (t + 1) % every_days == 0")
    speech_event: str = Field(description="event kind whose observation counts as a speech penalty")
    penalised: float = Field(ge=0, le=1, description="chill of a citizen ever penalised for speech")
    neighbour_factor: float = Field(ge=0, le=1, description="chill = factor × share of penalised friends")



@njit(cache=True, parallel=True)
def unfriend(seed, day, probability, listed, list_start, offsets, neighbours, block_start, cut):
    """Cut each active edge with a listed endpoint with ``probability``.

    Each edge is decided once, by its listed endpoint (the lower id when both
    are listed), with a draw addressed by the lower endpoint's block and the
    pair, so the outcome does not depend on who handles it. A cut entry
    ``j`` is stored as ``~j``.
    """
    for x in prange(len(listed)):
        i = listed[x]
        n_cut = 0
        for a in range(offsets[i], offsets[i + 1]):
            j = neighbours[a]
            if j < 0:
                continue  # already cut
            if list_start[j] >= 0 and j < i:
                continue  # j handles this edge
            b, ctr = edge_draw(block_start, i, j)
            if uniform(stream_key(seed, _UNFRIEND, day, b), ctr) < probability:
                cut_edge(offsets, neighbours, a, i, j)
                n_cut += 1
        cut[x] = n_cut


@njit(cache=True, parallel=True)
def chill_all(penalised, factor, flags, chill, offsets, neighbours):
    """chill = penalised if ever penalised for speech, else factor × share of active friends who were."""
    for i in prange(len(chill)):
        if flags[i] & _PENALISED:
            chill[i] = penalised
            continue
        k = 0
        p = 0
        for a in range(offsets[i], offsets[i + 1]):
            j = neighbours[a]
            if j >= 0:
                k += 1
                if flags[j] & _PENALISED:
                    p += 1
        chill[i] = factor * p / k if k > 0 else 0.0


@njit(cache=True, parallel=True)
def mark_penalised(region_first_block, kind, flags, ev_flags, ev_target, kind_at):
    """Flag citizens an observed speech event is attributed to."""
    for r in prange(len(region_first_block) - 1):
        for b in range(region_first_block[r], region_first_block[r + 1]):
            for e in range(kind_at[b, kind], kind_at[b, kind + 1]):
                if ev_flags[e] & OBSERVED:
                    flags[ev_target[e]] |= _PENALISED


@register("consequences", "unfriend")
class Unfriend(Plugin):
    """Friends cut ties with listed citizens (edges never come back)."""

    Config = UnfriendConfig
    steps = {"network": "apply"}
    order = 10

    def setup(self, sim: Simulation) -> None:
        """Start the count of cut edges."""
        self.cut_total = 0
        self._cut_today = 0

    def runs_on(self, day: int) -> bool:
        """Days t with (t + 1) % every_days == 0."""
        return (day + 1) % self.config.every_days == 0

    def apply(self, sim: Simulation, day: int) -> None:
        """Cut edges of the currently listed."""
        cz, g = sim.citizens, sim.graph
        if sim.unfriend_hook is not None:  # a partition of a distributed run
            self._cut_today = sim.unfriend_hook(day, self.config.probability)
            self.cut_total += self._cut_today
            return
        listed = np.flatnonzero(cz.list_start >= 0).astype(np.int64)
        cut = np.zeros(len(listed), np.int64)
        unfriend(sim.seed, day, self.config.probability, listed, cz.list_start,
                 g.offsets, g.neighbours, sim.blocks.block_start, cut)
        self._cut_today = int(cut.sum())
        self.cut_total += self._cut_today

    def daily(self, day: int) -> dict[str, float]:
        """Edges cut today."""
        return {"edges_cut": self._cut_today if self.runs_on(day) else 0}

    def state(self) -> dict[str, np.ndarray]:
        """Edges cut so far."""
        return {"cut_total": np.array(self.cut_total)}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the state saved by ``state()``."""
        self.cut_total = int(arrays["cut_total"])


@register("consequences", "chill")
class Chill(Plugin):
    """Speech chilled by punishment for speech, one's own or one's friends'."""

    Config = ChillConfig
    steps = {"records": "records", "network": "apply"}
    order = 20

    def setup(self, sim: Simulation) -> None:
        """Resolve the speech event kind."""
        self.speech_kind = sim.kinds.code(self.config.speech_event, f"consequences.{self.name}.speech_event")

    def runs_on(self, day: int) -> bool:
        """Days t with (t + 1) % every_days == 0."""
        return (day + 1) % self.config.every_days == 0

    def records(self, sim: Simulation, day: int) -> None:
        """Flag citizens penalised for speech today."""
        ev = sim.events
        mark_penalised(sim.blocks.region_first_block, self.speech_kind, sim.citizens.flags,
                       ev.flags, ev.target, ev.kind_at)

    def apply(self, sim: Simulation, day: int) -> None:
        """Recompute everyone's chill after the day's unfriending."""
        c, cz, g = self.config, sim.citizens, sim.graph
        chill_all(c.penalised, c.neighbour_factor, cz.flags, cz.chill, g.offsets, g.neighbours)
