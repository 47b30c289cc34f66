"""Named per-citizen fields that scenario formulas may read.

A formula (``"0.004 * (0.5 + risk) if urban else 0"``) names fields; this
module resolves each name to an array over all citizens, or to the values of a
few citizens (the day's service requests). Names come from four places:

- the citizens' attributes: ``income``, ``risk``, ``urban``, ``listed``, ...,
  and the population's own (``age``, ``education``, ``parent``, ...);
- plugins: every scoring system publishes its score under its table's name
  (``sesame``), the peer rating ``rating``, the red list ``red_listed``, ...;
- event counters: ``seen_<kind>`` is the observed count of an event kind
  attributed to the citizen, decayed exponentially (see ``records.counters``);
  ``total_<kind>`` the same without decay;
- family and friends: ``parent_<field>`` is the parent's value (0 without a
  parent), ``friends_<field>`` the mean over active friends (0 without any).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
from numba import njit, prange

from socialcredit import dtypes as dt
from socialcredit.errors import ScenarioError

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation
    from socialcredit.scenario.expressions import Expression

CHUNK = 1 << 16  # rows per chunk when a formula is evaluated over everyone

_FLAG_FIELDS = {
    "urban": dt.FLAG_URBAN,
    "minority": dt.FLAG_MINORITY,
    "member": dt.FLAG_MEMBER,
    "listed_ever": dt.FLAG_LISTED_EVER,
    "speech_penalised": dt.FLAG_SPEECH_PENALISED,
}
_CORE = ("region", "income", "income0", "risk", "voice", "chill", "score", "points")


@njit(cache=True, inline="always")
def _mean_over_friends(values, offsets, neighbours, i):
    total = 0.0
    count = 0
    for a in range(offsets[i], offsets[i + 1]):
        j = neighbours[a]
        if j >= 0:
            total += values[j]
            count += 1
    return total / count if count else 0.0


@njit(cache=True, parallel=True)
def friends_mean(values, offsets, neighbours, ids, out):
    """Mean of ``values`` over each of ``ids``' active neighbours (0 without any)."""
    for x in prange(len(ids)):
        out[x] = _mean_over_friends(values, offsets, neighbours, ids[x])


@njit(cache=True, parallel=True)
def friends_mean_all(values, offsets, neighbours, out):
    """Mean of ``values`` over every citizen's active neighbours (0 without any)."""
    for i in prange(len(offsets) - 1):
        out[i] = _mean_over_friends(values, offsets, neighbours, i)


@njit(cache=True, parallel=True)
def friends_mean_stacked(values, offsets, neighbours, out):
    """``friends_mean_all`` for several fields at once (columns of ``values``, one graph pass)."""
    m = values.shape[1]
    for i in prange(len(offsets) - 1):
        count = 0
        for c in range(m):
            out[i, c] = 0.0
        for a in range(offsets[i], offsets[i + 1]):
            j = neighbours[a]
            if j >= 0:
                count += 1
                for c in range(m):
                    out[i, c] += values[j, c]
        if count:
            for c in range(m):
                out[i, c] /= count


