"""Scorecards defined in TOML: weighted dimensions, each a formula over citizen fields.

    [scoring.sesame]
    kind = "sesame"             # or "tencent", or "scorecard" for any other
    every_days = 30
    low = 350
    high = 950
    sources = ["payment_platform", "courts"]
    [scoring.sesame.dimensions.history]
    weight = 0.35
    value = "exp(-seen_missed_payment) * (1 - listed)"

Each dimension's value is clipped to [0, 1]; raw = Σ weight · value, and the
score is ``low + (high - low) · clip((raw - raw_offset) / raw_scale, 0, 1)``.
Every citizen is scored from the state before the scoring step (friends'
scores included), so the update is simultaneous. A dimension may read the
counts of events seen by channels outside ``sources`` only where a
``data-sharing`` flow passes them on (with consent, if the flow requires it).
The score is published as a field named after the table (``sesame``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar

import numpy as np
from pydantic import Field, model_validator

from socialcredit import dtypes as dt
from socialcredit.engine.fields import CHUNK, friends_mean_all
from socialcredit.engine.plugin import Plugin
from socialcredit.errors import ScenarioError
from socialcredit.registry import register
from socialcredit.scenario.expressions import Formula, parse
from socialcredit.scenario.schema import Context, Safeguards, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation


class Dimension(Strict):
    """One weighted part of a score."""

    weight: float = Field(ge=0.0, le=1.0, description="share of the raw score")
    value: Formula = Field(description="formula in [0, 1] (clipped): 1 is best")
    label: str = Field("", max_length=200, description="what the dimension measures, for reason codes")


class ScorecardConfig(Strict):
    """A score from weighted formula dimensions, recomputed on a schedule."""

    context: Context = Field("credit", description="the context the score is meant for")
    every_days: int = Field(30, ge=1, le=3650, description="scoring days: (day + 1) % every_days == 0")
    low: float = Field(ge=-1e6, le=1e6, description="lowest score")
    high: float = Field(ge=-1e6, le=1e6, description="highest score")
    initial: float = Field(ge=-1e6, le=1e6, description="everyone's score before the first scoring")
    raw_offset: float = Field(0.0, ge=-10, le=10, description="raw value mapped to the lowest score")
    raw_scale: float = Field(1.0, gt=0, le=100, description="raw span mapped onto low..high")
    primary: bool = Field(False, description="also the citizens' platform score (`score`: loans, reports)")
    holders: Formula = Field("1", description="who holds the score (metrics and reports count only them)")
    sources: list[str] = Field(default_factory=list, description="observation channels the system reads directly")
    dimensions: dict[str, Dimension] = Field(min_length=1, description="named weighted dimensions")
    safeguards: Safeguards = Safeguards()

    @model_validator(mode="after")
    def _consistent(self) -> ScorecardConfig:
        if not self.low < self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if not self.low <= self.initial <= self.high:
            raise ValueError(f"initial ({self.initial}) must lie in low..high")
        total = sum(d.weight for d in self.dimensions.values())
        if abs(total - 1.0) > 1e-6:
            raise ValueError(f"dimension weights must sum to 1 (they sum to {total:g})")
        return self


def stage_snapshot(sim: Simulation, day: int) -> dict[str, np.ndarray]:
    """The fields every scorecard scoring on ``day`` reads, taken once at the first of them.

    Scorecards of the same day score simultaneously: each reads the state before
    any of them scored (each stores its new scores in a new array, so the snapshot
    keeps the old ones), whatever their order in the file; friends' means of all
    of them take one pass over the graph.
    """
    cached = getattr(sim, "_scoring_snapshot", None)
    if cached is not None and cached[0] == day:
        return cached[2]
    today = [p for p in sim.plugins["scoring"].values() if isinstance(p, Scorecard) and p.runs_on(day)]
    env = sim.fields.snapshot(set().union(*(p.reads() for p in today)))
    sim._scoring_snapshot = (day, {id(p) for p in today}, env)
    return env


def _done_scoring(sim: Simulation, plugin: Scorecard) -> None:
    """Forget the day's snapshot once every scorecard of the day has scored (it is large)."""
    cached = getattr(sim, "_scoring_snapshot", None)
    if cached is not None:
        cached[1].discard(id(plugin))
        if not cached[1]:
            sim._scoring_snapshot = None


