"""`socialcredit compare`: every metric side by side; per-citizen changes only for the same population."""

from __future__ import annotations

import json

import numpy as np
import polars as pl
import pytest

import socialcredit as sc
from cli_call import call
from socialcredit.analysis.compare import compare, metric_table

CITIZENS = 3_000


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("compare")
    a = sc.run("ref", citizens=CITIZENS, days=90, seed=1, out=base / "a").path
    # same seed and population, a different camera: the same citizens, other outcomes
    same = sc.run("ref", citizens=CITIZENS, days=90, seed=1, out=base / "same",
                  overrides={"observation.camera.false_match": 0.3, "records.court_list.repay_rate": 0.02}).path
    other = sc.run("ref", citizens=CITIZENS, days=90, seed=2, out=base / "other").path
    return {"a": a, "same": same, "other": other}


def metrics(path) -> dict[str, float | None]:
    return json.loads((path / "summary.json").read_text())["metrics"]


def test_metric_table_has_every_metric_and_differences(runs):
    result = compare(runs["a"], runs["other"])
    ma, mb = metrics(runs["a"]), metrics(runs["other"])
    assert result.metrics["metric"].to_list() == list(ma)
    assert set(ma) == set(mb)
    for row in result.metrics.iter_rows(named=True):
        a, b = ma[row["metric"]], mb[row["metric"]]
        assert row["a"] == a and row["b"] == b
        if a is None or b is None:
            assert row["diff"] is None
        else:
            assert row["diff"] == pytest.approx(b - a)
            assert row["rel"] == (pytest.approx((b - a) / abs(a)) if a else None)


def test_metric_table_edge_cases():
    table = metric_table({"x": 2.0, "y": None, "z": 0.0}, {"x": 5.0, "y": 1.0, "z": 3.0, "w": 4.0})
    rows = {r["metric"]: r for r in table.iter_rows(named=True)}
    assert table["metric"].to_list() == ["x", "y", "z", "w"]
    assert rows["x"]["diff"] == 3.0 and rows["x"]["rel"] == 1.5
    assert rows["y"]["diff"] is None and rows["y"]["rel"] is None
    assert rows["z"]["diff"] == 3.0 and rows["z"]["rel"] is None  # relative change from 0 is undefined
    assert rows["w"]["a"] is None and rows["w"]["b"] == 4.0


def test_json_output(runs, capsys):
    code, stdout, _ = call(capsys, "compare", str(runs["a"]), str(runs["other"]), "--json")
    assert code == 0
    doc = json.loads(stdout)
    ma, mb = metrics(runs["a"]), metrics(runs["other"])
    by_name = {row["metric"]: row for row in doc["metrics"]}
    assert set(by_name) == set(ma)
    assert by_name["p_mean"]["diff"] == pytest.approx(mb["p_mean"] - ma["p_mean"])
    assert doc["citizens"] is None and doc["same_population"] is False and "seed" in doc["reason"]


def test_per_citizen_section_for_the_same_population(runs, capsys):
    result = compare(runs["a"], runs["same"])
    assert result.same_population and result.citizens is not None
    c = result.citizens
    ca, cb = pl.read_parquet(runs["a"] / "citizens.parquet"), pl.read_parquet(runs["same"] / "citizens.parquet")
    assert c["citizens"] == CITIZENS
    for flag in ("listed", "listed_ever"):
        fa, fb = ca[flag].to_numpy(), cb[flag].to_numpy()
        assert c[flag]["changed"] == int(np.count_nonzero(fa != fb))
        assert c[flag]["only_in_b"] == int(np.count_nonzero(fb & ~fa))
        assert c[flag]["a"] == int(fa.sum()) and c[flag]["b"] == int(fb.sum())
    assert c["listed"]["changed"] > 0  # repaying 20 times faster takes people off the list
    delta = cb["score"].to_numpy().astype(np.float64) - ca["score"].to_numpy()
    assert c["score_change"]["mean"] == pytest.approx(delta.mean())
    assert c["score_change"]["quantiles"]["p50"] == pytest.approx(np.quantile(delta, 0.5))
    matrix = np.array(c["grade_transitions"]["counts"])
    assert c["grade_transitions"]["grades"] == ["A+++", "AA", "A", "B", "C", "D"]
    assert matrix.sum() == CITIZENS
    for axis, frame in ((1, ca), (0, cb)):  # row sums: grades in A; column sums: grades in B
        counts = dict(frame["grade"].cast(pl.String).value_counts().iter_rows())
        assert matrix.sum(axis=axis).tolist() == [counts.get(g, 0) for g in c["grade_transitions"]["grades"]]
    assert matrix.trace() < CITIZENS  # misattributed jaywalks move some citizens between grades
    code, stdout, _ = call(capsys, "compare", str(runs["a"]), str(runs["same"]))
    assert code == 0
    assert "Per-citizen changes" in stdout and "Grade transitions" in stdout
    for name in metrics(runs["a"]):
        assert name in stdout


