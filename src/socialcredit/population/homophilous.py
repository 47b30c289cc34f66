"""A homophilous social graph with a heavy-tailed degree distribution and family edges.

Each citizen ``i`` makes ``D_i`` partner draws; ``D_i`` is a discrete Pareto
(tail exponent ``tail_exponent``, capped at ``max_draws``) scaled by the
citizen's sociability. A draw stays in the province with probability
``local_share``; a draw that stays picks, with probability ``near_share``, a
citizen close in id (within ``near_window`` × the province's size on either
side), else any other citizen of the province; a draw that leaves picks any
other citizen. Populations that order each province by (urban, income), such
as ``china``, thus give homophily by province, urban/rural and income. Each
citizen with a ``parent`` gets an edge to the parent. Undirected; self-loops
and duplicates dropped.

Built like ``graph.csr_from_draws``: counter-based draws from per-block streams
(stream day -2) are regenerated in two passes (count, then fill), then rows are
sorted, de-duplicated and compacted in place with its helpers. Draws per
citizen, and how many of them leave the province (a binomial by inversion),
are drawn once. Province draws are made province by province in parallel (each
touches only its own province's rows). Draws that leave the province are
written into bins by target province (the only edges held in a list, about
``1 - local_share`` of them), then both ends are written in parallel, by source
block and by target province. So the result does not depend on thread counts.
"""

from __future__ import annotations

from functools import partial

import numpy as np
from numba import njit, prange
from pydantic import Field

from socialcredit import dtypes as dt
from socialcredit.engine.plugin import Plugin
from socialcredit.population.blocks import Blocks
from socialcredit.population.citizens import Citizens
from socialcredit.population.graph import Graph, _compact, _sort_dedupe_rows
from socialcredit.registry import register
from socialcredit.rng import Stream, below, stream_key, uniform, uniform_open
from socialcredit.scenario.schema import Strict

_GRAPH = int(Stream.GRAPH)
_DAY = -2  # stream day of this generator (the regional-random graph uses -1)
LONG_ROW = 48  # rows longer than this are sorted with np.sort before the shared insertion sort


class HomophilousConfig(Strict):
    """Heavy-tailed partner draws, mostly near in the province's (urban, income) order."""

    mean_draws: float = Field(6.5, gt=0, le=100, description="mean partner draws per citizen (the mean degree "
                              "is about twice this, plus family edges)")
    tail_exponent: float = Field(2.2, gt=1.05, le=20, description="Pareto exponent of draws per citizen "
                                 "(smaller: heavier tail)")
    max_draws: int = Field(300, ge=1, le=1000, description="cap on draws per citizen")
    local_share: float = Field(0.85, ge=0, le=1, description="P(a draw stays in the citizen's province)")
    near_share: float = Field(0.6, ge=0, le=1, description="P(a draw that stays is near in id: similar "
                              "urban status and income)")
    near_window: float = Field(0.01, gt=0, le=1, description="a near partner is at most this share of the "
                               "province's citizens away in id")
    family: bool = Field(True, description="an edge from each citizen to its parent (citizens.extra['parent'])")
    sociability_weight: float = Field(0.5, ge=0, le=1, description="draws scale by (1 - w) + w · sociability / "
                                      "mean sociability (citizens.extra['sociability'])")


@njit(cache=True, inline="always")
def _national_count(u, k, p, pow_table):
    """Binomial(k, p) by inversion of the uniform ``u`` (k is small on average).

    ``pow_table[k]`` = max(p, 1 - p)^k; inverting the count of the likelier
    outcome keeps the first term away from underflow (k <= 1000).
    """
    if p <= 0.0:
        return 0
    if p >= 1.0:
        return k
    flip = p > 0.5
    q = 1.0 - p if flip else p
    ratio = q / (1.0 - q)
    pmf = pow_table[k]
    cdf = pmf
    x = 0
    while u > cdf and x < k:
        pmf *= (k - x) / (x + 1.0) * ratio
        x += 1
        cdf += pmf
    return k - x if flip else x


@njit(cache=True, parallel=True)
def _draw_counts(seed, block_start, block_region, region_start, scale, x_min, inv_alpha, cap, local, k_loc, k_nat):
    """Draws per citizen: D_i = floor(x_min · scale_i · U^(-1/alpha)) capped, split into province draws
    and national ones (Binomial(D_i, 1 - local); all national in a province of one)."""
    lonely = region_start[-1] < 2  # nobody to draw
    pow_table = max(local, 1.0 - local) ** np.arange(cap + 1).astype(np.float64)
    for b in prange(len(block_region)):
        key = stream_key(seed, _GRAPH, _DAY, b)
        r = block_region[b]
        alone = region_start[r + 1] - region_start[r] < 2
        lo = block_start[b]
        for i in range(lo, block_start[b + 1]):
            base = (i - lo) * (2 + 2 * cap)
            k = 0 if lonely else min(cap, int(x_min * scale[i] * uniform_open(key, base) ** (-inv_alpha)))
            nat = k if alone else _national_count(uniform(key, base + 1), k, 1.0 - local, pow_table)
            k_loc[i] = k - nat
            k_nat[i] = nat


