"""Invariants of the shipped scenario family, as property tests.

Random scenarios of the family (``china``, ``sesame``, ``tencent``, ``rongcheng``,
``court-list``, ``shanghai-cameras``, ``nosedive``, ``fair-credit``), each perturbed
with ``Scenario.with_sets`` on a few numeric keys it has (false-match rate,
default scale, initial list share, term, income factor of a refused flight,
schedules ...), run on random small populations (1,500–6,000 citizens,
31–75 days, random seeds) and stepped day by day. Checked every day:

* every scorecard's scores lie in its ``[low, high]``, the peer rating in [1, 5];
* points lie in ``[min, max]``; the grade bands partition the point range and
  ``grade_index`` puts every citizen in the band holding their points;
* nobody is listed past their term (unless relisted: a relisting restarts the
  term), listed ⊆ listed_ever, listed_ever never shrinks, the court list's
  ``listed_now`` counts the listed;
* a MISATTRIBUTED event is observed, blames someone else (target ≠ actor) of
  the actor's region, on a kind with a false-match rate; any other event's
  target is its actor;
* DENIED only on events of service kinds, and exactly when the rule says so at
  the moment of the request (``deny``: rule true; ``allow``: rule false): each
  service step is wrapped so the rule is evaluated right before it runs, then
  the flags are compared right after it and again at the end of the day;
  JUDGED/DEFAULTED only on the judgment kind, REMOVED/RECHECK only on repayment;
* the red list equals its rule after each review;
* conservation: the number of citizens, the graph's offsets and decoded
  neighbours never change; cut entries are symmetric and never come back;
* income never exceeds income0 and never rises; chill lies in [0, 1];
* every daily metric is a finite number.

And determinism across thread counts: two subprocesses with NUMBA_NUM_THREADS=1
and 2 run the same (scenario, sets, citizens, days, seed) and must produce the
same hash of the citizens' arrays, every scorecard's scores and peer ratings,
the graph and the daily metrics.

Example counts (module constants, overridable from the environment for longer soaks):
``EXAMPLES_PER_SCENARIO`` = 2 random hypothesis cases for each of the 8 scenarios,
plus one explicit stress case each (every key the scenario has pushed to a busy
extreme: ``STRESS``): 24 cases in all; ``THREAD_EXAMPLES`` = 2 random cases of the
thread-count property plus one explicit (``china`` stressed, 6,000 citizens, 45
days): 3 cases, 6 subprocess runs. About 10 s on an idle 2-core machine.

Environment: ``SOCIALCREDIT_FAMILY_EXAMPLES`` and ``SOCIALCREDIT_THREAD_EXAMPLES``
replace the random counts (e.g. 60 and 10 for a soak). On a machine whose cores
are busy, OpenMP's default spin-waiting makes each parallel kernel call cost a
scheduler time slice (~8 ms instead of ~5 µs), and this file can take minutes;
``OMP_WAIT_POLICY=passive`` avoids that (results do not depend on it).
"""

from __future__ import annotations

import itertools
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from socialcredit import dtypes as dt
from socialcredit.consequences.service import positions
from socialcredit.engine.events import DEFAULTED, DENIED, JUDGED, MISATTRIBUTED, OBSERVED, RECHECK, REMOVED
from socialcredit.engine.simulation import Simulation
from socialcredit.scenario import Scenario

EXAMPLES_PER_SCENARIO = int(os.environ.get("SOCIALCREDIT_FAMILY_EXAMPLES", "2"))
THREAD_EXAMPLES = int(os.environ.get("SOCIALCREDIT_THREAD_EXAMPLES", "2"))

FAMILY = ("china", "sesame", "tencent", "rongcheng", "court-list", "shanghai-cameras", "nosedive", "fair-credit")
SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large]}

CITIZENS = st.integers(1_500, 6_000)
DAYS = st.integers(31, 75)
SEEDS = st.integers(0, 2**63 - 1)


def _floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False)


