"""analysis.calibrate and `socialcredit calibrate`: rows from targets.toml, exit codes 0/1/2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import socialcredit as sc
from cli_call import call
from socialcredit.analysis.calibrate import MEASURES, Target, calibrate_run, compare, gini, passed, targets

SCENARIO = Path(__file__).parent / "data" / "china_population.toml"
POPULATION_ROWS = {
    "urban_share", "hukou_urban_share", "age_0_15", "age_16_59", "age_60_plus", "sex_ratio", "minority_share",
    "income_mean", "income_median", "income_urban_mean", "income_rural_mean", "income_gini", "internet_share",
    "online_payment_share", "region_east", "region_central", "region_west", "region_northeast",
}
COURT_ROWS = {"new_listings_per_capita", "removals_repaid_per_listing", "listed_share"}
NEVER_SIMULATED = {"population_scale", "voluntary_compliance_before_list", "credit_default_rate"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("calibrate") / "run"
    return sc.run(SCENARIO, citizens=100_000, days=30, seed=1, out=out)


@pytest.fixture(scope="module")
def bare(tmp_path_factory):
    """A scenario with the china population and graph and no systems at all."""
    path = tmp_path_factory.mktemp("bare") / "bare.toml"
    path.write_text('name = "bare-china"\n[population]\nkind = "china"\n[graph]\nkind = "homophilous"\n')
    return path


def by_key(rows):
    return {r.target.key: r for r in rows}


# -- the target file --------------------------------------------------------------------


def test_targets_file_covers_calibration_md():
    rows = targets()
    keys = [t.key for t in rows]
    assert len(keys) == len(set(keys)) >= 25
    assert set(keys) >= POPULATION_ROWS | COURT_ROWS | NEVER_SIMULATED
    assert set(MEASURES) <= set(keys), "every measure has a target row"
    for t in rows:
        assert t.label and t.source and t.mark in {"C", "W", "R", "D", "C/D"}
        assert t.kind != "relative" or 0 < t.tolerance < 1
    income = by_key([compare(t, None) for t in rows])["income_mean"].target
    assert income.target == 39_218 and income.kind == "relative" and income.tolerance == 0.05


# -- hand-checked pieces -------------------------------------------------------------------


def target(kind: str, value: float = 0.5, tolerance: float = 0.1) -> Target:
    return Target("k", "label", value, tolerance, kind, "share", "C", "source")


@pytest.mark.parametrize(("kind", "simulated", "ok", "error"), [
    ("absolute", 0.55, True, 0.05), ("absolute", 0.61, False, 0.11), ("absolute", 0.39, False, -0.11),
    ("relative", 0.54, True, 0.08), ("relative", 0.44, False, -0.12),
    ("at_most", 0.5, True, 0.0), ("at_most", 0.51, False, 0.01),
    ("informative", 9.0, None, 8.5),
])
def test_compare(kind, simulated, ok, error):
    row = compare(target(kind), simulated)
    assert row.ok is ok and row.error == pytest.approx(error)
    assert row.status == {True: "ok", False: "FAIL", None: "informative"}[ok]


def test_not_simulated_never_fails():
    row = compare(target("absolute"), None)
    assert row.status == "not simulated" and row.ok is None and passed([row])
    assert compare(target("absolute"), float("nan")).status == "not simulated"
    assert not passed([row, compare(target("absolute"), 0.9)])


@pytest.mark.parametrize(("values", "expected"), [([1, 1, 1, 1], 0.0), ([0, 0, 0, 1], 0.75), ([1, 3], 0.25),
                                                  ([], 0.0), ([0, 0], 0.0)])
def test_gini(values, expected):
    assert gini(np.array(values, float)) == pytest.approx(expected)


# -- a run of the test scenario ----------------------------------------------------------------


def test_population_rows_pass(run):
    rows = by_key(calibrate_run(run))
    for key in POPULATION_ROWS:
        assert rows[key].status == "ok", (key, rows[key].value, rows[key].target.target)


def test_court_rows_measured_and_others_not_simulated(run):
    rows = by_key(calibrate_run(run))
    for key in COURT_ROWS | {"score_ge_650_members"}:
        assert rows[key].value is not None, key
    assert rows["list_term_years"].value == pytest.approx(2.0) and rows["list_term_years"].status == "informative"
    for key in NEVER_SIMULATED:
        assert rows[key].status == "not simulated", key
    listings = float(run.daily["listings"].sum())
    assert rows["new_listings_per_capita"].value == pytest.approx(listings / 100_000 * 365 / 30)


def test_measures_are_data_driven(run):
    rows = by_key(calibrate_run(run, {"urban_share": lambda d: 0.9}))
    assert rows["urban_share"].status == "FAIL" and rows["income_mean"].status == "not simulated"


def test_reference_population_rows(tmp_path):
    ref = sc.run("ref", citizens=3_000, days=2, seed=1, out=tmp_path / "ref")
    rows = by_key(calibrate_run(ref))
    assert rows["age_0_15"].status == "not simulated"  # no ages in the reference population
    assert rows["region_east"].status == "not simulated"  # its regions are not provinces
    assert rows["urban_share"].value is not None


# -- the command ---------------------------------------------------------------------------


def test_cli_exit_0_when_every_measured_row_passes(capsys, bare):
    code, out, _ = call(capsys, "calibrate", str(bare), "-n", "100000", "-d", "2")
    text = " ".join(out.split())
    assert code == 0, out
    assert "not simulated" in text and "within tolerance" in text
    assert "median" in text and "¥33,036" in text


def test_cli_exit_1_on_a_failing_run_and_json(capsys, run):
    code, out, _ = call(capsys, "calibrate", "--run", str(run.path))
    assert code == 1 and "FAIL" in out
    code, out, _ = call(capsys, "calibrate", "--run", str(run.path), "--json")
    doc = json.loads(out)
    assert code == 1 and doc["passed"] is False and doc["citizens"] == 100_000
    statuses = {r["key"]: r["status"] for r in doc["rows"]}
    assert statuses["urban_share"] == "ok" and statuses["population_scale"] == "not simulated"


@pytest.mark.parametrize(("args", "needle"), [
    (["calibrate", "no-such-scenario"], "unknown scenario"),
    (["calibrate", "--run", "/no/such/run"], "no such run directory"),
    (["calibrate", "ref", "-n", "0"], "--citizens must be between 1"),
    (["calibrate", "ref", "--set", "population.urban=2"], "population.urban"),
])
def test_cli_exit_2_on_bad_input(capsys, args, needle):
    code, _, err = call(capsys, *args)
    assert code == 2 and needle in err and len(err.strip().splitlines()) == 1


def test_cli_run_excludes_running_options(capsys, run):
    code, _, err = call(capsys, "calibrate", "--run", str(run.path), "--citizens", "10")
    assert code == 2 and "--citizens" in err
