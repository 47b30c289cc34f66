"""DuckDB over a run's Parquet files: one read-only view per table.

>>> query("runs/ref-1m", "select grade, count(*) as n from citizens group by 1 order by 1")  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from socialcredit.analysis.runs import open_run
from socialcredit.errors import UserError
from socialcredit.io.tables import TABLES

if TYPE_CHECKING:
    import duckdb
    import polars as pl

#: Statement types a query may contain: reading only (SELECT covers WITH, FROM, DESCRIBE, SHOW, SUMMARIZE).
READ_ONLY = ("SELECT", "EXPLAIN")


def views(run_dir: str | Path) -> dict[str, Path]:
    """The run's tables that exist, by view name, with their Parquet files."""
    run = open_run(run_dir)
    files = {name: (run.path / f"{name}.parquet").resolve() for name in TABLES}
    return {name: path for name, path in files.items() if path.is_file()}


def connect(run_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per table of the run.

    The connection can read only the run's Parquet files: file system access
    is otherwise disabled and the configuration locked, so queries can neither
    write files nor read others.
    """
    import duckdb

    tables = views(run_dir)
    if not tables:
        raise UserError(f"{run_dir}: not a run directory (no Parquet tables)")
    con = duckdb.connect(":memory:")
    for name, path in tables.items():
        con.execute(f"create view {name} as select * from read_parquet({_literal(path)})")
    allowed = ", ".join(_literal(p) for p in tables.values())
    try:
        con.execute(f"set allowed_paths = [{allowed}]")
    except duckdb.Error:  # DuckDB before 1.2: no allow-list; only the statement check guards writes
        pass
    else:
        con.execute("set enable_external_access = false")
    con.execute("set lock_configuration = true")
    return con


def query(run_dir: str | Path, sql: str, limit: int | None = None) -> pl.DataFrame:
    """Run one read-only SQL statement over the run's tables; the result as a polars DataFrame.

    Views: citizens, daily, scores_monthly, events, lists. ``limit`` caps the
    rows fetched. Errors (bad SQL, writing statements) are UserErrors.
    """
    import duckdb

    if limit is not None and limit < 0:
        raise UserError(f"--limit must be at least 0 (got {limit})")
    con = connect(run_dir)
    try:
        statements = duckdb.extract_statements(sql)
        if len(statements) != 1:
            raise UserError(f"SQL: expected one statement (got {len(statements)})")
        kind = statements[0].type.name
        if kind not in READ_ONLY:
            raise UserError(f"SQL: only read-only queries are allowed (got {kind})")
        relation = con.sql(sql)
        if relation is None:
            raise UserError("SQL: the statement returns no rows")
        if limit is not None:
            relation = relation.limit(limit)
        return relation.pl()
    except duckdb.Error as exc:
        raise UserError(f"SQL: {_one_line(str(exc))}") from None
    finally:
        con.close()


def _literal(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _one_line(message: str) -> str:
    return " ".join(message.split())
