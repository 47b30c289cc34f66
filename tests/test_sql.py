"""`socialcredit sql`: DuckDB views over a run's Parquet files, read-only, one-line errors."""

from __future__ import annotations

import csv
import io

import polars as pl
import pytest

import socialcredit as sc
from cli_call import call
from socialcredit.analysis.sql import query
from socialcredit.errors import UserError
from socialcredit.io.tables import TABLES

CITIZENS = 3_000


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("sql") / "run"
    sc.run("ref", citizens=CITIZENS, days=60, seed=4, out=out)
    return out


def listing(path) -> dict[str, float]:
    return {p.name: p.stat().st_mtime for p in path.iterdir()}


def test_one_view_per_table(run_dir):
    names = set(query(run_dir, "select table_name from information_schema.tables")["table_name"])
    assert names == set(TABLES)
    for name in TABLES:
        expected = pl.read_parquet(run_dir / f"{name}.parquet").height
        assert query(run_dir, f"select count(*) as n from {name}")["n"][0] == expected


def test_count_equals_citizens(run_dir):
    frame = query(run_dir, "select count(*) as n, count(distinct citizen) as ids from citizens")
    assert isinstance(frame, pl.DataFrame)
    assert frame.row(0) == (CITIZENS, CITIZENS)
    assert sc.load(run_dir).summary["citizens"] == CITIZENS


def test_query_agrees_with_polars(run_dir):
    got = query(run_dir, "select grade, count(*) as n from citizens group by grade order by grade")
    want = (pl.read_parquet(run_dir / "citizens.parquet").group_by("grade").len()
            .with_columns(pl.col("grade").cast(pl.String)).sort("grade"))
    assert got["grade"].to_list() == want["grade"].to_list()
    assert got["n"].to_list() == want["len"].to_list()


def test_csv_output_parses(run_dir, capsys):
    code, stdout, _ = call(capsys, "sql", str(run_dir),
                           "select region, count(*) as n from citizens group by region order by region", "--csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(stdout)))
    assert list(rows[0]) == ["region", "n"]
    assert [int(r["region"]) for r in rows] == list(range(31))
    assert sum(int(r["n"]) for r in rows) == CITIZENS


def test_limit_caps_rows(run_dir, capsys):
    code, stdout, stderr = call(capsys, "sql", str(run_dir), "select day, listed_now from daily order by day",
                                "--csv", "--limit", "5")
    assert code == 0
    rows = list(csv.reader(io.StringIO(stdout)))
    assert rows[0] == ["day", "listed_now"] and [r[0] for r in rows[1:]] == ["0", "1", "2", "3", "4"]
    assert "first 5 rows" in stderr


def test_table_output(run_dir, capsys):
    code, stdout, _ = call(capsys, "sql", str(run_dir), "select count(*) as citizens_total from citizens")
    assert code == 0
    assert "citizens_total" in stdout and f"{CITIZENS}" in stdout


@pytest.mark.parametrize(
    ("sql", "needle"),
    [
        ("select nosuch from citizens", "nosuch"),
        ("selec 1", "syntax"),
        ("select * from nosuch_table", "nosuch_table"),
        ("select 1; select 2", "one statement"),
    ],
)
def test_sql_error_is_one_line_exit_2(run_dir, capsys, sql, needle):
    code, stdout, stderr = call(capsys, "sql", str(run_dir), sql)
    assert code == 2
    assert stdout == ""
    assert stderr.startswith("error: SQL:") and needle.lower() in stderr.lower()
    assert stderr.count("\n") == 1 and "Traceback" not in stderr


@pytest.mark.parametrize(
    "sql",
    [
        "copy citizens to 'out.csv'",
        "create table t as select 1",
        "select * from read_csv('/etc/hostname')",
        "attach 'other.db'",
    ],
)
def test_read_only(run_dir, capsys, sql):
    before = listing(run_dir)
    code, _, stderr = call(capsys, "sql", str(run_dir), sql)
    assert code == 2 and stderr.startswith("error: SQL:")
    assert listing(run_dir) == before


def test_bad_run_dirs(tmp_path, capsys):
    code, _, stderr = call(capsys, "sql", str(tmp_path / "missing"), "select 1")
    assert code == 2 and stderr == f"error: {tmp_path / 'missing'}: no such run directory\n"
    code, _, stderr = call(capsys, "sql", str(tmp_path), "select 1")
    assert code == 2 and "not a run directory" in stderr and stderr.count("\n") == 1
    with pytest.raises(UserError, match="not a run directory"):
        query(tmp_path, "select 1")
