"""records.court_list `initial_share`: the stock of citizens already on the list at the start."""

from __future__ import annotations

import math

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.engine.simulation import Simulation
from socialcredit.scenario import Scenario

N, SHARE = 100_000, 0.05
NO_DELTAS = {"jaywalk": 0, "traffic_violation": 0, "critical_post": 0, "volunteering": 0}


def _scenario(share=SHARE) -> Scenario:
    return Scenario.load("ref").override(**{
        "records.court_list.initial_share": share,
        "records.points.deltas": NO_DELTAS,  # points move only with listings
    })


@pytest.fixture(scope="module")
def sim():
    return Simulation(_scenario(), citizens=N, days=3, seed=21)


def _weight(sim) -> np.ndarray:
    """a · s of the reference model, by hand: a = 0.5 + risk, s = min(3, sqrt(30000 / income))."""
    cz = sim.citizens
    return (0.5 + cz.risk.astype(np.float64)) * np.minimum(3.0, np.sqrt(30_000 / cz.income.astype(np.float64)))


def test_share_listed_at_day_0(sim):
    listed = sim.citizens.list_start == 0
    assert np.all(sim.citizens.list_start[~listed] == dt.NO_DAY)
    w = _weight(sim)
    p = SHARE * w / w.mean()
    assert p.max() < 1  # no capping: the expected count is exactly SHARE * N
    sd = math.sqrt(np.sum(p * (1 - p)))
    assert abs(listed.sum() - SHARE * N) < 5 * sd, (listed.sum(), SHARE * N, sd)
    court = sim.plugins["records"]["court_list"]
    assert court.listed_now == listed.sum()
    np.testing.assert_array_equal(np.sort(court.initial_ids), np.flatnonzero(listed))


def test_weighted_towards_high_risk_and_low_income(sim):
    listed = sim.citizens.list_start == 0
    w = _weight(sim)
    p = SHARE * w / w.mean()
    quartile = np.searchsorted(np.quantile(w, [0.25, 0.5, 0.75]), w)
    rates = []
    for q in range(4):
        m = quartile == q
        expect, sd = p[m].sum(), math.sqrt(np.sum(p[m] * (1 - p[m])))
        assert abs(listed[m].sum() - expect) < 5 * sd, (q, listed[m].sum(), expect, sd)
        rates.append(listed[m].mean())
    assert rates[0] < rates[1] < rates[2] < rates[3]
    assert rates[3] > 2 * rates[0]
    cz = sim.citizens
    poor = cz.income < np.median(cz.income)
    risky = cz.risk > np.median(cz.risk)
    assert listed[poor].mean() > 1.3 * listed[~poor].mean()
    assert listed[risky].mean() > 1.2 * listed[~risky].mean()


def test_initially_listed_are_listed_ever(sim):
    listed = sim.citizens.list_start == 0
    ever = (sim.citizens.flags & dt.FLAG_LISTED_EVER) != 0
    np.testing.assert_array_equal(ever, listed)  # before any day has run


def test_lists_table_has_their_entries_from_day_0(sim):
    court = sim.plugins["records"]["court_list"]
    table = court.table(sim.days)
    ids = np.flatnonzero(sim.citizens.list_start == 0)
    assert table.height == len(ids)
    np.testing.assert_array_equal(np.sort(table["citizen"].to_numpy()), ids)
    assert (table["start_day"] == 0).all()
    assert table["end_day"].null_count() == table.height  # still listed


def test_points_deduct_listing_delta_on_day_0_only():
    sim = Simulation(_scenario(), citizens=20_000, days=3, seed=5)
    court = sim.plugins["records"]["court_list"]
    initial = np.sort(court.initial_ids)
    assert len(initial) > 500
    np.testing.assert_array_equal(sim.citizens.points, 1000)  # nothing before day 0 runs
    sim.step()
    pts = sim.citizens.points
    new = court.new_listings  # listed by a judgment on day 0
    hit = np.union1d(initial, new)
    assert len(np.intersect1d(initial, new)) == 0
    np.testing.assert_array_equal(pts[hit], 1000 - 450)
    others = np.setdiff1d(np.arange(sim.n), hit)
    np.testing.assert_array_equal(pts[others], 1000)
    sim.step()
    np.testing.assert_array_equal(sim.citizens.points[initial], 550)  # not deducted again on day 1
    table = court.table(sim.days)
    day0 = table.filter(table["start_day"] == 0)["citizen"].to_numpy()
    np.testing.assert_array_equal(np.sort(day0), hit)


def test_no_initial_stock_by_default():
    sim = Simulation(Scenario.load("ref"), citizens=5_000, days=1, seed=1)
    assert np.all(sim.citizens.list_start == dt.NO_DAY)
    assert sim.plugins["records"]["court_list"].table(1).height == 0


def test_share_at_the_largest_allowed_share():
    n, share = 400_000, 0.5
    sim = Simulation(_scenario(share), citizens=n, days=1, seed=3)
    listed = (sim.citizens.list_start == 0).sum()
    sd = math.sqrt(n * share * (1 - share))  # an upper bound on the sd of a sum of Bernoullis with mean share
    assert abs(listed - share * n) < 5 * sd, (listed / n, share)
