"""Partitions as Ray actors (``socialcredit run --backend ray``). Ray is imported lazily."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sys
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from socialcredit.distributed.driver import Workers, run_partitions
from socialcredit.distributed.partition import check_supported, check_workers, split_regions
from socialcredit.errors import UserError, one_line
from socialcredit.scenario import Scenario


def _ray() -> Any:
    try:
        import ray
    except ImportError:
        raise UserError("the ray backend needs Ray: pip install 'socialcredit[distributed]'") from None
    return ray


@contextlib.contextmanager
def _native_stderr_muted() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null for the duration (native libraries write there directly)."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def probe(address: str, timeout: float = 5.0) -> None:
    """Refuse, in one line, a cluster address nothing answers at (``ray.init`` would retry for minutes).
    ``auto`` and addresses without a port are left to Ray."""
    import re
    import socket

    m = re.fullmatch(r"(?:ray://)?\[?([^\]/]+?)\]?:(\d+)", address.strip())
    if m is None:
        return
    host, port = m.group(1), int(m.group(2))
    try:
        with socket.create_connection((host, port), timeout=timeout):
            pass
    except OSError as exc:
        reason = "timed out" if isinstance(exc, TimeoutError) else (exc.strerror or type(exc).__name__)
        raise UserError(f"cannot reach the Ray cluster at {address} ({reason}); start it with `ray start --head` "
                        "or check --address") from None


class _Partition:
    """Actor body: one ``PartitionSim``; every method of the driver's interface forwards to it."""

    def __init__(self, doc: dict[str, Any], source: str, citizens: int, days: int, seed: int,
                 r0: int, r1: int, threads: int | None) -> None:
        if threads is not None:
            import numba

            numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
        from socialcredit.distributed.partition import PartitionSim

        self.sim = PartitionSim(Scenario(doc, source), citizens, days, seed, r0, r1)

    def call(self, method: str, *args: Any) -> Any:
        if args and isinstance(args[-1], _Refs):  # fetch only the pieces this partition reads
            import ray

            refs = args[-1]
            needed = sorted(p for p, r in enumerate(refs) if r is not None)
            fetched = dict(zip(needed, ray.get([refs[p] for p in needed]), strict=True))
            args = (*args[:-1], [fetched.get(p) for p in range(len(refs))])
        return getattr(self.sim, method)(*args)

    def call_split(self, method: str, *args: Any) -> Any:
        """``call`` for a method returning one array per partition: Ray stores each as its own object."""
        out = self.call(method, *args)
        return out[0] if len(out) == 1 else tuple(out)


class RayWorkers(Workers):
    """One Ray actor per partition."""

    def __init__(self, scenario: Scenario, citizens: int, days: int, seed: int,
                 ranges: list[tuple[int, int]], cpus: float = 1, threads: int | None = None) -> None:
        ray = _ray()
        actor = ray.remote(num_cpus=cpus)(_Partition)
        doc = scenario.to_dict()
        self.actors = [actor.remote(doc, scenario.source, citizens, days, seed, r0, r1, threads)
                       for r0, r1 in ranges]
        self.k = len(self.actors)
        self.ray = ray

    def call(self, method: str, args: list[tuple[Any, ...]] | None = None) -> list[Any]:
        args = args or [()] * self.k
        return self.ray.get([a.call.remote(method, *x) for a, x in zip(self.actors, args, strict=True)])

    def call_some(self, calls: list[tuple[int, str, tuple[Any, ...]]]) -> list[Any]:
        return self.ray.get([self.actors[p].call.remote(method, *a) for p, method, a in calls])

    def scatter(self, produce: str, produce_args: tuple[Any, ...], consume: str,
                consume_args: tuple[Any, ...] = ()) -> None:
        """Pieces stay in the object store (the driver holds references only); each actor fetches
        the pieces addressed to it (empty ones are a few bytes)."""
        k = self.k
        refs = []
        for a in self.actors:
            out = a.call_split.options(num_returns=k).remote(produce, *produce_args)
            refs.append([out] if k == 1 else out)
        self.ray.get([a.call.remote(consume, *consume_args, _Refs([refs[q][p] for q in range(k)]))
                      for p, a in enumerate(self.actors)])

    def close(self) -> None:
        """Remove the partitions' spool directories (where the actors still answer), then kill them."""
        with contextlib.suppress(Exception):  # a dead actor: nothing more to clean from here
            self.ray.get([a.call.remote("close") for a in self.actors], timeout=60)
        for a in self.actors:
            self.ray.kill(a)


