"""The Python API: ``run``, ``load`` and ``Run``. The CLI is a thin layer over it."""

from __future__ import annotations

import datetime as dt
import json
import platform
import resource
import shutil
import sys
import tempfile
import weakref
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

from socialcredit.engine import checkpoint
from socialcredit.engine.checkpoint import checkpoint_dir
from socialcredit.engine.simulation import Simulation, check_size, preflight
from socialcredit.errors import UserError
from socialcredit.io import TABLES
from socialcredit.io.rundir import atomic_dir, check_target
from socialcredit.population import BLOCK_SIZE
from socialcredit.scenario import Scenario

DEFAULT_SCENARIO = "china"


def run(
    scenario: str | Path | Scenario = DEFAULT_SCENARIO,
    *,
    citizens: int = 1_000_000,
    days: int = 365,
    seed: int = 1,
    out: str | Path | None = None,
    overrides: dict[str, Any] | None = None,
    force: bool = False,
    checkpoint_every: int | None = None,
    on_setup: Callable[[Simulation], None] | None = None,
    on_day: Callable[[int], None] | None = None,
    backend: str = "single",
    workers: int = 2,
    address: str | None = None,
) -> Run:
    """Simulate ``scenario`` and return the run, written to ``out``.

    With ``out=None`` the run lives in a temporary directory removed when the
    returned ``Run`` is garbage-collected (``Run.save`` keeps a copy). With
    ``checkpoint_every=K`` the state is saved every K days to
    ``<out>.checkpoint/``, so that ``resume(out)`` can finish an interrupted run.
    With ``backend="ray"`` the citizens are partitioned by region over ``workers``
    Ray actors (on the cluster at ``address``, else a local Ray instance; needs
    ``socialcredit[distributed]``); the results are the same, bit for bit.

    >>> r = run("ref", citizens=2_000, days=60, seed=3)
    >>> sorted(r.metrics)[:2]
    ['citizen_days_per_s', 'chilling_reduction']
    """
    started = dt.datetime.now(dt.UTC)
    scn = scenario if isinstance(scenario, Scenario) else Scenario.load(scenario)
    if overrides:
        scn = scn.override(**overrides)
    check_size(citizens, days, seed)
    if backend not in ("single", "ray"):
        raise UserError(f"backend must be 'single' or 'ray' (got {backend!r})")
    if backend == "ray":
        if on_setup is not None:
            raise UserError("on_setup is not available with backend='ray'")
        from socialcredit.distributed.ray_backend import run_ray

        return run_ray(scn, citizens=citizens, days=days, seed=seed, workers=workers, address=address, out=out,
                       force=force, checkpoint_every=checkpoint_every, on_day=on_day)
    if address is not None:
        raise UserError("address needs backend='ray'")
    checkpoint.check_every(checkpoint_every, days)
    preflight(scn, citizens)
    target, temporary = run_target(out, force, checkpoint_every)
    sim = Simulation(scn, citizens=citizens, days=days, seed=seed)
    meta = {"scenario": scn.to_dict(), "scenario_source": scn.source, "citizens": citizens, "days": days,
            "seed": seed, "checkpoint_every": checkpoint_every, "force": force, "started": started.isoformat()}
    result = _finish(sim, target, meta, started, on_setup, on_day)
    if temporary:
        weakref.finalize(result, shutil.rmtree, target.parent, True)
    return result


def run_target(out: str | Path | None, force: bool, checkpoint_every: int | None) -> tuple[Path, bool]:
    """Where a new run is written, and whether that is a temporary directory (``out=None``).

    Refuses an existing non-empty ``out`` without ``force``, and a checkpoint an interrupted
    run left there (``resume`` finishes it; ``force`` removes it).
    """
    temporary = out is None
    if temporary and checkpoint_every:
        raise UserError("--checkpoint-every needs an output directory")
    target = Path(tempfile.mkdtemp(prefix="socialcredit-")) / "run" if temporary else Path(out)
    check_target(target, force)
    if (checkpoint.find(target) / "checkpoint.json").is_file():
        if not force:
            raise UserError(f"--out {target}: an interrupted run left a checkpoint; "
                            f"`socialcredit resume {target}` finishes it (or use --force to start over)")
        checkpoint.remove(target)
    return target, temporary


