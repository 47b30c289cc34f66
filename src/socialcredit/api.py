"""The Python API: ``run``, ``load`` and ``Run``. The CLI is a thin layer over it."""

from __future__ import annotations

import datetime as dt
import json
import platform
import resource
import shutil
import sys
import tempfile
import time
import weakref
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from socialcredit.engine.simulation import Simulation, check_size, preflight
from socialcredit.errors import UserError
from socialcredit.io.rundir import atomic_dir, check_target
from socialcredit.io.tables import TABLES, write_run
from socialcredit.population import BLOCK_SIZE
from socialcredit.scenario import Scenario

DEFAULT_SCENARIO = "ref"


def run(
    scenario: str | Path | Scenario = DEFAULT_SCENARIO,
    *,
    citizens: int = 1_000_000,
    days: int = 365,
    seed: int = 1,
    out: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    force: bool = False,
    on_setup: Callable[[Simulation], None] | None = None,
    on_day: Callable[[int], None] | None = None,
) -> Run:
    """Simulate ``scenario`` and return the run, written to ``out``.

    With ``out=None`` the run lives in a temporary directory removed when the
    returned ``Run`` is garbage-collected (``Run.save`` keeps a copy).

    >>> r = run("ref", citizens=2_000, days=60, seed=3)
    >>> sorted(r.metrics)[:2]
    ['citizen_days_per_s', 'chilling_reduction']
    """
    started = dt.datetime.now(dt.UTC)
    t0 = time.perf_counter()
    scn = scenario if isinstance(scenario, Scenario) else Scenario.load(scenario)
    if overrides:
        scn = scn.override(**overrides)
    check_size(citizens, days, seed)
    preflight(scn)
    temporary = out is None
    target = Path(tempfile.mkdtemp(prefix="socialcredit-")) / "run" if temporary else Path(out)
    check_target(target, force)
    sim = Simulation(scn, citizens=citizens, days=days, seed=seed)
    if on_setup is not None:
        on_setup(sim)
    results = sim.run(on_day=on_day)
    with atomic_dir(target, force=force) as tmp:
        manifest = _manifest(sim, results.timings, started, time.perf_counter() - t0)
        write_run(results, tmp, manifest)
    result = Run(target)
    if temporary:
        weakref.finalize(result, shutil.rmtree, target.parent, True)
    return result


def load(path: str | Path) -> Run:
    """Open a run directory written by ``run``."""
    return Run(Path(path))


def _manifest(sim: Simulation, timings: dict[str, float], started: dt.datetime, wall: float) -> dict[str, Any]:
    import numba
    import numpy
    import pyarrow

    from socialcredit import __version__

    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "scenario": sim.scenario.to_dict(),
        "scenario_name": sim.scenario.name,
        "scenario_source": sim.scenario.source,
        "citizens": sim.n,
        "days": sim.day,
        "seed": sim.seed,
        "package_version": __version__,
        "versions": {
            "python": platform.python_version(),
            "numpy": numpy.__version__,
            "numba": numba.__version__,
            "polars": pl.__version__,
            "pyarrow": pyarrow.__version__,
        },
        "command_line": sys.argv,
        "started": started.isoformat(timespec="seconds"),
        "finished": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 3),
        "peak_rss_bytes": peak_kib * 1024,
        "threads": numba.get_num_threads(),
        "block_size": BLOCK_SIZE,
        "rng": "SplitMix64 counter streams keyed by (seed, stream, day, block)",
        "panel_citizens": len(sim.panel),
        "edges": sim.graph.edges,
        "timings_seconds": {k: round(v, 4) for k, v in timings.items()},
        "plan": [str(s) for s in sim.plan],
    }


class Run:
    """A run directory: metrics, manifest and tables (polars DataFrames, read on first use)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        for name in ("summary.json", "manifest.json"):
            if not (self.path / name).is_file():
                raise UserError(f"{self.path}: not a run directory (no {name})")

    @cached_property
    def summary(self) -> dict[str, Any]:
        """Contents of summary.json."""
        return json.loads((self.path / "summary.json").read_text(encoding="utf-8"))

    @cached_property
    def manifest(self) -> dict[str, Any]:
        """Contents of manifest.json."""
        return json.loads((self.path / "manifest.json").read_text(encoding="utf-8"))

    @property
    def metrics(self) -> dict[str, float | None]:
        """Summary metrics by name."""
        return self.summary["metrics"]

    @property
    def scenario(self) -> str:
        """Name of the scenario that was run."""
        return self.summary["scenario"]

    def table(self, name: str) -> pl.DataFrame:
        """One of the run's Parquet tables."""
        if name not in TABLES:
            raise UserError(f"unknown table {name!r} (tables: {', '.join(TABLES)})")
        return pl.read_parquet(self.path / f"{name}.parquet")

    citizens = property(lambda self: self.table("citizens"), doc="Final state, one row per citizen.")
    daily = property(lambda self: self.table("daily"), doc="Aggregate counts per day.")
    scores_monthly = property(lambda self: self.table("scores_monthly"), doc="Panel scores on scoring days.")
    events = property(lambda self: self.table("events"), doc="Panel citizens' true and observed events.")
    lists = property(lambda self: self.table("lists"), doc="Court-list intervals.")

    def save(self, path: str | Path) -> Run:
        """Copy this run directory to ``path`` and return the copy."""
        shutil.copytree(self.path, path)
        return Run(Path(path))

    def __repr__(self) -> str:
        s = self.summary
        return f"Run({str(self.path)!r}, scenario={s['scenario']!r}, citizens={s['citizens']}, days={s['days']})"