@njit(cache=True, inline="always")
def _local_partner(i, key, ctr, rlo, rhi, near_share, window):
    """Partner in the province ``rlo..rhi-1`` (near in id or uniform); never ``i``; -1 if none."""
    if uniform(key, ctr) < near_share:
        d = below(key, ctr + 1, 2 * window)
        off = d - window if d < window else d - window + 1
        j = i + off
        if j < rlo or j >= rhi:
            j = i - off
        j = min(max(j, rlo), rhi - 1)
        return j if j != i else -1
    j = rlo + below(key, ctr + 1, rhi - rlo - 1)
    return j + 1 if j >= i else j


@njit(cache=True, inline="always")
def _region_of(j, region_start):
    """Province of citizen ``j`` (binary search over the boundaries)."""
    lo, hi = 0, len(region_start) - 2
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if region_start[mid] <= j:
            lo = mid
        else:
            hi = mid - 1
    return lo


COUNT, BIN, FILL = 0, 1, 2


@njit(cache=True)
def _block(seed, b, lo, hi, rlo, rhi, cap, near_share, near_window, k_loc, k_nat, parent, region_start, mode,
           deg, ptr, nbr, bins, bin_src, bin_dst):
    """One block's edges. COUNT: province edges at both ends into ``deg``, national ones at their
    source end and into ``bins[b, province of target]``; BIN: national edges into the bins
    (``bins`` holds the next free slots); FILL: province edges into the rows (``ptr``: next free
    entry of each row). Family edges are province edges when the parent lives in the province.
    """
    n = region_start[-1]
    key = stream_key(seed, _GRAPH, _DAY, b)
    window = max(1, min(rhi - rlo - 1, int(near_window * (rhi - rlo) + 0.5)))
    for i in range(lo, hi):
        base = (i - lo) * (2 + 2 * cap) + 2
        if mode != BIN:
            for d in range(k_loc[i]):
                j = _local_partner(i, key, base + 2 * d, rlo, rhi, near_share, window)
                if j >= 0:
                    _local_edge(i, j, mode, deg, ptr, nbr)
        if mode != FILL:
            for d in range(k_loc[i], k_loc[i] + k_nat[i]):
                j = below(key, base + 2 * d, n - 1)
                _national_edge(i, j + 1 if j >= i else j, b, mode, region_start, deg, bins, bin_src, bin_dst)
        pi = parent[i] if len(parent) else -1
        if pi < 0 or pi == i:
            continue
        if rlo <= pi < rhi:
            if mode != BIN:
                _local_edge(i, pi, mode, deg, ptr, nbr)
        elif mode != FILL:
            _national_edge(i, pi, b, mode, region_start, deg, bins, bin_src, bin_dst)


@njit(cache=True, inline="always")
def _local_edge(i, j, mode, deg, ptr, nbr):
    if mode == COUNT:
        deg[i] += 1
        deg[j] += 1
    else:
        nbr[ptr[i]] = j
        ptr[i] += 1
        nbr[ptr[j]] = i
        ptr[j] += 1


@njit(cache=True, inline="always")
def _national_edge(i, j, b, mode, region_start, deg, bins, bin_src, bin_dst):
    r = _region_of(j, region_start)
    if mode == COUNT:
        deg[i] += 1
    else:
        bin_src[bins[b, r]] = i
        bin_dst[bins[b, r]] = j
    bins[b, r] += 1


@njit(cache=True, parallel=True)
def _pass(seed, block_start, region_start, region_first_block, cap, near_share, near_window, k_loc, k_nat, parent,
          mode, deg, ptr, nbr, bins, bin_src, bin_dst):
    """Every block's edges (see ``_block``), provinces in parallel: each writes only its own rows."""
    for r in prange(len(region_start) - 1):
        rlo, rhi = region_start[r], region_start[r + 1]
        for b in range(region_first_block[r], region_first_block[r + 1]):
            _block(seed, b, block_start[b], block_start[b + 1], rlo, rhi, cap, near_share, near_window, k_loc,
                   k_nat, parent, region_start, mode, deg, ptr, nbr, bins, bin_src, bin_dst)


@njit(cache=True, parallel=True)
def _far_ends(bin_dst, bin_src, region_bin, deg, ptr, nbr, fill):
    """The target ends of national edges, province by province in parallel: counted or written."""
    for r in prange(len(region_bin) - 1):
        for e in range(region_bin[r], region_bin[r + 1]):
            j = bin_dst[e]
            if fill:
                nbr[ptr[j]] = bin_src[e]
                ptr[j] += 1
            else:
                deg[j] += 1


