"""The driver of a partitioned run: day loop with halo exchange, then merged outputs.

The driver talks to partitions through a small interface (``Workers``) so the
same loop runs in-process (``LocalWorkers``, for tests without Ray) or on Ray
actors (``socialcredit.distributed.ray_backend``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from socialcredit.engine.plan import STAGES
from socialcredit.engine.simulation import dry_run
from socialcredit.metrics.totals import Totals, snapshot_means
from socialcredit.population import Blocks
from socialcredit.records.court_list import _Log
from socialcredit.scenario import Scenario


class Workers:
    """Partitions ``0..k-1``; ``call(method, args_per_partition)`` runs a method on each, in parallel
    where the backend allows, and returns the results in partition order."""

    k: int

    def call(self, method: str, args: list[tuple[Any, ...]] | None = None) -> list[Any]:  # pragma: no cover
        raise NotImplementedError

    def call_some(self, calls: list[tuple[int, str, tuple[Any, ...]]]) -> list[Any]:  # pragma: no cover
        """Run ``(partition, method, args)`` calls, in parallel where the backend allows; results in order."""
        raise NotImplementedError

    def scatter(self, produce: str, produce_args: tuple[Any, ...], consume: str,
                consume_args: tuple[Any, ...] = ()) -> None:
        """Point to point: each partition q's ``produce(*produce_args)`` returns one array per
        partition, and partition p's ``consume(*consume_args, pieces)`` receives ``pieces[q]`` =
        what q produced for p (None where p does not read from q)."""
        out = self.call(produce, [produce_args] * self.k)
        self.call(consume, [(*consume_args, [o[p] for o in out]) for p in range(self.k)])

    def exchange(self, field: str) -> None:
        """Halo exchange of one citizen field: each partition sends each other one the values
        of the citizens it holds as ghosts."""
        self.scatter("export", (field,), "import_", (field,))


class LocalWorkers(Workers):
    """Partitions as in-process ``PartitionSim`` objects (tests, debugging)."""

    def __init__(self, scenario: Scenario, citizens: int, days: int, seed: int,
                 ranges: list[tuple[int, int]]) -> None:
        from socialcredit.distributed.partition import PartitionSim

        self.parts = [PartitionSim(scenario, citizens, days, seed, r0, r1) for r0, r1 in ranges]
        self.k = len(self.parts)

    def call(self, method: str, args: list[tuple[Any, ...]] | None = None) -> list[Any]:
        args = args or [()] * self.k
        return [getattr(p, method)(*a) for p, a in zip(self.parts, args, strict=True)]

    def call_some(self, calls: list[tuple[int, str, tuple[Any, ...]]]) -> list[Any]:
        return [getattr(self.parts[p], method)(*a) for p, method, a in calls]


class _Table:
    """A spool-like view of in-memory columns (what ``io.tables`` writes)."""

    def __init__(self, cols: dict[str, np.ndarray], dtypes: dict[str, Any]) -> None:
        self.cols, self.dtypes = cols, dtypes

    def empty(self) -> dict[str, np.ndarray]:
        return {k: np.empty(0, t) for k, t in self.dtypes.items()}

    def blocks(self, rows: int):
        n = len(next(iter(self.cols.values()))) if self.cols else 0
        for lo in range(0, n, rows):
            yield {k: v[lo:lo + rows] for k, v in self.cols.items()}

    def concat(self) -> dict[str, np.ndarray]:
        return self.cols


class _Plan:
    def __init__(self, steps: list[Any], seconds: dict[str, float]) -> None:
        self.steps, self.seconds = steps, seconds

    def __iter__(self):
        return iter(self.steps)


@dataclass
class GraphSize:
    """The graph's size, all the merged run keeps of it (its rows stay with the partitions)."""

    edges: int


