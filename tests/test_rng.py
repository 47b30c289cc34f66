"""rng: counter-based uniforms keyed by (seed, stream, day, block), geometric skips, numpy generators."""

from __future__ import annotations

import math

import numpy as np
import pytest
from numba import njit

from socialcredit import rng
from socialcredit.rng import Stream, below, geometric_skip, numpy_generator, split_uniforms, stream_key

N = 1_000_000


@njit(cache=False)
def _uniforms(key, n):
    out = np.empty(n)
    for c in range(n):
        out[c] = rng.uniform(key, c)
    return out


@njit(cache=False)
def _uniforms_open(key, n):
    out = np.empty(n)
    for c in range(n):
        out[c] = rng.uniform_open(key, c)
    return out


@njit(cache=False)
def _splits(key, n):
    a = np.empty(n)
    b = np.empty(n)
    for c in range(n):
        a[c], b[c] = split_uniforms(key, c)
    return a, b


@njit(cache=False)
def _belows(key, n, m):
    out = np.empty(n, np.int64)
    for c in range(n):
        out[c] = below(key, c, m)
    return out


@njit(cache=False)
def _skips(key, n, log1m_p):
    out = np.empty(n, np.int64)
    for c in range(n):
        out[c] = geometric_skip(rng.uniform_open(key, c), log1m_p)
    return out


def _key(seed=1, stream=int(Stream.JUDGMENT), day=0, block=0):
    return stream_key(seed, stream, day, block)


def test_uniform_moments_over_a_million_draws():
    u = _uniforms(_key(), N)
    assert u.min() >= 0.0
    assert u.max() < 1.0
    # standard errors: mean sqrt(1/12/N) ≈ 2.9e-4, variance ≈ 7.5e-5
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / N)
    assert abs(u.var() - 1 / 12) < 5 * 7.5e-5
    # no bucket of a 100-bin histogram is off by more than 5 sigma
    counts = np.bincount((u * 100).astype(np.int64), minlength=100)
    expected = N / 100
    assert np.all(np.abs(counts - expected) < 5 * math.sqrt(expected))
    # consecutive draws are uncorrelated
    assert abs(np.corrcoef(u[:-1], u[1:])[0, 1]) < 5 / math.sqrt(N)


def test_uniform_open_is_never_zero_and_at_most_one():
    u = _uniforms_open(_key(seed=7), N)
    assert u.min() > 0.0
    assert u.max() <= 1.0
    assert np.all(np.isfinite(np.log(u)))
    assert abs(u.mean() - 0.5) < 5 * math.sqrt(1 / 12 / N)


def test_uniform_open_is_uniform_shifted_by_one_ulp():
    key = _key(seed=3)
    closed = _uniforms(key, 1000)
    opened = _uniforms_open(key, 1000)
    np.testing.assert_array_equal(opened, closed + 2.0**-53)


def test_split_uniforms_ranges_and_independence():
    a, b = _splits(_key(seed=11), 200_000)
    assert a.min() > 0.0 and a.max() <= 1.0
    assert b.min() >= 0.0 and b.max() < 1.0
    assert abs(a.mean() - 0.5) < 0.005 and abs(b.mean() - 0.5) < 0.005
    assert abs(np.corrcoef(a, b)[0, 1]) < 5 / math.sqrt(len(a))


def test_below_is_uniform_on_range():
    m = 7
    v = _belows(_key(seed=5), 700_000, m)
    assert v.min() == 0 and v.max() == m - 1
    counts = np.bincount(v, minlength=m)
    assert np.all(np.abs(counts - 100_000) < 5 * math.sqrt(100_000))


@pytest.mark.parametrize(
    "other",
    [
        dict(seed=2),
        dict(stream=int(Stream.JUDGMENT) + 1),
        dict(day=1),
        dict(day=-1),
        dict(block=1),
        dict(block=-1),
    ],
)
def test_each_address_field_changes_the_sequence(other):
    base = _uniforms(_key(), 64)
    changed = _uniforms(_key(**other), 64)
    assert _key(**other) != _key()
    # independent sequences: no position agrees
    assert not np.any(base == changed)


def test_keys_are_pure_functions_of_the_address():
    assert stream_key(9, 300, 12, 4) == stream_key(9, 300, 12, 4)
    np.testing.assert_array_equal(_uniforms(_key(seed=9), 100), _uniforms(_key(seed=9), 100))
    keys = {stream_key(s, st, d, b) for s in range(3) for st in (1, 2, 100) for d in (-1, 0, 1) for b in (-1, 0, 1)}
    assert len(keys) == 3 * 3 * 3 * 3


def test_swapped_fields_give_different_keys():
    assert stream_key(1, 2, 3, 4) != stream_key(1, 2, 4, 3)
    assert stream_key(1, 2, 3, 4) != stream_key(2, 1, 3, 4)


def test_geometric_skip_mean_for_p_001():
    p = 0.01
    skips = _skips(_key(seed=21), N, math.log1p(-p))
    assert skips.min() >= 0
    mean = (1 - p) / p  # 99
    sd = math.sqrt(1 - p) / p
    assert abs(skips.mean() - mean) < 5 * sd / math.sqrt(N)
    # P(skip == 0) = p
    assert abs(np.mean(skips == 0) - p) < 5 * math.sqrt(p * (1 - p) / N)


def test_geometric_skip_exact_values():
    assert geometric_skip(1.0, math.log(0.5)) == 0
    assert geometric_skip(0.5, math.log(0.5)) == 1  # log(0.5)/log(0.5) = 1
    assert geometric_skip(0.25, math.log(0.5)) == 2
    assert geometric_skip(0.3, math.log(0.5)) == 1  # 1.737 → 1
    # p = 1: always succeed at once, whatever u
    assert geometric_skip(1e-300, -math.inf) == 0
    assert geometric_skip(0.5, -math.inf) == 0
    # tiny p saturates instead of overflowing
    assert geometric_skip(1e-300, math.log1p(-1e-12)) == 2_000_000_000


def test_numpy_generator_is_reproducible_and_keyed():
    a = numpy_generator(5, Stream.POPULATION, block=3).random(50)
    b = numpy_generator(5, Stream.POPULATION, block=3).random(50)
    np.testing.assert_array_equal(a, b)
    for other in (
        numpy_generator(6, Stream.POPULATION, block=3),
        numpy_generator(5, Stream.GRAPH, block=3),
        numpy_generator(5, Stream.POPULATION, block=4),
        numpy_generator(5, Stream.POPULATION, block=3, day=0),
    ):
        assert not np.any(other.random(50) == a)


def test_numpy_generator_accepts_large_seed():
    g = numpy_generator(2**63 - 1, Stream.PANEL)
    x = g.random(10)
    assert np.all((x >= 0) & (x < 1))
