"""scoring.scorecard: weighted formula dimensions, simultaneous updates, data sources and consent."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from socialcredit.engine.simulation import Simulation
from socialcredit.errors import ScenarioError
from socialcredit.population.graph import Graph
from socialcredit.scenario import Scenario

CHINA_POP = Path(__file__).parent / "data" / "china_population.toml"

# Hand-made citizens (the pattern repeats over the population) and their score, computed by hand for
# low 200, high 800, raw_offset 0.1, raw_scale 0.8, a = clip(2 * risk) weight 0.6, b = clip(voice - 0.2) weight 0.4:
#   risk   voice  a     b      raw    (raw - 0.1) / 0.8   score
#   0.125  0.5    0.25  0.3    0.27   0.2125              327.5
#   0.75   0.125  1     0      0.6    0.625               575
#   1      1      1     0.8    0.92   1.025 -> 1          800
#   0      0      0     0      0      -0.125 -> 0         200
#   0.25   0.25   0.5   0.05   0.32   0.275               365
RISK = np.array([0.125, 0.75, 1.0, 0.0, 0.25], np.float32)
VOICE = np.array([0.5, 0.125, 1.0, 0.0, 0.25], np.float32)
SCORE = np.array([327.5, 575.0, 800.0, 200.0, 365.0])

Z = {"kind": "scorecard", "every_days": 5, "low": 200, "high": 800, "initial": 500, "raw_offset": 0.1,
     "raw_scale": 0.8, "dimensions": {"a": {"weight": 0.6, "value": "risk * 2"},
                                      "b": {"weight": 0.4, "value": "voice - 0.2"}}}


def _sim(overrides, citizens=500, days=10, seed=2, scenario="ref"):
    return Simulation(Scenario.load(scenario).override(**overrides), citizens=citizens, days=days, seed=seed)


def _scored(citizens=500, days=10):
    sim = _sim({"scoring.z": Z}, citizens=citizens, days=days)
    sim.citizens.risk[:] = np.resize(RISK, citizens)
    sim.citizens.voice[:] = np.resize(VOICE, citizens)
    return sim


def test_score_by_hand_on_a_scoring_day():
    sim = _scored()
    z = sim.plugins["scoring"]["z"]
    for day in range(4):
        sim.step()
        np.testing.assert_array_equal(z.current(), 500, err_msg=f"day {day} is no scoring day")
    sim.step()  # day 4: (4 + 1) % 5 == 0
    np.testing.assert_allclose(z.current(), np.resize(SCORE, 500), rtol=1e-6)
    np.testing.assert_allclose(sim.fields.everyone(["z"])["z"], np.resize(SCORE, 500), rtol=1e-6)
    assert z.runs_on(4) and z.runs_on(9) and not z.runs_on(5)


def test_a_nan_dimension_reads_zero():
    card = {"kind": "scorecard", "every_days": 1, "low": 0, "high": 10, "initial": 5,
            "dimensions": {"a": {"weight": 1.0, "value": "2 * sqrt(risk - 0.5)"}}}
    sim = _sim({"scoring.q": card}, citizens=100, days=1)
    sim.citizens.risk[:] = np.resize(np.array([0.5625, 0.125, 1.0], np.float32), 100)
    sim.step()
    np.testing.assert_allclose(sim.published()["q"], np.resize([5.0, 0.0, 10.0], 100), rtol=1e-6)


# -- simultaneous update ----------------------------------------------------------------

# Chain 0-1-2-3 (active), 4 and 7 alone, 5-6 cut. w = 100 * (0.5 * risk + 0.5 * friends_w / 100), initial 20.
OFFSETS = np.array([0, 1, 3, 5, 6, 6, 7, 8, 8], np.int32)
NEIGHBOURS = np.array([1, 0, 2, 1, 3, 2, ~6, ~5], np.int32)
W_RISK = np.array([0, 0.25, 0.5, 0.75, 1, 0.5, 0.25, 0.125], np.float32)
# first scoring: friends' mean 20 for 0..3, 0 for the rest -> 50 * risk + 0.5 * 20
W1 = np.array([10, 22.5, 35, 47.5, 50, 25, 12.5, 6.25])
# second scoring reads W1: friends' means 22.5, (10 + 35) / 2, (22.5 + 47.5) / 2, 35, then 0
W2 = np.array([11.25, 23.75, 42.5, 55, 50, 25, 12.5, 6.25])


def test_simultaneous_update_reads_the_previous_scores():
    card = {"kind": "scorecard", "every_days": 5, "low": 0, "high": 100, "initial": 20,
            "dimensions": {"a": {"weight": 0.5, "value": "risk"}, "b": {"weight": 0.5, "value": "friends_w / 100"}}}
    sim = _sim({"scoring.w": card}, citizens=8, days=10)
    sim.citizens.risk[:] = W_RISK
    sim.graph = Graph(offsets=OFFSETS.copy(), neighbours=NEIGHBOURS.copy())
    for _ in range(5):
        sim.step()
    np.testing.assert_allclose(sim.published()["w"], W1, rtol=1e-6)
    for _ in range(5):
        sim.step()
    np.testing.assert_allclose(sim.published()["w"], W2, rtol=1e-6)


# -- configuration errors -----------------------------------------------------------------


def test_weights_must_sum_to_one():
    card = {**Z, "dimensions": {"a": {"weight": 0.5, "value": "risk"}, "b": {"weight": 0.4, "value": "voice"}}}
    with pytest.raises(ScenarioError) as exc:
        Scenario.load("ref").override(**{"scoring.z": card})
    assert "scoring.z" in str(exc.value) and "sum to 1" in str(exc.value)


SESAME_DIMS = ("history", "behaviour", "capacity", "characteristics", "relationships")
TENCENT_DIMS = ("social", "consumption", "security", "wealth", "compliance")


def _card(kind, names, low, high):
    return {"kind": kind, "low": low, "high": high, "initial": low,
            "dimensions": {name: {"weight": 0.2, "value": "risk"} for name in names}}


@pytest.mark.parametrize(("kind", "names", "low", "high"), [
    ("sesame", SESAME_DIMS, 350, 950), ("tencent", TENCENT_DIMS, 300, 850)])
def test_named_scores_accept_their_dimensions_and_range(kind, names, low, high):
    sim = _sim({"scoring.s": _card(kind, names, low, high)}, citizens=50, days=1)
    assert sim.plugins["scoring"]["s"].kind == kind


@pytest.mark.parametrize(("kind", "names", "low", "high", "expect"), [
    ("sesame", (*SESAME_DIMS[:4], "extra"), 350, 950, "scoring.s.dimensions"),
    ("sesame", SESAME_DIMS, 300, 950, "scoring.s"),
    ("sesame", SESAME_DIMS, 350, 900, "scoring.s"),
    ("tencent", (*TENCENT_DIMS[1:], "history"), 300, 850, "scoring.s.dimensions"),
    ("tencent", TENCENT_DIMS, 350, 950, "scoring.s"),
])
def test_named_scores_refuse_other_dimensions_or_ranges(kind, names, low, high, expect):
    with pytest.raises(ScenarioError) as exc:
        _sim({"scoring.s": _card(kind, names, low, high)}, citizens=50, days=1)
    msg = str(exc.value)
    assert expect in msg and kind in msg
    if expect.endswith("dimensions"):
        want = SESAME_DIMS if kind == "sesame" else TENCENT_DIMS
        assert all(name in msg for name in want)
    else:
        assert {"sesame": "350..950", "tencent": "300..850"}[kind] in msg


# -- data sources, sharing and consent ------------------------------------------------------

JAY = {"behaviour.jaywalk.rate_urban": 0.3, "behaviour.jaywalk.rate_rural": 0.3,
       "observation.camera.detect_rural": 0.7}


def _reader(sources=(), value="min(1, total_jaywalk)"):
    return {"kind": "scorecard", "every_days": 5, "low": 0, "high": 1, "initial": 0.5, "sources": list(sources),
            "dimensions": {"a": {"weight": 1.0, "value": value}}}


def _flow(consent, to=("z",)):
    return {"records.sharing": {"kind": "data-sharing",
                                "flows": [{"source": "camera", "to": list(to), "consent": consent}]}}


@pytest.mark.parametrize("value", ["exp(-seen_jaywalk)", "min(1, total_jaywalk)", "friends_seen_jaywalk"])
def test_a_channel_outside_sources_without_a_flow_is_refused(value):
    with pytest.raises(ScenarioError) as exc:
        _sim({"scoring.z": _reader(value=value)}, citizens=50, days=1)
    msg = str(exc.value)
    assert "observation.camera" in msg and "scoring.z.dimensions.a.value" in msg
    assert "\n" not in msg


def test_a_flow_to_another_system_does_not_help():
    with pytest.raises(ScenarioError, match=r"observation\.camera"):
        _sim({"scoring.z": _reader(), **_flow(False, to=("platform",))}, citizens=50, days=1)


def test_a_channel_in_sources_or_shared_is_accepted():
    _sim({"scoring.z": _reader(sources=["camera"])}, citizens=50, days=1)
    _sim({"scoring.z": _reader(), **_flow(False)}, citizens=50, days=1)


def _counts_after_scoring(sim):
    for _ in range(5):
        sim.step()
    return np.minimum(1.0, sim.counters.everyone("jaywalk", False, sim.day))


def test_direct_source_reads_everyone():
    sim = _sim({"scoring.z": _reader(sources=["camera"]), **JAY}, citizens=1_000)
    want = _counts_after_scoring(sim)
    assert 0.2 < want.mean() < 0.95
    np.testing.assert_array_equal(sim.published()["z"], want)


def test_flow_without_consent_reads_everyone():
    sim = _sim({"scoring.z": _reader(), **_flow(False), **JAY}, citizens=1_000)
    want = _counts_after_scoring(sim)
    np.testing.assert_array_equal(sim.published()["z"], want)


def test_flow_with_consent_reads_nothing_without_a_consent_attribute():
    sim = _sim({"scoring.z": _reader(), **_flow(True), **JAY}, citizens=1_000)
    assert "consent" not in sim.citizens.extra
    counts = _counts_after_scoring(sim)
    assert counts.sum() > 100
    np.testing.assert_array_equal(sim.published()["z"], np.zeros(1_000))


def test_flow_with_consent_hand_made_attribute():
    sim = _sim({"scoring.z": _reader(), **_flow(True), **JAY}, citizens=1_000)
    consent = (np.arange(1_000) % 3 == 0).astype(np.uint8)
    sim.citizens.extra["consent"] = consent
    counts = _counts_after_scoring(sim)
    np.testing.assert_array_equal(sim.published()["z"], counts * consent)
    assert np.count_nonzero(counts[consent == 0]) > 100  # those counts exist, but do not reach the score


def test_flow_with_consent_china_population():
    sim = _sim({"scoring.z": _reader(value="min(1, seen_jaywalk)"), **_flow(True), **JAY},
               citizens=2_000, scenario=CHINA_POP)
    consent = sim.citizens.extra["consent"]
    assert 0 < consent.mean() < 1
    for _ in range(5):
        sim.step()
    seen = sim.counters.everyone("jaywalk", True, 4)  # as of the scoring day
    got = sim.published()["z"]
    np.testing.assert_allclose(got, np.minimum(1.0, seen) * consent, rtol=1e-6)
    assert np.count_nonzero(seen[consent == 0]) > 50
    np.testing.assert_array_equal(got[consent == 0], 0)


def test_zero_weight_dimensions_read_nothing():
    card = {"kind": "scorecard", "every_days": 5, "low": 0, "high": 100, "initial": 50,
            "dimensions": {"a": {"weight": 1.0, "value": "risk"},
                           "b": {"weight": 0.0, "value": "unknown_field + exp(-seen_jaywalk)"}}}
    sim = _sim({"scoring.z": card}, citizens=100, days=5)  # no error: b is switched off
    assert sim.counters.tracked == {}
    sim.citizens.risk[:] = np.resize(RISK, 100)
    for _ in range(5):
        sim.step()
    np.testing.assert_allclose(sim.published()["z"], 100 * np.resize(RISK, 100), rtol=1e-6)


# -- outputs and state -----------------------------------------------------------------------


def test_published_secondary_and_primary():
    sim = _scored(citizens=100, days=5)
    z = sim.plugins["scoring"]["z"]
    assert sim.published()["z"] is z.values
    np.testing.assert_array_equal(sim.published()["z"], 500)
    for _ in range(5):
        sim.step()
    assert sim.published()["z"] is z.values
    np.testing.assert_allclose(sim.published()["z"], np.resize(SCORE, 100), rtol=1e-6)
    assert sim.daily_rows[-1]["z_mean"] == pytest.approx(np.resize(SCORE, 100).mean(), rel=1e-6)

    prim = _sim({"scoring.platform": False, "scoring.z": {**Z, "primary": True}}, citizens=100, days=5)
    prim.citizens.risk[:] = np.resize(RISK, 100)
    prim.citizens.voice[:] = np.resize(VOICE, 100)
    np.testing.assert_array_equal(prim.citizens.score, 500)  # the initial score
    assert "z" not in prim.published()
    for _ in range(5):
        prim.step()
    np.testing.assert_allclose(prim.citizens.score, np.resize(SCORE, 100), rtol=1e-6)
    np.testing.assert_allclose(prim.fields.everyone(["z"])["z"], np.resize(SCORE, 100), rtol=1e-6)
    assert prim.plugins["scoring"]["z"].state() == {}


def test_state_restore_round_trip():
    sim = _scored(citizens=100, days=10)
    z = sim.plugins["scoring"]["z"]
    for _ in range(5):
        sim.step()
    saved = {k: v.copy() for k, v in z.state().items()}
    np.testing.assert_allclose(saved["values"], np.resize(SCORE, 100), rtol=1e-6)
    sim.citizens.risk[:] = 0.5
    for _ in range(5):
        sim.step()
    assert not np.allclose(z.values, saved["values"])
    z.restore(saved)
    assert z.values.dtype == np.float32
    np.testing.assert_array_equal(z.values, saved["values"])
    np.testing.assert_array_equal(sim.fields.everyone(["z"])["z"], saved["values"])
    fresh = _scored(citizens=100, days=10)
    fresh.plugins["scoring"]["z"].restore(saved)
    np.testing.assert_array_equal(fresh.published()["z"], saved["values"])


# -- consent and friends' records ----------------------------------------------------------


def _friends_reader():
    """8 citizens, chain 0-1-2-3; z = min(1, friends_total_jaywalk), camera data shared with consent only;
    no jaywalks happen, the counts are set by hand."""
    overrides = {"scoring.z": _reader(value="min(1, friends_total_jaywalk)"), **_flow(True),
                 "behaviour.jaywalk.rate_urban": 0.0, "behaviour.jaywalk.rate_rural": 0.0}
    sim = _sim(overrides, citizens=8, days=5)
    sim.graph = Graph(offsets=OFFSETS.copy(), neighbours=NEIGHBOURS.copy())
    key = sim.counters.tracked[(sim.kinds.names.index("jaywalk"), False)]
    sim.counters.arrays[f"{key}_value"][:] = [0, 3, 0, 0, 0, 0, 0, 0]  # only citizen 1 was seen jaywalking
    sim.citizens.extra["consent"] = np.array([1, 0, 1, 1, 0, 0, 0, 0], np.uint8)
    for _ in range(5):
        sim.step()
    return sim


def test_consent_gates_the_scored_citizens_own_reading():
    z = _friends_reader().published()["z"]
    assert z[1] == 0  # did not consent: its score reads no camera data at all (friends 0 and 2 have no records)
    assert z[3] == 0  # consented; its only friend, 2, has no records


def test_a_non_consenting_friends_records_do_not_reach_the_score():
    z = _friends_reader().published()["z"]
    assert z[0] == 0  # 0 consented, but its only friend, 1, did not: 1's records must not be passed on


def _pair(first: str, second: str) -> dict:
    tables = {
        "a": {"kind": "scorecard", "context": "social", "low": 0, "high": 100, "initial": 50, "every_days": 5,
              "dimensions": {"x": {"weight": 0.5, "value": "risk"}, "y": {"weight": 0.5, "value": "b / 100"}}},
        "b": {"kind": "scorecard", "context": "social", "low": 0, "high": 100, "initial": 20, "every_days": 5,
              "dimensions": {"x": {"weight": 0.5, "value": "friends_a / 100"},
                             "y": {"weight": 0.5, "value": "friends_b / 100"}}},
    }
    return {f"scoring.{first}": tables[first], f"scoring.{second}": tables[second]}


def test_scorecards_of_a_day_score_simultaneously_whatever_their_order():
    one = _sim(_pair("a", "b"), citizens=400, days=10)
    two = _sim(_pair("b", "a"), citizens=400, days=10)
    assert list(one.plugins["scoring"]) != list(two.plugins["scoring"])
    for _ in range(4):  # days 0..3: no scoring yet
        one.step()
        two.step()
    a0 = one.plugins["scoring"]["a"].values.copy()
    b0 = one.plugins["scoring"]["b"].values.copy()
    one.step()  # day 4: both score, from the values before either did
    two.step()
    for name in ("a", "b"):
        np.testing.assert_array_equal(one.plugins["scoring"][name].values, two.plugins["scoring"][name].values)
    g = one.graph
    friends_a = np.zeros(one.n)
    friends_b = np.zeros(one.n)
    for i in range(one.n):
        row = g.neighbours[g.offsets[i]:g.offsets[i + 1]]
        row = row[row >= 0]
        if len(row):
            friends_a[i], friends_b[i] = a0[row].mean(), b0[row].mean()
    want_b = 100 * np.clip(0.5 * friends_a / 100 + 0.5 * friends_b / 100, 0, 1)
    want_a = 100 * np.clip(0.5 * one.citizens.risk + 0.5 * b0 / 100, 0, 1)
    np.testing.assert_allclose(one.plugins["scoring"]["b"].values, want_b, rtol=1e-5, atol=1e-4)
    np.testing.assert_allclose(one.plugins["scoring"]["a"].values, want_a, rtol=1e-5, atol=1e-4)