def test_self_comparison_changes_nothing(runs):
    c = compare(runs["a"], runs["a"])
    assert all(d == 0 for d in c.metrics["diff"].drop_nulls())
    assert c.citizens["listed"]["changed"] == 0 and c.citizens["score_change"]["changed"] == 0
    matrix = np.array(c.citizens["grade_transitions"]["counts"])
    assert matrix.trace() == CITIZENS


def test_no_per_citizen_section_for_other_seeds(runs, capsys):
    result = compare(runs["a"], runs["other"])
    assert result.citizens is None and not result.same_population
    code, stdout, _ = call(capsys, "compare", str(runs["a"]), str(runs["other"]))
    assert code == 0
    assert "Per-citizen changes" not in stdout and "No per-citizen comparison" in stdout


def test_bad_paths_exit_2(runs, tmp_path, capsys):
    for args in ((str(runs["a"]), str(tmp_path / "nope")), (str(tmp_path), str(runs["a"]))):
        code, stdout, stderr = call(capsys, "compare", *args)
        assert code == 2 and stdout == "" and stderr.startswith("error: ") and stderr.count("\n") == 1


# -- china: extra scores, lists and services ---------------------------------------------------


@pytest.fixture(scope="module")
def china(tmp_path_factory):
    base = tmp_path_factory.mktemp("compare-china")
    a = sc.run("china", citizens=20_000, days=60, seed=3, out=base / "a").path
    # the same citizens with cameras that misattribute far more often
    b = sc.run("china", citizens=20_000, days=60, seed=3, out=base / "b",
               overrides={"observation.camera.false_match": 0.2}).path
    return a, b


def test_china_per_citizen_changes_cover_every_score_and_list(china):
    a, b = china
    result = compare(a, b)
    assert result.same_population, result.reason
    c = result.citizens
    assert c["citizens"] == 20_000
    for flag in ("listed", "listed_ever", "red_list"):
        assert {"changed", "only_in_a", "only_in_b", "a", "b"} <= set(c[flag])
    for value in ("score", "tencent", "rating", "points", "income", "shamed"):
        assert c[f"{value}_change"]["mean"] is not None, value
    ca, cb = pl.read_parquet(a / "citizens.parquet"), pl.read_parquet(b / "citizens.parquet")
    shamed = cb["shamed"].cast(pl.Int64) - ca["shamed"].cast(pl.Int64)
    assert c["shamed_change"]["changed"] == int((shamed != 0).sum()) > 0  # innocents shown on the board
    assert c["points_change"]["changed"] > 0
    assert c["grade_transitions"]["grades"][:6] == ["A+++", "AA", "A", "B", "C", "D"]
    assert sum(map(sum, c["grade_transitions"]["counts"])) == 20_000
    json.dumps(result.to_dict(), allow_nan=False)


def test_china_against_ref_and_cli(china, runs, capsys):
    result = compare(runs["a"], china[0])  # different scenarios and populations: metrics only
    assert not result.same_population and result.citizens is None
    rows = {r["metric"]: r for r in result.metrics.iter_rows(named=True)}
    assert rows["p_mean"]["a"] is not None and rows["p_mean"]["b"] is not None
    code, out, err = call(capsys, "compare", str(china[0]), str(china[1]))
    assert code == 0 and not err
    for needle in ("red_list", "tencent", "rating", "shamed", "Grade transitions"):
        assert needle in out