def resume(
    out: str | Path,
    *,
    on_setup: Callable[[Simulation], None] | None = None,
    on_day: Callable[[int], None] | None = None,
) -> Run:
    """Finish a run interrupted after a checkpoint; the result equals an uninterrupted run.
    A run of the ray backend resumes on Ray (the cluster it ran on, else a local instance)."""
    target = Path(out)
    directory = checkpoint.find(target)
    doc = checkpoint.read_meta(directory)
    if (target / "summary.json").is_file() and (target / "manifest.json").is_file():
        # the run was written, then stopped before removing its checkpoint (a run that starts
        # over into the same --out removes an older checkpoint first): nothing left to do
        checkpoint.remove(target)
        return Run(target)
    if doc.get("backend") == "ray":
        if on_setup is not None:
            raise UserError("on_setup is not available when resuming a run of the ray backend")
        from socialcredit.distributed.ray_backend import resume_ray

        return resume_ray(target, directory, doc, on_day=on_day)
    try:
        scn = Scenario(doc["scenario"], doc.get("scenario_source", str(directory)))
    except UserError as exc:
        raise UserError(f"{directory}: mismatched checkpoint ({exc})") from None
    check_target(target, force=bool(doc.get("force")))
    sim = Simulation(scn, citizens=int(doc["citizens"]), days=int(doc["days"]), seed=int(doc["seed"]))
    checkpoint.restore(sim, directory, doc)
    started = dt.datetime.fromisoformat(doc["started"])
    meta = {k: doc[k] for k in ("scenario", "scenario_source", "citizens", "days", "seed", "checkpoint_every",
                                "force", "started")}
    return _finish(sim, target, meta, started, on_setup, on_day)


def _finish(
    sim: Simulation,
    target: Path,
    meta: dict[str, Any],
    started: dt.datetime,
    on_setup: Callable[[Simulation], None] | None,
    on_day: Callable[[int], None] | None,
) -> Run:
    every = meta.get("checkpoint_every")
    directory = checkpoint_dir(target)

    def after_day(day: int) -> None:
        if every and day % every == 0 and day < sim.days:
            checkpoint.save(sim, directory, meta)
        if on_day is not None:
            on_day(day)

    if on_setup is not None:
        on_setup(sim)
    # working arrays are neither measured nor written: free them before the metrics and the writer's buffers
    results = sim.run(on_day=after_day, release=True)
    from socialcredit.io.tables import write_run

    with atomic_dir(target, force=True) as tmp:
        wall = (dt.datetime.now(dt.UTC) - started).total_seconds()
        manifest = _manifest(sim, results.timings, started, wall)
        manifest["checkpoint_every"] = every
        write_run(results, tmp, manifest)
    if every:
        checkpoint.remove(target)
    return Run(target)


def load(path: str | Path) -> Run:
    """Open a run directory written by ``run``."""
    return Run(Path(path))


def _manifest(sim: Simulation, timings: dict[str, float], started: dt.datetime, wall: float) -> dict[str, Any]:
    import numba
    import numpy
    import polars as pl
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

    def table(self, name: str) -> Any:
        """One of the run's Parquet tables, as a polars DataFrame."""
        import polars as pl

        if name not in TABLES:
            raise UserError(f"unknown table {name!r} (tables: {', '.join(TABLES)})")
        return pl.read_parquet(self.path / f"{name}.parquet")

    citizens = property(lambda self: self.table("citizens"), doc="Final state, one row per citizen.")
    daily = property(lambda self: self.table("daily"), doc="Aggregate counts per day.")
    scores_monthly = property(lambda self: self.table("scores_monthly"), doc="Panel scores on scoring days.")
    events = property(lambda self: self.table("events"), doc="Panel citizens' true and observed events.")
    lists = property(lambda self: self.table("lists"), doc="Court-list intervals.")

    def report(self, out: str | Path | None = None) -> Path:
        """Write the self-contained HTML report (default ``<run>/report.html``); return its path."""
        from socialcredit.analysis.report import write_report

        return write_report(self.path, Path(out) if out is not None else None)

    def sql(self, query: str) -> Any:
        """Run a read-only DuckDB query over the run's tables; a polars DataFrame."""
        from socialcredit.analysis.sql import query as run_query

        return run_query(self.path, query)

    def save(self, path: str | Path) -> Run:
        """Copy this run directory to ``path`` and return the copy."""
        shutil.copytree(self.path, path)
        return Run(Path(path))

    def __repr__(self) -> str:
        s = self.summary
        return f"Run({str(self.path)!r}, scenario={s['scenario']!r}, citizens={s['citizens']}, days={s['days']})"
