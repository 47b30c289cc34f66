"""scoring.reference: the platform score P of SPEC 9.2 step 5, on hand-built tiny graphs."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.engine.events import OBSERVED, EventKinds
from socialcredit.engine.simulation import Simulation
from socialcredit.population.citizens import Citizens
from socialcredit.population.graph import Graph
from socialcredit.scenario import Scenario
from socialcredit.scoring.reference import score_all

# SPEC 9.2 step 5 constants, in the order score_all unpacks them
PRM = (
    0.35, 0.25, 0.20, 0.15, 0.05,  # weights h, b, f, c, r
    350.0, 600.0, 0.45, 0.7,  # low, span, raw offset, raw scale
    180.0, 0.6,  # miss decay days, non-member history
    5.0, 0.5, 2.0, 0.5, 0.5,  # gaming cap / weight, speech cap / weight, non-member behaviour
    9.5, 2.5,  # income log offset / scale
    0.0, 0.7, 960.0,  # listed value, low-points value, low points below
)
M, U = dt.FLAG_MEMBER, dt.FLAG_URBAN
DAY = 29


def spec_p(h, b, f, c, r):
    """P from its five dimensions, written out from SPEC 9.2 step 5."""
    raw = 0.35 * h + 0.25 * b + 0.20 * f + 0.15 * c + 0.05 * r
    return 350 + 600 * min(1.0, max(0.0, (raw - 0.45) / 0.7))


def f_of(income):
    return min(1.0, max(0.0, (math.log(income) - 9.5) / 2.5))


def r_of(*scores):
    return (sum(scores) / len(scores) - 350) / 600 if scores else 0.0


def _csr(rows):
    """CSR from rows given as lists of neighbour ids (``~j`` for a cut edge)."""
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    neighbours = np.array([j for r in rows for j in r], np.int32)
    return offsets, neighbours


def _score(flags, income, list_start, points, old, miss, miss_day, gaming, speech, rows, day=DAY):
    n = len(flags)
    offsets, neighbours = _csr(rows)
    arrays = dict(
        flags=np.array(flags, dt.FLAGS), income=np.array(income, dt.MONEY),
        list_start=np.array(list_start, dt.DAY), points=np.array(points, dt.POINTS),
        old=np.array(old, dt.SCORE), new=np.full(n, -1.0, dt.SCORE),
        miss=np.array(miss, dt.DECAYED), miss_day=np.array(miss_day, dt.DAY),
        gaming=np.array(gaming, dt.COUNTER), speech=np.array(speech, dt.COUNTER),
    )
    a = arrays
    score_all(day, PRM, a["flags"], a["income"], a["list_start"], a["points"], a["old"], a["new"],
              a["miss"], a["miss_day"], a["gaming"], a["speech"], offsets, neighbours)
    return a


def test_prm_matches_the_ref_plugin():
    sim = Simulation(Scenario.load("ref"), citizens=64, days=1, seed=0)
    assert sim.find("scoring", "reference-score").prm == pytest.approx(PRM)


def test_hand_built_four_citizens():
    income = [math.exp(10.75), 5_000.0, 1e6, 30_000.0]
    old = [600.0, 700.0, 500.0, 900.0]
    # edges 0-1, 0-2 active; 0-3 cut
    rows = [[1, 2, ~3], [0], [0], [~0]]
    a = _score(
        flags=[M | U, 0, M, 0], income=income, list_start=[-1, 3, -1, -1], points=[1000, 1000, 959, 960],
        old=old, miss=[1.0, 0.0, 0.0, 0.0], miss_day=[DAY, 0, 0, 0], gaming=[2, 0, 10, 0], speech=[1, 3, 0, 0],
        rows=rows,
    )
    expected = [
        # member, miss 1 today, 2 gaming days, 1 post, f = 0.5, M ≥ 960, neighbours 1 and 2 (3 is cut)
        spec_p(math.exp(-1.0), 1 - 0.5 * 2 / 5 - 0.5 * 1 / 2, 0.5, 1.0, r_of(700, 500)),
        # non-member with 3 posts: b = 0.5 - 0.5·min(1, 3/2) = 0; listed: c = 0; low income: f = 0
        spec_p(0.6, 0.0, 0.0, 0.0, r_of(600)),
        # member without missed payments: h = 1; gaming capped at 5; M = 959 < 960
        spec_p(1.0, 1 - 0.5 * 1.0, 1.0, 0.7, r_of(600)),
        # non-member, M = 960 (not low); its only edge is cut: r = 0
        spec_p(0.6, 0.5, f_of(30_000.0), 1.0, 0.0),
    ]
    np.testing.assert_allclose(a["new"], expected, rtol=1e-5)
    # spot-check one value written out in full: citizen 3
    raw3 = 0.35 * 0.6 + 0.25 * 0.5 + 0.20 * (math.log(30_000) - 9.5) / 2.5 + 0.15 * 1.0
    assert a["new"][3] == pytest.approx(350 + 600 * (raw3 - 0.45) / 0.7, rel=1e-5)
    # counters reset; old scores untouched
    assert np.all(a["gaming"] == 0) and np.all(a["speech"] == 0)
    np.testing.assert_array_equal(a["old"], old)
    # miss is a decayed state, not a per-period counter: kept
    assert a["miss"][0] == 1.0


def test_non_member_speech_rule():
    for posts, b in [(0, 0.5), (1, 0.25), (2, 0.0), (5, 0.0)]:
        a = _score(flags=[0], income=[30_000.0], list_start=[-1], points=[1000], old=[600.0],
                   miss=[3.0], miss_day=[0], gaming=[4], speech=[posts], rows=[[]])
        # a non-member's missed payments and gaming are invisible: h = 0.6, gaming ignored
        assert a["new"][0] == pytest.approx(spec_p(0.6, b, f_of(30_000.0), 1.0, 0.0), rel=1e-5), posts


def test_member_history_decays_to_scoring_day():
    # miss = 2 recorded 90 days before scoring: 2·e^{-90/180} at scoring time
    a = _score(flags=[M], income=[30_000.0], list_start=[-1], points=[1000], old=[600.0],
               miss=[2.0], miss_day=[DAY - 90 + 120], gaming=[0], speech=[0], rows=[[]], day=DAY + 120)
    h = math.exp(-2.0 * math.exp(-0.5))
    assert a["new"][0] == pytest.approx(spec_p(h, 1.0, f_of(30_000.0), 1.0, 0.0), rel=1e-5)


def test_listed_beats_low_points_and_characteristics_levels():
    base = dict(flags=[M, M, M], income=[30_000.0] * 3, old=[600.0] * 3, miss=[0.0] * 3, miss_day=[0] * 3,
                gaming=[0] * 3, speech=[0] * 3, rows=[[], [], []])
    a = _score(list_start=[0, -1, -1], points=[100, 100, 1000], **base)
    f = f_of(30_000.0)
    np.testing.assert_allclose(a["new"], [spec_p(1, 1, f, 0.0, 0), spec_p(1, 1, f, 0.7, 0), spec_p(1, 1, f, 1.0, 0)],
                               rtol=1e-5)
    assert a["new"][0] < a["new"][1] < a["new"][2]


def test_score_is_clipped_to_350_950():
    a = _score(flags=[M, 0], income=[1e9, 100.0], list_start=[-1, 5], points=[1200, 0], old=[950.0, 350.0],
               miss=[0.0, 0.0], miss_day=[0, 0], gaming=[0, 0], speech=[0, 9], rows=[[1], [0]])
    # citizen 0: raw = 0.35 + 0.25 + 0.2 + 0.15 + 0.05·0 = 0.95 → (0.95-0.45)/0.7 = 0.714 (not clipped)
    assert a["new"][0] == pytest.approx(350 + 600 * 0.5 / 0.7, rel=1e-5)
    # citizen 1: raw = 0.35·0.6 + 0 + 0 + 0 + 0.05 = 0.26 < 0.45 → 350
    assert a["new"][1] == pytest.approx(350.0)
    a = _score(flags=[M, M], income=[1e9, 1e9], list_start=[-1, -1], points=[1200, 1200], old=[950.0, 950.0],
               miss=[0.0, 0.0], miss_day=[0, 0], gaming=[0, 0], speech=[0, 0], rows=[[1], [0]])
    # raw = 1.0 → clip((1 - 0.45)/0.7) = 0.786 < 1: 821.4
    np.testing.assert_allclose(a["new"], 350 + 600 * 0.55 / 0.7, rtol=1e-5)


def test_neighbour_scores_are_read_from_the_old_array():
    # a path 0-1-2: each uses its neighbours' scores from before this scoring
    old = [950.0, 350.0, 650.0]
    a = _score(flags=[M, M, M], income=[30_000.0] * 3, list_start=[-1] * 3, points=[1000] * 3, old=old,
               miss=[0.0] * 3, miss_day=[0] * 3, gaming=[0] * 3, speech=[0] * 3, rows=[[1], [0, 2], [1]])
    f = f_of(30_000.0)
    expected = [spec_p(1, 1, f, 1, r_of(350)), spec_p(1, 1, f, 1, r_of(950, 650)), spec_p(1, 1, f, 1, r_of(350))]
    np.testing.assert_allclose(a["new"], expected, rtol=1e-5)
    assert a["new"][0] == pytest.approx(a["new"][2])


# -- through the plugin: counting, swapping, resetting ------------------------


def _fake_sim(n, rows, flags, income):
    plugin = Scenario.load("ref").plugins("scoring")["platform"]
    kinds = EventKinds()
    for name in ("missed_payment", "gaming", "critical_post"):
        kinds.add(name, "test", 0.01, 0.01)
    citizens = Citizens.empty(np.zeros(n, dt.REGION))
    citizens.flags[:] = flags
    citizens.income[:] = income
    citizens.points[:] = 1000
    offsets, neighbours = _csr(rows)
    sim = SimpleNamespace(kinds=kinds, n=n, citizens=citizens, graph=Graph(offsets, neighbours),
                          blocks=SimpleNamespace(region_first_block=np.array([0, 1], np.int64)),
                          trace_ids=np.empty(0, np.int64), trace=[])
    plugin.setup(sim)
    return plugin, sim


def _events(sim, per_kind):
    """One block; per_kind: list (by kind code 0..2) of (target, flags)."""
    targets, flags, kind_at = [], [], [0]
    for evs in per_kind:
        for t, f in evs:
            targets.append(t)
            flags.append(f)
        kind_at.append(len(targets))
    sim.events = SimpleNamespace(target=np.array(targets, np.int32), flags=np.array(flags, np.uint8),
                                 kind_at=np.array([kind_at], np.int64))


def test_record_counts_counts_observed_events_by_target():
    plugin, sim = _fake_sim(3, [[], [], []], [M, M, 0], 30_000.0)
    assert np.all(sim.citizens.score == 600.0)
    _events(sim, [[(0, OBSERVED), (1, 0)], [(1, OBSERVED), (1, OBSERVED), (2, 0)], [(2, OBSERVED)]])
    plugin.records(sim, 10)
    np.testing.assert_allclose(plugin.miss, [1.0, 0.0, 0.0])
    assert plugin.miss_day[0] == 10
    np.testing.assert_array_equal(plugin.gaming, [0, 2, 0])
    np.testing.assert_array_equal(plugin.speech, [0, 0, 1])
    _events(sim, [[(0, OBSERVED)], [], []])
    plugin.records(sim, 70)
    assert plugin.miss[0] == pytest.approx(math.exp(-60 / 180) + 1, rel=1e-6)
    assert plugin.miss_day[0] == 70


def test_counters_saturate_at_255():
    plugin, sim = _fake_sim(1, [[]], [M], 30_000.0)
    plugin.gaming[0] = 254
    _events(sim, [[], [(0, OBSERVED)] * 3, []])
    plugin.records(sim, 0)
    assert plugin.gaming[0] == 255


def test_plugin_scoring_is_simultaneous_and_swaps_arrays():
    # 0-1 active, 1-2 active; 0 starts high, the others at 600
    plugin, sim = _fake_sim(3, [[1], [0, 2], [1]], [M, M, M], 30_000.0)
    sim.citizens.score[:] = [950.0, 600.0, 600.0]
    _events(sim, [[], [], [(0, OBSERVED), (0, OBSERVED)]])
    plugin.records(sim, 29)
    assert plugin.runs_on(29) and not plugin.runs_on(28) and plugin.runs_on(59)
    plugin.score(sim, 29)
    f = f_of(30_000.0)
    first = [spec_p(1, 0.5, f, 1, r_of(600)), spec_p(1, 1, f, 1, r_of(950, 600)), spec_p(1, 1, f, 1, r_of(600))]
    np.testing.assert_allclose(sim.citizens.score, first, rtol=1e-5)
    assert plugin.speech[0] == 0, "counters reset after scoring"
    # the next scoring reads the scores just written, and the counters start from zero
    plugin.score(sim, 59)
    second = [spec_p(1, 1, f, 1, r_of(first[1])), spec_p(1, 1, f, 1, r_of(first[0], first[2])),
              spec_p(1, 1, f, 1, r_of(first[1]))]
    np.testing.assert_allclose(sim.citizens.score, second, rtol=1e-5)
