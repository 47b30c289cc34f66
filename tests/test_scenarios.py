"""The shipped scenario family: each one runs, and shows its characteristic effect."""

from __future__ import annotations

import numpy as np
import pytest

from socialcredit.analysis.audit import audit_scenario
from socialcredit.engine.simulation import Simulation
from socialcredit.scenario import Scenario

FAMILY = ["china", "sesame", "tencent", "rongcheng", "court-list", "shanghai-cameras", "nosedive", "fair-credit"]
N, DAYS = 20_000, 60


def simulate(name: str, *sets: str, n: int = N, days: int = DAYS, seed: int = 3) -> Simulation:
    scenario = Scenario.load(name).with_sets(list(sets)) if sets else Scenario.load(name)
    sim = Simulation(scenario, citizens=n, days=days, seed=seed)
    sim.results = sim.run()
    return sim


def totals(sim: Simulation) -> dict[str, float]:
    frame = sim.results.daily
    return {c: float(frame[c].fill_null(0).sum()) for c in frame.columns}


@pytest.fixture(scope="module")
def china() -> Simulation:
    return simulate("china")


def test_every_shipped_scenario_validates_and_extends_china():
    for name in FAMILY:
        scenario = Scenario.load(name)
        assert scenario.name == name
        assert scenario.plugins("population")["population"].kind == "china"


def test_china_runs_every_system(china):
    kinds = {p.kind for section in china.plugins.values() for p in section.values()}
    assert {"sesame", "tencent", "peer-rating", "court-list", "points", "honour-list", "data-sharing",
            "service", "shame-board", "unfriend", "chill", "camera"} <= kinds
    t = totals(china)
    assert t["listings"] > 0 and t["flight_denied"] > 0 and t["shame_board_displayed"] > 0
    assert t["rental_denied"] > 0 and t["rating_interactions"] > 0
    score = china.citizens.score
    assert score.min() >= 350 and score.max() <= 950
    tencent = china.find("scoring", "tencent").values
    assert tencent.min() >= 300 and tencent.max() <= 850


def test_china_bans_only_the_listed(china):
    t = totals(china)
    listed_ever = (china.citizens.flags & 8) != 0
    # every refused flight cut the income of a citizen listed at some point
    loss = china.citizens.income < china.citizens.income0
    assert t["flight_denied"] > 0
    assert np.all(listed_ever[loss])


def test_sesame_alone_has_no_list_and_its_perks_follow_the_score():
    sim = simulate("sesame")
    assert sim.find("records", "court-list") is None and sim.find("records", "points") is None
    m = sim.results.metrics
    assert m["listed_now_share"] is None and 350 <= m["p_mean"] <= 950
    daily = sim.results.daily
    before = daily.filter(daily["day"] < 29)  # everyone holds the initial 600 until the first scoring
    assert before["rental"].sum() > 0 and before["rental_denied"].sum() == before["rental"].sum()
    after = daily.filter(daily["day"] > 29)
    assert 0 < after["rental_denied"].sum() < after["rental"].sum()  # then 650+ members are served


def test_tencent_alone_scores_300_to_850():
    sim = simulate("tencent")
    score = sim.citizens.score
    assert sim.find("scoring", "sesame") is None
    assert score.min() >= 300 and score.max() <= 850 and score.std() > 0


def test_rongcheng_grades_the_municipal_ledger():
    sim = simulate("rongcheng", days=90)
    m = sim.results.metrics
    grades = [m[f"grade_share_{k}"] for k in ("AAAplus", "AA", "A", "B", "C", "D")]
    assert sum(grades) == pytest.approx(1.0)
    assert m["m_mean"] < 1000  # deductions outweigh the rewards
    assert m["p_mean"] is None


def test_court_list_joint_punishment_reaches_every_agency():
    sim = simulate("court-list", n=40_000, days=90)
    t = totals(sim)
    assert t["listings"] > 0
    for service in ("flight", "high_speed_rail", "hotel", "loan"):
        assert t[f"{service}_denied"] > 0, service


def test_shanghai_cameras_misattribution_scales_with_false_match_rate():
    low = simulate("shanghai-cameras", "observation.camera.false_match=0.003", n=40_000, days=60)
    high = simulate("shanghai-cameras", "observation.camera.false_match=0.03", n=40_000, days=60)
    a, b = low.results.metrics["misattributed_per_1000"], high.results.metrics["misattributed_per_1000"]
    assert a > 0 and 5 < b / a < 20
    t = totals(high)
    assert t["shame_board_innocents_displayed"] > 0


def test_nosedive_ratings_gate_services():
    sim = simulate("nosedive")
    rating = sim.find("scoring", "peer-rating")
    assert rating is not None and sim.find("scoring", "sesame") is None
    t = totals(sim)
    assert t["rating_interactions"] > 0 and t["rental"] > 0
    values = sim.published()["rating"]
    assert values.min() >= 1.0 and values.max() <= 5.0


def test_fair_credit_has_no_cross_context_sanctions():
    assert audit_scenario("fair-credit") == []
    sim = simulate("fair-credit")
    t = totals(sim)
    assert not any(k.endswith("_denied") and k != "loan_denied" and v > 0 for k, v in t.items())


def test_china_is_flagged_on_every_audit_category():
    codes = {f.code for f in audit_scenario("china")}
    assert {"cross-context", "disproportionate", "guilt-by-association", "speech-penalty", "no-notice",
            "no-explanation", "no-appeal", "no-expiry", "innocents-without-remedy"} <= codes


def test_a_forbidden_formula_names_file_key_and_column(tmp_path):
    from socialcredit.errors import ScenarioError

    path = tmp_path / "bad.toml"
    path.write_text('extends = "china"\nname = "bad"\n[behaviour.jaywalk]\nrate = "risk.__class__"\n')
    with pytest.raises(ScenarioError) as err:
        Scenario.load(str(path))
    message = str(err.value)
    assert "bad.toml" in message and "behaviour.jaywalk.rate" in message and "column" in message
    assert "\n" not in message
