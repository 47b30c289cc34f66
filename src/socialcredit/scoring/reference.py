"""The reference platform score of SPEC 9.2 step 5 (Sesame-like, 350–950)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange
from pydantic import Field, model_validator

from socialcredit import dtypes as dt
from socialcredit.engine.events import OBSERVED
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.scenario.schema import Safeguards, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation

_MEMBER = dt.FLAG_MEMBER


class Weights(Strict):
    """Weights of the five dimensions; they sum to 1."""

    history: float = Field(ge=0, le=1)
    behaviour: float = Field(ge=0, le=1)
    capacity: float = Field(ge=0, le=1)
    characteristics: float = Field(ge=0, le=1)
    relationships: float = Field(ge=0, le=1)

    @model_validator(mode="after")
    def _sum(self) -> Weights:
        total = self.history + self.behaviour + self.capacity + self.characteristics + self.relationships
        if abs(total - 1.0) > 1e-9:
            raise ValueError(f"weights must sum to 1 (they sum to {total:g})")
        return self


class ReferenceScoreConfig(Strict):
    """Platform score: five dimensions in [0, 1], weighted, mapped to a range."""

    every_days: int = Field(ge=1, le=3650, description="scores on days t with (t + 1) % every_days == 0")
    initial: float = Field(ge=-1e6, le=1e6, description="score of everyone at day 0")
    low: float = Field(ge=-1e6, le=1e6, description="lowest score")
    span: float = Field(gt=0, le=1e6, description="highest score − lowest score")
    raw_offset: float = Field(ge=-10, le=10, description="score = low + span · clip((raw − offset) / raw_scale, 0, 1)")
    raw_scale: float = Field(gt=0, le=100)
    weights: Weights
    missed_event: str = Field(description="event kind of missed payments (history)")
    miss_decay_days: float = Field(gt=0, le=1e6, description="decayed missed-payment count: × exp(-1/this) a day")
    non_member_history: float = Field(ge=0, le=1, description="history of citizens the platform cannot see")
    gaming_event: str = Field(description="event kind of gaming days (behaviour)")
    gaming_cap: float = Field(gt=0, le=1e6)
    gaming_weight: float = Field(ge=0, le=1)
    speech_event: str = Field(description="event kind of critical posts (behaviour, all citizens)")
    speech_cap: float = Field(gt=0, le=1e6)
    speech_weight: float = Field(ge=0, le=1)
    non_member_behaviour: float = Field(ge=0, le=1, description="behaviour of non-members before the speech penalty")
    income_log_offset: float = Field(ge=-100, le=100, description="capacity = clip((ln income − offset) / scale, 0, 1)")
    income_log_scale: float = Field(gt=0, le=100)
    listed_value: float = Field(ge=0, le=1, description="characteristics when on the court list")
    low_points_value: float = Field(ge=0, le=1, description="characteristics when points are low")
    low_points_below: int = Field(ge=-30_000, le=30_000, description="points under this count as low")
    safeguards: Safeguards = Safeguards()

    @model_validator(mode="after")
    def _initial(self) -> ReferenceScoreConfig:
        if not self.low <= self.initial <= self.low + self.span:
            raise ValueError(f"initial {self.initial:g} outside {self.low:g}..{self.low + self.span:g}")
        return self


@njit(cache=True, parallel=True)
def record_counts(
    region_first_block, day, missed_kind, gaming_kind, speech_kind, decay_days,
    miss, miss_day, gaming, speech, ev_flags, ev_target, kind_at,
):
    """Count the day's observed events against the citizens they are attributed to."""
    for r in prange(len(region_first_block) - 1):
        for b in range(region_first_block[r], region_first_block[r + 1]):
            for e in range(kind_at[b, missed_kind], kind_at[b, missed_kind + 1]):
                if ev_flags[e] & OBSERVED:
                    i = ev_target[e]
                    miss[i] = miss[i] * math.exp(-(day - miss_day[i]) / decay_days) + 1.0
                    miss_day[i] = day
            for e in range(kind_at[b, gaming_kind], kind_at[b, gaming_kind + 1]):
                if ev_flags[e] & OBSERVED:
                    i = ev_target[e]
                    gaming[i] = min(255, gaming[i] + 1)
            for e in range(kind_at[b, speech_kind], kind_at[b, speech_kind + 1]):
                if ev_flags[e] & OBSERVED:
                    i = ev_target[e]
                    speech[i] = min(255, speech[i] + 1)


@njit(cache=True, inline="always")
def components(
    i, day, prm, flags, income, list_start, points, old, miss, miss_day, gaming, speech, offsets, neighbours,
):
    """The five dimensions (h, b, f, c, r) of citizen ``i``, each in [0, 1], and the new score."""
    (w_h, w_b, w_f, w_c, w_r, low, span, raw_off, raw_scale, decay, nm_h, g_cap, g_w,
     s_cap, s_w, nm_b, inc_off, inc_scale, listed_v, lowpts_v, lowpts_below) = prm
    speech_pen = s_w * min(1.0, speech[i] / s_cap)
    if flags[i] & _MEMBER:
        m = miss[i]
        h = math.exp(-m * math.exp(-(day - miss_day[i]) / decay)) if m > 0.0 else 1.0
        b = 1.0 - g_w * min(1.0, gaming[i] / g_cap) - speech_pen
    else:
        h = nm_h
        b = nm_b - speech_pen
    f = min(1.0, max(0.0, (math.log(income[i]) - inc_off) / inc_scale))
    if list_start[i] >= 0:
        c = listed_v
    elif points[i] < lowpts_below:
        c = lowpts_v
    else:
        c = 1.0
    total = 0.0
    k = 0
    for a in range(offsets[i], offsets[i + 1]):
        j = neighbours[a]
        if j >= 0:  # cut edges are stored as ~j < 0
            total += old[j]
            k += 1
    r = (total / k - low) / span if k > 0 else 0.0
    raw = w_h * h + w_b * b + w_f * f + w_c * c + w_r * r
    return h, b, f, c, r, low + span * min(1.0, max(0.0, (raw - raw_off) / raw_scale))