# key path -> values tried (only keys the scenario has are perturbed)
PERTURBATIONS: dict[str, st.SearchStrategy] = {
    "observation.camera.false_match": st.one_of(st.sampled_from([0.0, 0.003, 0.05, 0.5, 1.0]), _floats(0, 1)),
    "observation.camera.detect_urban": _floats(0, 1),
    "records.court_list.default_scale": _floats(0, 5),
    "records.court_list.default_cap": _floats(0, 1),
    "records.court_list.initial_share": st.one_of(st.just(0.0), _floats(0, 0.5)),
    "records.court_list.term_days": st.integers(1, 60),
    "records.court_list.repay_rate": _floats(0, 0.3),
    "records.court_list.stress_threshold": _floats(0.5, 3),
    "records.points.listing_delta": st.integers(-1_500, 1_500),
    "records.red_list.every_days": st.integers(1, 30),
    "consequences.flight.income_factor": _floats(0.01, 1),
    "consequences.civil_service.income_factor": _floats(0.01, 1),
    "consequences.unfriend.probability": _floats(0, 1),
    "consequences.unfriend.every_days": st.integers(1, 30),
    "consequences.chill.every_days": st.integers(1, 30),
    "scoring.sesame.every_days": st.integers(1, 30),
    "scoring.sesame.raw_offset": _floats(-2, 2),
    "scoring.tencent.every_days": st.integers(1, 30),
    "scoring.tencent.raw_scale": _floats(0.01, 5),
    "scoring.rating.conformity": _floats(-5, 5),
    "scoring.rating.noise_sd": _floats(0, 5),
    "scoring.rating.rater_power": _floats(0, 50),
}

# the explicit example of each scenario: every key it has pushed to a busy extreme
# (many misattributions, listings, short terms and relistings, cuts, refusals, daily scoring)
STRESS: dict[str, float | int] = {
    "observation.camera.false_match": 0.5,
    "records.court_list.default_scale": 5.0,
    "records.court_list.default_cap": 1.0,
    "records.court_list.initial_share": 0.3,
    "records.court_list.term_days": 5,
    "records.court_list.repay_rate": 0.05,
    "records.court_list.stress_threshold": 0.5,
    "records.points.listing_delta": -1_500,
    "records.red_list.every_days": 1,
    "consequences.flight.income_factor": 0.5,
    "consequences.civil_service.income_factor": 0.5,
    "consequences.unfriend.probability": 1.0,
    "consequences.unfriend.every_days": 1,
    "consequences.chill.every_days": 1,
    "scoring.sesame.every_days": 1,
    "scoring.tencent.every_days": 1,
    "scoring.rating.conformity": 5.0,
    "scoring.rating.noise_sd": 5.0,
    "scoring.rating.rater_power": 50.0,
}

BASE = {name: Scenario.load(name) for name in FAMILY}


def _has(data: dict, path: str) -> bool:
    node = data
    for part in path.split(".")[:-1]:
        node = node.get(part) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            return False
    return True


def _toml(value: float | int) -> str:
    return str(value) if isinstance(value, int) else repr(float(value))


def _stress(name: str) -> list[str]:
    return [f"{k}={_toml(v)}" for k, v in STRESS.items() if _has(BASE[name].data, k)]


def _sets(name: str) -> st.SearchStrategy[list[str]]:
    """``key=value`` strings for a random subset of the keys ``name`` has."""
    keys = [k for k in PERTURBATIONS if _has(BASE[name].data, k)]
    draws = st.fixed_dictionaries({k: st.one_of(st.none(), PERTURBATIONS[k]) for k in keys})
    return draws.map(lambda d: [f"{k}={_toml(v)}" for k, v in d.items() if v is not None])


# -- the day's events --------------------------------------------------------------------


def _day_events(sim: Simulation) -> tuple[np.ndarray, np.ndarray]:
    """Buffer positions of the day's events and, for each, the kind range it sits in."""
    ev = sim.events
    K = ev.kind_at.shape[1] - 1
    pos, kind = [], []
    for b in range(ev.kind_at.shape[0]):
        row = ev.kind_at[b]
        assert np.all(np.diff(row) >= 0)
        assert row[0] >= ev.slot_start[b] and row[K] <= ev.slot_start[b] + ev.slot_cap[b]
        lo, hi = int(sim.blocks.block_start[b]), int(sim.blocks.block_start[b + 1])
        p = np.arange(row[0], row[K])
        c = ev.citizen[p]
        assert np.all((c >= lo) & (c < hi)), "an event outside its block"
        pos.append(p)
        kind.append(np.repeat(np.arange(K), np.diff(row)))
    pos_all, kind_all = np.concatenate(pos), np.concatenate(kind)
    assert np.array_equal(ev.kind[pos_all].astype(np.int64), kind_all), "an event outside its kind's range"
    return pos_all, kind_all


