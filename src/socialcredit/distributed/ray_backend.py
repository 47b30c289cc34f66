"""Partitions as Ray actors (``socialcredit run --backend ray``). Ray is imported lazily."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import sys
import tempfile
import weakref
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from socialcredit.distributed.driver import Workers, run_partitions
from socialcredit.distributed.partition import check_supported, split_regions
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
    on_day: Callable[[int], None] | None = None,
) -> Any:
    """Run ``scenario`` partitioned over ``workers`` Ray actors (on the cluster at ``address``,
    else a local Ray instance); write the run directory and return the ``Run``.
    The outputs are the single-process run's, bit for bit (manifest timings aside)."""
    from socialcredit.api import Run, _manifest
    from socialcredit.engine.simulation import check_size, preflight
    from socialcredit.io.rundir import atomic_dir, check_target
    from socialcredit.io.tables import write_run

    started = dt.datetime.now(dt.UTC)
    scn = scenario if isinstance(scenario, Scenario) else Scenario.load(scenario)
    check_size(citizens, days, seed)
    if not 1 <= workers <= 4096:
        raise UserError(f"--workers must be between 1 and 4096 (got {workers})")
    check_supported(scn)
    preflight(scn, citizens)
    temporary = out is None
    target = Path(tempfile.mkdtemp(prefix="socialcredit-")) / "run" if temporary else Path(out)
    check_target(target, force)
    ray = _ray()
    started_here = False
    if not ray.is_initialized():
        if address is not None:
            probe(address)
        try:
            with _native_stderr_muted():  # Ray's C++ client logs each connection retry to stderr
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         configure_logging=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            where = f"the Ray cluster at {address}" if address else "a local Ray instance"
            raise UserError(f"cannot start or reach {where}: {one_line(str(exc))}") from None
        started_here = True
    try:
        population = scn.plugins("population")["population"]
        ranges = split_regions(population.region_counts(citizens, seed), workers)
        # one CPU per actor, or an equal share when the cluster has fewer CPUs than workers
        # (an actor that cannot be placed would wait for ever)
        cpus = min(1.0, float(ray.cluster_resources().get("CPU", 1.0)) / len(ranges))
        pool = RayWorkers(scn, citizens, days, seed, ranges, cpus=cpus, threads=threads)
        try:  # the partitions live until the run directory is written: they serve citizens.parquet
            results = run_partitions(pool, scn, citizens, days, seed, on_day=on_day)
            worker_peaks = pool.call("peak_rss")
            with atomic_dir(target, force=True) as tmp:
                wall = (dt.datetime.now(dt.UTC) - started).total_seconds()
                manifest = _manifest(results.sim, results.timings, started, wall)
                manifest.update(backend="ray", workers=len(ranges), partitions=[list(r) for r in ranges],
                                worker_peak_rss_bytes=worker_peaks, checkpoint_every=None)
                write_run(results, tmp, manifest)
        except ray.exceptions.RayError as exc:  # a worker (actor or node) died: nothing was written
            raise UserError(f"a Ray worker failed during the run ({type(exc).__name__}); nothing was written: "
                            "run it again (the results do not depend on the workers)") from None
        finally:
            pool.close()
    finally:
        if started_here:
            ray.shutdown()
    result = Run(target)
    if temporary:
        weakref.finalize(result, shutil.rmtree, target.parent, True)
    return result
