"""explain: one citizen's timeline, score decomposition, sanctions, reasons, counterfactual."""

from __future__ import annotations

import json
import re

import numpy as np
import polars as pl
import pytest

import socialcredit as sc
from socialcredit.analysis.explain import explain
from socialcredit.cli import main


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    # a high false-match rate so that innocents are easy to find
    return sc.run("ref", citizens=6_000, days=150, seed=11, out=tmp_path_factory.mktemp("x") / "run",
                  overrides={"observation.camera.false_match": 0.3})


@pytest.fixture(scope="module")
def innocent(run) -> int:
    ev = run.events.filter(pl.col("misattributed"))
    return int(ev["attributed_to"].value_counts(sort=True)["attributed_to"][0])


def test_decomposition_sums_to_the_score(run, innocent):
    ex = explain(run.path, innocent, counterfactual=False)
    cfg = run.manifest["scenario"]["scoring"]["platform"]
    assert [s["day"] for s in ex.scores] == [29, 59, 89, 119, 149]
    for s in ex.scores:
        raw = sum(s["weights"][d] * x for d, x in s["components"].items())
        expected = cfg["low"] + cfg["span"] * min(1.0, max(0.0, (raw - cfg["raw_offset"]) / cfg["raw_scale"]))
        assert s["after"] == pytest.approx(expected, abs=1e-3)
        assert all(0.0 <= x <= 1.0 for x in s["components"].values())
    # the replay reproduces the stored run
    row = run.citizens.filter(pl.col("citizen") == innocent).row(0, named=True)
    assert ex.final["score"] == pytest.approx(row["score"], abs=1e-4)
    assert ex.final["points"] == row["points"]
    assert not ex.notes


def test_timeline_marks_misattribution_and_sanctions_name_rules(run, innocent):
    ex = explain(run.path, innocent, counterfactual=False)
    blamed = [e for e in ex.events if e["misattributed"] and e["attributed_to"] == innocent]
    assert blamed and all("blamed on this citizen" in e["role"] for e in blamed)
    deductions = [s for s in ex.sanctions if "misattributed" in s["sanction"]]
    assert len(deductions) == len(blamed)
    assert all(s["rule"] == "records.points.deltas.jaywalk" for s in deductions)


def test_counterfactual_restores_the_penalties(run, innocent):
    ex = explain(run.path, innocent)
    cf = ex.counterfactual
    k = cf["misattributed_penalties_received"]
    assert k >= 1
    # each misattributed jaywalk cost 10 points (unless clipped at the bounds)
    assert cf["without_misattribution"]["points"] - cf["factual"]["points"] == pytest.approx(10 * k, abs=10 * k)
    assert cf["without_misattribution"]["points"] > cf["factual"]["points"]


def test_reason_codes_at_most_four_largest_first(run):
    listed = run.citizens.filter(pl.col("listed"))["citizen"][0]
    ex = explain(run.path, int(listed), counterfactual=False)
    assert 1 <= len(ex.reasons) <= 4
    lost = [r["points_lost"] for r in ex.reasons]
    assert lost == sorted(lost, reverse=True)
    assert any(r["dimension"] == "characteristics" and "court list" in r["reason"] for r in ex.reasons)
    assert ex.listings and ex.listings[-1]["end_day"] is None


def test_cli_json_and_errors(run, innocent, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["explain", str(run.path), "--citizen", str(innocent), "--json"])
    assert exc.value.code == 0
    data = json.loads(capsys.readouterr().out)
    assert data["citizen"] == innocent and data["counterfactual"]["misattributed_penalties_received"] >= 1
    for args, needle in ((["--citizen", "6000"], "out of range"), (["--citizen", "-1"], "out of range")):
        with pytest.raises(SystemExit) as exc:
            main(["explain", str(run.path), *args])
        err = capsys.readouterr().err
        assert exc.value.code == 2 and needle in err and len(err.strip().splitlines()) == 1
    with pytest.raises(SystemExit) as exc:
        main(["explain", str(run.path / "nope"), "--citizen", "1"])
    assert exc.value.code == 2 and "no such run directory" in capsys.readouterr().err