class DenialLog:
    """Wraps each service step: evaluates its rule on the requesters just before it runs,
    then checks that the DENIED flags it set are exactly the rule's refusals."""

    def __init__(self, sim: Simulation) -> None:
        self.expected: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # kind -> (positions, denied)
        self.kinds: set[int] = set()
        services = {f"consequences.{p.name}": p for p in sim.plugins["consequences"].values() if p.kind == "service"}
        self.kinds = {p.kind_code for p in sim.plugins["consequences"].values() if hasattr(p, "kind_code")}
        for step in sim.plan.steps:
            plugin = services.get(step.name)
            if step.stage == "consequences" and plugin is not None:
                step.call = self._wrap(step.call, plugin)

    def _wrap(self, call, plugin):
        def checked(sim: Simulation, day: int) -> None:
            ev = sim.events
            pos = positions(ev.kind_at, plugin.kind_code)
            ids = ev.citizen[pos].astype(np.int64)
            verdict = np.broadcast_to(plugin.rule.evaluate(sim.fields.at(plugin.rule.names, ids)), ids.shape) != 0
            refuse = verdict if plugin.refuse_when_true else ~verdict
            assert not np.any(ev.flags[pos] & DENIED), f"{plugin.name}: denied before its step"
            income = sim.citizens.income[ids].copy()
            call(sim, day)
            denied = (ev.flags[pos] & DENIED) != 0
            assert np.array_equal(denied, refuse), (
                f"day {day}, {plugin.name}: {'deny' if plugin.refuse_when_true else 'allow'} = "
                f"{plugin.rule.source!r}: DENIED on {np.flatnonzero(denied != refuse)[:5]} disagrees with the rule")
            factor = plugin.config.income_factor
            if factor == 1.0:
                assert np.array_equal(sim.citizens.income[ids], income)
            self.expected[plugin.kind_code] = (pos, refuse)

        return checked

    def check_end_of_day(self, sim: Simulation, pos: np.ndarray, kind: np.ndarray) -> None:
        """After the whole day: DENIED only on service kinds, still as decided by the rule."""
        denied = (sim.events.flags[pos] & DENIED) != 0
        other = ~np.isin(kind, list(self.kinds))
        assert not np.any(denied & other), "DENIED on an event that is no service request"
        for k, (p, refuse) in self.expected.items():
            assert np.array_equal((sim.events.flags[p] & DENIED) != 0, refuse), f"kind {k}: DENIED changed later"
        self.expected.clear()


# -- the checks ---------------------------------------------------------------------------


