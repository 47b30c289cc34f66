"""population.graph: the regional random graph (SPEC 9.1) in CSR form."""

from __future__ import annotations

import numpy as np
import pytest

from socialcredit.population.blocks import Blocks
from socialcredit.population.graph import Graph, csr_from_draws
from socialcredit.scenario import Scenario

COUNTS = [200] * 30 + [1]  # 31 regions; the last holds one citizen
N = sum(COUNTS)
SINGLETON = N - 1


def _build(seed=1, draws=5, local=0.8, counts=COUNTS, block_size=64):
    blocks = Blocks.from_region_counts(counts, block_size=block_size)
    return blocks, csr_from_draws(blocks.n, seed, draws, local, blocks)


@pytest.fixture(scope="module")
def built():
    return _build()


def _edge_pairs(g: Graph) -> np.ndarray:
    src = np.repeat(np.arange(g.n), np.diff(g.offsets))
    return np.stack([src, g.ids()], axis=1)


def test_rows_sorted_no_self_loops_no_duplicates(built):
    _, g = built
    assert g.n == N
    assert g.offsets[0] == 0 and g.offsets[-1] == len(g.neighbours)
    assert np.all(g.neighbours >= 0), "all edges start active"
    for i in range(g.n):
        row = g.neighbours[g.offsets[i] : g.offsets[i + 1]]
        assert np.all(np.diff(row) > 0), f"row {i} not strictly increasing"
        assert i not in row
        assert row.size == 0 or (row.min() >= 0 and row.max() < N)


def test_symmetric(built):
    _, g = built
    pairs = _edge_pairs(g)
    fwd = set(map(tuple, pairs.tolist()))
    assert fwd == {(j, i) for i, j in fwd}
    assert len(pairs) % 2 == 0
    assert g.edges == len(pairs) // 2 == g.active_edges()


def test_local_share_and_mean_degree(built):
    blocks, g = built
    region = blocks.region_of()
    pairs = _edge_pairs(g)
    local = np.mean(region[pairs[:, 0]] == region[pairs[:, 1]])
    # 0.8 local draws + 0.2 · (≈1/31 of population draws land in the region), less a few local duplicates
    assert 0.77 < local < 0.83
    mean_degree = g.degree().mean()
    # every draw makes one edge, so 2·draws is the upper bound; duplicates (≈ 2% here) lower it a little
    assert mean_degree <= 10.0
    assert mean_degree > 9.6


def test_local_share_extremes():
    blocks, g = _build(local=0.0, counts=[300] * 10)
    region = blocks.region_of()
    pairs = _edge_pairs(g)
    assert abs(np.mean(region[pairs[:, 0]] == region[pairs[:, 1]]) - 0.1) < 0.02
    blocks, g = _build(local=1.0, counts=[300] * 10)
    pairs = _edge_pairs(g)
    region = blocks.region_of()
    assert np.all(region[pairs[:, 0]] == region[pairs[:, 1]])


def test_singleton_region_gets_population_wide_partners():
    blocks, g = _build(local=1.0)
    region = blocks.region_of()
    pairs = _edge_pairs(g)
    mine = pairs[(pairs[:, 0] == SINGLETON)]
    # its five draws fall back to the whole population (nobody else draws it with local = 1)
    assert 1 <= len(mine) <= 5
    assert len(mine) == 5  # no duplicate among 5 draws out of 6000 for this seed
    assert np.all(region[mine[:, 1]] != region[SINGLETON])
    others = pairs[(pairs[:, 0] != SINGLETON) & (pairs[:, 1] != SINGLETON)]
    assert np.all(region[others[:, 0]] == region[others[:, 1]])


def test_deterministic_for_a_seed_and_different_for_another(built):
    _, g = built
    _, again = _build()
    np.testing.assert_array_equal(g.offsets, again.offsets)
    np.testing.assert_array_equal(g.neighbours, again.neighbours)
    _, other = _build(seed=2)
    assert len(g.neighbours) != len(other.neighbours) or not np.array_equal(g.neighbours, other.neighbours)
    a = set(map(tuple, _edge_pairs(g).tolist()))
    b = set(map(tuple, _edge_pairs(other).tolist()))
    assert len(a & b) < 0.05 * len(a)


def test_independent_of_block_size():
    """Draws are keyed by block, so a different block size gives a different (but valid) graph;
    the same block layout gives the same graph."""
    _, g1 = _build(block_size=64)
    _, g2 = _build(block_size=64)
    np.testing.assert_array_equal(g1.neighbours, g2.neighbours)
    _, g3 = _build(block_size=128)
    assert g3.edges > 0.95 * 5 * N


def test_zero_draws_and_tiny_populations():
    _, g = _build(draws=0)
    assert g.edges == 0 and np.all(g.offsets == 0)
    blocks = Blocks.from_region_counts([1])
    g = csr_from_draws(1, 1, 5, 0.8, blocks)
    assert g.n == 1 and g.edges == 0
    blocks = Blocks.from_region_counts([2])
    g = csr_from_draws(2, 1, 5, 0.8, blocks)
    # every draw of either citizen can only pick the other one: a single edge
    np.testing.assert_array_equal(g.offsets, [0, 1, 2])
    np.testing.assert_array_equal(g.neighbours, [1, 0])


def test_graph_helpers_decode_cut_edges():
    g = Graph(offsets=np.array([0, 2, 3, 4], np.int32), neighbours=np.array([1, ~2, 0, ~0], np.int32))
    assert g.n == 3 and g.edges == 2 and g.active_edges() == 1
    np.testing.assert_array_equal(g.ids(), [1, 2, 0, 0])
    np.testing.assert_array_equal(g.active_mask(), [True, False, True, False])
    np.testing.assert_array_equal(g.degree(), [2, 1, 1])


def test_plugin_builds_from_ref_config():
    plugin = Scenario.load("ref").plugins("graph")["graph"]
    assert plugin.config.draws == 5 and plugin.config.local_share == 0.8
    blocks = Blocks.from_region_counts([100] * 5)
    g = plugin.build(blocks, 3)
    expected = csr_from_draws(500, 3, 5, 0.8, blocks)
    np.testing.assert_array_equal(g.neighbours, expected.neighbours)
    assert g.offsets.dtype == np.int32


@pytest.mark.parametrize("r0, r1", [(0, N), (0, 200), (200, 1400), (1400, N), (3000, 3000), (5, 6)])
def test_rows_of_a_partition_equal_those_rows_of_the_whole_graph(built, r0, r1):
    blocks, g = built
    part = csr_from_draws(blocks.n, 1, 5, 0.8, blocks, rows=(r0, r1))
    assert part.n == r1 - r0
    want = g.neighbours[g.offsets[r0] : g.offsets[r1]]
    np.testing.assert_array_equal(part.offsets, np.asarray(g.offsets[r0 : r1 + 1]) - g.offsets[r0])
    np.testing.assert_array_equal(part.neighbours, want)
    assert part.neighbours.nbytes == want.nbytes, "memory proportional to the rows kept"
