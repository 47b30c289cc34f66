"""`socialcredit report`: one self-contained HTML file, every chart titled and captioned, data inside."""

from __future__ import annotations

import json
import re
import shutil

import polars as pl
import pytest
from markupsafe import escape

import socialcredit as sc
from socialcredit.analysis.report import CHARTS, write_report
from socialcredit.cli import main

PLOT_DATA = re.compile(r'<script type="application/json" class="plot-data" data-target="([^"]+)">(.*?)</script>',
                       re.S)


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


def call(capsys, *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    captured = capsys.readouterr()
    return exc.value.code, captured.out, captured.err


def plots(text: str) -> dict[str, dict]:
    return {target: json.loads(body) for target, body in PLOT_DATA.findall(text)}


def test_every_chart_has_title_and_caption(html):
    for title, caption, _ in CHARTS.values():
        assert f"<h3>{escape(title)}</h3>" in html
        assert f'<p class="caption">{escape(caption)}</p>' in html
    assert "Skipped:" not in html


def test_header(html, run_dir):
    summary = json.loads((run_dir / "summary.json").read_text())
    for fact in ("scenario <b>ref</b>", "citizens <b>5,000</b>", "days <b>150</b>", "seed <b>3</b>"):
        assert fact in html
    assert f"{summary['metrics']['p_mean']:.1f}" in html  # a headline tile
    assert "listed_ever_share" in html


def test_plotly_inline_no_network(html):
    assert "plotly.js v" in html  # the library itself is embedded
    assert not re.search(r"<script[^>]*\bsrc\s*=", html)
    assert not re.search(r"<link[^>]*\bhref\s*=", html)
    assert "@import" not in html and "fonts.googleapis" not in html
    scripts = re.findall(r"<script[^>]*>", html)
    assert all("cdn." not in tag and "https://" not in tag for tag in scripts)


def test_chart_data_present(html):
    specs = plots(html)
    # one figure per chart, two for the disparate-impact panel
    assert set(specs) == {f"{name.replace('_', '-')}-plot" for name in CHARTS}
    for target, spec in specs.items():
        assert spec["data"], target
        for trace in spec["data"]:
            arrays = [trace.get(axis) for axis in ("x", "y") if isinstance(trace.get(axis), list)]
            assert arrays and all(len(a) > 0 for a in arrays), (target, trace.get("name"))
            assert not any(isinstance(trace.get(axis), dict) for axis in ("x", "y"))  # not base64-packed
        numbers = [v for trace in spec["data"] for axis in ("x", "y") for v in trace.get(axis) or []
                   if isinstance(v, int | float) and not isinstance(v, bool)]
        assert any(v != 0 for v in numbers), target


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


def test_file_size_sane(run_dir, html):
    size = (run_dir / "report.html").stat().st_size
    assert 3_000_000 < size < 12_000_000


def test_missing_columns_are_skipped_with_a_note(run_dir, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "report.html").unlink()
    daily = pl.read_parquet(copy / "daily.parquet").drop("critical_post", "edges_cut")
    daily.write_parquet(copy / "daily.parquet")
    (copy / "scores_monthly.parquet").unlink()
    out = write_report(copy, tmp_path / "r.html")
    text = out.read_text(encoding="utf-8")
    assert text.count("Skipped:") == 4
    assert "daily.parquet has no column critical_post." in text
    assert "this run has no scores_monthly.parquet." in text
    for title, caption, _ in CHARTS.values():
        assert escape(title) in text and escape(caption) in text
    assert {"list-size-plot", "cascade-plot", "misattribution-plot"} <= set(plots(text))
    assert "chilling-plot" not in plots(text)


def test_cli(run_dir, tmp_path, capsys):
    target = tmp_path / "sub" / "r.html"
    code, stdout, _ = call(capsys, "report", str(run_dir), "--out", str(target))
    assert code == 0 and stdout.strip() == str(target) and target.is_file()
    code, stdout, stderr = call(capsys, "report", str(tmp_path / "nope"))
    assert code == 2 and stdout == "" and stderr.count("\n") == 1 and "no such run directory" in stderr
    code, _, stderr = call(capsys, "report", str(run_dir), "--out", str(tmp_path))
    assert code == 2 and "is a directory" in stderr
