"""consequences.shame_board: observed acts displayed under the attributed citizen, regional shame, lost ties."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from socialcredit.consequences.shame_board import display, displayed_citizens, shame_unfriend
from socialcredit.engine import checkpoint
from socialcredit.engine.events import MISATTRIBUTED, OBSERVED
from socialcredit.engine.simulation import Simulation
from socialcredit.errors import ScenarioError
from socialcredit.scenario import Scenario

SCENARIO = Path(__file__).parent / "data" / "shame_board.toml"
N, SEED = 3_000, 5
SHOWN_KINDS = ("jaywalk", "littering")
SEEN, WRONG = int(OBSERVED), int(OBSERVED | MISATTRIBUTED)


def _csr(n, edges):
    rows = [[] for _ in range(n)]
    for i, j in edges:
        rows[i].append(j)
        rows[j].append(i)
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    return offsets, np.array([j for r in rows for j in sorted(r)], np.int32)


def _cut_pairs(offsets, nbr):
    return {(i, int(~nbr[a])) for i in range(len(offsets) - 1) for a in range(offsets[i], offsets[i + 1])
            if nbr[a] < 0}


# -- kernels on hand-made arrays ------------------------------------------------


def _buffer():
    """Two regions (citizens 0-3, 4-7), one block each; kinds 0 = jaywalk (displayed), 1 = other."""
    # block 0: jaywalk 0 (seen), jaywalk 1 (seen, pinned on 2), jaywalk 3 (unseen); other 0 (seen)
    # block 1: jaywalk 5 (seen), jaywalk 6 (seen, pinned on 4)
    citizen = np.array([0, 1, 3, 0, 5, 6], np.int32)
    target = np.array([0, 2, 3, 0, 5, 4], np.int32)
    flags = np.array([SEEN, WRONG, 0, SEEN, SEEN, WRONG], np.uint8)
    kind_at = np.array([[0, 3, 4], [4, 6, 6]], np.int64)
    return citizen, target, flags, kind_at


def test_display_counts_under_the_attributed_citizen():
    _, target, flags, kind_at = _buffer()
    shamed = np.zeros(8, np.uint16)
    shown = np.zeros(2, np.int64)
    innocents = np.zeros(2, np.int64)
    display(np.array([0, 1, 2], np.int64), np.array([0], np.int64), flags, target, kind_at, shamed, shown,
            innocents)
    # the innocent 2 is shown, not the actor 1; the unseen jaywalk and the other kind are not shown
    np.testing.assert_array_equal(shamed, [1, 0, 1, 0, 1, 1, 0, 0])
    np.testing.assert_array_equal(shown, [2, 2])
    np.testing.assert_array_equal(innocents, [1, 1])
    np.testing.assert_array_equal(displayed_citizens(np.array([0], np.int64), flags, target, kind_at), [0, 2, 5, 4])


def test_display_count_saturates():
    _, target, flags, kind_at = _buffer()
    shamed = np.full(8, 65_535, np.uint16)
    display(np.array([0, 1, 2], np.int64), np.array([0, 1], np.int64), flags, target, kind_at, shamed,
            np.zeros(2, np.int64), np.zeros(2, np.int64))
    assert np.all(shamed == 65_535)


EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 3)]


def _unfriend(ids, times, p, n=5, day=3):
    offsets, nbr = _csr(n, EDGES)
    cut = np.zeros(len(ids), np.int64)
    shame_unfriend(1, 99, day, p, np.array(ids, np.int64), np.array(times, np.int64), offsets, nbr,
                   np.array([0, n], np.int64), cut)
    return offsets, nbr, cut


def test_probability_one_cuts_every_tie_of_the_displayed_both_ways():
    offsets, nbr, cut = _unfriend([1], [1], 1.0)
    assert _cut_pairs(offsets, nbr) == {(0, 1), (1, 0), (1, 2), (2, 1), (1, 3), (3, 1)}
    np.testing.assert_array_equal(cut, [3])
    _, ref = _csr(5, EDGES)
    np.testing.assert_array_equal(np.where(nbr >= 0, nbr, ~nbr), ref)  # entries keep their place


def test_tie_between_two_displayed_is_decided_once():
    offsets, nbr, cut = _unfriend([1, 3], [1, 2], 1.0)
    # 1 handles 0-1, 1-2, 1-3; 3 handles 2-3, 3-4
    np.testing.assert_array_equal(cut, [3, 2])
    assert len(_cut_pairs(offsets, nbr)) == 2 * 5


def test_probability_zero_cuts_nothing():
    _, nbr, cut = _unfriend([0, 1, 2, 3, 4], [3, 1, 1, 1, 1], 0.0)
    assert np.all(nbr >= 0) and cut.sum() == 0


def test_more_displays_cut_more_ties():
    # star graph: 0's 200 ties; P(cut) = 1 − (1 − p)^m per tie
    n = 201
    offsets, _ = _csr(n, [(0, j) for j in range(1, n)])
    rates = []
    for m in (1, 3):
        cuts = 0
        for day in range(50):
            _, nbr = _csr(n, [(0, j) for j in range(1, n)])
            cut = np.zeros(1, np.int64)
            shame_unfriend(1, 99, day, 0.1, np.array([0], np.int64), np.array([m], np.int64), offsets, nbr,
                           np.array([0, n], np.int64), cut)
            cuts += int(cut[0])
        rates.append(cuts / (50 * 200))
    assert rates[0] == pytest.approx(0.1, abs=0.015)
    assert rates[1] == pytest.approx(1 - 0.9**3, abs=0.02)


# -- the plugin in a simulation -----------------------------------------------------


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario.load(SCENARIO)


def _displays_today(sim):
    """(targets, innocent flags) of today's observed events of the displayed kinds."""
    ev = sim.events
    targets, wrong = [], []
    for name in SHOWN_KINDS:
        k = sim.kinds.code(name, "test")
        for b in range(len(ev.kind_at)):
            sl = slice(ev.kind_at[b, k], ev.kind_at[b, k + 1])
            seen = (ev.flags[sl] & OBSERVED) != 0
            targets.append(ev.target[sl][seen])
            wrong.append((ev.flags[sl][seen] & MISATTRIBUTED) != 0)
    return np.concatenate(targets).astype(np.int64), np.concatenate(wrong)


