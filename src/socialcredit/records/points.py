"""Municipal points: a per-event ledger around a base, with grades."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange
from pydantic import Field, model_validator

from socialcredit.engine.events import OBSERVED
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.scenario.schema import Safeguards, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation


class Grade(Strict):
    """A grade band ``min..max`` (inclusive integer points)."""

    name: str = Field(min_length=1, max_length=8)
    key: str | None = Field(None, pattern=r"^[A-Za-z0-9_]+$", description="name in metric names (default: name)")
    min: int
    max: int

    @property
    def metric_key(self) -> str:
        """The grade as used in metric names (``grade_share_<key>``)."""
        return self.key or self.name.replace("+", "plus")


class PointsConfig(Strict):
    """Rongcheng-style points: base, per-event deltas, clipped range, grades."""

    base: int = Field(ge=-30_000, le=30_000, description="points at day 0")
    min: int = Field(ge=-30_000, le=30_000, description="lowest points (clipped)")
    max: int = Field(ge=-30_000, le=30_000, description="highest points (clipped)")
    deltas: dict[str, int] = Field(description="points added per observed event, by event kind")
    listing_delta: int = Field(0, ge=-30_000, le=30_000, description="points added on entry to the court list")
    grades: list[Grade] = Field(min_length=1, description="bands from the highest down")
    safeguards: Safeguards = Safeguards()

    @model_validator(mode="after")
    def _bands(self) -> PointsConfig:
        if not self.min <= self.base <= self.max:
            raise ValueError(f"base {self.base} outside min..max ({self.min}..{self.max})")
        for k, v in self.deltas.items():
            if abs(v) > 30_000:
                raise ValueError(f"deltas.{k}: {v} is out of range (|delta| <= 30000)")
        top, bottom = self.grades[0], self.grades[-1]
        if top.max != self.max or bottom.min != self.min:
            raise ValueError(f"grades must span {self.min}..{self.max}, they span {bottom.min}..{top.max}")
        for hi, lo in zip(self.grades, self.grades[1:], strict=False):
            if hi.min > hi.max:
                raise ValueError(f"grade {hi.name}: min {hi.min} above max {hi.max}")
            if lo.max + 1 != hi.min:
                what = "overlap" if lo.max >= hi.min else "leave a gap"
                raise ValueError(f"grades {hi.name} ({hi.min}..) and {lo.name} (..{lo.max}) {what}")
        return self


@njit(cache=True, parallel=True)
def apply_points(
    region_first_block, region_start, deltas, lo_pts, hi_pts, points,
    ev_flags, ev_target, kind_at, extra, extra_at, extra_delta,
):
    """Sum each citizen's changes of the day, then clip once (per region: a
    misattributed penalty stays inside the actor's region)."""
    for r in prange(len(region_first_block) - 1):
        b0, b1 = region_first_block[r], region_first_block[r + 1]
        m = extra_at[r + 1] - extra_at[r]
        for b in range(b0, b1):
            for k in range(len(deltas)):
                if deltas[k] != 0:
                    for e in range(kind_at[b, k], kind_at[b, k + 1]):
                        if ev_flags[e] & OBSERVED:
                            m += 1
        who = np.empty(m, np.int64)
        amount = np.empty(m, np.int64)
        m = 0
        for b in range(b0, b1):
            for k in range(len(deltas)):
                if deltas[k] != 0:
                    for e in range(kind_at[b, k], kind_at[b, k + 1]):
                        if ev_flags[e] & OBSERVED:
                            who[m] = ev_target[e]
                            amount[m] = deltas[k]
                            m += 1
        for j in range(extra_at[r], extra_at[r + 1]):
            who[m] = extra[j]
            amount[m] = extra_delta
            m += 1
        order = np.argsort(who)
        j = 0
        while j < m:
            i = who[order[j]]
            total = 0
            while j < m and who[order[j]] == i:
                total += amount[order[j]]
                j += 1
            points[i] = min(hi_pts, max(lo_pts, points[i] + total))


@register("records", "points")
class Points(Plugin):
    """Per-event municipal points ledger, clipped once a day, graded by bands."""

    Config = PointsConfig
    steps = {"records": "records"}
    order = 20

    def setup(self, sim: Simulation) -> None:
        """Set everyone to the base and map event kinds to deltas."""
        c = self.config
        self.deltas = np.zeros(len(sim.kinds), np.int64)
        for name, delta in c.deltas.items():
            if delta == 0:  # a zero delta is a no-op (lets a scenario switch off an inherited one)
                continue
            self.deltas[sim.kinds.code(name, f"records.{self.name}.deltas")] = delta
        sim.citizens.points[:] = c.base
        self.court = sim.find("records", "court-list")

    def records(self, sim: Simulation, day: int) -> None:
        """Apply the day's observed events and new listings to the ledger."""
        c, ev = self.config, sim.events
        extra = self.court.new_listings if self.court is not None else np.empty(0, np.int32)
        if day == 0 and self.court is not None and len(self.court.initial_ids):  # the list's initial stock
            extra = np.union1d(extra, self.court.initial_ids).astype(np.int32)
        extra_at = np.searchsorted(extra, sim.blocks.region_start).astype(np.int64)
        apply_points(
            sim.blocks.region_first_block, sim.blocks.region_start, self.deltas, c.min, c.max,
            sim.citizens.points, ev.flags, ev.target, ev.kind_at,
            extra, extra_at, c.listing_delta,
        )

    def grade_names(self) -> list[str]:
        """Grade names, highest first."""
        return [g.name for g in self.config.grades]

    def grade_index(self, points: np.ndarray) -> np.ndarray:
        """Index into ``grade_names()`` of each points value."""
        mins = np.array([g.min for g in self.config.grades][::-1])
        return (len(mins) - np.searchsorted(mins, points, side="right")).astype(np.int8)