class Fields:
    """The field names of one simulation and how to read them."""

    def __init__(self, sim: Simulation) -> None:
        self.sim = sim
        self._providers: dict[str, tuple[Callable[[], np.ndarray], str]] = {}
        self._pick: dict[str, Callable[[np.ndarray], np.ndarray]] = {}  # values at a few ids, without a full pass
        self._cache: dict[str, np.ndarray] = {}  # counters brought to ``_cache_day``
        self._cache_day = -1
        cz = sim.citizens
        for name, bit in _FLAG_FIELDS.items():
            self.provide(name, _flag_getter(cz, bit), "citizens")
            self._pick[name] = _flag_picker(cz, bit)
        for name in _CORE:
            self.provide(name, _attr_getter(cz, name), "citizens")
        self.provide("listed", lambda: cz.list_start >= 0, "records (court list)")
        self._pick["listed"] = lambda ids: cz.list_start[ids] >= 0
        for name in cz.extra:
            self.provide(name, _extra_getter(cz, name), "population")
        # never change during a run: formulas reading only these need evaluating once
        self._static = {"urban", "minority", "member", "region", "risk", "voice", "income0", *cz.extra}

    # -- names ---------------------------------------------------------------

    def provide(self, name: str, getter: Callable[[], np.ndarray], owner: str) -> None:
        """Publish field ``name`` (read by calling ``getter``), defined by ``owner``."""
        if name in self._providers and self._providers[name][1] != owner:
            raise ScenarioError(f"{owner}: field {name!r} is already defined by {self._providers[name][1]}")
        self._providers[name] = (getter, owner)

    def known(self) -> list[str]:
        """Every plain field name, plus the patterns of derived ones."""
        counted = [f"seen_{k}" for k in self.sim.kinds.names]
        return sorted(self._providers) + counted + ["total_<kind>", "parent_<field>", "friends_<field>"]

    def is_static(self, name: str) -> bool:
        """Whether field ``name`` keeps its values for the whole run (population attributes)."""
        if name.startswith("parent_"):
            return self.is_static(name[len("parent_"):])
        return name in self._static

    def owner(self, name: str) -> str:
        """Who defines field ``name`` (for messages and audits)."""
        base = self._base(name)
        if base in self._providers:
            return self._providers[base][1]
        kind = _counter_kind(base)
        if kind is not None:
            return self.sim.kinds.channel[self.sim.kinds.code(kind, "fields")] or "nobody"
        raise KeyError(name)

    def require(self, expr: Expression, where: str) -> None:
        """Check that every name of ``expr`` exists; start the counters it needs."""
        resolvable = {name for name in expr.names if self._resolvable(name, where)}
        if resolvable != expr.names:  # names the first unknown one in the source, with its column
            expr.check_names([*self._providers, *resolvable, *self.known()], where)
            raise ScenarioError(f"{where}: unknown field {sorted(expr.names - resolvable)[0]!r}")

    def _resolvable(self, name: str, where: str) -> bool:
        base = self._base(name)
        if base in self._providers:
            return True
        kind = _counter_kind(base)
        if kind is None or kind not in self.sim.kinds.names:
            return False
        self.sim.counters.track(self.sim.kinds.code(kind, where), decayed=base.startswith("seen_"))
        return True

    @staticmethod
    def _base(name: str) -> str:
        for prefix in ("parent_", "friends_"):
            if name.startswith(prefix):
                return name[len(prefix):]
        return name

    # -- values --------------------------------------------------------------

    def everyone(self, names: Iterable[str]) -> dict[str, np.ndarray]:
        """Arrays over all citizens for ``names`` (derived fields computed now)."""
        env: dict[str, np.ndarray] = {}
        for name in names:
            env[name] = self._everyone(name)
        return env

    def _everyone(self, name: str) -> np.ndarray:
        sim = self.sim
        if name.startswith("friends_"):
            values = self._everyone(name[len("friends_"):]).astype(np.float64, copy=False)
            out = np.empty(sim.n, np.float32)
            friends_mean_all(values, sim.graph.offsets, sim.graph.neighbours, out)
            return out
        if name.startswith("parent_"):
            return self._at(name, np.arange(sim.n, dtype=np.int64))
        if name in self._providers:
            return self._providers[name][0]()
        if self._cache_day != sim.day:  # counters change only in the records stage: one pass per day
            self._cache, self._cache_day = {}, sim.day
        if name not in self._cache:
            self._cache[name] = sim.counters.everyone(_counter_kind(name), name.startswith("seen_"), sim.day)
        return self._cache[name]

    def snapshot(self, names: Iterable[str]) -> dict[str, np.ndarray]:
        """Arrays over all citizens for ``names``, computed together: every ``friends_*``
        field in a single pass over the graph. The arrays are the values at this moment
        (a later change to a field does not show in them)."""
        names = set(names)
        friends = sorted(n for n in names if n.startswith("friends_"))
        env = self.everyone(names - set(friends))
        if len(friends) == 1:
            env.update(self.everyone(friends))
        elif friends:
            sim = self.sim
            stacked = np.empty((sim.n, len(friends)), np.float32)
            for c, name in enumerate(friends):
                stacked[:, c] = self._everyone(name[len("friends_"):])
            out = np.empty_like(stacked)
            friends_mean_stacked(stacked, sim.graph.offsets, sim.graph.neighbours, out)
            env.update({name: np.ascontiguousarray(out[:, c]) for c, name in enumerate(friends)})
        return env

    def at(self, names: Iterable[str], ids: np.ndarray) -> dict[str, np.ndarray]:
        """Values of ``names`` for the citizens ``ids`` only (work ∝ len(ids))."""
        ids = np.asarray(ids, np.int64)
        return {name: self._at(name, ids) for name in names}

    def _at(self, name: str, ids: np.ndarray) -> np.ndarray:
        sim = self.sim
        if name.startswith("friends_"):
            values = self._everyone(name[len("friends_"):])
            out = np.empty(len(ids), np.float64)
            friends_mean(values, sim.graph.offsets, sim.graph.neighbours, ids, out)
            return out
        if name.startswith("parent_"):
            parent = sim.citizens.extra.get("parent")
            if parent is None:
                return np.zeros(len(ids))
            p = parent[ids].astype(np.int64)
            has = p >= 0
            values = self._at(name[len("parent_"):], np.where(has, p, 0))
            return np.where(has, values, 0)
        if name in self._pick:
            return self._pick[name](ids)
        if name in self._providers:
            return self._providers[name][0]()[ids]
        return sim.counters.at(_counter_kind(name), name.startswith("seen_"), sim.day, ids)


def evaluate_everyone(expr: Expression, env: dict[str, Any], n: int, out: np.ndarray) -> np.ndarray:
    """Evaluate ``expr`` over ``n`` citizens chunk by chunk (cache-sized), into ``out``."""
    for lo in range(0, n, CHUNK):
        hi = min(n, lo + CHUNK)
        out[lo:hi] = expr.evaluate(env, lo, hi)
    return out


def _counter_kind(name: str) -> str | None:
    for prefix in ("seen_", "total_"):
        if name.startswith(prefix):
            return name[len(prefix):]
    return None


def _flag_getter(cz: Any, bit: np.uint8) -> Callable[[], np.ndarray]:
    return lambda: (cz.flags & bit) != 0


def _flag_picker(cz: Any, bit: np.uint8) -> Callable[[np.ndarray], np.ndarray]:
    return lambda ids: (cz.flags[ids] & bit) != 0


def _attr_getter(cz: Any, name: str) -> Callable[[], np.ndarray]:
    return lambda: getattr(cz, name)


def _extra_getter(cz: Any, name: str) -> Callable[[], np.ndarray]:
    return lambda: cz.extra[name]