@njit(cache=True, parallel=True)
def _near_ends(bin_src, bin_dst, slots, counts, ptr, nbr):
    """The source ends of national edges, block by block in parallel (each block owns its rows)."""
    for b in prange(counts.shape[0]):
        for r in range(counts.shape[1]):
            for e in range(slots[b, r], slots[b, r] + counts[b, r]):
                i = bin_src[e]
                nbr[ptr[i]] = bin_dst[e]
                ptr[i] += 1


@njit(cache=True, parallel=True)
def _sort_long_rows(offsets, nbr, longer_than):
    """Sort rows longer than ``longer_than`` (O(d log d)); the shared insertion sort then finds them sorted."""
    for i in prange(len(offsets) - 1):
        lo, hi = offsets[i], offsets[i + 1]
        if hi - lo > longer_than:
            nbr[lo:hi] = np.sort(nbr[lo:hi])


def draw_scale(citizens: Citizens | None, weight: float, n: int) -> np.ndarray:
    """Per-citizen multiplier of draws from sociability (ones without it)."""
    if citizens is None or "sociability" not in citizens.extra or weight == 0 or n == 0:
        return np.ones(n, np.float64)
    s = citizens.extra["sociability"].astype(np.float64)
    mean = float(s.mean())
    return (1 - weight) + weight * s / mean if mean > 0 else np.ones(n, np.float64)


def homophilous_csr(blocks: Blocks, seed: int, config: HomophilousConfig,
                    citizens: Citizens | None = None) -> Graph:
    """Build the graph (see the module docstring) for the citizens laid out by ``blocks``."""
    c, n = config, blocks.n
    parent = np.empty(0, dt.CITIZEN_ID)
    if c.family and citizens is not None and "parent" in citizens.extra:
        parent = citizens.extra["parent"].astype(dt.CITIZEN_ID, copy=False)
    k_loc, k_nat = np.empty(n, np.uint16), np.empty(n, np.uint16)
    x_min = (c.mean_draws + 0.5) * (c.tail_exponent - 1) / c.tail_exponent  # E[floor(X)] ≈ E[X] - 1/2
    _draw_counts(seed, blocks.block_start, blocks.block_region, blocks.region_start,
                 draw_scale(citizens, c.sociability_weight, n), x_min, 1.0 / c.tail_exponent, c.max_draws,
                 c.local_share, k_loc, k_nat)
    run = partial(_pass, seed, blocks.block_start, blocks.region_start, blocks.region_first_block, c.max_draws,
                  c.near_share, c.near_window, k_loc, k_nat, parent)
    deg = np.zeros(n, np.int32)
    bins = np.zeros((blocks.count, blocks.regions), np.int64)  # national edges by (source block, target province)
    no_rows, no_ids = np.empty(0, np.int64), np.empty(0, dt.CITIZEN_ID)
    run(COUNT, deg, no_rows, no_ids, bins, no_ids, no_ids)
    starts = np.zeros(bins.size + 1, np.int64)  # bins laid out province-major, then by source block
    np.cumsum(bins.T.ravel(), out=starts[1:])
    slots = starts[:-1].reshape(blocks.regions, blocks.count).T.copy()
    region_bin = starts[:: max(blocks.count, 1)] if blocks.count else np.zeros(blocks.regions + 1, np.int64)
    src, dst = np.empty(int(starts[-1]), dt.CITIZEN_ID), np.empty(int(starts[-1]), dt.CITIZEN_ID)
    run(BIN, deg, no_rows, no_ids, slots.copy(), src, dst)
    _far_ends(dst, src, region_bin, deg, no_rows, no_ids, False)
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(deg, out=offsets[1:])
    nbr = np.empty(int(offsets[-1]), dt.CITIZEN_ID)
    ptr = offsets[:-1].astype(dt.offsets_dtype(len(nbr)))  # next free entry of each row
    run(FILL, deg, ptr, nbr, bins, no_ids, no_ids)
    _near_ends(src, dst, slots, bins, ptr, nbr)
    _far_ends(dst, src, region_bin, deg, ptr, nbr, True)
    del src, dst, ptr, k_loc, k_nat
    _sort_long_rows(offsets, nbr, LONG_ROW)
    _sort_dedupe_rows(offsets, nbr, deg)
    new_offsets = np.zeros(n + 1, np.int64)
    np.cumsum(deg, out=new_offsets[1:])
    del deg
    _compact(offsets, new_offsets, nbr)
    del offsets
    total = int(new_offsets[-1])
    return Graph(offsets=new_offsets.astype(dt.offsets_dtype(total)), neighbours=nbr[:total])


@register("graph", "homophilous")
class Homophilous(Plugin):
    """Homophily by province, urban/rural and income; heavy-tailed degrees; family edges."""

    Config = HomophilousConfig
    uses_population = True  # the population is filled first: sociability, parents and the id order

    def build(self, blocks: Blocks, seed: int, citizens: Citizens | None = None) -> Graph:
        """Generate the graph; ``citizens`` supplies sociability and parents (optional)."""
        return homophilous_csr(blocks, seed, self.config, citizens)