@pytest.fixture(scope="module")
def replay(scenario):
    """A run stepped day by day, with the displays recomputed from each day's event buffer."""
    sim = Simulation(scenario, citizens=N, days=40, seed=SEED)
    board = sim.plugins["consequences"]["shame_board"]
    per_day_region, misattributed_shown, innocent_targets = [], 0, []
    before_refresh = None
    while sim.day < sim.days:
        if sim.day == 30:  # the littering rate is re-evaluated at the start of day 30
            before_refresh = board.region_shame().copy()
        shamed = board.shamed.astype(np.int64)
        sim.step()
        targets, wrong = _displays_today(sim)
        np.testing.assert_array_equal(board.shamed - shamed, np.bincount(targets, minlength=N))
        per_day_region.append(np.bincount(sim.citizens.region[targets], minlength=sim.blocks.regions))
        misattributed_shown += int(wrong.sum())
        ev = sim.events
        for name in SHOWN_KINDS:  # the innocent is shown, the actor is not (for this event)
            k = sim.kinds.code(name, "test")
            for b in range(len(ev.kind_at)):
                innocent_targets += [(int(ev.citizen[x]), int(ev.target[x]))
                                     for x in range(ev.kind_at[b, k], ev.kind_at[b, k + 1])
                                     if ev.flags[x] & MISATTRIBUTED]
    return sim, board, np.array(per_day_region), misattributed_shown, innocent_targets, before_refresh


def test_daily_columns_count_displays_and_innocents(replay):
    sim, _, per_day_region, misattributed_shown, innocent_targets, _ = replay
    rows = sim.daily_rows
    displayed = [r["shame_board_displayed"] for r in rows]
    assert displayed == [sum(r[f"{k}_observed"] for k in SHOWN_KINDS) for r in rows]
    assert displayed == per_day_region.sum(axis=1).tolist()
    innocents = [r["shame_board_innocents_displayed"] for r in rows]
    assert innocents == [sum(r[f"{k}_misattributed"] for k in SHOWN_KINDS) for r in rows]
    assert sum(innocents) == misattributed_shown > 0
    assert all(actor != target for actor, target in innocent_targets)
    assert int(sim.published()["shamed"].sum()) == sum(displayed)