class Checker:
    """Holds the state of day 0 and checks the invariants after each day."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        cz, g = sim.citizens, sim.graph
        self.n = sim.n
        self.offsets = g.offsets.copy()
        self.ids = g.ids()
        self.rows = np.repeat(np.arange(self.n, dtype=np.int64), np.diff(g.offsets))
        # the structure itself: rows sorted by decoded id, no self loops, every entry has its reverse
        assert len(self.offsets) == self.n + 1 and self.offsets[0] == 0 and np.all(np.diff(self.offsets) >= 0)
        assert np.all((self.ids >= 0) & (self.ids < self.n)) and not np.any(self.ids == self.rows)
        everything = np.ones(len(self.ids), bool)
        assert np.array_equal(self._pairs(everything), self._reverse(everything)), "an edge stored one way only"
        self.cut = g.neighbours < 0
        self.income = cz.income.copy()
        self.listed_ever = cz.flag(dt.FLAG_LISTED_EVER)
        self.denials = DenialLog(sim)
        self.court = sim.find("records", "court-list")
        self.points = sim.find("records", "points")
        self.red_list = sim.find("records", "honour-list")
        self.cards = [p for p in sim.plugins["scoring"].values() if p.kind in ("sesame", "tencent", "scorecard")]
        self.ratings = [p for p in sim.plugins["scoring"].values() if p.kind == "peer-rating"]
        ka = sim.kind_arrays
        self.channel = np.array([bool(c) for c in sim.kinds.channel])
        self.false_match = ka["false_match"] > 0
        self.judge_kind = self.court.judge_kind if self.court is not None else -1
        self.repay_kind = self.court.repay_kind if self.court is not None else -1
        if self.points is not None:
            self._check_bands()
        self.check_citizens(day=-1)

    def _pairs(self, mask: np.ndarray) -> np.ndarray:
        return np.sort(self.rows[mask] * self.n + self.ids[mask])

    def _reverse(self, mask: np.ndarray) -> np.ndarray:
        return np.sort(self.ids[mask].astype(np.int64) * self.n + self.rows[mask])

    def _check_bands(self) -> None:
        c = self.points.config
        bands = sorted((g.min, g.max) for g in c.grades)
        assert bands[0][0] == c.min and bands[-1][1] == c.max
        assert all(lo <= hi for lo, hi in bands)
        assert all(a[1] + 1 == b[0] for a, b in itertools.pairwise(bands)), "grades overlap or leave a gap"

    def check_citizens(self, day: int) -> None:
        sim, cz = self.sim, self.sim.citizens
        assert all(len(a) == self.n for a in cz.arrays().values()), "citizens added or lost"
        # scores and ratings
        for card in self.cards:
            s, c = card.current(), card.config
            assert len(s) == self.n and np.all(np.isfinite(s)), card.name
            assert np.all((s >= c.low) & (s <= c.high)), f"{card.name}: {s.min()}..{s.max()} outside {c.low}..{c.high}"
        for plugin in self.ratings:
            r = plugin.rating
            assert np.all(np.isfinite(r)) and np.all((r >= 1) & (r <= 5)), f"{plugin.name}: {r.min()}..{r.max()}"
        # points and grades
        if self.points is not None:
            c, p = self.points.config, cz.points
            assert np.all((p >= c.min) & (p <= c.max)), f"points {p.min()}..{p.max()} outside {c.min}..{c.max}"
            lo = np.array([g.min for g in c.grades])
            hi = np.array([g.max for g in c.grades])
            inside = (p[:, None] >= lo) & (p[:, None] <= hi)
            assert np.all(inside.sum(axis=1) == 1), "a citizen in no grade or in two"
            assert np.array_equal(self.points.grade_index(p), np.argmax(inside, axis=1))
        # the court list
        listed = cz.list_start >= 0
        ever = cz.flag(dt.FLAG_LISTED_EVER)
        assert np.all(ever[listed]), "listed but not listed_ever"
        assert np.all(ever[self.listed_ever]), "listed_ever lost"
        self.listed_ever = ever
        if self.court is None:
            assert not np.any(listed) and not np.any(ever)
        elif day >= 0:
            term = self.court.config.term_days
            start = cz.list_start[listed].astype(np.int64)
            assert np.all(start <= day), "listed in the future"
            assert np.all(day - start <= term - 1), f"listed past the term of {term} days: {np.max(day - start) + 1}"
            assert self.court.listed_now == int(np.count_nonzero(listed))
        # income and chill
        assert np.all(np.isfinite(cz.income)) and np.all(cz.income <= cz.income0), "income above income0"
        assert np.all(cz.income <= self.income), "an income rose"
        self.income = cz.income.copy()
        assert np.all((cz.chill >= 0) & (cz.chill <= 1)), f"chill {cz.chill.min()}..{cz.chill.max()}"
        # the graph
        g = sim.graph
        assert np.array_equal(g.offsets, self.offsets), "graph offsets changed"
        assert np.array_equal(np.where(g.neighbours >= 0, g.neighbours, ~g.neighbours), self.ids), "neighbours changed"
        cut = g.neighbours < 0
        assert np.all(cut[self.cut]), "a cut edge came back"
        self.cut = cut
        assert np.array_equal(self._pairs(cut), self._reverse(cut)), "cut entries not symmetric"

    def check_events(self, day: int) -> None:
        sim, ev = self.sim, self.sim.events
        pos, kind = _day_events(sim)
        f = ev.flags[pos]
        actor, target = ev.citizen[pos].astype(np.int64), ev.target[pos].astype(np.int64)
        wrong = (f & MISATTRIBUTED) != 0
        assert np.all(f[wrong] & OBSERVED), "misattributed but not observed"
        assert np.all(self.false_match[kind[wrong]]), "misattributed on a kind without false matches"
        assert np.all(target[wrong] != actor[wrong]), "misattribution blamed the actor"
        assert np.all((target[wrong] >= 0) & (target[wrong] < self.n))
        region = sim.citizens.region
        assert np.array_equal(region[target[wrong]], region[actor[wrong]]), "misattribution crossed regions"
        assert np.array_equal(target[~wrong], actor[~wrong]), "target differs from actor without misattribution"
        assert np.all(self.channel[kind[(f & OBSERVED) != 0]]), "observed by no channel"
        court_flags = JUDGED | DEFAULTED
        assert np.all(kind[(f & court_flags) != 0] == self.judge_kind), "JUDGED/DEFAULTED off the judgment kind"
        assert np.all(f[(f & DEFAULTED) != 0] & JUDGED), "defaulted without a judgment"
        assert np.all(kind[(f & (REMOVED | RECHECK)) != 0] == self.repay_kind), "REMOVED off the repayment kind"
        self.denials.check_end_of_day(sim, pos, kind)
        # the red list is its rule after a review
        if self.red_list is not None and self.red_list.runs_on(day):
            rule = self.red_list.rule
            value = rule.evaluate(sim.fields.everyone(rule.names))
            assert np.array_equal(self.red_list.members, np.broadcast_to(value, (self.n,)) != 0)
        # daily metrics
        row = sim.daily_rows[-1]
        assert row["day"] == day
        for name, value in row.items():
            assert isinstance(value, int | float | np.integer | np.floating) and math.isfinite(value), (name, value)

    def step(self) -> None:
        day = self.sim.day
        self.sim.step()
        self.check_events(day)
        self.check_citizens(day)


def _run_checked(name: str, sets: list[str], citizens: int, days: int, seed: int) -> None:
    sim = Simulation(BASE[name].with_sets(sets), citizens=citizens, days=days, seed=seed)
    checker = Checker(sim)
    for _ in range(days):
        checker.step()
    assert sim.day == days and len(sim.daily_rows) == days


@pytest.mark.parametrize("name", FAMILY)
def test_family_invariants(name):
    """EXAMPLES_PER_SCENARIO random cases of ``name``, and its stress case (explicit)."""

    @settings(max_examples=EXAMPLES_PER_SCENARIO, **SETTINGS)
    @given(sets=_sets(name), citizens=CITIZENS, days=DAYS, seed=SEEDS)
    @example(sets=_stress(name), citizens=1_500, days=31, seed=11)
    def invariants_hold(sets, citizens, days, seed):
        _run_checked(name, sets, citizens, days, seed)

    invariants_hold()


# -- determinism across thread counts ----------------------------------------------------

HASH_RUN = """
import hashlib, json, sys
import numpy as np
from socialcredit.engine.simulation import Simulation
from socialcredit.scenario import Scenario

