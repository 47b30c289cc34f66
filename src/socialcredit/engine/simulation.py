"""The simulation driver: set up a population, then run the day plan."""

from __future__ import annotations

import shutil
import tempfile
import time
import weakref
from collections.abc import Callable
from contextvars import ContextVar
from pathlib import Path
from typing import Any

import numpy as np

from socialcredit import dtypes as dt
from socialcredit.behaviour.sampling import sample_day
from socialcredit.engine.events import FLAG_NAMES, EventBuffer, EventKinds
from socialcredit.engine.fields import Fields
from socialcredit.engine.kernels import collect_panel, count_day, involving, structure_hash
from socialcredit.engine.plan import SCHEDULED, STAGES, Plan, Step
from socialcredit.engine.spool import Spool
from socialcredit.errors import ScenarioError, UserError
from socialcredit.metrics.totals import block_sums, snapshot_means
from socialcredit.observation.channels import observe_day
from socialcredit.population import Blocks, Citizens, Graph
from socialcredit.records.counters import EventCounters, EventCountersConfig
from socialcredit.rng import Stream, numpy_generator
from socialcredit.scenario import Scenario

PLUGIN_SECTIONS = ("behaviour", "observation", "records", "scoring", "consequences")
MAX_CITIZENS = 2_000_000_000


def check_size(citizens: int, days: int, seed: int) -> None:
    """Refuse population sizes, run lengths and seeds the engine cannot run."""
    if not 1 <= citizens <= MAX_CITIZENS:
        raise UserError(f"--citizens must be between 1 and {MAX_CITIZENS:,} (got {citizens})")
    if not 1 <= days <= dt.MAX_DAYS:
        raise UserError(f"--days must be between 1 and {dt.MAX_DAYS} (got {days})")
    if not 0 <= seed < 2**63:
        raise UserError(f"--seed must be between 0 and 2**63 - 1 (got {seed})")


DRY_RUN: ContextVar[bool] = ContextVar("socialcredit_dry_run", default=False)


def dry_run(scenario: Scenario, citizens: int = 64) -> Simulation:
    """A simulation of ``scenario`` on a tiny population, for checks and plans.

    While it is built ``DRY_RUN`` is true, so a population of fixed size (a
    file) validates its input in full and then tiles or thins it to ``citizens``.
    """
    token = DRY_RUN.set(True)
    try:
        return Simulation(scenario, citizens=citizens, days=1, seed=0)
    finally:
        DRY_RUN.reset(token)


def preflight(scenario: Scenario, citizens: int | None = None) -> None:
    """Resolve a scenario's cross-references (event kinds, plugins) on a tiny population,
    so that errors surface before any large allocation (once per scenario object);
    with ``citizens``, also check it against a population of fixed size."""
    if not getattr(scenario, "_preflight_ok", False):
        dry_run(scenario)
        scenario._preflight_ok = True
    population = scenario.plugins("population")["population"]
    fixed = getattr(population, "fixed_citizens", None)
    if citizens is not None and fixed is not None and fixed() != citizens:
        where = getattr(population, "path", scenario.source)  # the population file, if any
        raise UserError(f"{where}: {fixed()} rows but --citizens is {citizens} "
                        "(a Parquet population runs with exactly one citizen per row)")


