"""Small numba kernels shared by several stages."""

from __future__ import annotations

import numpy as np
from numba import njit, prange

from socialcredit.rng import mix64


@njit(cache=True)
def collect(ev_citizen, ev_flags, kind_at, bit, kind):
    """Citizens of the day's events of ``kind`` with flag ``bit`` set, sorted."""
    n = 0
    for b in range(len(kind_at)):
        for e in range(kind_at[b, kind], kind_at[b, kind + 1]):
            if ev_flags[e] & bit:
                n += 1
    out = np.empty(n, np.int32)
    n = 0
    for b in range(len(kind_at)):
        for e in range(kind_at[b, kind], kind_at[b, kind + 1]):
            if ev_flags[e] & bit:
                out[n] = ev_citizen[e]
                n += 1
    return np.sort(out)


@njit(cache=True)
def positions(kind_at, kind):
    """Buffer positions of the day's events of ``kind``, block by block."""
    n = 0
    for b in range(len(kind_at)):
        n += kind_at[b, kind + 1] - kind_at[b, kind]
    out = np.empty(n, np.int64)
    n = 0
    for b in range(len(kind_at)):
        for e in range(kind_at[b, kind], kind_at[b, kind + 1]):
            out[n] = e
            n += 1
    return out


@njit(cache=True, inline="always")
def edge_draw(block_start, i, j):
    """(block, counter) addressing the one draw that decides edge {i, j}: the lower endpoint's
    block and position, with the higher endpoint, so both rows reach the same decision."""
    lo_end, hi_end = (i, j) if i < j else (j, i)
    b = np.searchsorted(block_start, lo_end, side="right") - 1
    return b, (lo_end - block_start[b]) * 2_147_483_648 + hi_end


@njit(cache=True, inline="always")
def cut_edge(offsets, neighbours, a, i, j):
    """Cut edge {i, j} whose entry in i's row is ``a``: both entries become ``~id``
    (the reverse one found by binary search in j's row, sorted by decoded id)."""
    neighbours[a] = ~j
    lo, hi = offsets[j], offsets[j + 1]
    while lo < hi:
        mid = (lo + hi) // 2
        v = neighbours[mid]
        if (v if v >= 0 else ~v) < i:
            lo = mid + 1
        else:
            hi = mid
    neighbours[lo] = ~i


@njit(cache=True, parallel=True)
def count_day(ev_flags, kind_at):
    """Per kind: [events, observed, misattributed, denied, judged, defaulted, removed]."""
    nb, nk = kind_at.shape[0], kind_at.shape[1] - 1
    per_block = np.zeros((nb, nk, 7), np.int64)
    for b in prange(nb):
        for k in range(nk):
            per_block[b, k, 0] = kind_at[b, k + 1] - kind_at[b, k]
            for e in range(kind_at[b, k], kind_at[b, k + 1]):
                f = ev_flags[e]
                for j in range(6):
                    if f & (1 << j):
                        per_block[b, k, j + 1] += 1
    return per_block.sum(axis=0)


@njit(cache=True, parallel=True)
def collect_panel(ev_citizen, ev_target, kind_at, flags, panel_bit):
    """Indices of the day's events whose actor or attributed citizen is in the panel."""
    nb, nk = kind_at.shape[0], kind_at.shape[1] - 1
    found = np.zeros(nb + 1, np.int64)
    for b in prange(nb):
        n = 0
        for e in range(kind_at[b, 0], kind_at[b, nk]):
            if flags[ev_citizen[e]] & panel_bit or flags[ev_target[e]] & panel_bit:
                n += 1
        found[b + 1] = n
    at = np.cumsum(found)
    out = np.empty(at[nb], np.int64)
    for b in prange(nb):
        n = at[b]
        for e in range(kind_at[b, 0], kind_at[b, nk]):
            if flags[ev_citizen[e]] & panel_bit or flags[ev_target[e]] & panel_bit:
                out[n] = e
                n += 1
    return out


@njit(cache=True, parallel=True)
def active_degree(offsets, neighbours):
    """Number of active edges of every vertex (cut entries are negative)."""
    n = len(offsets) - 1
    out = np.zeros(n, np.int32)
    for i in prange(n):
        k = 0
        for a in range(offsets[i], offsets[i + 1]):
            if neighbours[a] >= 0:
                k += 1
        out[i] = k
    return out


@njit(cache=True)
def cut_bits(neighbours):
    """Bit set of the cut entries (1 = cut), eight entries a byte, little-endian."""
    out = np.zeros((len(neighbours) + 7) // 8, np.uint8)
    for a in range(len(neighbours)):
        if neighbours[a] < 0:
            out[a >> 3] |= np.uint8(1 << (a & 7))
    return out


@njit(cache=True)
def apply_cut_bits(neighbours, bits):
    """Mark as cut the entries set in ``bits`` (see ``cut_bits``)."""
    for a in range(len(neighbours)):
        if bits[a >> 3] & (1 << (a & 7)) and neighbours[a] >= 0:
            neighbours[a] = ~neighbours[a]


@njit(cache=True)
def mean_sd(values):
    """Mean and population standard deviation (ddof 0) in float64, without temporaries.

    Sequential (Welford), so the result does not depend on the thread count.
    """
    mean = 0.0
    m2 = 0.0
    n = 0
    for x in values:
        n += 1
        d = x - mean
        mean += d / n
        m2 += d * (x - mean)
    if n == 0:
        return np.nan, np.nan
    return mean, np.sqrt(m2 / n)


@njit(cache=True)
def band_counts(values, lows):
    """Count values per band; ``lows`` are the bands' lower bounds, highest band first."""
    out = np.zeros(len(lows), np.int64)
    for x in values:
        for g in range(len(lows)):
            if x >= lows[g]:
                out[g] += 1
                break
    return out


@njit(cache=True)
def structure_hash(offsets, neighbours):
    """A 64-bit hash of the graph's structure (cut edges count as present)."""
    h = np.uint64(len(offsets))
    for i in range(len(offsets) - 1):
        h = mix64(h ^ np.uint64(offsets[i + 1] - offsets[i]))
    for a in range(len(neighbours)):
        j = neighbours[a]
        h = mix64(h ^ np.uint64(j if j >= 0 else ~j))
    return np.int64(h)


@njit(cache=True)
def involving(ev_citizen, ev_target, kind_at, ids):
    """Indices of the day's events whose actor or attributed citizen is in sorted ``ids``."""
    nb, nk = kind_at.shape[0], kind_at.shape[1] - 1
    out = []
    for b in range(nb):
        for e in range(kind_at[b, 0], kind_at[b, nk]):
            a = np.searchsorted(ids, ev_citizen[e])
            t = np.searchsorted(ids, ev_target[e])
            if (a < len(ids) and ids[a] == ev_citizen[e]) or (t < len(ids) and ids[t] == ev_target[e]):
                out.append(e)
    return np.array(out, np.int64)