# -- china: every scorecard decomposed, reason codes per system, every sanction with its rule -------------------


@pytest.fixture(scope="module")
def china(tmp_path_factory):
    return sc.run("china", citizens=20_000, days=90, seed=5, out=tmp_path_factory.mktemp("x-china") / "run")


@pytest.fixture(scope="module")
def banned(china) -> int:
    """A citizen refused a flight (listed: joint punishment)."""
    ev = china.events.filter(pl.col("denied") & (pl.col("kind") == "flight"))
    assert ev.height, "no flight refused in this run"
    return int(ev["citizen"][0])


@pytest.fixture(scope="module")
def china_ex(china, banned):
    return explain(china.path, banned)


def test_china_decomposition_sums_to_the_score(china, china_ex):
    ex = china_ex
    scoring = china.manifest["scenario"]["scoring"]
    systems = {s["system"] for s in ex.scores}
    assert systems == {"sesame", "tencent"}  # the peer rating has no scorecard to decompose
    days = sorted(china.scores_monthly["day"].unique().to_list())
    for s in ex.scores:
        cfg = scoring[s["system"]]
        assert (s["low"], s["high"], s["raw_offset"], s["raw_scale"]) == (cfg["low"], cfg["high"], cfg["raw_offset"],
                                                                        cfg["raw_scale"])
        assert list(s["weights"]) == list(cfg["dimensions"])  # every dimension, in the scenario's order
        raw = 0.0
        for d, v in s["components"].items():
            assert 0.0 <= v <= 1.0
            raw += s["weights"][d] * v
        expected = s["low"] + (s["high"] - s["low"]) * np.clip((raw - s["raw_offset"]) / s["raw_scale"], 0.0, 1.0)
        assert np.float32(expected) == np.float32(s["after"])  # to float32 precision, as stored
        # the per-dimension points add up the same way: low + Σ points − offset, clipped
        points = s["low"] + sum(d["points"] for d in s["dimensions"]) - s["offset_points"]
        assert min(max(points, s["low"]), s["high"]) == pytest.approx(s["after"], abs=1e-3)
        labels = {d["dimension"]: d["label"] for d in s["dimensions"]}
        assert labels == {k: v["label"] for k, v in cfg["dimensions"].items()}
        for d in s["dimensions"]:
            assert d["formula"] == cfg["dimensions"][d["dimension"]]["value"]
            assert d["inputs"] and set(d["inputs"]) <= set(re.findall(r"[a-z_]+", d["formula"]))
    assert [s["day"] for s in ex.scores if s["system"] == "sesame"] == days
    row = china.citizens.filter(pl.col("citizen") == ex.citizen).row(0, named=True)
    assert ex.final["score"] == pytest.approx(row["score"], abs=1e-4)
    assert ex.final["tencent"] == pytest.approx(row["tencent"], abs=1e-4)
    assert ex.final["rating"] == pytest.approx(row["rating"], abs=1e-4)
    assert ex.final["points"] == row["points"] and not ex.notes
    assert len(ex.series["day"]) == 90 and len(ex.series["tencent"]) == 90 and len(ex.series["rating"]) == 90


def test_china_what_moved_and_why(china, tmp_path_factory):
    # a citizen judged and listed during the run: the listing moves credit history and compliance
    judged = china.events.filter(pl.col("defaulted") & pl.col("day").is_between(30, 57))
    citizen = int(judged["citizen"][0])
    ex = explain(china.path, citizen, counterfactual=False)
    listed = [(s["system"], m) for s in ex.scores for m in s["moved"] if "listed" in m["changed_inputs"]]
    moved = {(system, m["dimension"]): m for system, m in listed}
    history = moved[("sesame", "history")]
    assert history["points_change"] < 0 and history["changed_inputs"]["listed"][1] in (1, True, 1.0)
    assert "listed no → yes" in history["why"]
    assert moved[("tencent", "compliance")]["points_change"] < 0
    first = [s for s in ex.scores if s["first"]]
    assert {s["system"] for s in first} == {"sesame", "tencent"} and all(not s["moved"] for s in first)
    listing = [x for x in ex.sanctions if x["rule"] == "records.court_list"]
    assert listing and "judgment" in listing[0]["sanction"] and "debt stress" in listing[0]["formula"]
    assert ex.listings and ex.listings[0]["start_day"] == listing[0]["day"]


