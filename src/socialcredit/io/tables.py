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


def citizen_columns(sim: Any, lo: int, hi: int, first_id: int) -> dict[str, np.ndarray]:
    """Rows ``lo..hi-1`` of ``sim``'s citizens as the columns of citizens.parquet (numpy;
    ``listed_since`` is -1 for citizens not listed, ``grade`` an index into the grade names).
    ``first_id`` is the global id of row ``lo`` (a partition's rows start past its ghosts)."""
    cz, g = sim.citizens, sim.graph
    points = sim.find("records", "points")
    sl = slice(lo, hi)
    flags = cz.flags[sl]
    offsets = g.offsets[lo : hi + 1]
    cols: dict[str, np.ndarray] = {
        "citizen": np.arange(first_id, first_id + hi - lo, dtype=np.int32),
        "region": cz.region[sl],
        "urban": (flags & dt.FLAG_URBAN) != 0,
        "minority": (flags & dt.FLAG_MINORITY) != 0,
        "member": (flags & dt.FLAG_MEMBER) != 0,
        "income0": cz.income0[sl],
        "income": cz.income[sl],
        "risk": cz.risk[sl],
        "voice": cz.voice[sl],
        "score": cz.score[sl],
        "points": cz.points[sl],
    }
    if points is not None and points.grade_names():
        cols["grade"] = np.asarray(points.grade_index(cz.points[sl]), np.int8)
    ls = cz.list_start[sl]
    cols.update({
        "listed": ls >= 0,
        "listed_since": np.where(ls >= 0, ls, -1).astype(np.int32),
        "listed_ever": (flags & dt.FLAG_LISTED_EVER) != 0,
        "speech_penalised": (flags & dt.FLAG_SPEECH_PENALISED) != 0,
        "chill": cz.chill[sl],
        "degree": np.diff(offsets).astype(np.int32),
        "active_degree": active_degree(offsets, g.neighbours),
        "in_panel": (flags & dt.FLAG_PANEL) != 0,
    })
    cols.update({name: arr[sl] for name, arr in cz.extra.items()})
    cols.update({name: arr[sl] for name, arr in sim.published().items() if name not in cols})
    return cols


def _citizen_table(cols: dict[str, np.ndarray], grade_names: list[str]) -> pa.Table:
    grade_type = pa.dictionary(pa.int8(), pa.string())
    arrays: dict[str, pa.Array] = {}
    for name, values in cols.items():
        if name == "grade":
            arrays[name] = pa.DictionaryArray.from_arrays(pa.array(values), pa.array(grade_names)).cast(grade_type)
        elif name == "listed_since":
            arrays[name] = pa.array(values, mask=values < 0)
        else:
            arrays[name] = pa.array(values)
    return pa.table(arrays)


def write_citizens(results: Results, path: Path) -> None:
    """Final state, one row per citizen, written in row groups to bound memory.

    The rows come from ``sim.citizen_rows(lo, hi)`` where the simulation has it (a
    distributed run fetches each row group from the partitions that hold it), else from
    the simulation's own arrays.
    """
    sim = results.sim
    points = sim.find("records", "points")
    grade_names = points.grade_names() if points is not None else []
    rows = getattr(sim, "citizen_rows", None) or (lambda lo, hi: citizen_columns(sim, lo, hi, lo))
    writer = None
    try:
        for lo in range(0, max(sim.n, 1), ROW_GROUP):
            table = _citizen_table(rows(lo, min(sim.n, lo + ROW_GROUP)), grade_names)
            if writer is None:
                # dictionary encoding only where values repeat: tried on float columns it is abandoned
                # page by page after the work is done (2.5 times slower, and larger files)
                repeat = [f.name for f in table.schema if not pa.types.is_floating(f.type)]
                writer = pq.ParquetWriter(path, table.schema, compression=COMPRESSION, use_dictionary=repeat)
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