class _Refs(list):
    """A list of object refs passed by reference (resolved by the importer)."""


def run_ray(
    scenario: str | Path | Scenario,
    *,
    citizens: int,
    days: int,
    seed: int = 1,
    workers: int = 2,
    address: str | None = None,
    out: str | Path | None = None,
    force: bool = False,
    threads: int | None = None,
    checkpoint_every: int | None = None,
    on_day: Callable[[int], None] | None = None,
) -> Any:
    """Run ``scenario`` partitioned over ``workers`` Ray actors (on the cluster at ``address``,
    else a local Ray instance); write the run directory and return the ``Run``.
    The outputs are the single-process run's, bit for bit (manifest timings aside).

    With ``checkpoint_every=K`` every partition saves its state every K days into
    ``<out>.checkpoint/part-NNN/`` (the directory must be reachable from every worker: on a
    cluster, a shared filesystem), and ``resume_ray`` (``socialcredit resume``) finishes an
    interrupted run with the same results.
    """
    from socialcredit.api import run_target
    from socialcredit.engine import checkpoint
    from socialcredit.engine.simulation import check_size, preflight

    started = dt.datetime.now(dt.UTC)
    scn = scenario if isinstance(scenario, Scenario) else Scenario.load(scenario)
    check_size(citizens, days, seed)
    check_workers(workers)
    checkpoint.check_every(checkpoint_every, days)
    check_supported(scn)
    preflight(scn, citizens)
    target, temporary = run_target(out, force, checkpoint_every)
    population = scn.plugins("population")["population"]
    ranges = split_regions(population.region_counts(citizens, seed), workers)
    meta = {"backend": "ray", "scenario": scn.to_dict(), "scenario_source": scn.source, "citizens": citizens,
            "days": days, "seed": seed, "workers": len(ranges), "partitions": [list(r) for r in ranges],
            "address": address, "threads": threads, "checkpoint_every": checkpoint_every, "force": force,
            "started": started.isoformat()}
    result = _drive(scn, target, meta, on_day)
    if temporary:
        weakref.finalize(result, shutil.rmtree, target.parent, True)
    return result


def resume_ray(target: Path, directory: Path, doc: dict[str, Any],
               on_day: Callable[[int], None] | None = None) -> Any:
    """Finish a Ray run interrupted after a checkpoint (``doc``: the driver's checkpoint.json in
    ``directory``); every partition restores its state, and the results equal an uninterrupted run."""
    from socialcredit.io.rundir import check_target

    try:
        scn = Scenario(doc["scenario"], doc.get("scenario_source", str(directory)))
    except UserError as exc:
        raise UserError(f"{directory}: mismatched checkpoint ({exc})") from None
    ranges = [tuple(r) for r in doc["partitions"]]
    for p in range(len(ranges)):
        if not (directory / _part(p) / "checkpoint.json").is_file():
            raise UserError(f"{directory}: corrupt checkpoint (no {_part(p)}/checkpoint.json)")
    check_target(target, force=bool(doc.get("force")))
    meta = {k: doc.get(k) for k in ("backend", "scenario", "scenario_source", "citizens", "days", "seed", "workers",
                                    "partitions", "address", "threads", "checkpoint_every", "force", "started")}
    return _drive(scn, target, meta, on_day, restore=(directory, int(doc["day"])))


def _part(p: int) -> str:
    return f"part-{p:03d}"