def _scalar(values: np.ndarray | float, i: int) -> float | int | bool:
    """Citizen ``i``'s value of a field as a Python number (a scalar field is everyone's)."""
    return values[i].item() if np.ndim(values) else values


@register("scoring", "scorecard")
class Scorecard(Plugin):
    """A custom scorecard (any dimensions)."""

    Config = ScorecardConfig
    steps = {"scoring": "score"}
    required: ClassVar[tuple[str, ...]] = ()
    span: ClassVar[tuple[float, float] | None] = None

    def declare(self, sim: Simulation) -> None:
        """Publish the score as a field named after the table."""
        c = self.config
        where = f"scoring.{self.name}"
        if self.required and sorted(c.dimensions) != sorted(self.required):
            raise ScenarioError(f"{where}.dimensions: a {self.kind} score has exactly the dimensions "
                                f"{', '.join(self.required)} (got {', '.join(c.dimensions)})")
        if self.span and (c.low, c.high) != self.span:
            raise ScenarioError(f"{where}: a {self.kind} score ranges {self.span[0]:g}..{self.span[1]:g}")
        self.sim = sim
        if c.primary:
            sim.fields.provide(self.name, lambda: sim.citizens.score, where)
        else:
            self.values = np.full(sim.n, c.initial, dt.SCORE)
            sim.fields.provide(self.name, lambda: self.values, where)

    def setup(self, sim: Simulation) -> None:
        """Parse the dimensions; check where their data comes from."""
        c = self.config
        where = f"scoring.{self.name}"
        self.dims = []
        for name, dim in c.dimensions.items():
            if dim.weight == 0:  # a switched-off dimension reads nothing
                continue
            expr = parse(dim.value, f"{where}.dimensions.{name}.value")
            sim.fields.require(expr, f"{where}.dimensions.{name}.value")
            self.dims.append((name, dim.weight, expr))
        self.holders = parse(c.holders, f"{where}.holders")
        sim.fields.require(self.holders, f"{where}.holders")
        self.consent_gated = self._check_sources(sim, where)
        if c.primary:
            sim.citizens.score[:] = c.initial

    def _check_sources(self, sim: Simulation, where: str) -> set[str]:
        """Counter fields from other channels need a data-sharing flow; return those gated by consent."""
        sharing = sim.find("records", "data-sharing")
        gated: set[str] = set()
        for name, _, expr in self.dims:
            for field in expr.names:
                base = field.removeprefix("friends_").removeprefix("parent_")
                if not base.startswith(("seen_", "total_")):
                    continue
                channel = sim.fields.owner(base)
                if channel.split(".")[-1] in self.config.sources:
                    continue
                flow = sharing.flow(channel.split(".")[-1], self.name) if sharing is not None else None
                if flow is None:
                    raise ScenarioError(
                        f"{where}.dimensions.{name}.value reads {base}, seen by {channel}, which is not among "
                        f"its sources and shares no data with scoring.{self.name} (add a data-sharing flow)")
                if flow.consent:
                    gated.add(field)
        return gated

    def runs_on(self, day: int) -> bool:
        """Scoring days: (day + 1) % every_days == 0."""
        return (day + 1) % self.config.every_days == 0

    def _env(self, sim: Simulation) -> dict[str, np.ndarray]:
        env = dict(stage_snapshot(sim, sim.day))
        for name in self.consent_gated:
            env[name] = self._consented(sim, name)
        return env

    def reads(self) -> set[str]:
        """Field names the dimensions read (consent-gated ones apart)."""
        return set().union(*(e.names for _, _, e in self.dims)) - self.consent_gated

    @staticmethod
    def _consented(sim: Simulation, name: str) -> np.ndarray:
        """A shared count where only consenting citizens' records pass: masked at the
        source, before any averaging over friends or reading a parent's."""
        consent = sim.citizens.extra.get("consent")
        base = name.removeprefix("friends_").removeprefix("parent_")
        values = sim.fields.everyone([base])[base].astype(np.float64)
        values = values * consent if consent is not None else np.zeros(sim.n)
        if name.startswith("friends_"):
            out = np.empty(sim.n, np.float32)
            friends_mean_all(values, sim.graph.offsets, sim.graph.neighbours, out)
            return out
        if name.startswith("parent_"):
            parent = sim.citizens.extra.get("parent")
            if parent is None:
                return np.zeros(sim.n)
            return np.where(parent >= 0, values[np.maximum(parent, 0)], 0.0)
        return values

    def score(self, sim: Simulation, day: int) -> None:
        """Score everyone (a whole-population pass on scoring days)."""
        c = self.config
        env = self._env(sim)
        out = np.empty(sim.n, dt.SCORE)
        for lo in range(0, sim.n, CHUNK):
            hi = min(sim.n, lo + CHUNK)
            raw = np.zeros(hi - lo)
            for _, weight, expr in self.dims:  # fmax/fmin: a NaN dimension reads 0
                raw += weight * np.fmin(np.fmax(expr.evaluate(env, lo, hi), 0.0), 1.0)
            out[lo:hi] = c.low + (c.high - c.low) * np.clip((raw - c.raw_offset) / c.raw_scale, 0.0, 1.0)
        if len(sim.trace_ids):
            self._trace(sim, day, env, out)
        if c.primary:
            sim.citizens.score = out
        else:
            self.values = out
        _done_scoring(sim, self)

    def _trace(self, sim: Simulation, day: int, env: dict[str, np.ndarray], new: np.ndarray) -> None:
        before = sim.fields.everyone([self.name])[self.name]
        for i in sim.trace_ids:
            i = int(i)
            parts = {name: float(np.clip(np.nan_to_num(np.atleast_1d(expr.evaluate(env, i, i + 1)), nan=0.0), 0, 1)[0])
                     for name, _, expr in self.dims}
            inputs = {field: _scalar(env[field], i) for _, _, expr in self.dims for field in sorted(expr.names)}
            sim.trace.append({
                "what": "score", "system": self.name, "day": day, "citizen": i,
                "before": float(before[i]), "after": float(new[i]), "components": parts,
                "weights": {name: w for name, w, _ in self.dims},
                "low": self.config.low, "high": self.config.high,
                "raw_offset": self.config.raw_offset, "raw_scale": self.config.raw_scale,
                "inputs": inputs,
            })

    def holder_mask(self, sim: Simulation) -> np.ndarray:
        """Boolean array: who holds this score."""
        env = sim.fields.everyone(self.holders.names)
        out = np.empty(sim.n, np.bool_)
        for lo in range(0, sim.n, CHUNK):
            hi = min(sim.n, lo + CHUNK)
            out[lo:hi] = np.broadcast_to(self.holders.evaluate(env, lo, hi), (hi - lo,)) != 0
        return out

    def current(self) -> np.ndarray:
        """The score array."""
        return self.sim.citizens.score if self.config.primary else self.values

    def published(self) -> dict[str, np.ndarray]:
        """A secondary score, for the run's tables (the primary one is ``score``)."""
        return {} if self.config.primary else {self.name: self.values}

    def state(self) -> dict[str, np.ndarray]:
        """Scores of a secondary scorecard (the primary one is the citizens' ``score``)."""
        return {} if self.config.primary else {"values": self.values}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the saved scores."""
        if "values" in arrays:
            self.values = np.array(arrays["values"], dt.SCORE)


@register("scoring", "sesame")
class SesameScore(Scorecard):
    """Sesame-like platform score: 350–950, five dimensions (credit history,
    behaviour and preferences, fulfilment capacity, personal characteristics,
    interpersonal relationships)."""

    required = ("history", "behaviour", "capacity", "characteristics", "relationships")
    span = (350.0, 950.0)


@register("scoring", "tencent")
class TencentScore(Scorecard):
    """Tencent-like score: 300–850, five categories (social connections,
    consumption, security, wealth, compliance)."""

    required = ("social", "consumption", "security", "wealth", "compliance")
    span = (300.0, 850.0)
