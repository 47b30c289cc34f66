"""metrics.totals: per-block totals that combine to the same figures for any partitioning."""

from __future__ import annotations

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.metrics.totals import Totals, block_sums, snapshot_means
from socialcredit.population import Citizens


def _citizens(n: int, seed: int = 0) -> Citizens:
    rng = np.random.default_rng(seed)
    cz = Citizens.empty(rng.integers(0, 4, n).astype(dt.REGION))
    cz.score[:] = rng.uniform(350, 950, n).astype(dt.SCORE)
    cz.points[:] = rng.integers(850, 1100, n).astype(dt.POINTS)
    cz.list_start[:] = np.where(rng.random(n) < 0.1, rng.integers(0, 300, n), dt.NO_DAY).astype(dt.DAY)
    bits = (rng.random(n) < 0.3) * dt.FLAG_URBAN | (rng.random(n) < 0.1) * dt.FLAG_MINORITY
    bits |= (rng.random(n) < 0.15) * dt.FLAG_LISTED_EVER
    cz.flags[:] = bits.astype(dt.FLAGS)
    cz.income0[:] = rng.uniform(1e4, 1e5, n).astype(dt.MONEY)
    cz.income[:] = cz.income0 * rng.choice([1.0, 0.8], n).astype(dt.MONEY)
    return cz


LOWS = np.array([1050, 1000, 960, 900], np.int64)


def test_counts_match_direct_numpy():
    n = 10_000
    cz = _citizens(n)
    starts = np.array([0, 1000, 1000, 4096, 7000, n])  # an empty block included
    t = Totals.of(cz, starts, LOWS)
    s, p = cz.score, cz.points
    minority, urban = cz.flag(dt.FLAG_MINORITY), cz.flag(dt.FLAG_URBAN)
    ever = cz.flag(dt.FLAG_LISTED_EVER)
    want = {
        "citizens": n, "score_below_550": (s < 550).sum(), "score_ge_650": (s >= 650).sum(),
        "score_ge_700": (s >= 700).sum(), "score_below_600": (s < 600).sum(),
        "score_below_600_minority": ((s < 600) & minority).sum(), "minority": minority.sum(), "urban": urban.sum(),
        "listed_now": (cz.list_start >= 0).sum(), "listed_ever": ever.sum(),
        "listed_ever_minority": (ever & minority).sum(), "points_below_960": (p < 960).sum(),
        "points_below_960_urban": ((p < 960) & urban).sum(), "points_sum": p.astype(np.int64).sum(),
    }
    for name, value in want.items():
        assert t.count(name) == value, name
    bands = [(p >= 1050).sum(), ((p >= 1000) & (p < 1050)).sum(), ((p >= 960) & (p < 1000)).sum(),
             ((p >= 900) & (p < 960)).sum()]
    assert list(t.band_counts()) == bands
    mean, sd = t.score_mean_sd()
    assert mean == pytest.approx(s.astype(np.float64).mean(), rel=1e-12)
    assert sd == pytest.approx(s.astype(np.float64).std(), rel=1e-10)
    loss = 1.0 - cz.income[ever].astype(np.float64) / cz.income0[ever]
    assert t.income_loss_mean() == pytest.approx(loss.mean(), rel=1e-12)


def test_split_at_block_boundaries_gives_identical_figures():
    n = 20_000
    cz = _citizens(n, seed=3)
    starts = np.arange(0, n + 1, 1000)
    whole = Totals.of(cz, starts, LOWS)
    for cut in (1, 7, 13, 19):  # two "partitions" of whole blocks, computed apart
        a = Totals.of(cz, starts[: cut + 1], LOWS)
        sub = Citizens(**{k: v[starts[cut]:] for k, v in cz.arrays().items()})
        b = Totals.of(sub, starts[cut:] - starts[cut], LOWS)
        both = Totals.concat([a, b])
        assert both.score_mean_sd() == whole.score_mean_sd()  # bit for bit
        assert both.income_loss_mean() == whole.income_loss_mean()
        assert np.array_equal(both.counts, whole.counts) and np.array_equal(both.bands, whole.bands)
        sums = [{"score": block_sums(cz.score[: starts[cut]], starts[: cut + 1])},
                {"score": block_sums(sub.score, starts[cut:] - starts[cut])}]
        assert snapshot_means(sums, n) == snapshot_means([{"score": block_sums(cz.score, starts)}], n)


def test_empty_population_and_nobody_listed():
    cz = _citizens(0)
    t = Totals.of(cz, np.array([0]), LOWS)
    assert t.count("citizens") == 0
    assert all(np.isnan(x) for x in t.score_mean_sd())
    assert t.income_loss_mean() is None
    cz = _citizens(100)
    cz.flags[:] &= ~dt.FLAG_LISTED_EVER
    assert Totals.of(cz, np.array([0, 100])).income_loss_mean() is None


def test_block_sums_are_exact_for_integers_and_sequential_for_floats():
    values = np.arange(1, 11, dtype=np.int16)
    assert list(block_sums(values, np.array([0, 4, 4, 10]))) == [10.0, 0.0, 45.0]
    x = np.array([1e16, 1.0, -1e16, 1.0], np.float64)
    assert block_sums(x, np.array([0, 4]))[0] == ((1e16 + 1.0) - 1e16) + 1.0
