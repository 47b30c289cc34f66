"""Per-block totals of the citizens' final state: the inputs of the summary metrics.

Every whole-population figure of ``summary.json`` (score mean and spread, shares,
disparate-impact ratios, income loss) is a function of these totals. They are
computed block by block (blocks never straddle a region, so a partition of a
distributed run holds whole blocks) and combined in global block order: integer
counts add exactly, and the floating-point parts are merged sequentially block
after block, so the result is the same for one process, any thread count and any
number of partitions — and nothing proportional to the population has to travel.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numba import njit, prange

from socialcredit import dtypes as dt

COUNTS = (
    "citizens", "score_below_550", "score_ge_650", "score_ge_700", "score_below_600",
    "score_below_600_minority", "minority", "urban", "listed_now", "listed_ever", "listed_ever_minority",
    "points_below_960", "points_below_960_urban", "points_sum",
)
FLOATS = ("score_mean", "score_m2", "income_loss_sum")
_C = {name: k for k, name in enumerate(COUNTS)}
_F = {name: k for k, name in enumerate(FLOATS)}


@njit(cache=True, parallel=True)
def _block_totals(block_start, score, points, list_start, flags, income, income0, grade_lows,
                  minority_bit, urban_bit, listed_ever_bit, counts, floats, bands):
    for b in prange(len(block_start) - 1):
        mean = 0.0
        m2 = 0.0
        loss = 0.0
        c = counts[b]
        for i in range(block_start[b], block_start[b + 1]):
            s = score[i]
            p = points[i]
            minority = (flags[i] & minority_bit) != 0
            urban = (flags[i] & urban_bit) != 0
            ever = (flags[i] & listed_ever_bit) != 0
            c[0] += 1
            d = s - mean
            mean += d / c[0]
            m2 += d * (s - mean)
            c[1] += s < 550
            c[2] += s >= 650
            c[3] += s >= 700
            c[4] += s < 600
            c[5] += (s < 600) and minority
            c[6] += minority
            c[7] += urban
            c[8] += list_start[i] >= 0
            c[9] += ever
            c[10] += ever and minority
            c[11] += p < 960
            c[12] += (p < 960) and urban
            c[13] += p
            if ever:
                loss += 1.0 - np.float64(income[i]) / income0[i]
            for g in range(len(grade_lows)):
                if p >= grade_lows[g]:
                    bands[b, g] += 1
                    break
        floats[b, 0] = mean
        floats[b, 1] = m2
        floats[b, 2] = loss


@njit(cache=True)
def _merge_moments(n, mean, m2):
    """Chan et al.'s pairwise update of (count, mean, M2), block after block in order."""
    total, mu, acc = 0, 0.0, 0.0
    for b in range(len(n)):
        if n[b] == 0:
            continue
        nb = n[b]
        both = total + nb
        delta = mean[b] - mu
        mu += delta * nb / both
        acc += m2[b] + delta * delta * total * nb / both
        total = both
    return mu, acc


@dataclass
class Totals:
    """Per-block totals: ``counts`` (int64, one column per name of ``COUNTS``), ``floats``
    (float64, ``FLOATS``) and ``bands`` (int64, citizens per grade band, highest first)."""

    counts: np.ndarray
    floats: np.ndarray
    bands: np.ndarray

    @classmethod
    def of(cls, citizens, block_start: np.ndarray, grade_lows: np.ndarray | None = None) -> Totals:
        """Totals of the citizens in blocks ``block_start[b]..block_start[b+1]-1``."""
        lows = np.asarray(grade_lows if grade_lows is not None else [], np.int64)
        nb = len(block_start) - 1
        counts = np.zeros((nb, len(COUNTS)), np.int64)
        floats = np.zeros((nb, len(FLOATS)), np.float64)
        bands = np.zeros((nb, len(lows)), np.int64)
        cz = citizens
        _block_totals(np.asarray(block_start, np.int64), cz.score, cz.points, cz.list_start, cz.flags,
                      cz.income, cz.income0, lows, dt.FLAG_MINORITY, dt.FLAG_URBAN, dt.FLAG_LISTED_EVER,
                      counts, floats, bands)
        return cls(counts, floats, bands)

    @classmethod
    def concat(cls, parts: list[Totals]) -> Totals:
        """The totals of consecutive ranges of blocks, in block order."""
        return cls(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("counts", "floats", "bands")))

    def count(self, name: str) -> int:
        """A count summed over all blocks (exact)."""
        return int(self.counts[:, _C[name]].sum())

    def band_counts(self) -> np.ndarray:
        """Citizens per grade band over all blocks."""
        return self.bands.sum(axis=0)

    def score_mean_sd(self) -> tuple[float, float]:
        """Mean and population standard deviation of the score."""
        n = self.counts[:, _C["citizens"]]
        if n.sum() == 0:
            return float("nan"), float("nan")
        mean, m2 = _merge_moments(n, self.floats[:, _F["score_mean"]], self.floats[:, _F["score_m2"]])
        return float(mean), float(np.sqrt(m2 / n.sum()))

    def income_loss_mean(self) -> float | None:
        """Mean relative income loss of citizens ever listed (None if none was)."""
        ever = self.count("listed_ever")
        return float(np.sum(self.floats[:, _F["income_loss_sum"]])) / ever if ever else None


@njit(cache=True, parallel=True)
def block_sums(values, block_start):
    """Sum of ``values`` in each block (float64, sequential within a block)."""
    out = np.zeros(len(block_start) - 1, np.float64)
    for b in prange(len(block_start) - 1):
        acc = 0.0
        for i in range(block_start[b], block_start[b + 1]):
            acc += values[i]
        out[b] = acc
    return out


def snapshot_means(parts: list[dict[str, np.ndarray]], n: int) -> dict[str, float]:
    """Daily means ``<name>_mean`` over ``n`` citizens from per-block sums (``block_sums``)
    of consecutive ranges of blocks, given in block order."""
    return {f"{name}_mean": float(np.sum(np.concatenate([p[name] for p in parts]))) / n for name in parts[0]}
