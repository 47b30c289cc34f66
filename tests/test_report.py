"""`socialcredit report`: one self-contained HTML file, every chart titled and captioned, data inside;
what it shows follows the run's scenario (ref, china and each scenario of the family)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import polars as pl
import pytest
from markupsafe import escape

import socialcredit as sc
from cli_call import call
from socialcredit.analysis.report import RunData, build_report, chart_groups, write_report

PLOT_DATA = re.compile(r'<script type="application/json" class="plot-data" data-target="([^"]+)">(.*?)</script>',
                       re.S)
#: Every chart of a ref run, by id.
REF_CHARTS = {"score-distribution", "grade-shares", "list-size", "denials", "denials-over-time", "disparate-impact",
              "disparate-ratios", "misattribution", "cascade", "chilling", "network"}
FAMILY = ("sesame", "tencent", "rongcheng", "court-list", "shanghai-cameras", "nosedive", "fair-credit")


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("report") / "run"
    sc.run("ref", citizens=5_000, days=150, seed=3, out=out)
    return out


@pytest.fixture(scope="module")
def html(run_dir):
    path = write_report(run_dir)
    assert path == run_dir / "report.html"
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def china(tmp_path_factory):
    return sc.run("china", citizens=20_000, days=90, seed=7, out=tmp_path_factory.mktemp("report-china") / "run")


@pytest.fixture(scope="module")
def china_html(china):
    return write_report(china.path).read_text(encoding="utf-8")


def plots(text: str) -> dict[str, dict]:
    return {target: json.loads(body) for target, body in PLOT_DATA.findall(text)}


def charts(run_dir) -> list:
    groups, _ = chart_groups(RunData(sc.load(run_dir)))
    return [c for g in groups for c in g["charts"]]


def check_data(specs: dict[str, dict]) -> None:
    """Every figure has traces with data (plain lists, not base64) and some number that is not 0."""
    for target, spec in specs.items():
        assert spec["data"], target
        for trace in spec["data"]:
            arrays = [trace.get(axis) for axis in ("x", "y") if isinstance(trace.get(axis), list)]
            assert arrays and all(len(a) > 0 for a in arrays), (target, trace.get("name"))
            assert not any(isinstance(trace.get(axis), dict) for axis in ("x", "y"))  # not base64-packed
        numbers = [v for trace in spec["data"] for axis in ("x", "y") for v in trace.get(axis) or []
                   if isinstance(v, int | float) and not isinstance(v, bool)]
        assert any(v != 0 for v in numbers), target


# -- ref ---------------------------------------------------------------------------


def test_every_chart_has_title_and_a_one_sentence_caption(html, run_dir):
    drawn = charts(run_dir)
    assert {c.id for c in drawn} == REF_CHARTS
    for c in drawn:
        assert f"<h3>{escape(c.title)}</h3>" in html
        assert f'<p class="caption">{escape(c.caption)}</p>' in html
        assert c.caption.endswith(".") and ". " not in c.caption[:-1], c.caption  # one sentence
    assert "Skipped:" not in html and "Not shown for this run" not in html


def test_header(html, run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    for fact in ("scenario <b>ref</b>", "citizens <b>5,000</b>", "days <b>150</b>", "seed <b>3</b>"):
        assert fact in html
    assert f"{summary['metrics']['p_mean']:.1f}" in html  # a headline tile
    assert "listed_ever_share" in html
    assert "What this scenario runs" in html and "scoring.platform" in html


def test_plotly_inline_no_network(html):
    assert "plotly.js v" in html  # the library itself is embedded
    assert not re.search(r"<script[^>]*\bsrc\s*=", html)
    assert not re.search(r"<link[^>]*\bhref\s*=", html)
    assert "@import" not in html and "fonts.googleapis" not in html
    scripts = re.findall(r"<script[^>]*>", html)
    assert all("cdn." not in tag and "https://" not in tag for tag in scripts)


def test_chart_data_present(html):
    specs = plots(html)
    assert set(specs) == {f"{c}-plot" for c in REF_CHARTS}
    check_data(specs)


def test_chart_values(html, run_dir):
    specs = plots(html)
    daily = pl.read_parquet(run_dir / "daily.parquet")
    listed = next(t for t in specs["list-size-plot"]["data"] if t.get("name") == "on the list")
    assert listed["y"] == daily["listed_now"].to_list()
    posts = specs["chilling-plot"]["data"][0]
    assert posts["y"] == daily["critical_post"].to_list()
    ratios = specs["disparate-ratios-plot"]["data"][0]
    assert {"minority / majority", "urban / rural", "Q1 / Q5", "region 0 / other regions"} <= set(ratios["y"])
    shapes = specs["disparate-ratios-plot"]["layout"]["shapes"]
    assert {0.8, 1.25} <= {s.get("x0") for s in shapes}
    refused = specs["denials-plot"]["data"][0]  # ref's two gated requests: trips (travel ban) and loans
    assert dict(zip(refused["y"], refused["x"], strict=True)) == {
        "trip by plane or high-speed rail": daily["trip_denied"].sum(),
        "loan application": daily["loan_application_denied"].sum()}


def test_file_size_sane(run_dir, html):
    size = (run_dir / "report.html").stat().st_size
    assert 3_000_000 < size < 12_000_000


def test_missing_data_is_left_out_with_the_reason(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "report.html").unlink()
    daily = pl.read_parquet(copy / "daily.parquet").drop("critical_post", "edges_cut")
    daily.write_parquet(copy / "daily.parquet")
    (copy / "scores_monthly.parquet").unlink()
    out = write_report(copy, tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    specs = plots(text)
    assert "Skipped:" not in text  # no empty cards
    assert "Not shown for this run" in text
    assert "daily.parquet has no column critical_post." in text
    assert "daily.parquet has no column edges_cut." in text
    assert {"chilling-plot", "network-plot"}.isdisjoint(specs)
    # the score falls back to its end-of-run histogram, the grades to the end-of-run shares
    assert {"score-distribution-plot", "grade-shares-plot", "list-size-plot", "cascade-plot",
            "misattribution-plot"} <= set(specs)
    check_data(specs)


def test_cli(run_dir, tmp_path, capsys):
    target = tmp_path / "sub" / "r.html"
    code, stdout, _ = call(capsys, "report", str(run_dir), "--out", str(target))
    assert code == 0 and stdout.strip() == str(target) and target.is_file()
    code, stdout, stderr = call(capsys, "report", str(tmp_path / "nope"))
    assert code == 2 and stdout == "" and stderr.count("\n") == 1 and "no such run directory" in stderr
    code, _, stderr = call(capsys, "report", str(run_dir), "--out", str(tmp_path))
    assert code == 2 and "is a directory" in stderr


# -- china -------------------------------------------------------------------------------


def test_china_every_scoring_system_has_a_distribution_with_data(china, china_html):
    specs = plots(china_html)
    monthly = china.scores_monthly
    for chart_id, span in (("score-distribution", (350, 950)), ("score-distribution-tencent", (300, 850)),
                           ("score-distribution-rating", (1, 5))):
        spec = specs[f"{chart_id}-plot"]
        median = next(t for t in spec["data"] if t.get("name") == "median")
        assert median["x"] == sorted(monthly["day"].unique().to_list())
        assert all(span[0] <= v <= span[1] for v in median["y"])
        histograms = [t for t in spec["data"] if t.get("type") == "bar"]
        assert len(histograms) == 2 and all(sum(t["y"]) == pytest.approx(100, abs=0.1) for t in histograms)
    # holders only: the Sesame-like score counts platform members, the Tencent-like one messaging-app users
    cz = china.citizens
    assert f"{cz['member'].sum():,} payment-platform members in the panel" in china_html
    assert f"{(cz['messaging'] > 0).sum():,} messaging-app users in the panel" in china_html
    assert "550: consequences.loan.deny" in china_html  # the cut comes from the rule that uses it
    check_data(specs)


def test_china_refusals_list_every_service_with_its_label(china, china_html):
    specs = plots(china_html)
    daily = china.daily
    labels = {name: (t.get("label") or name).split(" (")[0]
              for name, t in china.manifest["scenario"]["consequences"].items() if t.get("kind") == "service"}
    denied = {c.removesuffix("_denied"): daily[c].sum() for c in daily.columns if c.endswith("_denied")}
    assert set(denied) == set(labels) and len(denied) == 11
    bars = specs["denials-plot"]["data"][0]
    assert dict(zip(bars["y"], bars["x"], strict=True)) == {labels[k]: v for k, v in denied.items()}
    weekly = specs["denials-over-time-plot"]["data"]
    assert {t["name"] for t in weekly} == {labels[k] for k, v in denied.items() if v > 0}
    assert sum(sum(t["y"]) for t in weekly) == sum(denied.values())
    for key in ("consequences.flight.deny", "consequences.rental.allow", "Civil Aviation Administration"):
        assert key in china_html


def test_china_lists_grades_impact_and_side_effects(china, china_html):
    specs = plots(china_html)
    assert {"grade-shares-plot", "list-size-plot", "shame-board-shame_board-plot", "disparate-impact-plot",
            "disparate-ratios-plot", "misattribution-plot", "cascade-plot", "chilling-plot",
            "network-plot"} <= set(specs)
    board = specs["shame-board-shame_board-plot"]["data"]
    daily = china.daily
    assert sum(board[0]["y"]) + sum(board[1]["y"]) == daily["shame_board_displayed"].sum()
    assert sum(board[1]["y"]) == daily["shame_board_innocents_displayed"].sum()
    ratios = specs["disparate-ratios-plot"]
    labels = set(ratios["data"][0]["y"])
    assert {"Beijing / other provinces", "Guangdong / other provinces", "Xinjiang / other provinces",
            "minority / majority", "urban / rural", "urban hukou / rural hukou", "women / men", "Q1 / Q5"} <= labels
    titles = [a["text"] for a in ratios["layout"]["annotations"]]
    assert {"ever on the court list", "sesame < 550", "tencent < 600", "points < 960",
            "shown on a shame board", "refused a service"} <= set(titles)
    assert {0.8, 1.25} <= {s.get("x0") for s in ratios["layout"]["shapes"]}
    camera = specs["misattribution-plot"]["data"]
    assert sum(camera[0]["y"]) == daily["jaywalk_observed"].sum() + daily["fare_evasion_observed"].sum()
    assert {"women", "men", "minority", "majority"} <= set(camera[-1]["y"])  # innocents by group
    tiles = re.findall(r'<div class="key">([^<]+)</div>', china_html)
    assert {"p_mean", "citizens.tencent", "citizens.rating", "listed_ever_share", "daily.*_denied"} <= set(tiles)
    assert "denied_trips_per_1000" not in tiles  # china has no `trip` requests: the tile would read 0


@pytest.mark.parametrize("scenario", FAMILY)
def test_every_scenario_of_the_family(scenario, tmp_path):
    run = sc.run(scenario, citizens=3_000, days=35, seed=2, out=tmp_path / "run")
    html = build_report(run)
    data = RunData(run)
    groups, omitted = chart_groups(data)
    drawn = [c for g in groups for c in g["charts"]]
    specs = plots(html)
    assert drawn and set(specs) == {f"{c.id}-plot" for c in drawn}
    check_data(specs)
    assert "Skipped:" not in html
    for o in omitted:  # what is left out is said, with why
        assert escape(o["title"]) in html and escape(o["reason"]) in html
    systems = {s.name for s in data.systems}
    for s in data.systems:
        assert f"score-distribution{'' if s.column == 'score' else '-' + s.name}-plot" in specs
    expected = {"sesame": {"sesame"}, "tencent": {"tencent"}, "nosedive": {"rating"}, "fair-credit": {"sesame"}}
    assert systems == expected.get(scenario, set())
    denied = [c for c in run.daily.columns if c.endswith("_denied")]
    if sum(run.daily[c].sum() for c in denied):
        bars = specs["denials-plot"]["data"][0]
        assert len(bars["y"]) == len(denied) and sum(bars["x"]) == sum(run.daily[c].sum() for c in denied)
    if scenario in ("sesame", "tencent", "nosedive", "shanghai-cameras"):
        assert "list-size-plot" not in specs  # no court list in these scenarios: no empty chart
    values = np.array([v for t in specs["disparate-ratios-plot"]["data"] for v in t["x"] if v is not None])
    assert len(values) and np.all(values > 0)
