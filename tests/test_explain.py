"""explain: one citizen's timeline, score decomposition, sanctions, reasons, counterfactual."""

from __future__ import annotations

import json

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
