"""Writing a finished run's tables: Parquet files, summary.json, manifest.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

from socialcredit import dtypes as dt
from socialcredit.engine.events import FLAG_NAMES
from socialcredit.engine.kernels import active_degree
from socialcredit.io import TABLES  # noqa: F401  (re-exported)
from socialcredit.metrics.summary import clean

if TYPE_CHECKING:
    from socialcredit.metrics.summary import Results

ROW_GROUP = 1 << 18
COMPRESSION = "zstd"


def write_run(results: Results, directory: Path, manifest: dict[str, Any]) -> None:
    """Write every table and the two JSON files of a run into ``directory``."""
    sim = results.sim
    write_citizens(results, directory / "citizens.parquet")
    _write(results.daily, directory / "daily.parquet")
    _write_spool(sim.panel_scores, directory / "scores_monthly.parquet", _scores_table)
    _write_spool(sim.panel_events, directory / "events.parquet", _events_converter(sim.kinds.names))
    court = sim.find("records", "court-list")
    lists = court.table(sim.day) if court is not None else pl.DataFrame(
        schema={"citizen": pl.Int32, "start_day": pl.Int32, "end_day": pl.Int32, "exit": pl.Categorical})
    _write(lists, directory / "lists.parquet")
    summary = {
        "scenario": sim.scenario.name,
        "citizens": sim.n,
        "days": sim.day,
        "seed": sim.seed,
        "metrics": clean(results.metrics),
    }
    dump_json(summary, directory / "summary.json")
    dump_json(manifest, directory / "manifest.json")


def dump_json(data: dict[str, Any], path: Path) -> None:
    """Write pretty, stable JSON."""
    path.write_text(json.dumps(data, indent=2, allow_nan=False) + "\n", encoding="utf-8")


def _write(frame: pl.DataFrame, path: Path) -> None:
    frame.write_parquet(path, compression=COMPRESSION, statistics=True)


def write_citizens(results: Results, path: Path) -> None:
    """Final state, one row per citizen, written in row groups to bound memory."""
    sim = results.sim
    cz, g = sim.citizens, sim.graph
    points = sim.find("records", "points")
    grade_names = points.grade_names() if points is not None else []
    grade_type = pa.dictionary(pa.int8(), pa.string())
    published = sim.published()
    writer = None
    try:
        for lo in range(0, max(sim.n, 1), ROW_GROUP):
            hi = min(sim.n, lo + ROW_GROUP)
            sl = slice(lo, hi)
            flags = cz.flags[sl]
            offsets = g.offsets[lo : hi + 1]
            cols: dict[str, Any] = {
                "citizen": pa.array(np.arange(lo, hi, dtype=np.int32)),
                "region": pa.array(cz.region[sl]),
                "urban": pa.array((flags & dt.FLAG_URBAN) != 0),
                "minority": pa.array((flags & dt.FLAG_MINORITY) != 0),
                "member": pa.array((flags & dt.FLAG_MEMBER) != 0),
                "income0": pa.array(cz.income0[sl]),
                "income": pa.array(cz.income[sl]),
                "risk": pa.array(cz.risk[sl]),
                "voice": pa.array(cz.voice[sl]),
                "score": pa.array(cz.score[sl]),
                "points": pa.array(cz.points[sl]),
            }
            if grade_names:
                idx = points.grade_index(cz.points[sl])
                cols["grade"] = pa.DictionaryArray.from_arrays(pa.array(idx), pa.array(grade_names)).cast(grade_type)
            ls = cz.list_start[sl]
            cols.update({
                "listed": pa.array(ls >= 0),
                "listed_since": pa.array(ls.astype(np.int32), mask=ls < 0),
                "listed_ever": pa.array((flags & dt.FLAG_LISTED_EVER) != 0),
                "speech_penalised": pa.array((flags & dt.FLAG_SPEECH_PENALISED) != 0),
                "chill": pa.array(cz.chill[sl]),
                "degree": pa.array(np.diff(offsets).astype(np.int32)),
                "active_degree": pa.array(active_degree(offsets, g.neighbours)),
                "in_panel": pa.array((flags & dt.FLAG_PANEL) != 0),
            })
            cols.update({name: pa.array(arr[sl]) for name, arr in cz.extra.items()})
            cols.update({name: pa.array(arr[sl]) for name, arr in published.items() if name not in cols})
            table = pa.table(cols)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression=COMPRESSION)
            writer.write_table(table, row_group_size=ROW_GROUP)
    finally:
        if writer is not None:
            writer.close()


def _write_spool(spool: Any, path: Path, convert: Any) -> None:
    """Write a spooled table in row groups of ``ROW_GROUP`` rows, whatever its chunking."""
    writer = None
    try:
        for block in spool.blocks(ROW_GROUP):
            table = convert(block)
            if writer is None:
                writer = pq.ParquetWriter(path, table.schema, compression=COMPRESSION)
            writer.write_table(table, row_group_size=ROW_GROUP)
        if writer is None:
            pq.write_table(convert(spool.empty()), path, compression=COMPRESSION)
    finally:
        if writer is not None:
            writer.close()


def _scores_table(block: dict[str, np.ndarray]) -> pa.Table:
    return pa.table({k: pa.array(v) for k, v in block.items()})


def _events_converter(kind_names: list[str]) -> Any:
    names = pa.array(kind_names)

    def convert(block: dict[str, np.ndarray]) -> pa.Table:
        flags = block["flags"]
        cols = {
            "day": pa.array(block["day"]),
            "citizen": pa.array(block["citizen"]),
            "kind": pa.DictionaryArray.from_arrays(pa.array(block["kind"].astype(np.int8)), names),
            "attributed_to": pa.array(block["target"]),
        }
        cols.update({name: pa.array((flags & bit) != 0) for name, bit in FLAG_NAMES.items()})
        return pa.table(cols)

    return convert
