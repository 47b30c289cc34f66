"""The court list of dishonest persons: judgments, listing, term, repayment."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit, prange
from pydantic import Field

from socialcredit import dtypes as dt
from socialcredit.engine.events import DEFAULTED, JUDGED, RECHECK, REMOVED
from socialcredit.engine.kernels import collect
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.rng import Stream, numpy_generator, stream_key, uniform
from socialcredit.scenario.schema import Safeguards, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation

_LISTED_EVER = dt.FLAG_LISTED_EVER
_JUDGMENT = int(Stream.JUDGMENT)


class CourtListConfig(Strict):
    """Debt stress leads to judgments; a defaulted judgment lists the citizen."""

    judgment_event: str = Field(description="event kind that adds to debt stress (courts see all)")
    stress_decay_days: float = Field(gt=0, le=1e6, description="stress decays by exp(-1/this) a day")
    stress_threshold: float = Field(gt=0, le=1e6, description="stress that triggers a judgment")
    default_scale: float = Field(ge=0, le=1e6, description="P(default) = min(default_cap, scale · a · s)")
    default_cap: float = Field(ge=0, le=1, description="largest P(default)")
    risk_offset: float = Field(ge=0, le=100, description="a = risk_offset + risk")
    strain_income: float = Field(gt=0, le=1e9, description="s = min(strain_cap, sqrt(strain_income / income))")
    strain_cap: float = Field(gt=0, le=1e6, description="largest strain factor")
    term_days: int = Field(ge=1, le=dt.MAX_DAYS, description="days a listing lasts")
    repay_rate: float = Field(ge=0, le=1, description="daily P(repay and leave) at full income")
    repay_income: float = Field(gt=0, le=1e9, description="income (CNY/yr) from which repayment is at full rate")
    initial_share: float = Field(
        0.0, ge=0, le=0.5,
        description="share of citizens already on the list at the start (drawn with weight a · s; "
        "they count as listed on day 0 with a full term)",
    )
    safeguards: Safeguards = Safeguards()


@njit(cache=True, inline="always")
def _judge(i, key, lo, s, threshold, scale, cap, a_off, s_income, s_cap, income, risk):
    """Outcome of a judgment at stress ``s``: 0 none, 1 paid, 2 defaulted."""
    if s < threshold:
        return 0
    a = a_off + risk[i]
    q = min(cap, scale * a * min(s_cap, math.sqrt(s_income / income[i])))
    return 2 if uniform(key, i - lo) < q else 1


@njit(cache=True, parallel=True)
def court_day(
    seed, day, block_start, judge_kind, repay_kind,
    decay_days, threshold, scale, cap, a_off, s_income, s_cap, term,
    flags, income, risk, list_start, stress, stress_day,
    ev_citizen, ev_flags, kind_at,
    recheck, recheck_at, recheck_out, due, due_at, due_out, block_base=0,
):
    """One day of the court list, block by block (SPEC 9.2 step 3).

    A listing of day t0 covers days t0..t0+term-1, so terms end before the
    day starts; then judgments (for citizens not listed at the start of the
    day), then removals by repayment, then new listings. ``due_out``: 0 still
    listed (relisted since), 1 term ended, 2 term ended and judged (paid),
    3 term ended, judged and listed again. ``recheck_out``: 0, 1 judged (paid),
    2 judged and listed.
    """
    for b in prange(len(block_start) - 1):
        lo = block_start[b]
        key = stream_key(seed, _JUDGMENT, day, b + block_base)
        # ends of term: not listed at the start of today
        for j in range(due_at[b], due_at[b + 1]):
            i = due[j]
            if list_start[i] == day - term:
                list_start[i] = -1
                due_out[j] = 1
        # judgments, for citizens not listed at the start of the day
        for e in range(kind_at[b, judge_kind], kind_at[b, judge_kind + 1]):
            i = ev_citizen[e]
            s = stress[i] * math.exp(-(day - stress_day[i]) / decay_days) + 1.0
            stress_day[i] = day
            if list_start[i] < 0:
                outcome = _judge(i, key, lo, s, threshold, scale, cap, a_off, s_income, s_cap, income, risk)
                if outcome:
                    ev_flags[e] |= JUDGED
                    if outcome == 2:
                        ev_flags[e] |= DEFAULTED
                    s = 0.0
            stress[i] = s
        # citizens whose stress stayed high while listed: judged on their first day off the list
        for j in range(recheck_at[b], recheck_at[b + 1]):
            i = recheck[j]
            s = stress[i] * math.exp(-(day - stress_day[i]) / decay_days)
            stress_day[i] = day
            if list_start[i] < 0:
                recheck_out[j] = _judge(i, key, lo, s, threshold, scale, cap, a_off, s_income, s_cap, income, risk)
                if recheck_out[j]:
                    s = 0.0
            stress[i] = s
        for j in range(due_at[b], due_at[b + 1]):
            if due_out[j] == 1:
                i = due[j]
                s = stress[i] * math.exp(-(day - stress_day[i]) / decay_days)
                stress_day[i] = day
                outcome = _judge(i, key, lo, s, threshold, scale, cap, a_off, s_income, s_cap, income, risk)
                if outcome:
                    due_out[j] = 1 + outcome
                    s = 0.0
                stress[i] = s
        # removals by repayment (sampled as events; only citizens listed on an earlier day)
        for e in range(kind_at[b, repay_kind], kind_at[b, repay_kind + 1]):
            i = ev_citizen[e]
            list_start[i] = -1
            ev_flags[e] |= REMOVED
            if stress[i] * math.exp(-(day + 1 - stress_day[i]) / decay_days) >= threshold:
                ev_flags[e] |= RECHECK
        # new listings
        for e in range(kind_at[b, judge_kind], kind_at[b, judge_kind + 1]):
            if ev_flags[e] & DEFAULTED:
                i = ev_citizen[e]
                list_start[i] = day
                flags[i] |= _LISTED_EVER
        for j in range(recheck_at[b], recheck_at[b + 1]):
            if recheck_out[j] == 2:
                i = recheck[j]
                list_start[i] = day
                flags[i] |= _LISTED_EVER
        for j in range(due_at[b], due_at[b + 1]):
            if due_out[j] == 3:
                i = due[j]
                list_start[i] = day
                flags[i] |= _LISTED_EVER


class _Log:
    """A growable column of int32 values (listing and removal logs)."""

    def __init__(self) -> None:
        self.data = np.empty(1024, np.int32)
        self.n = 0

    def extend(self, values: np.ndarray) -> None:
        if self.n + len(values) > len(self.data):
            self.data = np.resize(self.data, 2 * (self.n + len(values)))
        self.data[self.n : self.n + len(values)] = values
        self.n += len(values)

    def view(self) -> np.ndarray:
        return self.data[: self.n]


def _capped_shares(weight: np.ndarray, share: float) -> np.ndarray:
    """Probabilities min(1, k · weight) whose mean is ``share`` (k found by bisection,
    so the excess of capped citizens goes to the others)."""
    lo, hi = 0.0, 1.0 / max(float(weight[weight > 0].min(initial=1.0)), 1e-12)
    for _ in range(40):
        k = 0.5 * (lo + hi)
        if np.minimum(1.0, k * weight).mean() < share:
            lo = k
        else:
            hi = k
    return np.minimum(1.0, hi * weight)


@register("records", "court-list")
class CourtList(Plugin):
    """SPC-style list of dishonest persons subject to enforcement."""

    Config = CourtListConfig
    steps = {"records": "records"}
    order = 10  # before the points ledger, which deducts for new listings

    def declare(self, sim: Simulation) -> None:
        """Register repayment (leaving the list early) as an event kind."""
        c = self.config
        self.repay_kind = sim.kinds.add(
            "repayment", f"records.{self.name}", c.repay_rate, c.repay_rate,
            "listed_repayment", (float(c.term_days), c.repay_income, 0.0),
        )

    def setup(self, sim: Simulation) -> None:
        """Allocate stress and start the logs."""
        c = self.config
        self.judge_kind = sim.kinds.code(c.judgment_event, f"records.{self.name}.judgment_event")
        n = sim.n
        self.stress = np.zeros(n, dt.DECAYED)
        self.stress_day = np.zeros(n, dt.DAY)
        self.recheck = np.empty(0, np.int32)
        self.entry_citizen, self.entry_day = _Log(), _Log()
        self.exit_citizen, self.exit_day, self.exit_reason = _Log(), _Log(), _Log()
        self.new_listings = np.empty(0, np.int32)
        self.listed_now = 0
        self._entry_cursor = 0
        self._day_counts: dict[str, int] = {}
        self.initial_ids = np.empty(0, np.int32)
        if c.initial_share > 0:
            self._initial_stock(sim)

    def _initial_stock(self, sim: Simulation) -> None:
        """List a share of citizens at the start, more likely the riskier and poorer (weight a · s)."""
        c, cz, blk = self.config, sim.citizens, sim.blocks
        a = c.risk_offset + cz.risk.astype(np.float64)
        s = np.minimum(c.strain_cap, np.sqrt(c.strain_income / cz.income.astype(np.float64)))
        weight = a * s / (a * s).mean()
        p = _capped_shares(weight, c.initial_share)
        chosen = []
        for b in range(blk.count):
            lo, hi = int(blk.block_start[b]), int(blk.block_start[b + 1])
            u = numpy_generator(sim.seed, Stream.INITIAL_LIST, block=b).random(hi - lo)
            chosen.append(lo + np.flatnonzero(u < p[lo:hi]))
        ids = np.concatenate(chosen).astype(np.int32) if chosen else np.empty(0, np.int32)
        cz.list_start[ids] = 0
        cz.flags[ids] |= _LISTED_EVER
        self.entry_citizen.extend(ids)
        self.entry_day.extend(np.zeros(len(ids), np.int32))
        self.listed_now = len(ids)
        self.initial_ids = ids

    def _due(self, day: int) -> np.ndarray:
        """Citizens listed exactly ``term_days`` ago (some may have left since)."""
        start = day - self.config.term_days
        days = self.entry_day.view()[self._entry_cursor:]  # the log is in day order
        lo = self._entry_cursor + int(np.searchsorted(days, start, side="left"))
        hi = self._entry_cursor + int(np.searchsorted(days, start, side="right"))
        self._entry_cursor = lo
        return self.entry_citizen.view()[lo:hi].copy()

    def records(self, sim: Simulation, day: int) -> None:
        """Run the day's judgments, removals and listings; log them."""
        c, ev, blk, cz = self.config, sim.events, sim.blocks, sim.citizens
        due = self._due(day)
        recheck = self.recheck
        recheck_out = np.zeros(len(recheck), np.int8)
        due_out = np.zeros(len(due), np.int8)
        court_day(
            sim.seed, day, blk.block_start, self.judge_kind, self.repay_kind,
            c.stress_decay_days, c.stress_threshold, c.default_scale, c.default_cap,
            c.risk_offset, c.strain_income, c.strain_cap, c.term_days,
            cz.flags, cz.income, cz.risk, cz.list_start, self.stress, self.stress_day,
            ev.citizen, ev.flags, ev.kind_at,
            recheck, blk.slices(recheck), recheck_out, due, blk.slices(due), due_out, sim.block_base,
        )
        evargs = (ev.citizen, ev.flags, ev.kind_at)
        judged = collect(*evargs, JUDGED, self.judge_kind)
        listed = np.sort(np.concatenate([
            collect(*evargs, DEFAULTED, self.judge_kind), recheck[recheck_out == 2], due[due_out == 3],
        ]))
        repaid = collect(*evargs, REMOVED, self.repay_kind)
        ended = due[due_out > 0]
        self.recheck = collect(*evargs, RECHECK, self.repay_kind)
        self.new_listings = listed
        self.entry_citizen.extend(listed)
        self.entry_day.extend(np.full(len(listed), day, np.int32))
        for who, reason in ((repaid, 1), (ended, 2)):
            self.exit_citizen.extend(who)
            self.exit_day.extend(np.full(len(who), day, np.int32))
            self.exit_reason.extend(np.full(len(who), reason, np.int32))
        self.listed_now += len(listed) - len(repaid) - len(ended)
        self._day_counts = {
            "judgments": len(judged) + int(np.count_nonzero(recheck_out)) + int(np.count_nonzero(due_out >= 2)),
            "listings": len(listed),
            "removals_repaid": len(repaid),
            "removals_term": len(ended),
            "listed_now": self.listed_now,
        }

    def daily(self, day: int) -> dict[str, float]:
        """The day's list movements."""
        return self._day_counts

    _LOGS = ("entry_citizen", "entry_day", "exit_citizen", "exit_day", "exit_reason")

    def state(self) -> dict[str, np.ndarray]:
        """Stress, pending re-checks, list logs and counters."""
        out = {"stress": self.stress, "stress_day": self.stress_day, "recheck": self.recheck,
               "listed_now": np.array(self.listed_now), "entry_cursor": np.array(self._entry_cursor)}
        out.update({name: getattr(self, name).view() for name in self._LOGS})
        return out

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the state saved by ``state()``."""
        self.stress, self.stress_day, self.recheck = arrays["stress"], arrays["stress_day"], arrays["recheck"]
        self.listed_now = int(arrays["listed_now"])
        self._entry_cursor = int(arrays["entry_cursor"])
        for name in self._LOGS:
            log = _Log()
            log.extend(arrays[name])
            setattr(self, name, log)

    def table(self, days: int) -> Any:
        """List intervals (a polars DataFrame): one row per listing, with its end (null if still listed)."""
        import polars as pl

        entries = pl.DataFrame({
            "citizen": self.entry_citizen.view().copy(),
            "start_day": self.entry_day.view().copy(),
        }).with_columns(pl.int_range(pl.len()).over("citizen").alias("nth"))
        reasons = np.array(["", "repaid", "term_ended"])
        exits = pl.DataFrame({
            "citizen": self.exit_citizen.view().copy(),
            "end_day": self.exit_day.view().copy(),
            "exit": reasons[self.exit_reason.view()],
        }).sort("citizen", "end_day", maintain_order=True).with_columns(
            pl.int_range(pl.len()).over("citizen").alias("nth")
        )
        return (
            entries.join(exits, on=["citizen", "nth"], how="left")
            .drop("nth")
            .sort("start_day", "citizen")
            .with_columns(pl.col("exit").cast(pl.Categorical))
        )
