"""behaviour.formula: event kinds whose daily probability is a formula (and the `table` propensity form)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.behaviour.sampling import propensity
from socialcredit.engine.events import FORMS
from socialcredit.engine.simulation import Simulation
from socialcredit.errors import ScenarioError
from socialcredit.scenario import Scenario

# Risk set by hand, cycling through these values: 2 * risk - 0.5 gives -0.5, 0, 0.25, 0.5, 1, 1.5
RISKS = np.array([0.0, 0.25, 0.375, 0.5, 0.75, 1.0], np.float32)
CLIPPED = np.array([0.0, 0.0, 0.25, 0.5, 1.0, 1.0])


def _formula(name: str, rate: str, refresh_days: int = 30) -> dict:
    return {f"behaviour.{name}": {"kind": "formula", "context": "civic", "rate": rate, "refresh_days": refresh_days}}


def _events_of(sim, name):
    k = sim.kinds.names.index(name)
    ka = sim.events.kind_at
    e = np.concatenate([np.arange(ka[b, k], ka[b, k + 1]) for b in range(len(ka))]).astype(np.int64)
    return sim.events.citizen[e].astype(np.int64)


def _sim(overrides, citizens=600, days=40, seed=3):
    return Simulation(Scenario.load("ref").override(**overrides), citizens=citizens, days=days, seed=seed)


def _set_risk(sim):
    sim.citizens.risk[:] = np.resize(RISKS, sim.n)


def test_table_propensity_reads_its_row():
    table = np.array([[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], np.float32)
    z = np.zeros(3, np.float32)
    zi = np.zeros(3, np.int16)
    for row in (0, 1):
        for i in range(3):
            # one block of 3 citizens, block-major: column c of citizen i at c * 3 + i
            got = propensity(FORMS["table"], float(row), 0.0, 0.0, i, 0, z, z, z, z, zi, table.ravel(), row * 3)
            assert got == pytest.approx(table[row, i])


def test_rates_are_evaluated_per_citizen_and_clipped():
    sim = _sim({**_formula("x", "2 * risk - 0.5"),
                **_formula("y", "0.5 * (risk - 0.25) / (risk - 0.25)")}, citizens=600)
    _set_risk(sim)
    sim.step()  # day 0 evaluates the formulas
    fx, fy = sim.plugins["behaviour"]["x"], sim.plugins["behaviour"]["y"]
    assert (fx.rate.row, fy.rate.row) == (0, 1)  # one rate-table row per formula, in order
    np.testing.assert_array_equal(sim.rates(fx.rate.row), np.resize(CLIPPED, 600))
    # 0/0 = NaN reads as 0; everyone else 0.5
    want_y = np.where(np.resize(RISKS, 600) == 0.25, 0.0, 0.5)
    np.testing.assert_array_equal(sim.rates(fy.rate.row), want_y)
    # the sampling bound of each kind is its largest rate
    assert sim.kind_arrays["bound"][sim.kinds.names.index("x")] == 1.0
    assert sim.kind_arrays["bound"][sim.kinds.names.index("y")] == 0.5
    assert sim.kind_arrays["log1m_bound"][sim.kinds.names.index("y")] == pytest.approx(math.log(0.5))


def test_rate_one_always_and_rate_zero_never():
    sim = _sim(_formula("x", "2 * risk - 0.5"), citizens=600, days=10)
    _set_risk(sim)
    risk = np.resize(RISKS, 600)
    for _ in range(10):
        sim.step()
        who = _events_of(sim, "x")
        assert len(np.unique(who)) == len(who)
        got = np.zeros(600, bool)
        got[who] = True
        np.testing.assert_array_equal(got[risk >= 0.75], True)  # rate 1 (clipped from 1.5 for risk 1)
        np.testing.assert_array_equal(got[risk <= 0.25], False)  # rate 0 (clipped from -0.5 for risk 0)


def test_bound_follows_the_largest_rate():
    sim = _sim(_formula("x", "0.3 * risk"), citizens=600, days=3)
    sim.citizens.risk[:] = 0.1
    sim.citizens.risk[77] = 0.5
    sim.step()
    k = sim.kinds.names.index("x")
    assert sim.kind_arrays["bound"][k] == pytest.approx(0.15)
    assert sim.kind_arrays["log1m_bound"][k] == pytest.approx(math.log1p(-0.15))


def test_a_formula_of_fixed_attributes_is_evaluated_once():
    sim = _sim(_formula("x", "0.1 * risk", refresh_days=5), citizens=300, days=12)
    row = sim.plugins["behaviour"]["x"].rate.row
    sim.citizens.risk[:] = 0.2
    sim.step()
    sim.citizens.risk[:] = 0.6  # the engine never changes traits; a formula reading only them is not re-read
    for _ in range(6):
        sim.step()
    np.testing.assert_allclose(sim.rates(row), 0.02, rtol=1e-6)


def test_rates_refresh_every_refresh_days():
    sim = _sim(_formula("x", "0.1 * chill", refresh_days=5), citizens=300, days=12)
    sim.citizens.chill[:] = 0.2
    row = sim.plugins["behaviour"]["x"].rate.row
    k = sim.kinds.names.index("x")
    sim.step()  # day 0
    np.testing.assert_allclose(sim.rates(row), 0.02, rtol=1e-6)
    sim.citizens.chill[:] = 0.6
    for day in range(1, 5):
        sim.step()
        np.testing.assert_allclose(sim.rates(row), 0.02, rtol=1e-6, err_msg=f"day {day}")
        assert sim.kind_arrays["bound"][k] == pytest.approx(0.02)
    sim.step()  # day 5: refreshed before the day's events
    np.testing.assert_allclose(sim.rates(row), 0.06, rtol=1e-6)
    assert sim.kind_arrays["bound"][k] == pytest.approx(0.06)


def test_a_rate_of_zero_produces_no_events():
    sim = _sim({**_formula("nothing", "0"), **_formula("rural_only", "0.2 * (1 - urban)")}, citizens=2_000, days=5)
    urban = (sim.citizens.flags & dt.FLAG_URBAN) != 0
    rural_events = 0
    for _ in range(5):
        sim.step()
        assert len(_events_of(sim, "nothing")) == 0
        who = _events_of(sim, "rural_only")
        assert not urban[who].any()
        rural_events += len(who)
        assert sim.daily_rows[-1]["nothing"] == 0
    assert rural_events > 500


def test_empirical_rate_matches_the_formula():
    n, days = 200_000, 10
    sim = _sim(_formula("x", "0.02 * urban + 0.005"), citizens=n, days=days, seed=11)
    urban = (sim.citizens.flags & dt.FLAG_URBAN) != 0
    counts = np.zeros(2)
    for _ in range(days):
        sim.step()
        who = _events_of(sim, "x")
        counts += [np.count_nonzero(urban[who]), np.count_nonzero(~urban[who])]
        assert sim.daily_rows[-1]["x"] == len(who)
    for got, size, p in ((counts[0], urban.sum(), 0.025), (counts[1], (~urban).sum(), 0.005)):
        trials = size * days
        mean, sd = trials * p, math.sqrt(trials * p * (1 - p))
        assert abs(got - mean) < 5 * sd, (got, mean, sd)


def test_a_formula_reading_a_score_sees_the_refreshed_value():
    overrides = {
        **_formula("x", "0.0001 * z", refresh_days=10),
        "scoring.z": {"kind": "scorecard", "every_days": 10, "low": 0, "high": 100, "initial": 50,
                      "dimensions": {"a": {"weight": 1.0, "value": "risk"}}},
    }
    sim = _sim(overrides, citizens=600, days=11)
    _set_risk(sim)
    row = sim.plugins["behaviour"]["x"].rate.row
    for _ in range(10):  # days 0..9: rates from the initial score, 50
        sim.step()
        np.testing.assert_allclose(sim.rates(row), 0.005, rtol=1e-6)
    # z was scored at the end of day 9: 100 * risk; day 10 refreshes the rates from it
    np.testing.assert_allclose(sim.published()["z"], 100 * np.resize(RISKS, 600), rtol=1e-6)
    sim.step()
    np.testing.assert_allclose(sim.rates(row), 0.01 * np.resize(RISKS, 600), rtol=1e-5, atol=1e-9)


def test_a_formula_reading_the_platform_score():
    sim = _sim(_formula("x", "0.001 * (score - 340) / 610", refresh_days=30), citizens=800, days=31)
    row = sim.plugins["behaviour"]["x"].rate.row
    for _ in range(30):
        sim.step()
    np.testing.assert_allclose(sim.rates(row), 0.001 * 260 / 610, rtol=1e-5)  # initial P = 600
    score = sim.citizens.score.astype(np.float64).copy()  # scored at the end of day 29
    assert score.std() > 1
    sim.step()
    np.testing.assert_allclose(sim.rates(row), 0.001 * (score - 340) / 610, rtol=1e-5)


def test_unknown_field_names_the_key():
    with pytest.raises(ScenarioError, match=r"behaviour\.x\.rate.*'riks'"):
        _sim(_formula("x", "0.01 * riks"), citizens=50, days=1)


def test_state_and_restore_of_the_rates():
    sim = _sim(_formula("x", "0.1 * risk"), citizens=100, days=2)
    _set_risk(sim)
    sim.step()
    plugin = sim.plugins["behaviour"]["x"]
    saved = plugin.state()["rates"].copy()
    other = _sim(_formula("x", "0.1 * risk"), citizens=100, days=2)
    other.plugins["behaviour"]["x"].restore({"rates": saved})
    row = other.plugins["behaviour"]["x"].rate.row
    np.testing.assert_array_equal(other.rates(row), saved)
    assert other.kind_arrays["bound"][other.kinds.names.index("x")] == pytest.approx(0.1)
