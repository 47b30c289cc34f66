"""One partition of a distributed run: whole regions, with ghost copies of outside neighbours.

Nothing here imports Ray: a ``PartitionSim`` is an ordinary ``Simulation`` over
a contiguous range of regions, so it can be driven in-process (tests) or inside
a Ray actor (``socialcredit.distributed.ray_backend``).

Index space ("ext" ids). A partition owns global citizens ``[g0, g1)`` and global
blocks ``[b0, b1)``; its own citizens are ext ids ``0..n-1`` (global id − g0), so
position counters ``i - block_start[b]`` are unchanged. Its neighbours outside
the range (ghosts) come after, ``n..`` in the order of their global ids, and
``gid`` maps every ext id back. Graph rows exist for own citizens only and keep
the single-process order of their entries (ids are mapped in place, never
re-sorted), so float sums over neighbours are bit-identical. Only the three
arrays other stages read through neighbours have ghost slots — ``score``,
``list_start`` and ``flags`` — and halo exchange refreshes them before the
steps that read them; every other array holds the partition's own citizens.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from numba import njit, prange

from socialcredit import dtypes as dt
from socialcredit.engine.kernels import edge_draw
from socialcredit.engine.simulation import Simulation, check_size
from socialcredit.errors import UserError
from socialcredit.metrics.summary import final_totals
from socialcredit.metrics.totals import snapshot_means
from socialcredit.population import Blocks, Citizens, Graph
from socialcredit.rng import Stream, numpy_generator, stream_key, uniform
from socialcredit.scenario import Scenario

_UNFRIEND = int(Stream.UNFRIEND)

SUPPORTED = {
    "population": {"reference"},
    "graph": {"regional-random"},
    "behaviour": {"bernoulli"},
    "observation": {"camera", "registry", "platform"},
    "records": {"court-list", "points", "event-counters"},
    "scoring": {"reference-score"},
    "consequences": {"travel-ban", "loan-gate", "unfriend", "chill"},
}

# halo exchange: the state a step reads through neighbours, by (stage, plugin kind)
HALO = {("scoring", "reference-score"): "score", ("network", "unfriend"): "list_start",
        ("network", "chill"): "flags"}


def check_supported(scenario: Scenario) -> None:
    """Refuse scenarios whose plugins the ray backend does not partition (one line)."""
    for section, kinds in SUPPORTED.items():
        for name, plugin in scenario.plugins(section).items():
            if plugin.kind not in kinds:
                allowed = ", ".join(f"{s}: {'/'.join(sorted(k))}" for s, k in SUPPORTED.items())
                raise UserError(f"the ray backend supports the reference scenario's plugins only ({allowed}); "
                                f"{section}.{name} is {plugin.kind!r}")
            if plugin.kind == "court-list" and plugin.config.initial_share > 0:
                raise UserError(f"the ray backend supports court lists without an initial stock "
                                f"({section}.{name}.initial_share is {plugin.config.initial_share})")


MAX_WORKERS = 4096


def check_workers(workers: int) -> None:
    """Refuse a number of partitions outside 1..MAX_WORKERS (one line)."""
    if not 1 <= workers <= MAX_WORKERS:
        raise UserError(f"--workers must be between 1 and {MAX_WORKERS} (got {workers})")


def split_regions(region_counts: np.ndarray, workers: int) -> list[tuple[int, int]]:
    """Cut regions ``0..R-1`` into ``workers`` contiguous ranges balanced by citizen count
    (non-empty where possible; fewer ranges when there are fewer regions than workers)."""
    counts = np.asarray(region_counts, np.int64)
    total, regions = int(counts.sum()), len(counts)
    k = max(1, min(workers, regions))
    cum = np.concatenate([[0], np.cumsum(counts)])
    cuts = [0]
    for p in range(1, k):
        target = total * p / k
        r = int(np.searchsorted(cum, target))
        if r > 0 and abs(cum[r - 1] - target) <= abs(cum[min(r, regions)] - target):
            r -= 1
        r = min(max(r, cuts[-1] + 1), regions - (k - p))
        cuts.append(r)
    cuts.append(regions)
    return [(cuts[p], cuts[p + 1]) for p in range(k)]


@njit(cache=True, parallel=True)
def unfriend_partition(seed, day, probability, lo, hi, gid, list_start, offsets, neighbours, block_start, cut):
    """A partition's share of ``network.unfriend``: each of its own rows decides each
    active edge with a listed endpoint by the same draw as the single-process run
    (``edge_draw`` on global ids and global block starts) and cuts its own entry only,
    so both sides of a cross-partition edge reach the same state without messages.
    ``cut[i - lo]`` counts the edges whose lower endpoint is ``i`` (each edge once)."""
    for i in prange(lo, hi):
        listed_i = list_start[i] >= 0
        gi = gid[i]
        n = 0
        for a in range(offsets[i], offsets[i + 1]):
            j = neighbours[a]
            if j < 0:
                continue  # already cut
            if not listed_i and list_start[j] < 0:
                continue
            gj = gid[j]
            b, ctr = edge_draw(block_start, gi, gj)
            if uniform(stream_key(seed, _UNFRIEND, day, b), ctr) < probability:
                neighbours[a] = ~j
                if gi < gj:
                    n += 1
        cut[i - lo] = n


@njit(cache=True, parallel=True)
def _to_ext(rows, g0, g1, ghosts):
    """Turn global neighbour ids into ext ids in place: own citizens ``g0..g1-1`` to
    ``0..g1-g0-1``, ghosts (sorted global ids) to ``g1-g0`` onwards."""
    n = g1 - g0
    for a in prange(len(rows)):
        j = rows[a]
        if g0 <= j < g1:
            rows[a] = j - g0
        else:
            rows[a] = n + np.searchsorted(ghosts, j)


GHOST_FIELDS = ("score", "list_start", "flags")


class PartitionSim(Simulation):
    """The simulation of regions ``[r0, r1)`` of a run, with ghost slots for outside friends."""

    def __init__(self, scenario: Scenario, citizens: int, days: int, seed: int, r0: int, r1: int) -> None:
        check_size(citizens, days, seed)
        check_supported(scenario)
        self.trace_ids = np.empty(0, np.int64)
        self.trace: list[dict[str, Any]] = []
        self._spare = ()
        self.scenario = scenario
        self.total = citizens
        self.days = days
        self.seed = seed
        self.day = 0
        self.r0, self.r1 = r0, r1
        self.timings: dict[str, float] = {}
        from socialcredit.engine.simulation import PLUGIN_SECTIONS

        self.plugins = {s: scenario.plugins(s) for s in PLUGIN_SECTIONS}
        self._setup()

    def _setup(self) -> None:
        population = self.scenario.plugins("population")["population"]
        graph_plugin = self.scenario.plugins("graph")["graph"]
        g = Blocks.from_region_counts(population.region_counts(self.total, self.seed))
        r0, r1 = self.r0, self.r1
        b0, b1 = int(g.region_first_block[r0]), int(g.region_first_block[r1])
        g0, g1 = int(g.region_start[r0]), int(g.region_start[r1])
        self.global_block_start = g.block_start
        self.g0, self.g1, self.block_base = g0, g1, b0
        # the graph: the partition's rows of the global graph, generated alone (draws are counter-based)
        mine = graph_plugin.build_rows(g, self.seed, g0, g1)
        rows = mine.neighbours
        ghosts = np.unique(rows[(rows < g0) | (rows >= g1)])
        n = g1 - g0
        self.gid = np.concatenate([np.arange(g0, g1, dtype=dt.CITIZEN_ID), ghosts])
        self.lo, self.hi = 0, n  # the partition's own citizens, in ext ids
        self.n = n
        _to_ext(rows, g0, g1, ghosts)  # in place: global ids -> ext ids
        self.graph = Graph(offsets=mine.offsets, neighbours=rows)
        del mine
        self.ghosts = ghosts
        self.blocks = Blocks(
            region_start=g.region_start[r0:r1 + 1] - g0,
            block_start=g.block_start[b0:b1 + 1] - g0,
            block_region=g.block_region[b0:b1] - r0,
            region_first_block=g.region_first_block[r0:r1 + 1] - b0,
        )
        region = np.repeat(np.arange(r0, r1, dtype=dt.REGION), np.diff(g.region_start[r0:r1 + 1]))
        self.citizens = cz = Citizens.empty(region)
        for name in GHOST_FIELDS:  # ghost slots after the partition's own citizens
            own = getattr(cz, name)
            setattr(cz, name, np.concatenate([own, np.full(len(ghosts), own[0] if n else 0, own.dtype)]))
        population.fill(cz, self.blocks, self.seed, block_base=b0)
        self._choose_panel(self.scenario.header.output.panel)
        self._setup_state()
        self.unfriend_hook = self._unfriend
        self.snapshots: dict[int, dict[str, np.ndarray]] = {}

    def _choose_panel(self, size: int) -> None:
        """The single-process panel, restricted to the partition's citizens."""
        cz = self.citizens
        if self.total <= size:
            cz.flags[self.lo:self.hi] |= dt.FLAG_PANEL
        elif size > 0:
            gen = numpy_generator(self.seed, Stream.PANEL)
            chosen = np.sort(gen.choice(self.total, size=size, replace=False))
            mine = chosen[(chosen >= self.g0) & (chosen < self.g1)]
            cz.flags[mine - self.g0 + self.lo] |= dt.FLAG_PANEL
        self.panel = np.flatnonzero(cz.flags & dt.FLAG_PANEL).astype(np.int32)

    def _unfriend(self, day: int, probability: float) -> int:
        g, cz = self.graph, self.citizens
        cut = np.zeros(self.hi - self.lo, np.int64)
        unfriend_partition(self.seed, day, probability, self.lo, self.hi, self.gid, cz.list_start,
                           g.offsets, g.neighbours, self.global_block_start, cut)
        return int(cut.sum())

    def _snapshot(self, day: int, row: dict[str, float]) -> None:
        """Panel rows of the partition, and its per-block sums: the driver computes the means."""
        cz, p = self.citizens, self.panel
        sums = self.snapshot_sums()
        self.snapshots[day] = sums
        row.update(dict.fromkeys(snapshot_means([sums], 1), 0.0))
        self.panel_scores.append(
            day=np.full(len(p), day, np.int16), citizen=p, score=cz.score[p],
            points=cz.points[p], listed=cz.list_start[p] >= 0,
        )

    # -- halo exchange ---------------------------------------------------------

    def meta(self) -> dict[str, Any]:
        """First and past-the-end global ids, ghost count and the number of steps of the plan."""
        return {"g0": self.g0, "g1": self.g1, "ghosts": len(self.ghosts), "steps": len(self.plan.steps)}

    def set_bounds(self, bounds: np.ndarray) -> None:
        """``bounds``: first global id of each partition (and the total). Split the ghosts by owner:
        ``routes`` lists (owner, ext slots) for every partition this one reads from."""
        cuts = np.searchsorted(self.ghosts, bounds)
        self.wanted = [self.ghosts[cuts[p]:cuts[p + 1]] for p in range(len(bounds) - 1)]
        slots = np.arange(self.n, self.n + len(self.ghosts), dtype=np.int64)
        self.routes = [(p, slots[cuts[p]:cuts[p + 1]]) for p in range(len(bounds) - 1) if cuts[p + 1] > cuts[p]]

    def requests(self) -> list[np.ndarray]:
        """For each partition, the global ids of its citizens that this one holds as ghosts."""
        return self.wanted

    def set_requests(self, requests: list[np.ndarray]) -> None:
        """``requests[q]``: this partition's citizens that partition q holds as ghosts (global ids,
        sorted); they are what ``export`` sends to q, in that order."""
        self.export_ext = [np.asarray(r, np.int64) - self.g0 + self.lo for r in requests]
        del self.wanted

    def export(self, field: str) -> list[np.ndarray]:
        """Values of ``field`` at the citizens each partition holds as ghosts (one array per partition)."""
        values = getattr(self.citizens, field)
        return [values[ext] for ext in self.export_ext]

    def import_(self, field: str, pieces: list[np.ndarray | None]) -> None:
        """Refresh the ghost slots of ``field``: ``pieces[p]`` is what partition p exported to this one."""
        arr = getattr(self.citizens, field)
        for p, slots in self.routes:
            arr[slots] = pieces[p]

    # -- outputs ---------------------------------------------------------------

    def outputs(self) -> dict[str, Any]:
        """The partition's logs, totals and panels (global ids); nothing proportional to its citizens."""
        gid = self.gid
        off = self.graph.offsets
        out: dict[str, Any] = {
            "daily": self.daily_rows,
            "snapshots": self.snapshots,
            "totals": final_totals(self),
            "entries": int(off[self.hi]) - int(off[self.lo]),
            "panel": gid[self.panel].astype(np.int32),
        }

        def glob(spool: Any, *cols: str) -> dict[str, np.ndarray]:
            data = spool.concat()
            for c in cols:
                data[c] = gid[data[c].astype(np.int64)].astype(np.int32)
            return data

        out["scores"] = glob(self.panel_scores, "citizen")
        out["events"] = glob(self.panel_events, "citizen", "target")
        court = self.find("records", "court-list")
        if court is not None:
            out["court"] = {
                "entry_citizen": gid[court.entry_citizen.view()].astype(np.int32),
                "entry_day": court.entry_day.view().copy(),
                "exit_citizen": gid[court.exit_citizen.view()].astype(np.int32),
                "exit_day": court.exit_day.view().copy(),
                "exit_reason": court.exit_reason.view().copy(),
            }
        unfriend = self.find("consequences", "unfriend")
        out["cut_total"] = unfriend.cut_total if unfriend is not None else 0
        out["seconds"] = dict(self.plan.seconds)
        return out

    # -- checkpoints -------------------------------------------------------------

    def save_checkpoint(self, path: str, meta: dict[str, Any]) -> None:
        """Write this partition's checkpoint into the new directory ``path`` (the driver renames the
        directory holding every partition's, so a checkpoint is complete or absent)."""
        from socialcredit.engine import checkpoint

        directory = Path(path)
        directory.mkdir()
        snapshots = {str(d): {k: v.tolist() for k, v in sums.items()} for d, sums in self.snapshots.items()}
        checkpoint.write(self, directory, {**meta, "regions": [self.r0, self.r1], "snapshots": snapshots})

    def restore_checkpoint(self, path: str) -> None:
        """Load this partition's state from a checkpoint written by ``save_checkpoint``."""
        from socialcredit.engine import checkpoint

        directory = Path(path)
        doc = checkpoint.read_meta(directory)
        if doc.get("regions") != [self.r0, self.r1] or "snapshots" not in doc:
            raise UserError(f"{directory}: mismatched checkpoint (another partition's regions)")
        checkpoint.restore(self, directory, doc)
        self.snapshots = {int(d): {k: np.asarray(v, np.float64) for k, v in sums.items()}
                          for d, sums in doc["snapshots"].items()}

    def peak_rss(self) -> int:
        """Peak resident memory of the process holding this partition, in bytes."""
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024

    def citizen_rows(self, lo: int, hi: int) -> dict[str, np.ndarray]:
        """Rows of citizens.parquet for global ids ``lo..hi-1`` (all inside this partition)."""
        from socialcredit.io.tables import citizen_columns

        shift = self.lo - self.g0
        return citizen_columns(self, lo + shift, hi + shift, lo)

    def step_info(self) -> list[tuple[str, str, str | None]]:
        """(stage, name, halo field or None) of every step of the plan."""
        out = []
        for s in self.plan:
            plugin = getattr(s.call, "__self__", None)
            kind = getattr(plugin, "kind", None) if plugin is not self else None
            out.append((s.stage, s.name, HALO.get((s.stage, kind))))
        return out

    def halo_today(self, day: int) -> list[tuple[int, str]]:
        """(step index, field) of the steps of ``day`` that need a halo exchange first."""
        info = self.step_info()
        return [(x, info[x][2]) for x, s in enumerate(self.plan)
                if info[x][2] is not None and (s.runs_on is None or s.runs_on(day))]

    def run_days(self, first: int, last: int) -> None:
        """Run every step of days ``first..last-1`` (days that need no exchange)."""
        for day in range(first, last):
            self.run_steps(day, 0, len(self.plan.steps))

    def halo_schedule(self, first: int, last: int) -> list[list[tuple[int, str]]]:
        """``halo_today`` for days ``first..last-1`` (one round trip for the driver, not one a day)."""
        return [self.halo_today(day) for day in range(first, last)]

    def run_steps(self, day: int, i0: int, i1: int) -> None:
        """Run steps ``i0..i1-1`` of ``day`` (those scheduled for it)."""
        seconds = self.plan.seconds
        import time

        for step in self.plan.steps[i0:i1]:
            if step.runs_on is not None and not step.runs_on(day):
                continue
            t = time.perf_counter()
            step.call(self, day)
            seconds[step.stage] += time.perf_counter() - t
        if i1 >= len(self.plan.steps):
            self.day = day + 1