class Simulation:
    """One run of a scenario on a synthetic population.

    >>> sim = Simulation(Scenario.load("ref"), citizens=2_000, days=60, seed=1)
    >>> sim.run().metrics["p_mean"] > 0
    True
    """

    block_base = 0  # global index of block 0 (a partition of a distributed run: see socialcredit.distributed)
    unfriend_hook: Callable[..., int] | None = None  # a partition's edge cutting (distributed runs)

    def __init__(
        self,
        scenario: Scenario,
        citizens: int,
        days: int,
        seed: int,
        *,
        trace: tuple[int, ...] = (),
        spare: tuple[int, ...] = (),
    ) -> None:
        """``trace``: citizens whose events, scores and state are logged in ``self.trace``;
        ``spare``: citizens no camera misattributes an act to (counterfactual runs)."""
        check_size(citizens, days, seed)
        for i in (*trace, *spare):
            if not 0 <= i < citizens:
                raise UserError(f"citizen {i} out of range (0..{citizens - 1})")
        self.trace_ids = np.array(sorted(set(trace)), np.int64)
        self.trace: list[dict[str, Any]] = []
        self._spare = tuple(spare)
        self.scenario = scenario
        self.n = citizens
        self.days = days
        self.seed = seed
        self.day = 0
        self.timings: dict[str, float] = {}
        self.plugins: dict[str, dict[str, Any]] = {s: scenario.plugins(s) for s in PLUGIN_SECTIONS}
        self._setup()

    # -- set-up --------------------------------------------------------------

    def _setup(self) -> None:
        t0 = time.perf_counter()
        population = self.scenario.plugins("population")["population"]
        self.blocks = Blocks.from_region_counts(population.region_counts(self.n, self.seed))
        graph = self.scenario.plugins("graph")["graph"]
        self.citizens = Citizens.empty(self.blocks.region_of())
        if getattr(graph, "uses_population", False):  # e.g. family edges, homophily by attributes
            population.fill(self.citizens, self.blocks, self.seed)
        t1 = time.perf_counter()
        self.graph: Graph = graph.build(self.blocks, self.seed, self.citizens)
        t2 = time.perf_counter()
        if not getattr(graph, "uses_population", False):
            population.fill(self.citizens, self.blocks, self.seed)
        self._choose_panel(self.scenario.header.output.panel)
        self._setup_state()
        self.timings.update(graph_seconds=t2 - t1, setup_seconds=time.perf_counter() - t0)

    def _setup_state(self) -> None:
        """Plugins, event kinds, buffers and spools, once citizens, blocks, graph and panel exist."""
        self.spared = np.array(sorted(set(self._spare)), np.int64)
        self.kinds = EventKinds()
        self.fields = Fields(self)
        records = self.plugins["records"]
        if not any(p.kind == "event-counters" for p in records.values()):
            counters = EventCounters("event_counters", EventCountersConfig())
            self.plugins["records"] = records = {"event_counters": counters, **records}
        self.counters = next(p for p in records.values() if p.kind == "event-counters")
        try:
            for plugin in self._all_plugins():
                plugin.declare(self)
            # block-major: block b holds its citizens' rates kind by kind, contiguously,
            # so a block's draws of every kind stay within a few MiB of the table
            self.rate_table = np.zeros(int(self.blocks.block_start[-1]) * self.kinds.table_rows(), np.float32)
            self._match_rows: list[np.ndarray] = []
            self.counters.setup(self)
            for plugin in self._all_plugins():
                if plugin is not self.counters:
                    plugin.setup(self)
        except ScenarioError as exc:  # cross-references between tables: name the file too
            raise ScenarioError(f"{self.scenario.source}: {exc}") from None
        self.kind_arrays = self.kinds.arrays()
        self.match_table = np.stack(self._match_rows) if self._match_rows else np.zeros((0, 0), np.float32)
        del self._match_rows
        sizes = np.diff(self.blocks.block_start)
        self.events = EventBuffer.allocate(sizes, float(self.kind_arrays["bound"].sum()), len(self.kinds))
        self.plan = self._build_plan()
        self._gated_kinds = {p.kind_code for p in self.plugins["consequences"].values()
                             if hasattr(p, "kind_code")}
        self.daily_rows: list[dict[str, float]] = []
        self.spool_dir = Path(tempfile.mkdtemp(prefix="socialcredit-spool-"))
        self._remove_spool = weakref.finalize(self, shutil.rmtree, self.spool_dir, True)
        self.panel_events = Spool(self.spool_dir, "events", {
            "day": np.int16, "citizen": np.int32, "kind": np.uint8, "flags": np.uint8, "target": np.int32})
        self.panel_scores = Spool(self.spool_dir, "scores", {
            "day": np.int16, "citizen": np.int32, "score": np.float32, "points": np.int16, "listed": np.bool_,
            **{name: np.float32 for name in self.published()}})

    def _rate_slices(self, column: int) -> list[tuple[int, int, int]]:
        """(table offset, first citizen, last citizen + 1) of each block for one formula kind."""
        cols, bs = self.kinds.table_rows(), self.blocks.block_start
        return [(int(bs[b]) * cols + column * int(bs[b + 1] - bs[b]), int(bs[b]), int(bs[b + 1]))
                for b in range(len(bs) - 1)]

    def rates(self, column: int) -> np.ndarray:
        """Every citizen's daily probability of the formula kind in ``column`` of the rate table (a copy)."""
        out = np.empty(self.n, np.float32)
        for start, lo, hi in self._rate_slices(column):
            out[lo:hi] = self.rate_table[start:start + hi - lo]
        return out

    def set_rates(self, column: int, values: np.ndarray) -> None:
        """Store every citizen's daily probability of the formula kind in ``column``."""
        for start, lo, hi in self._rate_slices(column):
            self.rate_table[start:start + hi - lo] = values[lo:hi]

    def add_match_row(self, values: np.ndarray) -> int:
        """Add a row of per-citizen false-match multipliers (set-up only); return its index."""
        self._match_rows.append(values.astype(np.float32, copy=False))
        return len(self._match_rows) - 1

    def _all_plugins(self) -> list[Any]:
        return [p for section in PLUGIN_SECTIONS for p in self.plugins[section].values()]

    def _choose_panel(self, size: int) -> None:
        """Mark a fixed random panel of about ``size`` citizens (everyone if n ≤ size)."""
        cz = self.citizens
        if self.n <= size:
            cz.flags |= dt.FLAG_PANEL
        elif size > 0:
            gen = numpy_generator(self.seed, Stream.PANEL)
            chosen = np.sort(gen.choice(self.n, size=size, replace=False))
            cz.flags[chosen] |= dt.FLAG_PANEL
        self.panel = np.flatnonzero(cz.flags & dt.FLAG_PANEL).astype(np.int32)

    @property
    def graph_crc(self) -> int:
        """Hash of the graph's structure (computed once; cuts do not change it)."""
        if not hasattr(self, "_graph_crc"):
            self._graph_crc = int(structure_hash(self.graph.offsets, self.graph.neighbours))
        return self._graph_crc

    def find(self, section: str, kind: str) -> Any | None:
        """The first plugin of ``kind`` in ``section``, or None."""
        return next((p for p in self.plugins[section].values() if p.kind == kind), None)

    def _build_plan(self) -> Plan:
        steps = []
        for stage in STAGES:
            if stage == "observation":  # after the behaviour plugins (rate refreshes) and before the rest
                steps += [Step("behaviour", f"sample {len(self.kinds)} event kinds", self._behaviour),
                          Step("observation", f"{sum(1 for c in self.kinds.channel if c)} watched kinds",
                               self._observe)]
            entries = [(p.order, p) for p in self._all_plugins() if stage in p.steps]
            for _, plugin in sorted(entries, key=lambda e: e[0]):
                steps.append(Step(
                    stage, f"{plugin.section}.{plugin.name}", getattr(plugin, plugin.steps[stage]),
                    plugin.runs_on if stage in SCHEDULED else None,
                ))
        steps.append(Step("metrics", "daily counts and panel", self._metrics))
        return Plan(steps)

    # -- the day -------------------------------------------------------------

    def _behaviour(self, sim: Simulation, day: int) -> None:
        ka, cz = self.kind_arrays, self.citizens
        while True:
            ev = self.events
            sample_day(
                self.seed, day, self.blocks.block_start,
                ka["rate_urban"], ka["rate_rural"], ka["form"], ka["params"], ka["bound"],
                ka["log1m_bound"], ka["beh_stream"],
                cz.flags, cz.risk, cz.voice, cz.chill, cz.income, cz.list_start, self.rate_table,
                ev.citizen, ev.kind, ev.flags, ev.slot_start, ev.slot_cap, ev.count, ev.kind_at,
                self.block_base,
            )
            if not ev.overflowed():
                return
            self.events = ev.grown()  # sampling is pure: rerun with room

    def _observe(self, sim: Simulation, day: int) -> None:
        ka, ev, blk = self.kind_arrays, self.events, self.blocks
        observe_day(
            self.seed, day, blk.block_start, blk.block_region, blk.region_start,
            ka["detect_urban"], ka["detect_rural"], ka["members_only"], ka["false_match"],
            ka["match_row"], self.match_table, ka["obs_stream"], self.citizens.flags, self.spared,
            ev.citizen, ev.kind, ev.flags, ev.target, ev.kind_at, self.block_base,
        )

    def _metrics(self, sim: Simulation, day: int) -> None:
        ev = self.events
        counts = count_day(ev.flags, ev.kind_at)
        row: dict[str, float] = {"day": day}
        for k, name in enumerate(self.kinds.names):
            row[name] = int(counts[k, 0])
            if self.kinds.channel[k]:
                row[f"{name}_observed"] = int(counts[k, 1])
            if self.kinds.false_match[k] > 0:
                row[f"{name}_misattributed"] = int(counts[k, 2])
            if k in self._gated_kinds:
                row[f"{name}_denied"] = int(counts[k, 3])
        for plugin in self._all_plugins():
            if hasattr(plugin, "daily"):
                row.update(plugin.daily(day))
        scored = any(s.runs_on is not None and s.stage == "scoring" and s.runs_on(day) for s in self.plan)
        if scored:
            self._snapshot(day, row)
        self.daily_rows.append(row)
        if len(self.trace_ids):
            self._trace_day(day)
        idx = collect_panel(ev.citizen, ev.target, ev.kind_at, self.citizens.flags, dt.FLAG_PANEL)
        self.panel_events.append(
            day=np.full(len(idx), day, np.int16), citizen=ev.citizen[idx],
            kind=ev.kind[idx], flags=ev.flags[idx], target=ev.target[idx],
        )

    def _trace_day(self, day: int) -> None:
        """Log the traced citizens' events of the day and their state at its end."""
        ev, cz = self.events, self.citizens
        for e in involving(ev.citizen, ev.target, ev.kind_at, self.trace_ids):
            f = int(ev.flags[e])
            self.trace.append({
                "what": "event", "day": day, "kind": self.kinds.names[ev.kind[e]],
                "actor": int(ev.citizen[e]), "attributed_to": int(ev.target[e]),
                **{name: bool(f & bit) for name, bit in FLAG_NAMES.items()},
            })
        for i in self.trace_ids:
            self.trace.append({
                "what": "state", "day": day, "citizen": int(i), "points": int(cz.points[i]),
                "score": float(cz.score[i]), "listed": bool(cz.list_start[i] >= 0),
                "income": float(cz.income[i]), "chill": float(cz.chill[i]),
                "active_friends": int(np.count_nonzero(self.graph.neighbours[self.graph.offsets[i]:
                                                                             self.graph.offsets[i + 1]] >= 0)),
            })

    def snapshot_sums(self) -> dict[str, np.ndarray]:
        """Per-block sums of the score, the points and every published output (``metrics.totals``):
        the daily means are their totals over the population, the same for any partitioning."""
        cz, bs = self.citizens, self.blocks.block_start
        sums = {"score": block_sums(cz.score, bs), "points": block_sums(cz.points, bs)}
        sums.update({name: block_sums(values, bs) for name, values in self.published().items()})
        return sums

    def _snapshot(self, day: int, row: dict[str, float]) -> None:
        cz = self.citizens
        row.update(snapshot_means([self.snapshot_sums()], self.n))
        p = self.panel
        published = self.published()
        self.panel_scores.append(
            day=np.full(len(p), day, np.int16), citizen=p, score=cz.score[p],
            points=cz.points[p], listed=cz.list_start[p] >= 0,
            **{name: values[p].astype(np.float32) for name, values in published.items()},
        )

    def published(self) -> dict[str, np.ndarray]:
        """Per-citizen outputs of plugins beyond the core state (secondary scores, ratings, lists), by name."""
        out: dict[str, np.ndarray] = {}
        for plugin in self._all_plugins():
            if hasattr(plugin, "published"):
                out.update(plugin.published())
        return out

    def close(self) -> None:
        """Remove the spool directory now (otherwise when the simulation is collected or the
        interpreter exits; a process that is killed, such as a Ray actor, does neither)."""
        self._remove_spool()

    def release(self) -> None:
        """Drop the plugins' working arrays once the run is over (outputs do not need them)."""
        keep = {id(a) for a in self.published().values()}  # written to citizens.parquet
        for plugin in self._all_plugins():
            for key in plugin.state():
                value = getattr(plugin, key, None)
                if isinstance(value, np.ndarray) and id(value) not in keep:
                    setattr(plugin, key, None)
        score = self.find("scoring", "reference-score")
        if score is not None:
            score.scratch = None
        self.rate_table = None

    def step(self) -> None:
        """Run one day (``self.day``) through the plan."""
        day = self.day
        seconds = self.plan.seconds
        for step in self.plan:
            if step.runs_on is not None and not step.runs_on(day):
                continue
            t = time.perf_counter()
            step.call(self, day)
            seconds[step.stage] += time.perf_counter() - t
        self.day += 1

    def run(self, on_day: Callable[[int], None] | None = None, release: bool = False) -> Any:
        """Run the remaining days; return the results (``Results``).

        With ``release``, the plugins' working arrays are dropped (``release``) before the summary
        metrics are computed, so the metrics' temporaries do not add to the run's peak memory.
        """
        from socialcredit.metrics.summary import Results

        t = time.perf_counter()
        self.timings["days_simulated"] = self.days - self.day
        while self.day < self.days:
            self.step()
            if on_day is not None:
                on_day(self.day)
        self.timings["simulation_seconds"] = time.perf_counter() - t
        if release:
            self.release()
        return Results.from_simulation(self)
