"""Peer rating (Black Mirror's "Nosedive"): 1–5 stars per interaction, weighted by the rater.

    [scoring.rating]
    kind = "peer-rating"
    interaction = "0.05 * (0.5 + sociability)"   # daily P(being rated), a formula
    quality = "conscientiousness"                 # how pleasant the ratee is, in [0, 1]
    initial = 4.0
    conformity = 0.5
    rater_power = 2.0

Each day a citizen has an interaction (an event kind, ``interaction`` unless
``event`` says otherwise) with daily probability ``interaction``; in it they
are rated by a uniformly random *active* friend (without one, nobody rates
them and the interaction is not counted). The rater gives

    stars = clip(round(base + quality_weight · (quality − 0.5)
                       + conformity · (R_ratee − R_ref) + noise), 1, 5)

where ``R_ref`` is the rater's own rating (``conformity_reference = "rater"``:
people rate those above them up and those below them down) or the
``initial`` rating (``"initial"``: a pure status bonus), ``round`` rounds
halves up and the noise is normal (or uniform) with standard deviation
``noise_sd``. Each star counts with weight w = (R_rater / 5) ** rater_power,
so highly rated raters count more; the ratee's rating is a weighted running
mean whose older weight decays by ``memory`` per rating received:

    W' = W · memory + w,    R' = (R · W · memory + stars · w) / W'

starting from R = ``initial`` with weight W = ``prior_weight``. All of a day's
stars are computed from the ratings at the start of the day, then applied at
once. A citizen is rated at most once a day (one interaction event a day).
The rating is published as a field named after the table (``rating``), for
formulas and for ``service`` gates such as ``deny = "rating < 4.2"``.
Work per day is proportional to the day's interactions (times the degree).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Literal

import numpy as np
from numba import njit, prange
from pydantic import Field

from socialcredit.behaviour.formula import RateFormula
from socialcredit.engine.events import stable_stream
from socialcredit.engine.kernels import positions
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.rng import stream_key, uniform, uniform_open
from socialcredit.scenario.expressions import Formula, parse
from socialcredit.scenario.schema import Context, Safeguards, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation

RATING = np.float32  # ratings and their weights
NOISE = {"none": 0, "normal": 1, "uniform": 2}
DRAWS = 4  # counters per rated citizen and day: rater, two for the noise, rater again after a cut tie


class PeerRatingConfig(Strict):
    """Stars given by friends after interactions, averaged with the raters' standing as weight."""

    context: Context = Field("social", description="the social context the rating is used in")
    event: str = Field("interaction", pattern=r"^[a-z][a-z0-9_]*$", max_length=64,
                       description="name of the interaction event kind this table defines")
    interaction: Formula = Field("0.05", description="daily probability that a citizen is rated, a formula")
    refresh_days: int = Field(30, ge=1, le=3650, description="re-evaluate the interaction formula every this many days")
    initial: float = Field(4.0, ge=1.0, le=5.0, description="everyone's rating at the start (stars)")
    prior_weight: float = Field(1.0, ge=0.0, le=1e6, description="weight of the initial rating, in ratings of weight 1")
    base: float = Field(4.0, ge=0.0, le=6.0, description="stars given to an average ratee before noise (stars)")
    quality: Formula = Field("0.5", description="how pleasant the ratee is, a formula in [0, 1] (clipped; NaN is 0.5)")
    quality_weight: float = Field(2.0, ge=0.0, le=20.0, description="stars added per unit of quality above 0.5")
    conformity: float = Field(0.5, ge=-5.0, le=5.0,
                              description="stars added per star the ratee's rating exceeds the reference rating")
    conformity_reference: Literal["rater", "initial"] = Field(
        "rater", description="reference of conformity: the rater's own rating, or the initial rating")
    noise: Literal["normal", "uniform", "none"] = Field("normal", description="distribution of the stars' noise")
    noise_sd: float = Field(0.5, ge=0.0, le=5.0, description="standard deviation of the noise (stars)")
    rater_power: float = Field(1.0, ge=0.0, le=50.0, description="a star weighs (rater's rating / 5) ** this")
    memory: float = Field(0.99, gt=0.0, le=1.0, description="older weight is multiplied by this per rating received")
    low_threshold: float = Field(3.5, ge=1.0, le=5.0, description="daily share of citizens rated below this")
    safeguards: Safeguards = Safeguards()


