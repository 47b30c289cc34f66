"""Observation channels: who sees which true events, and whom they blame."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from numba import njit, prange
from pydantic import Field

from socialcredit import dtypes as dt
from socialcredit.engine.events import MISATTRIBUTED, OBSERVED
from socialcredit.engine.fields import evaluate_everyone
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.rng import below, stream_key, uniform
from socialcredit.scenario.expressions import Formula, parse
from socialcredit.scenario.schema import Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation

_URBAN = dt.FLAG_URBAN
_MEMBER = dt.FLAG_MEMBER


class CameraConfig(Strict):
    """Street cameras with face matching."""

    events: list[str] = Field(min_length=1, description="event kinds the cameras see")
    detect_urban: float = Field(ge=0.0, le=1.0, description="P(detected) for an urban act")
    detect_rural: float = Field(ge=0.0, le=1.0, description="P(detected) for a rural act")
    false_match: float = Field(
        ge=0.0, le=1.0,
        description="P(a detection is matched to a random other citizen of the same region)",
    )
    match_multiplier: Formula | None = Field(
        None,
        description="per-actor factor on false_match, a formula over population attributes "
        "(measured false-match rates differ by demographic group), e.g. \"1 + 2 * female\"",
    )


class PlatformConfig(Strict):
    """A platform that sees its members' events."""

    events: list[str] = Field(min_length=1, description="event kinds the platform sees")
    detect: float = Field(1.0, ge=0.0, le=1.0, description="P(a member's event is seen)")


class RegistryConfig(Strict):
    """A registry or monitor that sees events of anyone with a probability."""

    events: list[str] = Field(min_length=1, description="event kinds it sees")
    detect: float = Field(ge=0.0, le=1.0, description="P(an event is seen)")


@register("observation", "camera")
class Camera(Plugin):
    """Detects acts with a probability depending on urban coverage; a detection
    may be misattributed to another citizen of the same region."""

    Config = CameraConfig

    def setup(self, sim: Simulation) -> None:
        """Watch the configured event kinds."""
        c = self.config
        row = -1
        if c.match_multiplier is not None:
            where = f"observation.{self.name}.match_multiplier"
            expr = parse(c.match_multiplier, where)
            sim.fields.require(expr, where)
            values = np.empty(sim.n, np.float32)
            evaluate_everyone(expr, sim.fields.everyone(expr.names), sim.n, values)
            row = sim.add_match_row(np.clip(np.nan_to_num(values, nan=1.0), 0.0, 1e6))
        for name in c.events:
            sim.kinds.watch(name, f"observation.{self.name}", c.detect_urban, c.detect_rural,
                            False, c.false_match, row)


@register("observation", "platform")
class Platform(Plugin):
    """Sees the events of its members only."""

    Config = PlatformConfig

    def setup(self, sim: Simulation) -> None:
        """Watch the configured event kinds."""
        c = self.config
        for name in c.events:
            sim.kinds.watch(name, f"observation.{self.name}", c.detect, c.detect, True)


@register("observation", "registry")
class Registry(Plugin):
    """Sees anyone's events with a fixed probability."""

    Config = RegistryConfig

    def setup(self, sim: Simulation) -> None:
        """Watch the configured event kinds."""
        c = self.config
        for name in c.events:
            sim.kinds.watch(name, f"observation.{self.name}", c.detect, c.detect)


@njit(cache=True, parallel=True)
def observe_day(
    seed, day, block_start, block_region, region_start,
    detect_urban, detect_rural, members_only, false_match, match_row, match_table, obs_stream,
    flags, spared,
    ev_citizen, ev_kind, ev_flags, ev_target, kind_at, block_base=0,
):
    """Decide, for every event of the day, whether it is seen and whom it is attributed to.

    Draws are addressed by (kind, day, block) stream and the actor's position
    in the block, so each act's fate is fixed whatever else happens that day.
    A misattribution to a citizen in ``spared`` (sorted ids, usually empty) is
    attributed to the actor instead (the counterfactual world of ``explain``).
    """
    nk = len(detect_urban)
    for b in prange(len(block_start) - 1):
        lo = block_start[b]
        r = block_region[b]
        rlo, rhi = region_start[r], region_start[r + 1]
        for k in range(nk):
            unseen = detect_urban[k] <= 0.0 and detect_rural[k] <= 0.0
            key = stream_key(seed, obs_stream[k], day, b + block_base)
            for e in range(kind_at[b, k], kind_at[b, k + 1]):
                i = ev_citizen[e]
                ev_target[e] = i
                if unseen:
                    continue
                p = detect_urban[k] if flags[i] & _URBAN else detect_rural[k]
                if members_only[k] and not flags[i] & _MEMBER:
                    continue
                ctr = (i - lo) * 3
                if uniform(key, ctr) >= p:
                    continue
                fl = OBSERVED
                fm = false_match[k]
                if match_row[k] >= 0:
                    fm = min(1.0, fm * match_table[match_row[k], i])
                if fm > 0.0 and rhi - rlo > 1 and uniform(key, ctr + 1) < fm:
                    j = rlo + below(key, ctr + 2, rhi - rlo - 1)
                    j = j + 1 if j >= i else j
                    x = np.searchsorted(spared, j)
                    if x == len(spared) or spared[x] != j:
                        ev_target[e] = j
                        fl |= MISATTRIBUTED
                ev_flags[e] |= fl
