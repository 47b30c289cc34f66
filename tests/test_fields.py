"""engine.fields: named per-citizen fields read by scenario formulas (hand-made citizens and graphs)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.engine.fields import Fields, friends_mean, friends_mean_all
from socialcredit.engine.simulation import Simulation
from socialcredit.errors import ScenarioError
from socialcredit.population.graph import Graph
from socialcredit.scenario import Scenario
from socialcredit.scenario.expressions import parse

CHINA_POP = Path(__file__).parent / "data" / "china_population.toml"

# A hand-made CSR over 8 citizens. Edges: 0-1, 0-2, 2-3 active; 0-3 and 5-6 cut (stored as ~j).
#   0: 1, 2, ~3    1: 0    2: 0, 3    3: ~0, 2    4: -    5: ~6    6: ~5    7: -
OFFSETS = np.array([0, 3, 4, 6, 8, 8, 9, 10, 10], np.int32)
NEIGHBOURS = np.array([1, 2, ~3, 0, 0, 3, ~0, 2, ~6, ~5], np.int32)
INCOME = np.array([100, 200, 300, 400, 500, 600, 700, 800], np.float32)
# mean income over ACTIVE friends: 0 -> (200 + 300) / 2, 1 -> 100, 2 -> (100 + 400) / 2, 3 -> 300 (0-3 is cut),
# 4 -> no friends, 5 and 6 -> only a cut edge, 7 -> no friends
FRIENDS_INCOME = np.array([250, 100, 250, 300, 0, 0, 0, 0], np.float64)
URBAN = np.array([1, 0, 1, 1, 0, 1, 1, 0], bool)
# friends' urban share: 0 -> (0 + 1) / 2, 1 -> 1, 2 -> (1 + 1) / 2, 3 -> 1, others 0
FRIENDS_URBAN = np.array([0.5, 1.0, 1.0, 1.0, 0, 0, 0, 0])
POINTS = np.array([1000, 900, 800, 700, 600, 500, 400, 300], np.int16)
# friends' points: 0 -> (900 + 800) / 2, 1 -> 1000, 2 -> (1000 + 700) / 2, 3 -> 800
FRIENDS_POINTS = np.array([850, 1000, 850, 800, 0, 0, 0, 0], np.float64)


def _sim() -> Simulation:
    """A tiny reference simulation whose citizens and graph are then set by hand."""
    sim = Simulation(Scenario.load("ref"), citizens=8, days=3, seed=1)
    cz = sim.citizens
    cz.income[:] = INCOME
    cz.income0[:] = INCOME * 2
    cz.flags[:] = 0
    cz.flags[URBAN] |= dt.FLAG_URBAN
    cz.flags[[1, 4]] |= dt.FLAG_MINORITY
    cz.flags[[0, 1, 2]] |= dt.FLAG_MEMBER
    cz.flags[[3]] |= dt.FLAG_LISTED_EVER
    cz.flags[[5]] |= dt.FLAG_SPEECH_PENALISED
    cz.list_start[:] = dt.NO_DAY
    cz.list_start[[2, 6]] = 0
    cz.risk[:] = np.arange(8, dtype=np.float32) / 8
    cz.voice[:] = 0.25
    cz.chill[:] = 0.5
    cz.score[:] = np.arange(8, dtype=np.float32) * 10 + 400
    cz.points[:] = POINTS
    sim.graph = Graph(offsets=OFFSETS.copy(), neighbours=NEIGHBOURS.copy())
    return sim


@pytest.fixture
def sim() -> Simulation:
    return _sim()


# -- kernels on a hand-made CSR ------------------------------------------------


def test_friends_mean_all_kernel_skips_cut_edges():
    out = np.full(8, -1.0)
    friends_mean_all(INCOME.astype(np.float64), OFFSETS, NEIGHBOURS, out)
    np.testing.assert_allclose(out, FRIENDS_INCOME)


def test_friends_mean_kernel_for_some_ids():
    ids = np.array([3, 0, 5, 2, 3], np.int64)
    out = np.full(len(ids), -1.0)
    friends_mean(INCOME.astype(np.float64), OFFSETS, NEIGHBOURS, ids, out)
    np.testing.assert_allclose(out, [300, 250, 0, 250, 300])


def test_friends_mean_all_with_every_edge_cut_is_zero():
    out = np.full(8, -1.0)
    all_cut = np.where(NEIGHBOURS >= 0, ~NEIGHBOURS, NEIGHBOURS)
    friends_mean_all(INCOME.astype(np.float64), OFFSETS, all_cut, out)
    np.testing.assert_array_equal(out, np.zeros(8))


# -- core fields -------------------------------------------------------------------


def test_core_fields_read_the_citizen_arrays(sim):
    env = sim.fields.everyone(["income", "income0", "risk", "voice", "chill", "score", "points", "region"])
    np.testing.assert_array_equal(env["income"], INCOME)
    np.testing.assert_array_equal(env["income0"], INCOME * 2)
    np.testing.assert_array_equal(env["risk"], np.arange(8) / 8)
    np.testing.assert_array_equal(env["voice"], np.full(8, 0.25))
    np.testing.assert_array_equal(env["chill"], np.full(8, 0.5))
    np.testing.assert_array_equal(env["score"], np.arange(8) * 10 + 400)
    np.testing.assert_array_equal(env["points"], POINTS)
    np.testing.assert_array_equal(env["region"], sim.citizens.region)


def test_flag_fields_and_listed(sim):
    env = sim.fields.everyone(["urban", "minority", "member", "listed_ever", "speech_penalised", "listed"])
    np.testing.assert_array_equal(env["urban"], URBAN)
    np.testing.assert_array_equal(env["minority"], np.isin(np.arange(8), [1, 4]))
    np.testing.assert_array_equal(env["member"], np.isin(np.arange(8), [0, 1, 2]))
    np.testing.assert_array_equal(env["listed_ever"], np.arange(8) == 3)
    np.testing.assert_array_equal(env["speech_penalised"], np.arange(8) == 5)
    np.testing.assert_array_equal(env["listed"], np.isin(np.arange(8), [2, 6]))


def test_fields_are_live_views_of_the_state(sim):
    sim.citizens.income[4] = 12345
    sim.citizens.list_start[4] = 1
    env = sim.fields.at(["income", "listed"], np.array([4, 5]))
    np.testing.assert_array_equal(env["income"], [12345, 600])
    np.testing.assert_array_equal(env["listed"], [True, False])


def test_at_reads_only_the_given_citizens(sim):
    ids = np.array([7, 0, 3])
    env = sim.fields.at(["income", "urban", "points"], ids)
    np.testing.assert_array_equal(env["income"], [800, 100, 400])
    np.testing.assert_array_equal(env["urban"], [False, True, True])
    np.testing.assert_array_equal(env["points"], [300, 1000, 700])


def test_population_extras_are_fields():
    sim = _sim()
    sim.citizens.extra["age"] = np.array([30, 31, 32, 33, 34, 35, 36, 37], np.uint8)
    fields = Fields(sim)  # extras are registered when the fields are built
    assert fields.owner("age") == "population"
    np.testing.assert_array_equal(fields.everyone(["age"])["age"], np.arange(30, 38))
    np.testing.assert_array_equal(fields.at(["age"], np.array([6, 1]))["age"], [36, 31])
    assert "age" in fields.known()


def test_china_population_extras_are_fields():
    sim = Simulation(Scenario.load(CHINA_POP), citizens=500, days=1, seed=2)
    for name in ("age", "education", "consent", "parent", "female"):
        assert sim.fields.everyone([name])[name] is sim.citizens.extra[name]
        assert sim.fields.owner(name) == "population"


# -- friends_<field> -----------------------------------------------------------------


def test_friends_mean_over_active_neighbours_everyone(sim):
    env = sim.fields.everyone(["friends_income", "friends_urban", "friends_points"])
    np.testing.assert_allclose(env["friends_income"], FRIENDS_INCOME)
    np.testing.assert_allclose(env["friends_urban"], FRIENDS_URBAN)
    np.testing.assert_allclose(env["friends_points"], FRIENDS_POINTS)


def test_friends_mean_over_active_neighbours_at(sim):
    ids = np.array([0, 3, 5, 2, 7])
    env = sim.fields.at(["friends_income", "friends_points"], ids)
    np.testing.assert_allclose(env["friends_income"], FRIENDS_INCOME[ids])
    np.testing.assert_allclose(env["friends_points"], FRIENDS_POINTS[ids])


def test_friends_of_a_boolean_field_at(sim):
    # listed is a boolean array (list_start >= 0): listed are 2 and 6
    env = sim.fields.at(["friends_listed", "friends_urban"], np.array([0, 1, 3, 5]))
    np.testing.assert_allclose(env["friends_listed"], [0.5, 0.0, 1.0, 0.0])
    np.testing.assert_allclose(env["friends_urban"], FRIENDS_URBAN[[0, 1, 3, 5]])


def test_cutting_an_edge_changes_friends_mean(sim):
    g = sim.graph
    # cut 0-1 (both entries)
    g.neighbours[0] = ~g.neighbours[0]
    g.neighbours[3] = ~g.neighbours[3]
    env = sim.fields.everyone(["friends_income"])
    np.testing.assert_allclose(env["friends_income"], [300, 0, 250, 300, 0, 0, 0, 0])
    np.testing.assert_allclose(sim.fields.at(["friends_income"], np.array([0, 1]))["friends_income"], [300, 0])


# -- parent_<field> -----------------------------------------------------------------


def test_parent_field_is_zero_without_parent_attribute(sim):
    assert "parent" not in sim.citizens.extra
    np.testing.assert_array_equal(sim.fields.everyone(["parent_income"])["parent_income"], np.zeros(8))
    np.testing.assert_array_equal(sim.fields.at(["parent_income"], np.array([1, 2]))["parent_income"], [0, 0])


def test_parent_field_reads_the_parent(sim):
    sim.citizens.extra["parent"] = np.array([-1, 0, 0, 2, -1, 4, -1, 6], np.int32)
    want = np.array([0, 100, 100, 300, 0, 500, 0, 700], np.float64)
    np.testing.assert_array_equal(sim.fields.everyone(["parent_income"])["parent_income"], want)
    ids = np.array([3, 0, 7, 1])
    np.testing.assert_array_equal(sim.fields.at(["parent_income"], ids)["parent_income"], want[ids])
    urban = sim.fields.everyone(["parent_urban"])["parent_urban"]
    np.testing.assert_array_equal(urban, [0, 1, 1, 1, 0, 0, 0, 1])


def test_parent_in_a_formula(sim):
    sim.citizens.extra["parent"] = np.array([-1, 0, 0, 2, -1, 4, -1, 6], np.int32)
    expr = parse("income - parent_income", "test")
    sim.fields.require(expr, "test")
    got = expr.evaluate(sim.fields.everyone(expr.names))
    np.testing.assert_array_equal(got, [100, 100, 200, 100, 500, 100, 700, 100])


# -- counters -------------------------------------------------------------------------


def test_seen_and_total_resolve_to_counters(sim):
    expr = parse("seen_jaywalk + total_gaming", "test")
    sim.fields.require(expr, "test")
    jay = sim.kinds.names.index("jaywalk")
    gam = sim.kinds.names.index("gaming")
    assert (jay, True) in sim.counters.tracked
    assert (gam, False) in sim.counters.tracked
    assert (jay, False) not in sim.counters.tracked
    key_seen = sim.counters.tracked[(jay, True)]
    key_total = sim.counters.tracked[(gam, False)]
    sim.counters.arrays[f"{key_seen}_value"][:] = np.arange(8)
    sim.counters.arrays[f"{key_seen}_last"][:] = sim.day  # no decay yet
    sim.counters.arrays[f"{key_total}_value"][:] = 10 * np.arange(8)
    env = sim.fields.everyone(expr.names)
    np.testing.assert_allclose(env["seen_jaywalk"], np.arange(8))
    np.testing.assert_allclose(env["total_gaming"], 10 * np.arange(8))
    np.testing.assert_allclose(sim.fields.at(["total_gaming"], np.array([2, 5]))["total_gaming"], [20, 50])
    np.testing.assert_allclose(sim.fields.everyone(["friends_total_gaming"])["friends_total_gaming"],
                               [15, 0, 15, 20, 0, 0, 0, 0])
    assert sim.fields.owner("seen_jaywalk") == "observation.camera"
    assert sim.fields.owner("total_gaming") == "observation.payment_platform"
    assert "seen_jaywalk" in sim.fields.known()


def test_owner_of_plain_and_derived_fields(sim):
    assert sim.fields.owner("income") == "citizens"
    assert sim.fields.owner("friends_income") == "citizens"
    assert sim.fields.owner("parent_points") == "citizens"
    assert sim.fields.owner("listed") == "records (court list)"
    with pytest.raises(KeyError):
        sim.fields.owner("nonsense")


# -- unknown names ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["nonsense", "seen_flying", "total_flying", "friends_nonsense", "parent_nonsense"])
def test_unknown_name_is_a_scenario_error_naming_the_key(sim, name):
    where = "behaviour.q.rate"
    expr = parse(f"0.01 * {name}", where)
    with pytest.raises(ScenarioError) as exc:
        sim.fields.require(expr, where)
    msg = str(exc.value)
    assert where in msg
    assert name in msg
    assert "\n" not in msg


def test_unknown_name_in_a_scenario_formula():
    scenario = Scenario.load("ref").override(**{
        "behaviour.q": {"kind": "formula", "context": "civic", "rate": "0.01 * wingspan"}})
    with pytest.raises(ScenarioError) as exc:
        Simulation(scenario, citizens=50, days=1, seed=1)
    msg = str(exc.value)
    assert "behaviour.q.rate" in msg and "wingspan" in msg and "ref.toml" in msg


def test_a_field_defined_twice_is_refused(sim):
    with pytest.raises(ScenarioError, match="already defined by citizens"):
        sim.fields.provide("income", lambda: sim.citizens.income, "scoring.income")


def test_unknown_name_after_a_derived_field_is_the_one_reported(sim):
    expr = parse("seen_jaywalk + friends_income + zzz", "behaviour.q.rate")
    with pytest.raises(ScenarioError) as exc:
        sim.fields.require(expr, "behaviour.q.rate")
    msg = str(exc.value)
    assert "'zzz'" in msg
    assert "'seen_jaywalk'" not in msg
