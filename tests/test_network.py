"""consequences.network: unfriending listed citizens and chilled speech (SPEC 9.2 step 5)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.consequences.network import chill_all, mark_penalised, unfriend
from socialcredit.engine.events import OBSERVED
from socialcredit.population.blocks import Blocks
from socialcredit.population.graph import csr_from_draws

PEN = dt.FLAG_SPEECH_PENALISED
# edges of a small hand-built graph
EDGES = [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 3)]


def _csr(n, edges):
    rows = [[] for _ in range(n)]
    for i, j in edges:
        rows[i].append(j)
        rows[j].append(i)
    rows = [sorted(r) for r in rows]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    return offsets, np.array([j for r in rows for j in r], np.int32)


def _cut_pairs(offsets, neighbours):
    out = set()
    for i in range(len(offsets) - 1):
        for a in range(offsets[i], offsets[i + 1]):
            if neighbours[a] < 0:
                out.add((i, int(~neighbours[a])))
    return out


def _unfriend(listed, probability, offsets, neighbours, n, seed=1, day=29, block_start=None):
    list_start = np.full(n, dt.NO_DAY, dt.DAY)
    listed = np.array(sorted(listed), np.int64)
    list_start[listed] = 3
    if block_start is None:
        block_start = np.array([0, n], np.int64)
    cut = np.zeros(len(listed), np.int64)
    unfriend(seed, day, probability, listed, list_start, offsets, neighbours, block_start, cut)
    return cut


def test_probability_one_cuts_every_edge_of_the_listed_both_ways():
    offsets, nbr = _csr(5, EDGES)
    cut = _unfriend([1], 1.0, offsets, nbr, 5)
    assert _cut_pairs(offsets, nbr) == {(0, 1), (1, 0), (1, 2), (2, 1), (1, 3), (3, 1)}
    np.testing.assert_array_equal(cut, [3])
    # entries keep their place and decode to the same ids
    _, ref = _csr(5, EDGES)
    np.testing.assert_array_equal(np.where(nbr >= 0, nbr, ~nbr), ref)


def test_edge_between_two_listed_is_cut_once():
    offsets, nbr = _csr(5, EDGES)
    cut = _unfriend([1, 3], 1.0, offsets, nbr, 5)
    pairs = _cut_pairs(offsets, nbr)
    eligible = {e for e in EDGES if 1 in e or 3 in e}
    assert pairs == {p for i, j in eligible for p in ((i, j), (j, i))}
    assert (0, 4) not in pairs and (4, 0) not in pairs
    # the edge 1-3 is handled by the lower id: 1 cuts 0-1, 1-2, 1-3; 3 cuts 2-3, 3-4
    np.testing.assert_array_equal(cut, [3, 2])
    assert cut.sum() == len(eligible)


def test_probability_zero_cuts_nothing():
    offsets, nbr = _csr(5, EDGES)
    cut = _unfriend([0, 1, 2, 3, 4], 0.0, offsets, nbr, 5)
    assert np.all(nbr >= 0)
    assert cut.sum() == 0


def test_no_listed_no_cut():
    offsets, nbr = _csr(5, EDGES)
    cut = _unfriend([], 1.0, offsets, nbr, 5)
    assert np.all(nbr >= 0) and len(cut) == 0


def test_already_cut_edges_stay_cut_and_are_not_counted_again():
    offsets, nbr = _csr(5, EDGES)
    _unfriend([1], 1.0, offsets, nbr, 5)
    cut = _unfriend([1], 1.0, offsets, nbr, 5, day=59)
    np.testing.assert_array_equal(cut, [0])
    assert len(_cut_pairs(offsets, nbr)) == 6
    # a newly listed neighbour cuts only its remaining edges
    cut = _unfriend([1, 3], 1.0, offsets, nbr, 5, day=89)
    np.testing.assert_array_equal(cut, [0, 2])


@pytest.fixture(scope="module")
def big():
    counts = [500] * 40
    blocks = Blocks.from_region_counts(counts, block_size=256)
    g = csr_from_draws(blocks.n, 11, 5, 0.8, blocks)
    return blocks, g


def test_rate_on_a_big_random_graph(big):
    blocks, g = big
    n = blocks.n
    offsets, nbr = g.offsets, g.neighbours.copy()
    listed = np.flatnonzero(np.random.default_rng(2).random(n) < 0.1)
    is_listed = np.zeros(n, bool)
    is_listed[listed] = True
    p = 0.3
    cut = _unfriend(listed, p, offsets, nbr, n, block_start=blocks.block_start)
    src = np.repeat(np.arange(n), np.diff(offsets))
    dst = np.where(nbr >= 0, nbr, ~nbr)
    eligible = is_listed[src] | is_listed[dst]
    was_cut = nbr < 0
    # only edges with a listed endpoint are cut
    assert not np.any(was_cut & ~eligible)
    # both directions together
    pairs = _cut_pairs(offsets, nbr)
    assert pairs == {(j, i) for i, j in pairs}
    n_eligible = int(eligible.sum()) // 2
    n_cut = int(was_cut.sum()) // 2
    assert cut.sum() == n_cut
    assert n_eligible > 5_000
    assert abs(n_cut / n_eligible - p) < 5 * math.sqrt(p * (1 - p) / n_eligible)
    # reproducible for the same (seed, day); different on another day
    again = g.neighbours.copy()
    _unfriend(listed, p, offsets, again, n, block_start=blocks.block_start)
    np.testing.assert_array_equal(again, nbr)
    other = g.neighbours.copy()
    _unfriend(listed, p, offsets, other, n, day=59, block_start=blocks.block_start)
    assert not np.array_equal(other, nbr)


def test_edge_decision_does_not_depend_on_which_endpoint_is_listed_first(big):
    """The draw of an edge is addressed by its lower endpoint and the pair; listing more
    citizens does not change the fate of the edges both runs can cut."""
    blocks, g = big
    n = blocks.n
    gen = np.random.default_rng(4)
    a_listed = np.flatnonzero(gen.random(n) < 0.05)
    b_listed = np.union1d(a_listed, np.flatnonzero(gen.random(n) < 0.05))
    a, b = g.neighbours.copy(), g.neighbours.copy()
    _unfriend(a_listed, 0.5, g.offsets, a, n, block_start=blocks.block_start)
    _unfriend(b_listed, 0.5, g.offsets, b, n, block_start=blocks.block_start)
    src = np.repeat(np.arange(n), np.diff(g.offsets))
    dst = g.neighbours
    in_a = np.isin(src, a_listed) | np.isin(dst, a_listed)
    np.testing.assert_array_equal(a[in_a] < 0, b[in_a] < 0)


# -- chill ---------------------------------------------------------------------


def test_chill_all_by_hand():
    # 0 penalised; 1: neighbours 0 (pen), 2, ~3 (pen, cut); 2: neighbours 1, 3 (pen);
    # 3 penalised; 4: no neighbours; 5: only a cut edge to 0
    rows = [[1, ~5], [0, 2, ~3], [1, 3], [~1, 2], [], [~0]]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    nbr = np.array([j for r in rows for j in r], np.int32)
    flags = np.array([PEN, 0, dt.FLAG_MEMBER, PEN | dt.FLAG_URBAN, 0, 0], dt.FLAGS)
    chill = np.full(6, 0.9, dt.TRAIT)
    chill_all(0.5, 0.5, flags, chill, offsets, nbr)
    np.testing.assert_allclose(chill, [0.5, 0.5 * 1 / 2, 0.5 * 1 / 2, 0.5, 0.0, 0.0])


def test_chill_factors_are_parameters():
    rows = [[1, 2, 3], [0], [0], [0]]
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    nbr = np.array([j for r in rows for j in r], np.int32)
    flags = np.array([0, PEN, PEN, 0], dt.FLAGS)
    chill = np.zeros(4, dt.TRAIT)
    chill_all(0.8, 0.3, flags, chill, offsets, nbr)
    np.testing.assert_allclose(chill, [0.3 * 2 / 3, 0.8, 0.8, 0.0], rtol=1e-6)


def test_mark_penalised_flags_observed_targets_only():
    flags = np.zeros(4, dt.FLAGS)
    flags[0] = dt.FLAG_MEMBER
    # one block; kind 0 = other, kind 1 = speech
    ev_flags = np.array([OBSERVED, OBSERVED, 0, OBSERVED], np.uint8)
    ev_target = np.array([3, 0, 1, 2], np.int32)
    kind_at = np.array([[0, 1, 4]], np.int64)
    mark_penalised(np.array([0, 1], np.int64), 1, flags, ev_flags, ev_target, kind_at)
    np.testing.assert_array_equal(flags & PEN, [PEN, 0, PEN, 0])
    assert flags[0] & dt.FLAG_MEMBER
