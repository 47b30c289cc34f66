"""population.blocks: blocks cut regions, never straddle them; empty regions get none."""

from __future__ import annotations

import numpy as np

from socialcredit.population.blocks import BLOCK_SIZE, Blocks


def _check_invariants(blocks: Blocks, counts, block_size: int) -> None:
    counts = np.asarray(counts)
    np.testing.assert_array_equal(blocks.region_start, np.concatenate([[0], np.cumsum(counts)]))
    assert blocks.block_start[0] == 0
    assert blocks.block_start[-1] == counts.sum()
    sizes = np.diff(blocks.block_start)
    assert np.all(sizes >= 1)
    assert np.all(sizes <= block_size)
    assert len(blocks.block_region) == blocks.count == len(blocks.block_start) - 1
    for b in range(blocks.count):
        r = blocks.block_region[b]
        assert blocks.region_start[r] <= blocks.block_start[b]
        assert blocks.block_start[b + 1] <= blocks.region_start[r + 1]
    for r in range(blocks.regions):
        first, last = blocks.region_first_block[r], blocks.region_first_block[r + 1]
        assert last - first == -(-counts[r] // block_size)
        assert np.all(blocks.block_region[first:last] == r)
        if last > first:
            assert blocks.block_start[first] == blocks.region_start[r]
            assert blocks.block_start[last] == blocks.region_start[r + 1]


def test_small_blocks_by_hand():
    blocks = Blocks.from_region_counts([3, 0, 10, 5], block_size=4)
    np.testing.assert_array_equal(blocks.region_start, [0, 3, 3, 13, 18])
    np.testing.assert_array_equal(blocks.block_start, [0, 3, 7, 11, 13, 17, 18])
    np.testing.assert_array_equal(blocks.block_region, [0, 2, 2, 2, 3, 3])
    np.testing.assert_array_equal(blocks.region_first_block, [0, 1, 1, 4, 6])
    assert blocks.n == 18
    assert blocks.regions == 4
    assert blocks.count == 6
    _check_invariants(blocks, [3, 0, 10, 5], 4)


def test_large_region_with_small_blocks():
    counts = [3, 0, 70_000, 5]
    blocks = Blocks.from_region_counts(counts, block_size=4)
    _check_invariants(blocks, counts, 4)
    assert blocks.count == 1 + 0 + 17_500 + 2
    assert 1 not in set(blocks.block_region.tolist())  # the empty region has no block
    np.testing.assert_array_equal(blocks.region_first_block, [0, 1, 1, 17_501, 17_503])


def test_default_block_size_splits_a_region_larger_than_one_block():
    counts = [3, 0, 70_000, 5]
    blocks = Blocks.from_region_counts(counts)
    _check_invariants(blocks, counts, BLOCK_SIZE)
    np.testing.assert_array_equal(blocks.block_start, [0, 3, 3 + BLOCK_SIZE, 70_003, 70_008])
    np.testing.assert_array_equal(blocks.block_region, [0, 2, 2, 3])
    np.testing.assert_array_equal(blocks.region_first_block, [0, 1, 1, 3, 4])


def test_empty_regions_at_the_ends():
    counts = [0, 0, 4, 0]
    blocks = Blocks.from_region_counts(counts, block_size=2)
    _check_invariants(blocks, counts, 2)
    np.testing.assert_array_equal(blocks.block_start, [0, 2, 4])
    np.testing.assert_array_equal(blocks.block_region, [2, 2])
    np.testing.assert_array_equal(blocks.region_first_block, [0, 0, 0, 2, 2])


def test_region_of_expands_boundaries():
    blocks = Blocks.from_region_counts([2, 0, 3, 1], block_size=2)
    region = blocks.region_of()
    assert region.dtype == np.uint8
    np.testing.assert_array_equal(region, [0, 0, 2, 2, 2, 3])


def test_slices_of_sorted_ids():
    blocks = Blocks.from_region_counts([3, 0, 10, 5], block_size=4)
    ids = np.array([0, 2, 3, 12, 13, 17], np.int32)
    at = blocks.slices(ids)
    assert at.dtype == np.int64
    np.testing.assert_array_equal(at, [0, 2, 3, 3, 4, 5, 6])
    for b in range(blocks.count):
        chunk = ids[at[b] : at[b + 1]]
        assert np.all((chunk >= blocks.block_start[b]) & (chunk < blocks.block_start[b + 1]))


def test_slices_of_no_ids():
    blocks = Blocks.from_region_counts([3, 4], block_size=2)
    np.testing.assert_array_equal(blocks.slices(np.empty(0, np.int32)), np.zeros(blocks.count + 1))


def test_random_counts_invariants():
    gen = np.random.default_rng(3)
    for _ in range(20):
        counts = gen.integers(0, 40, size=gen.integers(1, 12))
        if counts.sum() == 0:
            continue
        bs = int(gen.integers(1, 9))
        _check_invariants(Blocks.from_region_counts(counts, block_size=bs), counts, bs)