def _drive(scn: Scenario, target: Path, meta: dict[str, Any], on_day: Callable[[int], None] | None,
           restore: tuple[Path, int] | None = None) -> Any:
    """Start (or reach) Ray, run the partitions from day 0 or from a checkpoint, write the run."""
    from socialcredit.api import Run, _manifest
    from socialcredit.engine import checkpoint
    from socialcredit.io.rundir import atomic_dir, atomic_replace
    from socialcredit.io.tables import write_run

    started = dt.datetime.fromisoformat(meta["started"])
    citizens, days, seed = int(meta["citizens"]), int(meta["days"]), int(meta["seed"])
    ranges = [tuple(r) for r in meta["partitions"]]
    address, every = meta.get("address"), meta.get("checkpoint_every")
    directory = checkpoint.checkpoint_dir(target)
    ray = _ray()
    started_here = False
    if not ray.is_initialized():
        if address is not None:
            probe(address)
        try:
            with _native_stderr_muted():  # Ray's C++ client logs each connection retry to stderr
                # "local": a new instance, even where `ray start` left a cluster (or its stale address)
                ray.init(address=address or "local", include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            hint = ("; if the cluster uses token authentication (`ray start` does by default), set "
                    "RAY_AUTH_MODE=token" if address and os.environ.get("RAY_AUTH_MODE") != "token" else "")
            raise UserError(f"cannot start or reach {where}: {one_line(str(exc))}{hint}") from None
        started_here = True
    try:
        # one CPU per actor, or an equal share when the cluster has fewer CPUs than workers
        # (an actor that cannot be placed would wait for ever)
        cpus = min(1.0, float(ray.cluster_resources().get("CPU", 1.0)) / len(ranges))
        pool = RayWorkers(scn, citizens, days, seed, ranges, cpus=cpus, threads=meta.get("threads"))

        def save(day: int) -> None:
            with atomic_replace(directory, "checkpoint") as tmp:  # complete, with every part, or absent
                part_meta = {k: meta[k] for k in ("scenario", "citizens", "days", "seed")}
                pool.call("save_checkpoint", [(str(tmp / _part(p)), part_meta) for p in range(pool.k)])
                doc = {"format": checkpoint.FORMAT, "version": checkpoint.VERSION, "day": day,
                       "scenario_crc": checkpoint.scenario_crc(meta["scenario"]), **meta}
                (tmp / "checkpoint.json").write_text(json.dumps(doc, allow_nan=False), encoding="utf-8")

        def after_day(day: int) -> None:
            if every and day % every == 0 and day < days:
                save(day)
            if on_day is not None:
                on_day(day)

        try:  # the partitions live until the run directory is written: they serve citizens.parquet
            start_day = 0
            if restore is not None:
                pool.call("restore_checkpoint", [(str(restore[0] / _part(p)),) for p in range(pool.k)])
                start_day = restore[1]
            results = run_partitions(pool, scn, citizens, days, seed, on_day=after_day, start_day=start_day,
                                     sync_every=every)
            worker_peaks = pool.call("peak_rss")
            with atomic_dir(target, force=True) as tmp:
                wall = (dt.datetime.now(dt.UTC) - started).total_seconds()
                manifest = _manifest(results.sim, results.timings, started, wall)
                manifest.update(backend="ray", workers=len(ranges), partitions=[list(r) for r in ranges],
                                worker_peak_rss_bytes=worker_peaks, checkpoint_every=every)
                write_run(results, tmp, manifest)
            if every:
                checkpoint.remove(target)  # now, not after Ray's shutdown: a stop in between leaves no stale one
        except ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None)
            if isinstance(cause, UserError):  # e.g. a corrupt partition checkpoint: its own one line
                raise UserError(str(cause)) from None
            if isinstance(cause, OSError):  # e.g. a full disk under a partition's checkpoint
                raise UserError(f"a Ray worker could not write {cause.filename or ''}: "
                                f"{cause.strerror or cause}; nothing was written") from None
            raise UserError(f"a Ray worker failed during the run ({type(exc).__name__}); nothing was written: "
                            + ("resume it with `socialcredit resume`" if every and directory.exists() else
                               "run it again") + " (the results do not depend on the workers)") from None
        finally:
            pool.close()
    finally:
        if started_here:
            ray.shutdown()
    return Run(target)
