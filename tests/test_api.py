"""The Python API of SPEC section 6: run, load, Scenario, Run."""

from __future__ import annotations

import json

import polars as pl
import pytest

import socialcredit as sc
from oracle_ref import METRIC_NAMES
from socialcredit.errors import ScenarioError, UserError

METRICS_9_4 = METRIC_NAMES  # transcribed from SPEC 9.4 by the independent oracle


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return sc.run("ref", citizens=4_000, days=120, seed=5, out=tmp_path_factory.mktemp("r") / "run")


def test_run_directory_layout(run_dir):
    names = {p.name for p in run_dir.path.iterdir()}
    assert names == {"manifest.json", "summary.json", "citizens.parquet", "daily.parquet",
                     "scores_monthly.parquet", "events.parquet", "lists.parquet"}


def test_summary_has_every_9_4_metric(run_dir):
    summary = json.loads((run_dir.path / "summary.json").read_text())
    assert summary["scenario"] == "ref"
    assert (summary["citizens"], summary["days"], summary["seed"]) == (4_000, 120, 5)
    assert set(METRICS_9_4) <= set(summary["metrics"])


def test_manifest(run_dir):
    m = run_dir.manifest
    assert m["scenario"]["name"] == "ref"
    assert m["scenario"]["records"]["points"]["listing_delta"] == -450
    assert m["seed"] == 5 and m["citizens"] == 4_000
    assert m["peak_rss_bytes"] > 0 and m["wall_seconds"] > 0
    assert {"python", "numpy", "numba", "polars"} <= set(m["versions"])


def test_tables_are_polars_and_consistent(run_dir):
    cz = run_dir.citizens
    assert isinstance(cz, pl.DataFrame) and cz.height == 4_000
    assert cz["citizen"].to_list() == list(range(4_000))
    assert cz["score"].min() >= 350 and cz["score"].max() <= 950
    assert cz["points"].min() >= 0 and cz["points"].max() <= 1200
    daily = run_dir.daily
    assert daily.height == 120 and daily["day"].to_list() == list(range(120))
    # listed_now on the last day equals the citizens table
    assert daily["listed_now"][-1] == cz["listed"].sum()
    # every listing row is a listed-ever citizen, open rows are the listed ones
    lists = run_dir.lists
    open_rows = lists.filter(pl.col("end_day").is_null())
    assert set(open_rows["citizen"]) == set(cz.filter("listed")["citizen"])
    assert set(lists["citizen"]) == set(cz.filter("listed_ever")["citizen"])
    # scores are snapshotted on scoring days only (t + 1) % 30 == 0
    assert sorted(set(run_dir.scores_monthly["day"])) == [29, 59, 89, 119]
    ev = run_dir.events
    assert ev.filter(pl.col("misattributed"))["kind"].cast(str).unique().to_list() in ([], ["jaywalk"])
    assert ev.filter(pl.col("misattributed") & (pl.col("citizen") == pl.col("attributed_to"))).height == 0


def test_load_roundtrip(run_dir):
    again = sc.load(run_dir.path)
    assert again.metrics == run_dir.metrics
    assert again.scenario == "ref"


def test_load_rejects_non_run(tmp_path):
    with pytest.raises(UserError, match="not a run directory"):
        sc.load(tmp_path)


def test_scenario_override_changes_results():
    s = sc.Scenario.load("ref").override(**{"observation.camera.false_match": 0.2})
    assert s.data["observation"]["camera"]["false_match"] == 0.2
    r = sc.run(s, citizens=3_000, days=60, seed=1)
    assert r.metrics["shame_board_innocent_share"] > 0.1
    with pytest.raises(ScenarioError, match="false_match"):
        sc.Scenario.load("ref").override(**{"observation.camera.false_match": 1.5})


def test_temporary_run_is_readable():
    r = sc.run("ref", citizens=500, days=30, seed=2)
    assert r.citizens.height == 500
    assert r.path.exists()


def test_run_report_and_sql(run_dir, tmp_path):
    path = run_dir.report(tmp_path / "r.html")
    assert path.exists() and "Platform score distribution over time" in path.read_text()
    n = run_dir.sql("select count(*) as n from citizens")["n"][0]
    assert n == 4_000
