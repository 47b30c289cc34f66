"""consequences.service: requests checked against a deny (ban) or allow (perk) rule."""

from __future__ import annotations

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.engine.events import DENIED
from socialcredit.engine.kernels import positions
from socialcredit.engine.simulation import Simulation
from socialcredit.errors import ScenarioError
from socialcredit.scenario import Scenario

N, DAYS = 2_000, 8
RISKS = np.array([0.125, 0.25, 0.375, 0.5, 0.625], np.float32)


def _service(**table) -> dict:
    return {"consequences.y": {"kind": "service", "context": "travel", "attempt": "0.2", **table},
            "consequences.travel": False}  # the ref travel ban also cuts income


def _sim(overrides, citizens=N, days=DAYS, seed=4):
    sim = Simulation(Scenario.load("ref").override(**overrides), citizens=citizens, days=days, seed=seed)
    sim.citizens.risk[:] = np.resize(RISKS, citizens)
    return sim


def _requests(sim):
    """(citizen, denied) of the day's requests of service y, read from the buffer."""
    pos = positions(sim.events.kind_at, sim.kinds.names.index("y"))
    return sim.events.citizen[pos].astype(np.int64), (sim.events.flags[pos] & DENIED) != 0


def test_positions_lists_the_kind_block_by_block():
    kind_at = np.array([[0, 2, 5], [10, 10, 11], [20, 23, 23]], np.int64)
    np.testing.assert_array_equal(positions(kind_at, 0), [0, 1, 20, 21, 22])
    np.testing.assert_array_equal(positions(kind_at, 1), [2, 3, 4, 10])


def test_deny_refuses_exactly_when_the_rule_is_true():
    sim = _sim(_service(deny="risk > 0.3"))
    refused = served = 0
    for _ in range(DAYS):
        sim.step()
        who, denied = _requests(sim)
        rule = sim.citizens.risk[who] > 0.3
        np.testing.assert_array_equal(denied, rule)
        refused += denied.sum()
        served += (~denied).sum()
        assert sim.daily_rows[-1]["y_denied"] == denied.sum()
        assert sim.daily_rows[-1]["y"] == len(who)
    assert refused > 500 and served > 500


def test_deny_listed_reads_the_list_at_the_request():
    sim = _sim({**_service(deny="listed"), "records.court_list.repay_rate": 0.0})
    sim.citizens.list_start[::3] = 0  # a third listed by hand (no repayment, term far away)
    denied_total = 0
    for _ in range(DAYS):
        sim.step()
        who, denied = _requests(sim)
        np.testing.assert_array_equal(denied, sim.citizens.list_start[who] >= 0)
        denied_total += denied.sum()
    assert denied_total > 300


def test_allow_serves_exactly_when_the_rule_is_true():
    sim = _sim(_service(allow="urban and risk < 0.4"))
    urban = (sim.citizens.flags & dt.FLAG_URBAN) != 0
    total = 0
    for _ in range(DAYS):
        sim.step()
        who, denied = _requests(sim)
        allowed = urban[who] & (sim.citizens.risk[who] < 0.4)
        np.testing.assert_array_equal(denied, ~allowed)
        assert sim.daily_rows[-1]["y_denied"] == np.count_nonzero(~allowed)
        total += len(who)
    assert total > 2_000


def test_income_is_multiplied_per_refusal():
    sim = _sim(_service(deny="risk > 0.3", income_factor=0.9))
    start = sim.citizens.income.copy()
    income0 = sim.citizens.income0.copy()
    refusals = np.zeros(N, np.int64)
    for _ in range(DAYS):
        sim.step()
        who, denied = _requests(sim)
        np.add.at(refusals, who[denied], 1)
    assert refusals.max() >= 3
    want = start.astype(np.float64) * 0.9 ** refusals
    np.testing.assert_allclose(sim.citizens.income, want, rtol=1e-5)
    np.testing.assert_array_equal(sim.citizens.income[refusals == 0], start[refusals == 0])
    np.testing.assert_array_equal(sim.citizens.income0, income0)  # the initial income is kept


def test_no_income_cut_by_default():
    sim = _sim(_service(deny="risk > 0.3"))
    start = sim.citizens.income.copy()
    for _ in range(3):
        sim.step()
    np.testing.assert_array_equal(sim.citizens.income, start)


@pytest.mark.parametrize("rules", [{}, {"deny": "listed", "allow": "urban"}])
def test_exactly_one_of_deny_and_allow(rules):
    table = {"kind": "service", "context": "travel", "attempt": "0.01", **rules}
    with pytest.raises(ScenarioError) as exc:
        Scenario.load("ref").override(**{"consequences.y": table})
    msg = str(exc.value)
    assert "consequences.y" in msg and "deny" in msg and "allow" in msg
    assert "\n" not in msg


@pytest.mark.parametrize("key", ["deny", "allow"])
def test_unknown_field_in_the_rule_names_the_key_path(key):
    with pytest.raises(ScenarioError) as exc:
        _sim(_service(**{key: "gold_card and not listed"}), citizens=50, days=1)
    msg = str(exc.value)
    assert f"consequences.y.{key}" in msg
    assert "gold_card" in msg
    assert "\n" not in msg


def test_unknown_field_in_the_attempt_names_the_key_path():
    overrides = _service(deny="listed")
    overrides["consequences.y"]["attempt"] = "0.01 * wanderlust"
    with pytest.raises(ScenarioError, match=r"consequences\.y\.attempt.*wanderlust"):
        _sim(overrides, citizens=50, days=1)
