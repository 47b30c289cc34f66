"""`socialcredit sweep`: a grid × seeds in parallel, a tidy table and charts; bad grids rejected up front."""

from __future__ import annotations

import polars as pl
import pytest

from cli_call import call
from socialcredit.analysis import sweep as sweep_module
from socialcredit.analysis.sweep import grid_points, parse_grid
from socialcredit.cli import main
from socialcredit.errors import UserError

KEY = "observation.camera.false_match"
METRICS = ("p_mean", "listed_ever_share", "misattributed_per_1000", "shame_board_innocent_share",
           "chilling_reduction", "di_listed_ever_minority", "citizen_days_per_s")


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    out = tmp_path_factory.mktemp("sweep") / "fm"
    with pytest.raises(SystemExit) as exc:
        main(["sweep", "ref", "--grid", f"{KEY}=0.0,0.5", "--seeds", "2", "--citizens", "2000", "--days", "60",
              "--out", str(out), "--workers", "2", "--quiet"])
    assert exc.value.code == 0
    return out


def test_sweep_table(swept):
    frame = pl.read_parquet(swept / "sweep.parquet")
    assert frame.height == 4
    assert frame.columns[:2] == [KEY, "seed"]
    assert frame.schema[KEY] == pl.Float64 and frame.schema["seed"] == pl.Int64
    assert set(METRICS) <= set(frame.columns)
    assert all(frame.schema[c] == pl.Float64 for c in frame.columns[2:])
    assert sorted(frame.select(KEY, "seed").rows()) == [(0.0, 1), (0.0, 2), (0.5, 1), (0.5, 2)]
    at0 = frame.filter(pl.col(KEY) == 0.0)["misattributed_per_1000"]
    at5 = frame.filter(pl.col(KEY) == 0.5)["misattributed_per_1000"]
    assert at0.to_list() == [0.0, 0.0]
    assert (at5 > 0).all()
    # seeds differ; the camera does not touch who defaults, so the same seed lists the same share
    assert frame.filter(pl.col("seed") == 1)["listed_ever_share"].n_unique() == 1
    assert frame.filter(pl.col(KEY) == 0.0)["p_mean"].n_unique() == 2


def test_sweep_page(swept):
    html = (swept / "sweep.html").read_text(encoding="utf-8")
    assert "plotly.js v" in html and "<script src=" not in html
    assert html.count('class="plot-data"') == len(pl.read_parquet(swept / "sweep.parquet").columns) - 3
    for name in ("misattributed_per_1000", "p_mean", KEY):
        assert name in html
    assert sorted(p.name for p in swept.iterdir()) == ["sweep.html", "sweep.parquet"]


def test_parse_grid_types_and_arrays():
    grid = parse_grid([f"{KEY}=0,0.5", "output.panel=10,20", "a.b=true,false", 'a.c="x,y",z',
                       "a.d=[1,2],[3,4]"])
    assert grid[KEY] == [0, 0.5]
    assert grid["output.panel"] == [10, 20]
    assert grid["a.b"] == [True, False]
    assert grid["a.c"] == ["x,y", "z"]
    assert grid["a.d"] == [[1, 2], [3, 4]]
    assert len(grid_points(grid)) == 2 ** 5


@pytest.mark.parametrize(
    ("grid", "needle"),
    [
        (KEY, "expected key.path=v1,v2"),
        (f"{KEY}=", "empty value"),
        (f"{KEY}=0.1,,0.2", "empty value"),
        (f"{KEY}=0.1,", "empty value"),
        ("=0.1,0.2", "expected key.path=v1,v2"),
        (f"{KEY}=0.1,0.1", "repeated value"),
        ("observation.camera.nosuch=1,2", "unknown key"),
        ("nosuchsection.x=1", "unknown key"),
        (f"{KEY}=0.1,1.5", "less than or equal to 1"),
        (f"{KEY}=0.1,high", "false_match"),
    ],
)
def test_malformed_grid_exit_2_nothing_written(tmp_path, capsys, monkeypatch, grid, needle):
    def never(*args, **kwargs):
        raise AssertionError("a run started before the grid was validated")

    monkeypatch.setattr(sweep_module, "_run_all", never)
    out = tmp_path / "out"
    code, stdout, stderr = call(capsys, "sweep", "ref", "--grid", grid, "--seeds", "1", "-n", "500", "-d", "30",
                                "-o", str(out), "-q")
    assert code == 2, stderr
    assert stdout == "" and stderr.startswith("error: ") and stderr.count("\n") == 1
    assert needle in stderr
    assert not out.exists() and list(tmp_path.iterdir()) == []


def test_bad_sizes_and_repeated_keys(tmp_path):
    with pytest.raises(UserError, match="given twice"):
        parse_grid([f"{KEY}=0.1", f"{KEY}=0.2"])
    for kwargs, needle in (({"seeds": 0}, "--seeds"), ({"workers": 0}, "--workers"), ({"citizens": 0}, "--citizens")):
        args = {"seeds": 1, "citizens": 100, "days": 30, "out": tmp_path / "x"} | kwargs
        with pytest.raises(UserError, match=needle):
            sweep_module.sweep("ref", {KEY: [0.1]}, **args)
    assert list(tmp_path.iterdir()) == []