def test_china_reason_codes_per_scoring_system(china_ex):
    reasons = china_ex.reasons
    by_system: dict[str, list] = {}
    for r in reasons:
        by_system.setdefault(r["system"], []).append(r)
    assert set(by_system) == {"sesame", "tencent"}
    for rows in by_system.values():
        assert 1 <= len(rows) <= 4
        lost = [r["points_lost"] for r in rows]
        assert lost == sorted(lost, reverse=True)
        assert all(r["reason"].startswith(r["label"]) for r in rows)
    # listed: the credit-history dimension is the first reason of the Sesame-like score, naming the list
    assert by_system["sesame"][0]["dimension"] == "history" and "listed = yes" in by_system["sesame"][0]["reason"]


def test_china_sanctions_name_the_rule_and_its_formula(china, china_ex, banned):
    sanctions = china_ex.sanctions
    flight = [s for s in sanctions if s["rule"] == "consequences.flight.deny"]
    refused = china.events.filter((pl.col("citizen") == banned) & pl.col("denied"))
    assert len(flight) == refused.filter(pl.col("kind") == "flight").height >= 1
    assert flight[0]["formula"] == "listed" and "Civil Aviation Administration" in flight[0]["sanction"]
    assert "income × 0.98" in flight[0]["sanction"]
    rules = {s["rule"] for s in sanctions}
    kinds = set(refused["kind"].cast(pl.String))
    services = china.manifest["scenario"]["consequences"]
    assert {f"consequences.{k}.{'deny' if 'deny' in services[k] else 'allow'}" for k in kinds} <= rules
    assert rules & {"records.court_list", "records.court_list.initial_share"}  # why the bans apply
    assert china_ex.final["refused_flight"] == len(flight)
    cf = china_ex.counterfactual
    assert set(cf["factual"]) == set(cf["without_misattribution"]) == set(cf["difference"])
    assert {"score", "tencent", "rating", "points", "red_list", "shamed", "refused_flight"} <= set(cf["factual"])


def test_china_perks_withheld_and_camera_penalties(china):
    ev = china.events
    perk = ev.filter(pl.col("denied") & (pl.col("kind") == "rental"))
    blamed = ev.filter(pl.col("misattributed"))
    citizen = int(perk["citizen"][0])
    ex = explain(china.path, citizen, counterfactual=False)
    rental = [s for s in ex.sanctions if s["rule"] == "consequences.rental.allow"]
    assert rental and rental[0]["formula"] == "served only if sesame >= 650 and not listed"
    assert "perk withheld" in rental[0]["sanction"]
    if blamed.height:  # an innocent: shown on the board and docked points for someone else's act
        innocent = int(blamed["attributed_to"][0])
        ex = explain(china.path, innocent)
        wrong = [s for s in ex.sanctions if s["misattributed"]]
        assert {s["rule"] for s in wrong} >= {"consequences.shame_board.events"}
        assert any(s["rule"].startswith("records.points.deltas.") for s in wrong)
        assert ex.counterfactual["misattributed_penalties_received"] >= 1


def test_china_cli_text(china, banned, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["explain", str(china.path), "--citizen", str(banned), "--no-counterfactual"])
    text = capsys.readouterr().out
    assert exc.value.code == 0
    for needle in ("Sesame-like score (sesame)", "Tencent-like score (tencent)", "consequences.flight.deny",
                   "Principal reasons", "history"):
        assert needle in text