@njit(cache=True, parallel=True)
def score_all(
    day, prm, flags, income, list_start, points, old, new,
    miss, miss_day, gaming, speech, offsets, neighbours,
):
    """New score of every citizen (every row of the graph) from the old scores of their active neighbours."""
    for i in prange(len(offsets) - 1):
        new[i] = components(i, day, prm, flags, income, list_start, points, old,
                            miss, miss_day, gaming, speech, offsets, neighbours)[5]
        gaming[i] = 0
        speech[i] = 0


@njit(cache=True)
def trace_components(
    ids, day, prm, flags, income, list_start, points, old, miss, miss_day, gaming, speech, offsets, neighbours,
):
    """(h, b, f, c, r, new score, gaming days, critical posts) of each citizen in ``ids``, before scoring."""
    out = np.empty((len(ids), 8))
    for x in range(len(ids)):
        i = ids[x]
        comp = components(i, day, prm, flags, income, list_start, points, old,
                          miss, miss_day, gaming, speech, offsets, neighbours)
        for j in range(6):
            out[x, j] = comp[j]
        out[x, 6] = gaming[i]
        out[x, 7] = speech[i]
    return out


@register("scoring", "reference-score")
class ReferenceScore(Plugin):
    """The five-dimension platform score of the reference model."""

    Config = ReferenceScoreConfig
    steps = {"records": "records", "scoring": "score"}

    def setup(self, sim: Simulation) -> None:
        """Allocate counters and set the initial score."""
        c = self.config
        where = f"scoring.{self.name}"
        self.kinds = (
            sim.kinds.code(c.missed_event, f"{where}.missed_event"),
            sim.kinds.code(c.gaming_event, f"{where}.gaming_event"),
            sim.kinds.code(c.speech_event, f"{where}.speech_event"),
        )
        n = sim.n
        sim.citizens.score[:] = c.initial
        self.scratch = np.empty_like(sim.citizens.score)  # swapped with it (a partition's has ghost slots)
        self.miss = np.zeros(n, dt.DECAYED)
        self.miss_day = np.zeros(n, dt.DAY)
        self.gaming = np.zeros(n, dt.COUNTER)
        self.speech = np.zeros(n, dt.COUNTER)
        w = c.weights
        self.prm = (
            w.history, w.behaviour, w.capacity, w.characteristics, w.relationships,
            c.low, c.span, c.raw_offset, c.raw_scale, c.miss_decay_days, c.non_member_history,
            c.gaming_cap, c.gaming_weight, c.speech_cap, c.speech_weight, c.non_member_behaviour,
            c.income_log_offset, c.income_log_scale, c.listed_value, c.low_points_value,
            float(c.low_points_below),
        )

    def runs_on(self, day: int) -> bool:
        """Scoring days: (day + 1) % every_days == 0."""
        return (day + 1) % self.config.every_days == 0

    def records(self, sim: Simulation, day: int) -> None:
        """Update the counters the next scoring uses."""
        ev = sim.events
        record_counts(
            sim.blocks.region_first_block, day, *self.kinds, self.config.miss_decay_days,
            self.miss, self.miss_day, self.gaming, self.speech,
            ev.flags, ev.target, ev.kind_at,
        )

    DIMENSIONS = ("history", "behaviour", "capacity", "characteristics", "relationships")

    def score(self, sim: Simulation, day: int) -> None:
        """Score everyone (a whole-population pass, on scoring days only)."""
        cz, g = sim.citizens, sim.graph
        if len(sim.trace_ids):
            rows = trace_components(
                sim.trace_ids, day, self.prm, cz.flags, cz.income, cz.list_start, cz.points, cz.score,
                self.miss, self.miss_day, self.gaming, self.speech, g.offsets, g.neighbours,
            )
            weights = self.prm[:5]
            for i, row in zip(sim.trace_ids, rows, strict=True):
                sim.trace.append({
                    "what": "score", "system": self.name, "day": day, "citizen": int(i),
                    "before": float(cz.score[i]), "after": float(np.float32(row[5])),
                    "components": dict(zip(self.DIMENSIONS, map(float, row[:5]), strict=True)),
                    "weights": dict(zip(self.DIMENSIONS, map(float, weights), strict=True)),
                    "observed_gaming_days": int(row[6]), "observed_critical_posts": int(row[7]),
                })
        score_all(
            day, self.prm, cz.flags, cz.income, cz.list_start, cz.points, cz.score, self.scratch,
            self.miss, self.miss_day, self.gaming, self.speech, g.offsets, g.neighbours,
        )
        cz.score, self.scratch = self.scratch, cz.score

    def state(self) -> dict[str, np.ndarray]:
        """Counters kept between scoring days."""
        return {"miss": self.miss, "miss_day": self.miss_day, "gaming": self.gaming, "speech": self.speech}