def test_region_shame_is_the_window_per_1000_residents(replay):
    sim, _, per_day_region, _, _, _ = replay
    window = per_day_region[-7:].sum(axis=0)  # window_days = 7, today included
    residents = np.diff(sim.blocks.region_start)
    expected = (1000.0 * window / residents).astype(np.float32)
    got = sim.fields.everyone(["region_shame"])["region_shame"]
    np.testing.assert_allclose(got, expected[sim.citizens.region], rtol=1e-6)
    assert got.max() > 0


def test_region_shame_deters_through_the_rate_formula(replay):
    sim, _, _, _, _, before_refresh = replay
    row = int(sim.kinds.params[sim.kinds.code("littering", "test")][0])
    np.testing.assert_allclose(sim.rates(row), 0.01 / (1 + 0.5 * before_refresh.astype(np.float64)),
                               rtol=1e-6)
    assert sim.rates(row).min() < 0.01


def test_cut_ties_are_symmetric_and_counted(replay):
    sim, board, _, _, _, _ = replay
    g = sim.graph
    pairs = _cut_pairs(g.offsets, g.neighbours)
    assert all((j, i) in pairs for i, j in pairs)
    by_board = sum(r["shame_board_edges_cut"] for r in sim.daily_rows)
    by_unfriend = sum(r.get("edges_cut", 0) for r in sim.daily_rows)
    assert by_board == board.cut_total > 0
    assert len(pairs) // 2 == by_board + by_unfriend


def test_same_seed_same_board(scenario):
    runs = []
    for _ in range(2):
        sim = Simulation(scenario, citizens=N, days=20, seed=SEED)
        sim.run()
        runs.append((sim.plugins["consequences"]["shame_board"].shamed.copy(), sim.graph.neighbours.copy(),
                     sim.daily_rows))
    np.testing.assert_array_equal(runs[0][0], runs[1][0])
    np.testing.assert_array_equal(runs[0][1], runs[1][1])
    assert runs[0][2] == runs[1][2]


def test_checkpoint_resume_equals_uninterrupted(scenario, tmp_path):
    straight = Simulation(scenario, citizens=N, days=25, seed=SEED)
    straight.run()
    first = Simulation(scenario, citizens=N, days=25, seed=SEED)
    for _ in range(11):
        first.step()
    checkpoint.save(first, tmp_path / "ck", {"scenario": scenario.to_dict()})
    resumed = Simulation(scenario, citizens=N, days=25, seed=SEED)
    checkpoint.restore(resumed, tmp_path / "ck", json.loads((tmp_path / "ck" / "checkpoint.json").read_text()))
    resumed.run()
    a, b = straight.plugins["consequences"]["shame_board"], resumed.plugins["consequences"]["shame_board"]
    np.testing.assert_array_equal(a.shamed, b.shamed)
    np.testing.assert_array_equal(a.region_shame(), b.region_shame())
    assert straight.daily_rows == resumed.daily_rows


def test_without_unfriending_no_ties_are_cut_by_the_board(scenario):
    sim = Simulation(scenario.override(**{"consequences.shame_board.unfriend_probability": 0.0}),
                     citizens=500, days=5, seed=SEED)
    sim.run()
    assert "shame_board_edges_cut" not in sim.daily_rows[-1]
    assert np.all(sim.graph.neighbours >= 0)


@pytest.mark.parametrize("key, value, match", [
    ("events", [], "events"),
    ("events", ["jaywalk", "jaywalk"], "events"),
    ("window_days", 0, "window_days"),
    ("unfriend_probability", 1.5, "unfriend_probability"),
])
def test_invalid_config_is_rejected(scenario, key, value, match):
    with pytest.raises(ScenarioError, match=rf"consequences\.shame_board.*{match}"):
        scenario.override(**{f"consequences.shame_board.{key}": value})


def test_unknown_event_kind_is_named(scenario):
    with pytest.raises(ScenarioError, match=r"consequences\.shame_board\.events.*'spitting'"):
        Simulation(scenario.override(**{"consequences.shame_board.events": ["spitting"]}), citizens=64, days=1,
                   seed=0)
