"""Same seed, same results: Parquet bytes, metrics, whatever the thread count."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import socialcredit as sc
from socialcredit.io.tables import TABLES

ARGS = dict(citizens=3_000, days=95, seed=7)


def _files(path: Path) -> dict[str, bytes]:
    return {f"{t}.parquet": (path / f"{t}.parquet").read_bytes() for t in TABLES}


def _metrics(path: Path) -> dict:
    m = json.loads((path / "summary.json").read_text())["metrics"]
    m.pop("citizen_days_per_s")
    return m


def test_same_seed_identical_files(tmp_path):
    a = sc.run("ref", out=tmp_path / "a", **ARGS)
    b = sc.run("ref", out=tmp_path / "b", **ARGS)
    assert _files(a.path) == _files(b.path)
    assert _metrics(a.path) == _metrics(b.path)


def test_other_seed_differs(tmp_path):
    a = sc.run("ref", out=tmp_path / "a", **ARGS)
    b = sc.run("ref", out=tmp_path / "b", **{**ARGS, "seed": 8})
    assert _metrics(a.path) != _metrics(b.path)


def _cli_run(out: Path, threads: int) -> None:
    env = {**os.environ, "NUMBA_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "socialcredit", "run", "ref", "--citizens", "70000", "--days", "65",
           "--seed", "3", "--out", str(out), "--quiet"]
    subprocess.run(cmd, check=True, env=env, capture_output=True, timeout=600)


def test_thread_count_does_not_change_results(tmp_path):
    # 70,000 citizens span two blocks in some regions' worth of work, so threads interleave
    _cli_run(tmp_path / "t1", 1)
    _cli_run(tmp_path / "t2", 2)
    assert _files(tmp_path / "t1") == _files(tmp_path / "t2")
    assert _metrics(tmp_path / "t1") == _metrics(tmp_path / "t2")
    manifest = json.loads((tmp_path / "t2" / "manifest.json").read_text())
    assert manifest["threads"] == 2
