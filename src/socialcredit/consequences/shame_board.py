"""Public shame boards: observed acts shown under the citizen they are attributed to.

    [consequences.shame_board]
    kind = "shame-board"
    events = ["jaywalk"]          # observed events of these kinds are displayed
    window_days = 30              # region_shame counts the last 30 days' displays
    unfriend_probability = 0.0    # social cost: each active tie cut with this P per display

Every observed event of the listed kinds is displayed the day it is observed,
under the citizen it is *attributed* to: a camera's false match shows an
innocent (counted in ``<table>_innocents_displayed``). The board publishes two
fields for formulas:

- ``shamed``: how often the citizen has been displayed (saturating at 65,535);
- ``region_shame``: displays in the citizen's region over the last
  ``window_days`` days (today included) per 1,000 residents, for deterrence
  such as ``rate = "0.004 * (0.5 + risk) / (1 + 0.2 * region_shame)"``.

With ``unfriend_probability`` p > 0 each display costs ties: every active edge
of a displayed citizen is cut with probability p per display (an edge between
two citizens displayed m_i and m_j times today: 1 − (1 − p)^(m_i + m_j)), both
CSR entries together, with one draw per edge addressed by its lower endpoint's
block and the pair, so cuts do not depend on thread counts. Work per day is
proportional to the day's displays (times the degree when ties are cut).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange
from pydantic import Field, field_validator

from socialcredit.engine.events import MISATTRIBUTED, OBSERVED, stable_stream
from socialcredit.engine.kernels import cut_edge, edge_draw
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.rng import stream_key, uniform
from socialcredit.scenario.schema import Safeguards, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation

SHAMED = np.uint16  # displays per citizen (saturating)
_SHAMED_MAX = int(np.iinfo(SHAMED).max)
_NAME = r"^[a-z][a-z0-9_]*$"


class ShameBoardConfig(Strict):
    """Which observed events are displayed publicly, and what a display costs."""

    events: list[str] = Field(min_length=1, description="event kinds whose observed events are displayed")
    window_days: int = Field(30, ge=1, le=3650, description="days counted by the region_shame field (today included)")
    unfriend_probability: float = Field(0.0, ge=0.0, le=1.0,
                                        description="P(an active tie of a displayed citizen is cut), per display")
    field: str = Field("shamed", pattern=_NAME, max_length=64,
                       description="name of the field: times the citizen was displayed")
    region_field: str = Field("region_shame", pattern=_NAME, max_length=64,
                              description="name of the field: displays in the region over the window per 1,000 "
                              "residents")
    label: str = Field("", max_length=200, description="what the board is, in words")
    safeguards: Safeguards = Safeguards()

    @field_validator("events")
    @classmethod
    def _distinct(cls, events: list[str]) -> list[str]:
        if len(set(events)) != len(events):
            raise ValueError("event kinds are listed more than once")
        return events


@njit(cache=True, parallel=True)
def display(region_first_block, kinds, ev_flags, ev_target, kind_at, shamed, shown, innocents):
    """Count the day's observed events of ``kinds`` against their attributed citizens.

    Per region in parallel (attribution stays inside the actor's region, so two
    threads never write the same citizen): ``shamed[target] += 1`` (saturating),
    ``shown[r]``/``innocents[r]``: displays and misattributed displays in region r.
    """
    for r in prange(len(region_first_block) - 1):
        n_shown = 0
        n_wrong = 0
        for b in range(region_first_block[r], region_first_block[r + 1]):
            for k in kinds:
                for e in range(kind_at[b, k], kind_at[b, k + 1]):
                    f = ev_flags[e]
                    if f & OBSERVED:
                        t = ev_target[e]
                        if shamed[t] < _SHAMED_MAX:
                            shamed[t] += 1
                        n_shown += 1
                        if f & MISATTRIBUTED:
                            n_wrong += 1
        shown[r] = n_shown
        innocents[r] = n_wrong


@njit(cache=True)
def displayed_citizens(kinds, ev_flags, ev_target, kind_at):
    """Citizens displayed today (with repeats), in buffer order."""
    n = 0
    for b in range(len(kind_at)):
        for k in kinds:
            for e in range(kind_at[b, k], kind_at[b, k + 1]):
                if ev_flags[e] & OBSERVED:
                    n += 1
    out = np.empty(n, np.int64)
    n = 0
    for b in range(len(kind_at)):
        for k in kinds:
            for e in range(kind_at[b, k], kind_at[b, k + 1]):
                if ev_flags[e] & OBSERVED:
                    out[n] = ev_target[e]
                    n += 1
    return out


@njit(cache=True, parallel=True)
def shame_unfriend(seed, stream, day, probability, ids, times, offsets, neighbours, block_start, cut):
    """Cut active ties of the displayed citizens ``ids`` (sorted, distinct; shown ``times`` today).

    An edge is decided once, by its displayed endpoint (the lower id when both
    were displayed), with P = 1 − (1 − p)^(displays of both endpoints) and a
    draw addressed by the lower endpoint's block and the pair. A cut entry
    ``j`` is stored as ``~j``, in both rows.
    """
    for x in prange(len(ids)):
        i = ids[x]
        n_cut = 0
        for a in range(offsets[i], offsets[i + 1]):
            j = neighbours[a]
            if j < 0:
                continue  # already cut
            y = np.searchsorted(ids, j)
            m = times[x]
            if y < len(ids) and ids[y] == j:
                if j < i:
                    continue  # j handles this edge
                m += times[y]
            p = 1.0 - (1.0 - probability) ** m
            b, ctr = edge_draw(block_start, i, j)
            if uniform(stream_key(seed, stream, day, b), ctr) < p:
                cut_edge(offsets, neighbours, a, i, j)
                n_cut += 1
        cut[x] = n_cut


@register("consequences", "shame-board")
class ShameBoard(Plugin):
    """Public display of observed acts under the attributed citizen; per-region shame over a window."""

    Config = ShameBoardConfig
    steps = {"consequences": "apply"}
    order = 40

    def declare(self, sim: Simulation) -> None:
        """Publish the per-citizen count and the regional shame fields."""
        c = self.config
        where = f"consequences.{self.name}"
        self.sim = sim
        self.shamed = np.zeros(sim.n, SHAMED)
        regions = sim.blocks.regions
        self.residents = np.diff(sim.blocks.region_start).astype(np.int64)
        self.ring = np.zeros((c.window_days, regions), np.int64)  # displays per day (day % window) and region
        self.window = np.zeros(regions, np.int64)  # sum of the ring over its days
        self._region_values: np.ndarray | None = None
        sim.fields.provide(c.field, lambda: self.shamed, where)
        sim.fields.provide(c.region_field, self.region_shame, where)

    def setup(self, sim: Simulation) -> None:
        """Resolve the displayed event kinds."""
        where = f"consequences.{self.name}.events"
        self.kind_codes = np.array([sim.kinds.code(k, where) for k in self.config.events], np.int64)
        self.stream = stable_stream("shame-board-unfriend", self.name)
        self.cut_total = 0
        self._today = (0, 0, 0)

    def apply(self, sim: Simulation, day: int) -> None:
        """Display the day's observed events; roll the regional window; cut ties if displays cost them."""
        c, ev = self.config, sim.events
        regions = len(self.window)
        shown = np.zeros(regions, np.int64)
        innocents = np.zeros(regions, np.int64)
        display(sim.blocks.region_first_block, self.kind_codes, ev.flags, ev.target, ev.kind_at,
                self.shamed, shown, innocents)
        slot = day % c.window_days
        if self.ring[slot].any() or shown.any():
            self.window += shown - self.ring[slot]
            self.ring[slot] = shown
            self._region_values = None
        cut = 0
        if c.unfriend_probability > 0 and shown.any():
            who = displayed_citizens(self.kind_codes, ev.flags, ev.target, ev.kind_at)
            ids, times = np.unique(who, return_counts=True)
            cuts = np.zeros(len(ids), np.int64)
            g = sim.graph
            shame_unfriend(sim.seed, self.stream, day, c.unfriend_probability, ids, times.astype(np.int64),
                           g.offsets, g.neighbours, sim.blocks.block_start, cuts)
            cut = int(cuts.sum())
            self.cut_total += cut
        self._today = (int(shown.sum()), int(innocents.sum()), cut)

    def region_shame(self) -> np.ndarray:
        """Displays in each citizen's region over the window, per 1,000 residents (float32)."""
        if self._region_values is None:
            with np.errstate(divide="ignore", invalid="ignore"):
                per_region = np.where(self.residents > 0, 1000.0 * self.window / np.maximum(self.residents, 1), 0.0)
            self._region_values = np.repeat(per_region.astype(np.float32), self.residents)
        return self._region_values

    def daily(self, day: int) -> dict[str, float]:
        """Displays today, how many showed an innocent, and ties cut for them."""
        shown, wrong, cut = self._today
        row = {f"{self.name}_displayed": shown, f"{self.name}_innocents_displayed": wrong}
        if self.config.unfriend_probability > 0:
            row[f"{self.name}_edges_cut"] = cut
        return row

    def published(self) -> dict[str, np.ndarray]:
        """The per-citizen display count, for the run's tables."""
        return {self.config.field: self.shamed}

    def state(self) -> dict[str, np.ndarray]:
        """Display counts, the regional window and the ties cut so far."""
        return {"shamed": self.shamed, "ring": self.ring, "window": self.window,
                "cut_total": np.array(self.cut_total)}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the saved state (in place)."""
        self.shamed[...] = arrays["shamed"]
        self.ring[...] = arrays["ring"]
        self.window[...] = arrays["window"]
        self.cut_total = int(arrays["cut_total"])
        self._region_values = None
