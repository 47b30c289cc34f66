"""The social graph: CSR adjacency whose entries carry their own active bit, and its generators."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange
from pydantic import Field

from socialcredit import dtypes as dt
from socialcredit.engine.plugin import Plugin
from socialcredit.population.blocks import Blocks
from socialcredit.population.citizens import Citizens
from socialcredit.registry import register
from socialcredit.rng import Stream, below, stream_key, uniform
from socialcredit.scenario.schema import Strict

_GRAPH = int(Stream.GRAPH)


@dataclass
class Graph:
    """Undirected graph in CSR form; each edge is stored in both endpoints' rows.

    ``neighbours[offsets[i]:offsets[i+1]]`` are ``i``'s neighbours, sorted. A
    cut edge keeps its place with the bits of its id inverted (``~j``, a
    negative number), so the active flag costs no memory and is written with
    the entry itself; ``decode`` recovers the id. Both entries of an edge are
    always cut together.
    """

    offsets: np.ndarray  # int32 or int64 [n+1]
    neighbours: np.ndarray  # int32 [2·edges]; ~j for a cut edge

    @property
    def n(self) -> int:
        """Number of vertices (citizens)."""
        return len(self.offsets) - 1

    @property
    def edges(self) -> int:
        """Number of undirected edges (active or not)."""
        return int(self.offsets[-1]) // 2

    def active_edges(self) -> int:
        """Number of undirected edges still active."""
        return int(np.count_nonzero(self.neighbours >= 0)) // 2

    def active_mask(self) -> np.ndarray:
        """Boolean array over stored entries: True where the edge is active."""
        return self.neighbours >= 0

    def ids(self) -> np.ndarray:
        """Neighbour ids with cut edges decoded (a new array)."""
        return np.where(self.neighbours >= 0, self.neighbours, ~self.neighbours)

    def degree(self) -> np.ndarray:
        """Degree of every vertex, counting inactive edges."""
        return np.diff(self.offsets)

    @property
    def nbytes(self) -> int:
        """Bytes held by the graph arrays."""
        return self.offsets.nbytes + self.neighbours.nbytes


class RegionalRandomConfig(Strict):
    """Each citizen draws partners, mostly inside its own region (SPEC 9.1)."""

    draws: int = Field(ge=0, le=100, description="partner draws per citizen")
    local_share: float = Field(ge=0.0, le=1.0, description="P(a draw stays in the region)")


@njit(cache=True, inline="always")
def _partner(i, key, ctr, lo, hi, n, local):
    """Partner of citizen ``i`` for one draw (never ``i`` itself); -1 if none exists."""
    if uniform(key, ctr) < local and hi - lo > 1:
        j = lo + below(key, ctr + 1, hi - lo - 1)
        return j + 1 if j >= i else j
    if n < 2:
        return -1
    j = below(key, ctr + 1, n - 1)
    return j + 1 if j >= i else j


@njit(cache=True)
def _count(seed, draws, local, block_start, block_region, region_start, n, r0, r1, deg):
    """Degrees of rows ``r0..r1-1`` (``deg[i - r0]``), counting every draw that touches them."""
    for b in range(len(block_region)):
        key = stream_key(seed, _GRAPH, -1, b)
        r = block_region[b]
        lo, hi = region_start[r], region_start[r + 1]
        for i in range(block_start[b], block_start[b + 1]):
            base = (i - block_start[b]) * draws * 2
            mine = r0 <= i < r1
            for d in range(draws):
                j = _partner(i, key, base + 2 * d, lo, hi, n, local)
                if j >= 0:
                    if mine:
                        deg[i - r0] += 1
                    if r0 <= j < r1:
                        deg[j - r0] += 1


@njit(cache=True)
def _fill(seed, draws, local, block_start, block_region, region_start, n, r0, r1, offsets, cursor, nbr):
    """Fill rows ``r0..r1-1`` (``offsets``/``cursor`` indexed by ``i - r0``) with global ids."""
    for b in range(len(block_region)):
        key = stream_key(seed, _GRAPH, -1, b)
        r = block_region[b]
        lo, hi = region_start[r], region_start[r + 1]
        for i in range(block_start[b], block_start[b + 1]):
            base = (i - block_start[b]) * draws * 2
            mine = r0 <= i < r1
            for d in range(draws):
                j = _partner(i, key, base + 2 * d, lo, hi, n, local)
                if j >= 0:
                    if mine:
                        nbr[offsets[i - r0] + cursor[i - r0]] = j
                        cursor[i - r0] += 1
                    if r0 <= j < r1:
                        nbr[offsets[j - r0] + cursor[j - r0]] = i
                        cursor[j - r0] += 1


@njit(cache=True, parallel=True)
def _sort_dedupe_rows(offsets, nbr, unique):
    n = len(offsets) - 1
    for i in prange(n):
        lo, hi = offsets[i], offsets[i + 1]
        # insertion sort: rows are short
        for a in range(lo + 1, hi):
            v = nbr[a]
            c = a - 1
            while c >= lo and nbr[c] > v:
                nbr[c + 1] = nbr[c]
                c -= 1
            nbr[c + 1] = v
        m = 0
        for a in range(lo, hi):
            if m == 0 or nbr[lo + m - 1] != nbr[a]:
                nbr[lo + m] = nbr[a]
                m += 1
        unique[i] = m


@njit(cache=True)
def _compact(old_offsets, new_offsets, nbr):
    # rows move left only, so a left-to-right pass never overwrites unread data
    for i in range(len(old_offsets) - 1):
        src, dst = old_offsets[i], new_offsets[i]
        for a in range(new_offsets[i + 1] - dst):
            nbr[dst + a] = nbr[src + a]


def csr_from_draws(
    n: int, seed: int, draws: int, local: float, blocks: Blocks, rows: tuple[int, int] | None = None
) -> Graph:
    """Build the regional random graph without materialising an edge list.

    Draws are regenerated from their counter-based stream in two passes (count,
    then fill), rows are sorted and de-duplicated in place, then compacted.
    With ``rows=(r0, r1)`` only the rows of citizens ``r0..r1-1`` are kept (a
    partition's share of the graph, neighbours in global ids): every draw is
    still regenerated, but memory is proportional to the rows kept, and each row
    equals the same row of the whole graph.
    """
    r0, r1 = (0, n) if rows is None else rows
    m = r1 - r0
    deg = np.zeros(m, np.int32)
    args = (seed, draws, local, blocks.block_start, blocks.block_region, blocks.region_start, n, r0, r1)
    _count(*args, deg)
    offsets = np.zeros(m + 1, np.int64)
    np.cumsum(deg, out=offsets[1:])
    nbr = np.empty(int(offsets[-1]), dt.CITIZEN_ID)
    deg[:] = 0
    _fill(*args, offsets, deg, nbr)
    _sort_dedupe_rows(offsets, nbr, deg)
    new_offsets = np.zeros(m + 1, np.int64)
    np.cumsum(deg, out=new_offsets[1:])
    del deg
    _compact(offsets, new_offsets, nbr)
    del offsets
    total = int(new_offsets[-1])
    neighbours = nbr[:total]  # a view: the tail held duplicates only
    return Graph(offsets=new_offsets.astype(dt.offsets_dtype(total)), neighbours=neighbours)


@register("graph", "regional-random")
class RegionalRandom(Plugin):
    """Each citizen makes ``draws`` draws: with probability ``local_share`` a
    uniformly random other citizen of its region, else of the population.
    Undirected; self-loops and duplicates dropped."""

    Config = RegionalRandomConfig

    def build(self, blocks: Blocks, seed: int, citizens: Citizens | None = None) -> Graph:
        """Generate the graph for the citizens laid out by ``blocks`` (attributes unused)."""
        return csr_from_draws(blocks.n, seed, self.config.draws, self.config.local_share, blocks)

    def build_rows(self, blocks: Blocks, seed: int, r0: int, r1: int) -> Graph:
        """Rows ``r0..r1-1`` of the graph ``build`` makes (neighbours in global ids), in memory
        proportional to those rows: a partition's share of the graph."""
        return csr_from_draws(blocks.n, seed, self.config.draws, self.config.local_share, blocks, rows=(r0, r1))
