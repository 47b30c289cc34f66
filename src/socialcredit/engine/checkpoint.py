"""Checkpoints: a run's whole mutable state in a versioned, non-pickle format.

A checkpoint directory holds ``checkpoint.json`` (format version, what was
being run, the day reached, a CRC-32 of every array) and ``state.npz``
(uncompressed numpy arrays, loaded with ``allow_pickle=False``). The graph's
structure is regenerated from the seed on resume and checked against its CRC;
only the bit set of cut edges is saved. Checkpoints are written to a temporary
sibling and renamed, so a crash while writing leaves the previous one intact.
"""

from __future__ import annotations

import json
import shutil
import zipfile
import zlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from socialcredit.engine.kernels import apply_cut_bits, cut_bits
from socialcredit.errors import UserError
from socialcredit.io.rundir import atomic_replace

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation

FORMAT = "socialcredit-checkpoint"
VERSION = 1


def check_every(every: int | None, days: int) -> None:
    """Refuse a checkpoint interval outside 1..days (one line)."""
    if every is not None and not 1 <= every <= days:
        raise UserError(f"--checkpoint-every must be between 1 and --days ({days}) (got {every})")


def checkpoint_dir(out: Path) -> Path:
    """Where the checkpoints of a run writing to ``out`` live."""
    return out.with_name(out.name + ".checkpoint")


def find(out: Path) -> Path:
    """The newest complete checkpoint of ``out`` (also one left mid-rotation by a crash)."""
    directory = checkpoint_dir(out)
    if (directory / "checkpoint.json").is_file():
        return directory
    for old in sorted(directory.parent.glob(f".{directory.name}.old-*")):
        if (old / "checkpoint.json").is_file():
            return old
    return directory


def remove(out: Path) -> None:
    """Delete the checkpoint of ``out`` and any leftovers of interrupted writes."""
    directory = checkpoint_dir(out)
    shutil.rmtree(directory, ignore_errors=True)
    for stale in directory.parent.glob(f".{directory.name}.*"):
        shutil.rmtree(stale, ignore_errors=True)


def scenario_crc(scenario: dict[str, Any]) -> int:
    """CRC-32 of a resolved scenario's canonical JSON."""
    return zlib.crc32(json.dumps(scenario, sort_keys=True).encode())


def crc(array: np.ndarray) -> int:
    """CRC-32 of an array's bytes."""
    return zlib.crc32(memoryview(np.ascontiguousarray(array)).cast("B"))




def collect(sim: Simulation) -> dict[str, np.ndarray]:
    """Every mutable array of a simulation, by name."""
    arrays = {f"citizens.{k}": v for k, v in sim.citizens.arrays().items()}
    arrays["graph.cut_bits"] = cut_bits(sim.graph.neighbours)
    for section, plugins in sim.plugins.items():
        for name, plugin in plugins.items():
            arrays.update({f"plugin.{section}.{name}.{k}": v for k, v in plugin.state().items()})
    for prefix, spool in (("panel_events", sim.panel_events), ("panel_scores", sim.panel_scores)):
        arrays.update({f"{prefix}.{k}": v for k, v in spool.concat().items()})
    return arrays


def save(sim: Simulation, directory: Path, meta: dict[str, Any]) -> None:
    """Write a checkpoint of ``sim`` (at the end of day ``sim.day - 1``) to ``directory``."""
    with atomic_replace(directory, "checkpoint") as tmp:
        write(sim, tmp, meta)


def write(sim: Simulation, directory: Path, meta: dict[str, Any]) -> None:
    """Write the checkpoint files of ``sim`` into the existing, empty ``directory`` (not atomic:
    ``save`` writes to a temporary sibling and renames it)."""
    arrays = collect(sim)
    np.savez(directory / "state.npz", **arrays)
    doc = {
        "format": FORMAT,
        "version": VERSION,
        "day": sim.day,
        "graph_crc": sim.graph_crc,
        "scenario_crc": scenario_crc(meta["scenario"]),
        "arrays": {k: {"dtype": str(v.dtype), "shape": list(v.shape), "crc32": crc(v)}
                   for k, v in arrays.items()},
        "daily_rows": sim.daily_rows,
        **meta,
    }
    (directory / "checkpoint.json").write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")


def read_meta(directory: Path) -> dict[str, Any]:
    """The checkpoint's JSON document, checked for format and version."""
    path = directory / "checkpoint.json"
    if not path.is_file():
        raise UserError(f"{directory}: no checkpoint here (missing checkpoint.json)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise UserError(f"{path}: corrupt checkpoint ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"{path}: not a socialcredit checkpoint")
    if doc.get("version") != VERSION:
        raise UserError(f"{path}: checkpoint format version {doc.get('version')!r}, this version reads {VERSION}")
    partitioned = doc.get("backend") == "ray"  # the driver's document; each partition has its own checkpoint
    keys = ("partitions", "workers") if partitioned else ("arrays", "daily_rows", "graph_crc")
    for key in ("day", "scenario", "citizens", "days", "seed", "scenario_crc", *keys):
        if key not in doc:
            raise UserError(f"{path}: corrupt checkpoint (no {key!r})")
    if scenario_crc(doc["scenario"]) != doc["scenario_crc"]:
        raise UserError(f"{path}: mismatched checkpoint (the scenario was changed after it was written)")
    return doc


def restore(sim: Simulation, directory: Path, doc: dict[str, Any]) -> None:
    """Load the arrays of a checkpoint into a freshly set-up ``sim``."""
    if sim.graph_crc != doc["graph_crc"]:
        raise UserError(f"{directory}: checkpoint does not match this scenario's graph (mismatched checkpoint)")
    try:
        with np.load(directory / "state.npz", allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as exc:
        raise UserError(f"{directory / 'state.npz'}: corrupt checkpoint ({exc})") from None
    expected = doc["arrays"]
    if set(arrays) != set(expected):
        raise UserError(f"{directory}: corrupt checkpoint (arrays differ from checkpoint.json)")
    current = collect(sim)
    for name, value in arrays.items():
        info = expected[name]
        if str(value.dtype) != info["dtype"] or list(value.shape) != info["shape"] or crc(value) != info["crc32"]:
            raise UserError(f"{directory}: corrupt checkpoint (array {name} fails its check)")
        mine = current.get(name)
        if mine is not None and mine.ndim and name.startswith(("citizens.", "graph.")) and (
            mine.shape != value.shape or mine.dtype != value.dtype
        ):
            raise UserError(f"{directory}: mismatched checkpoint (array {name} has another shape)")
    for key, value in arrays.items():
        if key.startswith("citizens."):
            sim.citizens.get(key.split(".", 1)[1])[...] = value
    apply_cut_bits(sim.graph.neighbours, arrays["graph.cut_bits"])
    for section, plugins in sim.plugins.items():
        for name, plugin in plugins.items():
            prefix = f"plugin.{section}.{name}."
            mine = {k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)}
            if mine:
                plugin.restore(mine)
    for prefix, spool in (("panel_events", sim.panel_events), ("panel_scores", sim.panel_scores)):
        spool.replace({k: arrays[f"{prefix}.{k}"] for k in spool.columns})
    sim.daily_rows = list(doc["daily_rows"])
    sim.day = int(doc["day"])