@njit(cache=True, inline="always")
def _pick_friend(i, offsets, neighbours, u, v):
    """A uniformly random active neighbour of ``i`` (-1 if none): one entry of the row drawn
    with ``u``, kept if active; otherwise a pick among the active ones with ``v``. Each
    active neighbour has probability 1/active either way, and the row is scanned only
    when the first draw hits a cut tie."""
    lo, hi = offsets[i], offsets[i + 1]
    if hi == lo:
        return -1
    j = neighbours[lo + int(u * (hi - lo))]
    if j >= 0:
        return j
    active = 0
    for a in range(lo, hi):
        if neighbours[a] >= 0:
            active += 1
    if active == 0:
        return -1
    pick = int(v * active)
    for a in range(lo, hi):
        if neighbours[a] >= 0:
            if pick == 0:
                return neighbours[a]
            pick -= 1
    return -1


@njit(cache=True, parallel=True)
def give_stars(
    seed, stream, day, block_start, pos, pos_at, ev_citizen, quality, offsets, neighbours, rating,
    base, quality_weight, conformity, reference, noise, noise_sd, rater_power,
    rater, stars, weight,
):
    """The stars of the day's interactions, from the ratings at the start of the day.

    ``pos[pos_at[b]:pos_at[b + 1]]`` are block ``b``'s interaction events;
    ``quality`` is aligned with ``pos``. Writes ``rater`` (-1 without an
    active friend), ``stars`` (1..5) and the star's ``weight``. Draws are
    addressed by (block, ratee's position in the block), so they do not depend
    on threads or on other event kinds.
    """
    for b in prange(len(pos_at) - 1):
        key = stream_key(seed, stream, day, b)
        lo = block_start[b]
        for x in range(pos_at[b], pos_at[b + 1]):
            i = ev_citizen[pos[x]]
            ctr = (i - lo) * DRAWS
            j = _pick_friend(i, offsets, neighbours, uniform(key, ctr), uniform(key, ctr + 3))
            if j < 0:
                rater[x] = -1
                stars[x] = 0
                weight[x] = 0.0
                continue
            r_j = float(rating[j])
            ref = r_j if reference < 0.0 else reference
            z = 0.0
            if noise == 1:  # Box–Muller
                z = noise_sd * math.sqrt(-2.0 * math.log(uniform_open(key, ctr + 1))) * math.cos(
                    2.0 * math.pi * uniform(key, ctr + 2))
            elif noise == 2:
                z = noise_sd * math.sqrt(3.0) * (2.0 * uniform(key, ctr + 1) - 1.0)
            s = base + quality_weight * (quality[x] - 0.5) + conformity * (float(rating[i]) - ref) + z
            s = math.floor(s + 0.5)
            rater[x] = j
            stars[x] = int(min(5.0, max(1.0, s)))
            weight[x] = r_j / 5.0 if rater_power == 1.0 else (r_j / 5.0) ** rater_power


@njit(cache=True, parallel=True)
def apply_stars(pos, pos_at, ev_citizen, rater, stars, weight, memory, low, rating, total_weight,
                block_sum, block_low):
    """Fold each star into its ratee's running mean; per block, the change of the
    ratings' sum and of the count below ``low`` (each citizen is rated once a day)."""
    for b in prange(len(pos_at) - 1):
        d_sum = 0.0
        d_low = 0
        for x in range(pos_at[b], pos_at[b + 1]):
            if rater[x] < 0:
                continue
            i = ev_citizen[pos[x]]
            old = float(rating[i])
            kept = float(total_weight[i]) * memory
            w = weight[x]
            new_w = kept + w
            new = (old * kept + stars[x] * w) / new_w if new_w > 0.0 else old
            rating[i] = new
            total_weight[i] = new_w
            stored = float(rating[i])  # as rounded to the storage dtype
            d_sum += stored - old
            d_low += (1 if stored < low else 0) - (1 if old < low else 0)
        block_sum[b] = d_sum
        block_low[b] = d_low