class MergedRun:
    """What the writers and ``summary_metrics`` read of a ``Simulation``, merged from partitions.

    It holds nothing proportional to the population: per-citizen rows stay in the
    partitions and ``citizen_rows`` fetches one row group at a time; the metrics come
    from the partitions' per-block totals; panels and list logs are small.
    """

    def __init__(self, scenario: Scenario, citizens: int, days: int, seed: int,
                 workers: Workers, bounds: np.ndarray) -> None:
        self.scenario, self.n, self.day, self.seed, self.days = scenario, citizens, days, seed, days
        dry = dry_run(scenario)  # plugins and event kinds (the same for any population size)
        self.plugins, self.kinds = dry.plugins, dry.kinds
        self.plan = _Plan(dry.plan.steps, dict.fromkeys(STAGES, 0.0))
        self.timings: dict[str, float] = {}
        self.trace: list[dict[str, Any]] = []
        self.workers, self.bounds = workers, bounds

    def find(self, section: str, kind: str) -> Any | None:
        return next((p for p in self.plugins[section].values() if p.kind == kind), None)

    def published(self) -> dict[str, np.ndarray]:
        return {}

    def citizen_rows(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Rows ``lo..hi-1`` of citizens.parquet, fetched from the partitions holding them."""
        b = self.bounds
        calls = [(p, "citizen_rows", (max(lo, int(b[p])), min(hi, int(b[p + 1]))))
                 for p in range(len(b) - 1) if b[p] < hi and b[p + 1] > lo]
        pieces = self.workers.call_some(calls)
        if len(pieces) == 1:
            return pieces[0]
        return {c: np.concatenate([piece[c] for piece in pieces]) for c in pieces[0]}


def run_partitions(
    workers: Workers, scenario: Scenario, citizens: int, days: int, seed: int,
    on_day: Callable[[int], None] | None = None, start_day: int = 0, sync_every: int | None = None,
) -> Any:
    """Run days ``start_day..days-1`` on the partitions, exchanging halos; return merged ``Results``.

    Consecutive days without an exchange run in one call per partition; ``on_day`` is then
    called for each of them afterwards, and a batch ends at every multiple of ``sync_every``
    days done (where checkpoints are taken).

    ``on_day(d)`` is called once day ``d - 1`` is done on every partition. The partitions stay
    alive: ``Results.sim`` (a ``MergedRun``) fetches the rows of citizens.parquet from them while
    the run directory is written.
    """
    from socialcredit.metrics.summary import Results, summary_metrics

    t0 = time.perf_counter()
    k = workers.k
    metas = workers.call("meta")
    bounds = np.array([*(m["g0"] for m in metas), citizens], np.int64)
    workers.call("set_bounds", [(bounds,)] * k)
    workers.scatter("requests", (), "set_requests")  # who holds whom: partition to partition
    nsteps = metas[0]["steps"]
    setup_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    schedule = workers.call_some([(0, "halo_schedule", (start_day, days))])[0]  # the same plan everywhere
    day = start_day
    while day < days:
        halo = schedule[day - start_day]
        if halo:  # step by step, with an exchange before each step that reads ghosts
            start = 0
            for x, field in halo:
                if x > start:
                    workers.call("run_steps", [(day, start, x)] * k)
                workers.exchange(field)
                start = x
            workers.call("run_steps", [(day, start, nsteps)] * k)
            done = day + 1
        else:  # days without exchanges run in one call, up to the next exchange or sync point
            done = day + 1
            while done < days and not schedule[done - start_day] and not (sync_every and done % sync_every == 0):
                done += 1
            workers.call("run_days", [(day, done)] * k)
        if on_day is not None:
            for d in range(day + 1, done + 1):
                on_day(d)
        day = done
    simulation_seconds = time.perf_counter() - t1
    outs = workers.call("outputs")
    merged = MergedRun(scenario, citizens, days, seed, workers, bounds)
    merged.graph = GraphSize(edges=sum(o["entries"] for o in outs) // 2)
    merged.panel = np.concatenate([o["panel"] for o in outs])
    population = scenario.plugins("population")["population"]
    merged.blocks = Blocks.from_region_counts(population.region_counts(citizens, seed))
    # daily rows: integer counts summed; the means from the partitions' per-block sums, in block order
    rows = []
    for d in range(days):
        parts = [o["daily"][d] for o in outs]
        means = snapshot_means([o["snapshots"][d] for o in outs], citizens) if d in outs[0]["snapshots"] else {}
        row: dict[str, float] = {}
        for key in parts[0]:
            if key == "day":
                row[key] = parts[0][key]
            elif key in means:
                row[key] = means[key]
            else:
                row[key] = sum(p[key] for p in parts)
        rows.append(row)
    merged.daily_rows = rows
    # panel spools: by day, partitions in order (= block order)
    for name, dtypes in (("scores", {"day": np.int16, "citizen": np.int32, "score": np.float32,
                                     "points": np.int16, "listed": np.bool_}),
                         ("events", {"day": np.int16, "citizen": np.int32, "kind": np.uint8,
                                     "flags": np.uint8, "target": np.int32})):
        cat = {c: np.concatenate([o[name][c] for o in outs]).astype(t) for c, t in dtypes.items()}
        order = np.argsort(cat["day"], kind="stable")
        table = _Table({c: v[order] for c, v in cat.items()}, dtypes)
        setattr(merged, "panel_scores" if name == "scores" else "panel_events", table)
    court = merged.find("records", "court-list")
    if court is not None:
        for log in court._LOGS:
            merged_log = _Log()
            merged_log.extend(np.concatenate([o["court"][log] for o in outs]).astype(np.int32))
            setattr(court, log, merged_log)
    unfriend = merged.find("consequences", "unfriend")
    if unfriend is not None:
        unfriend.cut_total = sum(int(o["cut_total"]) for o in outs)
    for o in outs:
        for stage, sec in o["seconds"].items():
            merged.plan.seconds[stage] = max(merged.plan.seconds.get(stage, 0.0), sec)
    merged.timings.update(setup_seconds=setup_seconds, simulation_seconds=simulation_seconds,
                          days_simulated=days - start_day, partitions=k)
    timings = dict(merged.timings)
    timings.update({f"stage_{s}_seconds": v for s, v in merged.plan.seconds.items()})
    totals = Totals.concat([o["totals"] for o in outs])
    return Results(sim=merged, metrics=summary_metrics(merged, rows, totals), timings=timings)
