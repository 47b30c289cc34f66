"""records.court_list: stress, judgments, listings, removals (SPEC 9.2 step 3)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.engine.events import DEFAULTED, JUDGED, RECHECK, REMOVED
from socialcredit.engine.simulation import Simulation
from socialcredit.records.court_list import court_day
from socialcredit.scenario import Scenario

DECAY = math.exp(-1 / 60)
TERM = 730
NEVER = dict(scale=0.0, cap=0.95)  # P(default) = 0
ALWAYS = dict(scale=100.0, cap=1.0)  # P(default) = 1


class Court:
    """Arrays of a one-block population, and one call of ``court_day`` per simulated day."""

    def __init__(self, n=4, risk=0.3, income=30_000.0, scale=0.0, cap=0.95, seed=1):
        self.n = n
        self.seed = seed
        self.scale, self.cap = scale, cap
        self.flags = np.full(n, dt.FLAG_URBAN, dt.FLAGS)
        self.income = np.full(n, income, dt.MONEY)
        self.risk = np.full(n, risk, dt.TRAIT)
        self.list_start = np.full(n, dt.NO_DAY, dt.DAY)
        self.stress = np.zeros(n, dt.DECAYED)
        self.stress_day = np.zeros(n, dt.DAY)

    def day(self, day, missed=(), repaid=(), recheck=(), due=()):
        """Run one day; return (flags of the missed-payment events, flags of the repayment events,
        recheck_out, due_out)."""
        missed, repaid = sorted(missed), sorted(repaid)
        ev_citizen = np.array([*missed, *repaid], dt.CITIZEN_ID)
        ev_flags = np.zeros(len(ev_citizen), dt.EVENT_FLAGS)
        kind_at = np.array([[0, len(missed), len(ev_citizen)]], np.int64)
        recheck = np.array(sorted(recheck), np.int32)
        due = np.array(sorted(due), np.int32)
        block_start = np.array([0, self.n], np.int64)
        recheck_at = np.searchsorted(recheck, block_start).astype(np.int64)
        due_at = np.searchsorted(due, block_start).astype(np.int64)
        recheck_out = np.zeros(len(recheck), np.int8)
        due_out = np.zeros(len(due), np.int8)
        court_day(
            self.seed, day, block_start, 0, 1,
            60.0, 1.5, self.scale, self.cap, 0.5, 30_000.0, 3.0, TERM,
            self.flags, self.income, self.risk, self.list_start, self.stress, self.stress_day,
            ev_citizen, ev_flags, kind_at,
            recheck, recheck_at, recheck_out, due, due_at, due_out,
        )
        return ev_flags[: len(missed)], ev_flags[len(missed) :], recheck_out, due_out


# -- stress and judgments ------------------------------------------------------


def test_single_missed_payment_builds_stress_without_judgment():
    c = Court(**ALWAYS)
    fl, _, _, _ = c.day(10, missed=[0])
    assert fl[0] == 0
    assert c.stress[0] == 1.0 and c.stress_day[0] == 10
    assert c.list_start[0] == -1


def test_two_missed_payments_a_day_apart_are_judged_and_reset():
    c = Court(**NEVER)
    c.day(10, missed=[0])
    fl, _, _, _ = c.day(11, missed=[0])
    # stress = e^{-1/60} + 1 ≈ 1.98 ≥ 1.5: judged, pays (P(default) = 0), stress back to 0
    assert fl[0] & JUDGED and not fl[0] & DEFAULTED
    assert c.stress[0] == 0.0 and c.stress_day[0] == 11
    assert c.list_start[0] == -1
    assert not c.flags[0] & dt.FLAG_LISTED_EVER


def test_stress_accumulates_with_exponential_decay():
    c = Court(**NEVER)
    c.day(10, missed=[1])
    c.day(11, missed=[1])  # judged: reset
    c.day(20, missed=[1])
    assert c.stress[1] == pytest.approx(1.0)
    fl, _, _, _ = c.day(80, missed=[1])  # 60 days later: e^{-1} + 1 = 1.37 < 1.5
    assert fl[0] == 0
    assert c.stress[1] == pytest.approx(math.exp(-1) + 1, rel=1e-6)
    fl, _, _, _ = c.day(140, missed=[1])  # (e^-1 + 1)·e^-1 + 1 = 1.503 ≥ 1.5
    assert fl[0] & JUDGED
    assert c.stress[1] == 0.0


@pytest.mark.parametrize(("gap", "judged"), [(41, True), (42, False)])
def test_threshold_boundary(gap, judged):
    # e^{-41/60} + 1 = 1.505, e^{-42/60} + 1 = 1.497
    c = Court(**NEVER)
    c.day(0, missed=[2])
    fl, _, _, _ = c.day(gap, missed=[2])
    assert bool(fl[0] & JUDGED) == judged
    expected = 0.0 if judged else math.exp(-gap / 60) + 1
    assert c.stress[2] == pytest.approx(expected, abs=1e-6)


def test_defaulted_judgment_lists_citizen():
    c = Court(**ALWAYS)
    c.day(10, missed=[0, 3])
    fl, _, _, _ = c.day(11, missed=[0])
    assert fl[0] & JUDGED and fl[0] & DEFAULTED
    assert c.list_start[0] == 11
    assert c.flags[0] & dt.FLAG_LISTED_EVER
    assert c.flags[0] & dt.FLAG_URBAN, "other flag bits are kept"
    assert c.list_start[3] == -1 and not c.flags[3] & dt.FLAG_LISTED_EVER
    assert c.stress[0] == 0.0


def test_listed_citizen_is_not_judged_and_stress_keeps_accumulating():
    c = Court(**ALWAYS)
    c.list_start[0] = 5
    c.day(10, missed=[0])
    fl, _, _, _ = c.day(11, missed=[0])
    assert fl[0] == 0
    assert c.list_start[0] == 5
    assert c.stress[0] == pytest.approx(1 + DECAY, rel=1e-6)
    c.day(12, missed=[0])
    assert c.stress[0] == pytest.approx((1 + DECAY) * DECAY + 1, rel=1e-6)


@pytest.mark.parametrize(
    ("risk", "income", "q"),
    [
        (0.3, 30_000.0, 0.6 * 0.8 * 1.0),  # s = 1
        (0.0, 120_000.0, 0.6 * 0.5 * 0.5),  # s = sqrt(1/4)
        (0.3, 7_500.0, 0.95),  # 0.6·0.8·2 = 0.96, capped
        (0.1, 1_000.0, 0.95),  # s = min(3, 5.5) = 3 → 1.08, capped
    ],
)
def test_default_probability(risk, income, q):
    n = 20_000
    c = Court(n=n, risk=risk, income=income, scale=0.6, cap=0.95, seed=7)
    c.stress[:] = 1.0
    c.stress_day[:] = 9
    fl, _, _, _ = c.day(10, missed=range(n))
    assert np.all(fl & JUDGED)
    share = np.mean((fl & DEFAULTED) != 0)
    assert abs(share - q) < 5 * math.sqrt(q * (1 - q) / n) + 1e-9
    assert np.count_nonzero(c.list_start == 10) == np.count_nonzero(fl & DEFAULTED)


def test_default_draw_is_reproducible():
    a = Court(n=500, scale=0.6, cap=0.95, seed=3)
    b = Court(n=500, scale=0.6, cap=0.95, seed=3)
    for c in (a, b):
        c.stress[:] = 1.0
    fa, _, _, _ = a.day(4, missed=range(500))
    fb, _, _, _ = b.day(4, missed=range(500))
    np.testing.assert_array_equal(fa, fb)
    other = Court(n=500, scale=0.6, cap=0.95, seed=4)
    other.stress[:] = 1.0
    fo, _, _, _ = other.day(4, missed=range(500))
    assert not np.array_equal(fa, fo)


# -- removals ------------------------------------------------------------------


def test_term_ends_exactly_on_day_t0_plus_term():
    c = Court()
    c.list_start[1] = 100
    _, _, _, due_out = c.day(100 + TERM - 1, due=[1])
    assert due_out[0] == 0 and c.list_start[1] == 100
    _, _, _, due_out = c.day(100 + TERM, due=[1])
    assert due_out[0] == 1 and c.list_start[1] == -1


def test_term_end_skips_citizens_relisted_since():
    c = Court()
    c.list_start[1] = 200  # left and was listed again after the listing that falls due
    _, _, _, due_out = c.day(100 + TERM, due=[1])
    assert due_out[0] == 0 and c.list_start[1] == 200


def test_term_end_with_high_stress_requests_recheck():
    c = Court()
    c.list_start[2] = 100
    c.stress[2], c.stress_day[2] = 3.0, 100 + TERM
    _, _, _, due_out = c.day(100 + TERM, due=[2])
    assert due_out[0] == 2 and c.list_start[2] == -1


def test_repayment_removes():
    c = Court()
    c.list_start[2] = 50
    _, rf, _, _ = c.day(60, repaid=[2])
    assert rf[0] & REMOVED and not rf[0] & RECHECK
    assert c.list_start[2] == -1
    assert c.flags[2] & dt.FLAG_LISTED_EVER == 0, "the kernel only sets 'listed ever' on listing"


@pytest.mark.parametrize(("stress", "recheck"), [(2.0, True), (1.5, False), (1.53, True)])
def test_repayment_recheck_uses_next_days_stress(stress, recheck):
    # 1.5·e^{-1/60} = 1.4876 < 1.5; 1.53·e^{-1/60} = 1.5047 ≥ 1.5
    c = Court()
    c.list_start[2] = 50
    c.stress[2], c.stress_day[2] = stress, 60
    _, rf, _, _ = c.day(60, repaid=[2])
    assert rf[0] & REMOVED
    assert bool(rf[0] & RECHECK) == recheck


def test_recheck_next_day_judges_and_lists():
    c = Court(**ALWAYS)
    c.stress[2], c.stress_day[2] = 2.0, 60
    _, _, out, _ = c.day(61, recheck=[2])
    assert out[0] == 2
    assert c.list_start[2] == 61 and c.flags[2] & dt.FLAG_LISTED_EVER
    assert c.stress[2] == 0.0


def test_recheck_next_day_judges_and_pays():
    c = Court(**NEVER)
    c.stress[2], c.stress_day[2] = 2.0, 60
    _, _, out, _ = c.day(61, recheck=[2])
    assert out[0] == 1
    assert c.list_start[2] == -1 and c.stress[2] == 0.0


def test_recheck_below_threshold_only_decays():
    c = Court(**ALWAYS)
    c.stress[2], c.stress_day[2] = 1.49, 60
    _, _, out, _ = c.day(61, recheck=[2])
    assert out[0] == 0
    assert c.list_start[2] == -1
    assert c.stress[2] == pytest.approx(1.49 * DECAY, rel=1e-6) and c.stress_day[2] == 61


def test_recheck_with_a_missed_payment_the_same_day_is_judged_once():
    c = Court(**ALWAYS)
    c.stress[2], c.stress_day[2] = 2.0, 60
    fl, _, out, _ = c.day(61, missed=[2], recheck=[2])
    assert fl[0] & JUDGED and fl[0] & DEFAULTED
    assert out[0] == 0, "the missed payment's judgment reset the stress"
    assert c.list_start[2] == 61


# -- order: judgments, then removals, then listings ---------------------------


def test_order_judgments_then_removals_then_listings():
    c = Court(**ALWAYS)
    c.list_start[0] = 0  # listed, repays today, also misses a payment today
    c.stress[0], c.stress_day[0] = 1.0, 9
    c.stress[1], c.stress_day[1] = 1.0, 9  # not listed: judged and listed today
    c.list_start[3] = 10 - TERM  # term ends today
    fl, rf, _, due_out = c.day(10, missed=[0, 1], repaid=[0], due=[3])
    # citizen 0 was listed at the start of the day: not judged, though removed the same day
    assert fl[0] == 0
    assert rf[0] & REMOVED and rf[0] & RECHECK
    assert c.list_start[0] == -1
    assert c.stress[0] == pytest.approx(1 + DECAY, rel=1e-6)
    # citizen 1: judged, defaulted, listed after the removals
    assert fl[1] & JUDGED and fl[1] & DEFAULTED and c.list_start[1] == 10
    assert due_out[0] == 1 and c.list_start[3] == -1
    # next day the removed citizen 0 is judged through the re-check
    _, _, out, _ = c.day(11, recheck=[0])
    assert out[0] == 2 and c.list_start[0] == 11


def test_citizen_whose_term_ended_can_be_judged_that_day():
    c = Court(**ALWAYS)
    t0 = 100
    c.list_start[0] = t0
    c.stress[0], c.stress_day[0] = 1.0, t0 + TERM - 1
    fl, _, _, due_out = c.day(t0 + TERM, missed=[0], due=[0])
    assert due_out[0] > 0
    assert fl[0] & JUDGED


# -- whole simulation with extreme settings -------------------------------------

HIGH_MISS = {"behaviour.missed_payment.rate_urban": 0.2, "behaviour.missed_payment.rate_rural": 0.2}


def _run(days=25, citizens=2_000, seed=5, **overrides):
    sim = Simulation(Scenario.load("ref").override(**HIGH_MISS, **overrides), citizens=citizens, days=days, seed=seed)
    sim.run()
    return sim


def test_every_judgment_defaults_when_q_is_one():
    sim = _run(**{"records.court_list.default_cap": 1.0, "records.court_list.default_scale": 100.0})
    judgments = sum(r["judgments"] for r in sim.daily_rows)
    listings = sum(r["listings"] for r in sim.daily_rows)
    assert judgments > 100
    assert judgments == listings
    for r in sim.daily_rows:
        assert r["judgments"] == r["listings"]
    assert sim.daily_rows[-1]["listed_now"] == np.count_nonzero(sim.citizens.list_start >= 0)
    table = sim.find("records", "court-list").table(sim.days)
    assert len(table) == listings


def test_no_listing_when_q_is_zero():
    sim = _run(**{"records.court_list.default_scale": 0.0})
    assert sum(r["judgments"] for r in sim.daily_rows) > 100
    assert sum(r["listings"] for r in sim.daily_rows) == 0
    assert np.all(sim.citizens.list_start == -1)
    assert not np.any(sim.citizens.flags & dt.FLAG_LISTED_EVER)


def test_short_term_everyone_leaves_exactly_term_days_later():
    days, term = 25, 5
    sim = _run(days=days, **{"records.court_list.term_days": term, "records.court_list.repay_rate": 0.0})
    table = sim.find("records", "court-list").table(days)
    assert len(table) > 100
    starts = table["start_day"].to_numpy()
    ends = table["end_day"].to_numpy()
    exits = table["exit"].cast(str).to_list()
    done = starts + term <= days - 1
    assert np.all(ends[done] == starts[done] + term)
    assert all(e == "term_ended" for e, d in zip(exits, done, strict=True) if d)
    assert np.all(np.isnan(ends[~done].astype(float)))
    # still listed: exactly the citizens whose term has not ended
    listed_now = np.flatnonzero(sim.citizens.list_start >= 0)
    still = np.sort(table["citizen"].to_numpy()[~done])
    np.testing.assert_array_equal(listed_now, still)
    for cit, start in zip(table["citizen"].to_numpy()[~done], starts[~done], strict=True):
        assert sim.citizens.list_start[cit] == start
    # 'listed ever' is kept after leaving
    ever = np.flatnonzero(sim.citizens.flags & dt.FLAG_LISTED_EVER)
    np.testing.assert_array_equal(ever, np.unique(table["citizen"].to_numpy()))
    assert sim.daily_rows[-1]["listed_now"] == len(listed_now)
    assert sum(r["removals_term"] for r in sim.daily_rows) == int(done.sum())


def test_full_repayment_rate_removes_the_next_day():
    sim = _run(**{"records.court_list.repay_rate": 1.0, "records.court_list.repay_income": 1.0})
    table = sim.find("records", "court-list").table(sim.days)
    assert len(table) > 100
    starts = table["start_day"].to_numpy()
    ends = table["end_day"].to_numpy()
    done = starts < sim.days - 1
    assert np.all(ends[done] == starts[done] + 1)
    assert set(table.filter(table["end_day"].is_not_null())["exit"].cast(str).to_list()) == {"repaid"}
    assert sum(r["removals_repaid"] for r in sim.daily_rows) == int(done.sum())
    assert sum(r["repayment"] for r in sim.daily_rows) == int(done.sum())


def test_term_end_day_exit_is_term_ended_not_repaid():
    sim = _run(**{"records.court_list.term_days": 1, "records.court_list.repay_rate": 1.0,
                  "records.court_list.repay_income": 1.0})
    table = sim.find("records", "court-list").table(sim.days)
    ended = table.filter(table["end_day"].is_not_null())
    assert len(ended) > 100
    assert set(ended["exit"].cast(str).to_list()) == {"term_ended"}