@register("scoring", "peer-rating")
class PeerRating(Plugin):
    """Nosedive-style peer rating: stars from friends, weighted by the raters' own ratings."""

    Config = PeerRatingConfig
    steps = {"behaviour": "refresh", "records": "update"}
    order = 30

    def declare(self, sim: Simulation) -> None:
        """Register the interaction event kind and publish the rating field."""
        c = self.config
        where = f"scoring.{self.name}"
        self.kind_code = sim.kinds.add(c.event, where, 1.0, 1.0, "table")
        self.rate = RateFormula(c.interaction, f"{where}.interaction", self.kind_code)
        self.sim = sim
        self.rating = np.full(sim.n, c.initial, RATING)
        self.weight = np.full(sim.n, c.prior_weight, RATING)
        sim.fields.provide(self.name, lambda: self.rating, where)

    def setup(self, sim: Simulation) -> None:
        """Parse the quality formula; resolve the fields both formulas read."""
        c = self.config
        where = f"scoring.{self.name}"
        self.quality = parse(c.quality, f"{where}.quality")
        sim.fields.require(self.quality, f"{where}.quality")
        self.rate.setup(sim)
        self.stream = stable_stream("peer-rating", self.name)
        self.rating_sum = float(self.rating.sum(dtype=np.float64))
        self.low_count = int(np.count_nonzero(self.rating < np.float32(c.low_threshold)))
        self._today = (0, 0)

    def refresh(self, sim: Simulation, day: int) -> None:
        """Re-evaluate interaction rates on schedule (before the day's events are drawn)."""
        if day % self.config.refresh_days == 0:
            self.rate.refresh(sim)

    def rate_day(self, sim: Simulation, day: int) -> tuple[np.ndarray, ...]:
        """Today's interactions: buffer positions and their per-block bounds, raters
        (-1: none), stars and weights (nothing is updated)."""
        c, ev, g = self.config, sim.events, sim.graph
        pos = positions(ev.kind_at, self.kind_code)
        per_block = ev.kind_at[:, self.kind_code + 1] - ev.kind_at[:, self.kind_code]
        pos_at = np.concatenate([[0], np.cumsum(per_block)]).astype(np.int64)
        ids = ev.citizen[pos].astype(np.int64)
        q = self.quality.evaluate(sim.fields.at(self.quality.names, ids))
        quality = np.empty(len(pos), np.float64)
        quality[:] = q
        np.nan_to_num(quality, copy=False, nan=0.5, posinf=1.0, neginf=0.0)
        np.clip(quality, 0.0, 1.0, out=quality)
        rater = np.empty(len(pos), np.int64)
        stars = np.empty(len(pos), np.int64)
        weight = np.empty(len(pos), np.float64)
        reference = -1.0 if c.conformity_reference == "rater" else c.initial
        give_stars(
            sim.seed, self.stream, day, sim.blocks.block_start, pos, pos_at, ev.citizen, quality,
            g.offsets, g.neighbours, self.rating,
            c.base, c.quality_weight, c.conformity, reference, NOISE[c.noise], c.noise_sd, c.rater_power,
            rater, stars, weight,
        )
        return pos, pos_at, rater, stars, weight

    def update(self, sim: Simulation, day: int) -> None:
        """Give today's stars (from start-of-day ratings), then update the ratings at once."""
        c, ev = self.config, sim.events
        pos, pos_at, rater, stars, weight = self.rate_day(sim, day)
        blocks = len(pos_at) - 1
        block_sum = np.zeros(blocks, np.float64)
        block_low = np.zeros(blocks, np.int64)
        apply_stars(pos, pos_at, ev.citizen, rater, stars, weight, c.memory, np.float32(c.low_threshold),
                    self.rating, self.weight, block_sum, block_low)
        # exact (below ~2e8 citizens): float32 ratings in [1, 5] sum without rounding in float64,
        # so the running sum equals a fresh sum of the array and checkpoints resume bit for bit
        self.rating_sum += float(block_sum.sum())
        self.low_count += int(block_low.sum())
        rated = rater >= 0
        self._today = (int(np.count_nonzero(rated)), int(stars[rated].sum()))

    def daily(self, day: int) -> dict[str, float | None]:
        """Rated interactions, their mean stars, the mean rating and the share rated low."""
        rated, star_sum = self._today
        n = len(self.rating)
        return {
            f"{self.name}_interactions": rated,
            f"{self.name}_stars_mean": star_sum / rated if rated else None,
            f"{self.name}_mean": self.rating_sum / n if n else None,
            f"{self.name}_low_share": self.low_count / n if n else None,
        }

    def published(self) -> dict[str, np.ndarray]:
        """The rating, for the run's tables."""
        return {self.name: self.rating}

    def state(self) -> dict[str, np.ndarray]:
        """Ratings, their weights, the running sums and the current interaction rates."""
        return {
            "rating": self.rating, "weight": self.weight, "rates": self.rate.state(self.sim),
            "rating_sum": np.array(self.rating_sum), "low_count": np.array(self.low_count),
        }

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the saved state (in place: formulas keep reading the same arrays)."""
        self.rating[...] = arrays["rating"]
        self.weight[...] = arrays["weight"]
        self.rate.restore(self.sim, arrays["rates"])
        self.rating_sum = float(arrays["rating_sum"])
        self.low_count = int(arrays["low_count"])
