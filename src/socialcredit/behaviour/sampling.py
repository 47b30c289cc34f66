"""Sparse sampling of the day's true events.

For each event kind and block, candidate citizens are the successes of
Bernoulli(bound) trials, found by geometric skipping; a candidate commits the
event with probability rate_i / bound (thinning). One 64-bit draw per
candidate gives both the skip and the acceptance uniform (32 bits each). The candidate chain does not
depend on anyone's state, so one citizen's events can be replayed alone.
"""

from __future__ import annotations

import math

from numba import njit, prange

from socialcredit import dtypes as dt
from socialcredit.rng import geometric_skip, split_uniforms, stream_key

_URBAN = dt.FLAG_URBAN


@njit(cache=True, inline="always")
def propensity(form, p0, p1, p2, i, day, risk, voice, chill, income, list_start, table, tb):
    """Per-citizen factor of form ``form`` (see ``events.FORMS``) with parameters p0, p1, p2."""
    if form == 0:
        return 1.0
    if form == 1:
        return p0 + risk[i]
    if form == 2:
        return (p0 + risk[i]) * min(p2, math.sqrt(p1 / income[i]))
    if form == 3:
        return voice[i] * (1.0 - chill[i])
    if form == 4:
        return p0 - risk[i]
    if form == 5:
        return risk[i]
    if form == 6:  # listed on an earlier day and the term (p0 days) not yet over
        if list_start[i] >= 0 and list_start[i] < day and day - list_start[i] < p0:
            return min(1.0, income[i] / p1)
        return 0.0
    if form == 7:  # a formula's per-citizen rate: the table holds it at tb + i (see sample_day)
        return table[tb + i]
    return 0.0


@njit(cache=True, parallel=True)
def sample_day(
    seed, day, block_start,
    rate_urban, rate_rural, form, params, bound, log1m_bound, beh_stream,
    flags, risk, voice, chill, income, list_start, table,
    ev_citizen, ev_kind, ev_flags, slot_start, slot_cap, count, kind_at, block_base=0,
):
    """Write the day's true events of every block into its slots, kind by kind;
    set ``count`` and the kind boundaries ``kind_at``. ``block_base``: global index of
    block 0 (a partition of a distributed run), so streams are keyed by global block."""
    nk = len(rate_urban)
    columns = len(table) // max(1, block_start[-1])  # formula kinds in the block-major rate table
    for b in prange(len(block_start) - 1):
        lo, hi = block_start[b], block_start[b + 1]
        base, cap = slot_start[b], slot_cap[b]
        n = 0
        for k in range(nk):
            kind_at[b, k] = base + n
            if bound[k] <= 0.0:
                continue
            key = stream_key(seed, beh_stream[k], day, b + block_base)
            fk, bk, l1 = form[k], bound[k], log1m_bound[k]
            ru, rr = rate_urban[k], rate_rural[k]
            p0, p1, p2 = params[k, 0], params[k, 1], params[k, 2]
            # block b's rates of table column p0: table[lo·columns + p0·(hi - lo) + (i - lo)]
            tb = lo * columns + int(p0) * (hi - lo) - lo
            ctr = 0
            i = lo - 1
            while True:
                u_skip, u = split_uniforms(key, ctr)
                ctr += 1
                i += 1 + geometric_skip(u_skip, l1)
                if i >= hi:
                    break
                if fk == 7:  # a formula's rate is the whole probability
                    p = table[tb + i]
                else:
                    rate = ru if flags[i] & _URBAN else rr
                    p = rate * propensity(fk, p0, p1, p2, i, day, risk, voice, chill, income, list_start, table, tb)
                if u * bk < p:
                    if n < cap:
                        ev_citizen[base + n] = i
                        ev_kind[base + n] = k
                        ev_flags[base + n] = 0
                    n += 1
        count[b] = n
        kind_at[b, nk] = base + n

