"""Small numba kernels shared by several stages."""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(cache=True)
def collect(ev_citizen, ev_kind, ev_flags, slot_start, count, bit, kind):
    """Citizens of the day's events with flag ``bit`` set (and of ``kind`` if ≥ 0), sorted."""
    n = 0
    for b in range(len(count)):
        for e in range(slot_start[b], slot_start[b] + count[b]):
            if ev_flags[e] & bit and (kind < 0 or ev_kind[e] == kind):
                n += 1
    out = np.empty(n, np.int32)
    n = 0
    for b in range(len(count)):
        for e in range(slot_start[b], slot_start[b] + count[b]):
            if ev_flags[e] & bit and (kind < 0 or ev_kind[e] == kind):
                out[n] = ev_citizen[e]
                n += 1
    return np.sort(out)


@njit(cache=True)
def count_day(ev_kind, ev_flags, slot_start, count, nk):
    """Per kind: [events, observed, misattributed, denied, judged, defaulted, removed]."""
    out = np.zeros((nk, 7), np.int64)
    for b in range(len(count)):
        for e in range(slot_start[b], slot_start[b] + count[b]):
            k = ev_kind[e]
            f = ev_flags[e]
            out[k, 0] += 1
            for j in range(6):
                if f & (1 << j):
                    out[k, j + 1] += 1
    return out


@njit(cache=True)
def collect_panel(ev_citizen, ev_kind, ev_flags, ev_target, slot_start, count, flags, panel_bit):
    """Indices of the day's events whose actor or attributed citizen is in the panel."""
    n = 0
    for b in range(len(count)):
        for e in range(slot_start[b], slot_start[b] + count[b]):
            if flags[ev_citizen[e]] & panel_bit or flags[ev_target[e]] & panel_bit:
                n += 1
    out = np.empty(n, np.int64)
    n = 0
    for b in range(len(count)):
        for e in range(slot_start[b], slot_start[b] + count[b]):
            if flags[ev_citizen[e]] & panel_bit or flags[ev_target[e]] & panel_bit:
                out[n] = e
                n += 1
    return out


@njit(cache=True, parallel=True)
def active_degree(offsets, active):
    """Number of active edges of every vertex."""
    n = len(offsets) - 1
    out = np.zeros(n, np.int32)
    for i in prange(n):
        k = 0
        for a in range(offsets[i], offsets[i + 1]):
            k += active[a]
        out[i] = k
    return out


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