name, sets, n, days, seed = json.loads(sys.argv[1])
sim = Simulation(Scenario.load(name).with_sets(sets), citizens=n, days=days, seed=seed)
for _ in range(days):
    sim.step()
h = hashlib.sha256()
def add(label, a):
    a = np.ascontiguousarray(a)
    h.update(f"{label}:{a.dtype.str}:{a.shape}".encode())
    h.update(a.tobytes())
for key, a in sorted(sim.citizens.arrays().items()):
    add(key, a)
for p in sim.plugins["scoring"].values():
    if p.kind in ("sesame", "tencent", "scorecard"):
        add(p.name, p.current())
    if p.kind == "peer-rating":
        add(p.name, p.rating)
        add(p.name + ".weight", p.weight)
add("offsets", sim.graph.offsets)
add("neighbours", sim.graph.neighbours)
h.update(json.dumps(sim.daily_rows, sort_keys=True, default=float).encode())
import numba
print(json.dumps({"hash": h.hexdigest(), "threads": numba.get_num_threads()}))
"""


def _hash_run(args: list, threads: int) -> dict:
    # OMP_WAIT_POLICY only changes how idle OpenMP threads wait (not what they compute);
    # passive keeps the runs fast on a loaded machine.
    env = {**os.environ, "NUMBA_NUM_THREADS": str(threads), "OMP_WAIT_POLICY": "passive"}
    done = subprocess.run([sys.executable, "-c", HASH_RUN, json.dumps(args)], env=env, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


CASES = st.sampled_from(FAMILY).flatmap(lambda name: st.tuples(st.just(name), _sets(name)))


@settings(max_examples=THREAD_EXAMPLES, **SETTINGS)
@given(case=CASES, citizens=CITIZENS, days=DAYS, seed=SEEDS)
@example(case=("china", _stress("china")), citizens=6_000, days=45, seed=5)
def test_same_results_whatever_the_thread_count(case, citizens, days, seed):
    args = [*case, citizens, days, seed]
    one, two = _hash_run(args, 1), _hash_run(args, 2)
    assert (one["threads"], two["threads"]) == (1, 2)
    assert one["hash"] == two["hash"], args


def test_hash_helper_sees_a_difference():
    """The thread-count property would be vacuous if the hash ignored the run: another seed differs."""
    a = _hash_run(["china", [], 1_500, 31, 1], 2)
    b = _hash_run(["china", [], 1_500, 31, 2], 2)
    assert a["hash"] != b["hash"]


def test_perturbed_keys_exist():
    """Every perturbed key is a field of its table's config in some scenario (a typo would test nothing)."""
    assert set(STRESS) <= set(PERTURBATIONS)
    for key in PERTURBATIONS:
        section, table, leaf = key.split(".")
        owners = [name for name in FAMILY if _has(BASE[name].data, key)]
        assert owners, key
        for name in owners:
            assert leaf in type(BASE[name].plugins(section)[table].config).model_fields, (name, key)
