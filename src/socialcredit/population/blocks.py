"""Citizen blocks: the unit of random streams and of parallel work.

Citizens are numbered region by region, and each region is cut into blocks of
at most ``BLOCK_SIZE`` citizens, so a block never straddles two regions. Every
random draw belongs to one block's stream, which is what makes results
independent of thread and worker counts; grouping by region keeps
misattribution (which stays inside a region) inside one worker.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BLOCK_SIZE = 65_536


@dataclass(frozen=True)
class Blocks:
    """Region and block boundaries over citizen ids ``0..n-1``."""

    region_start: np.ndarray  # int64[R+1]: first citizen of each region
    block_start: np.ndarray  # int64[B+1]: first citizen of each block
    block_region: np.ndarray  # int64[B]: region of each block
    region_first_block: np.ndarray  # int64[R+1]: first block of each region

    @classmethod
    def from_region_counts(cls, counts: np.ndarray, block_size: int = BLOCK_SIZE) -> Blocks:
        """Blocks for regions holding ``counts[r]`` consecutive citizens."""
        counts = np.asarray(counts, dtype=np.int64)
        region_start = np.concatenate([[0], np.cumsum(counts)])
        per_region = -(-counts // block_size)  # ceil division; empty regions get no block
        region_first_block = np.concatenate([[0], np.cumsum(per_region)])
        starts, regions = [], []
        for r, (lo, nblk) in enumerate(zip(region_start[:-1], per_region, strict=True)):
            starts.extend(lo + block_size * np.arange(nblk))
            regions.extend([r] * nblk)
        block_start = np.array([*starts, region_start[-1]], dtype=np.int64)
        return cls(region_start, block_start, np.array(regions, dtype=np.int64), region_first_block)

    @property
    def n(self) -> int:
        """Number of citizens."""
        return int(self.region_start[-1])

    @property
    def regions(self) -> int:
        """Number of regions."""
        return len(self.region_start) - 1

    @property
    def count(self) -> int:
        """Number of blocks."""
        return len(self.block_region)

    def region_of(self) -> np.ndarray:
        """Region of every citizen (uint8), expanded from the boundaries."""
        return np.repeat(np.arange(self.regions, dtype=np.uint8), np.diff(self.region_start))

    def slices(self, sorted_ids: np.ndarray) -> np.ndarray:
        """For ids sorted ascending, the index where each block's ids start (int64[B+1])."""
        return np.searchsorted(sorted_ids, self.block_start).astype(np.int64)
