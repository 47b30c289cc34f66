"""Counter-based random streams keyed by (seed, stream, day, block).

Every random draw in a run is a pure function of its address: the run seed,
the stream (one per decision, see ``Stream``), the day, the citizen block and a
counter inside that block's stream. No generator state is carried between
draws, so results do not depend on thread, process or machine counts, and any
day of any block can be replayed on its own.

The mixing function is SplitMix64 (Steele, Lea and Flood 2014) applied to a
Weyl sequence started at the stream key; it passes BigCrush. Keys are derived
by chaining the same mixer over the address fields.
"""

from __future__ import annotations

import math
from enum import IntEnum

import numpy as np
from numba import njit

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)
_INV53 = 1.0 / 9007199254740992.0  # 2**-53
_S32 = np.uint64(32)
_LOW32 = np.uint64(0xFFFFFFFF)
_INV32 = 1.0 / 4294967296.0  # 2**-32


class Stream(IntEnum):
    """Stable stream ids: one per random decision. Never renumber.

    Event kinds get their behaviour and observation streams from their names
    (``engine.events.stable_stream``), so adding a kind moves no other draw.
    """

    POPULATION = 1
    GRAPH = 2
    PANEL = 3
    JUDGMENT = 500
    UNFRIEND = 501
    INITIAL_LIST = 502


@njit(cache=True, inline="always")
def mix64(x: np.uint64) -> np.uint64:
    """SplitMix64 output function of state ``x``."""
    z = x + _GAMMA
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(cache=True)
def stream_key(seed: int, stream: int, day: int, block: int) -> np.int64:
    """Key of one block's stream on one day."""
    k = mix64(np.uint64(seed))
    k = mix64(k ^ np.uint64(stream))
    k = mix64(k ^ np.uint64(day + 1))
    k = mix64(k ^ np.uint64(block + 1))
    return np.int64(k)  # boxed as a signed int so callers can pass it back


@njit(cache=True, inline="always")
def bits(key: np.uint64, counter: int) -> np.uint64:
    """64 random bits at position ``counter`` of stream ``key``."""
    return mix64(np.uint64(key) + np.uint64(counter) * _GAMMA)


@njit(cache=True, inline="always")
def uniform(key: np.uint64, counter: int) -> float:
    """Uniform on [0, 1) with 53 random bits."""
    return float(bits(key, counter) >> _S11) * _INV53


@njit(cache=True, inline="always")
def uniform_open(key: np.uint64, counter: int) -> float:
    """Uniform on (0, 1], safe for ``log``."""
    return (float(bits(key, counter) >> _S11) + 1.0) * _INV53


@njit(cache=True, inline="always")
def split_uniforms(key: np.uint64, counter: int) -> tuple[float, float]:
    """Two uniforms with 32 random bits each from one draw: (0, 1] and [0, 1)."""
    z = bits(key, counter)
    return (float(z >> _S32) + 1.0) * _INV32, float(z & _LOW32) * _INV32


@njit(cache=True, inline="always")
def below(key: np.uint64, counter: int, n: int) -> int:
    """Uniform integer on 0..n-1 (n < 2**53)."""
    return int(uniform(key, counter) * n)


@njit(cache=True, inline="always")
def geometric_skip(u: float, log1m_p: float) -> int:
    """Failures before the first success of Bernoulli(p), from u in (0, 1].

    ``log1m_p`` is ``log(1 - p)``; ``p == 1`` (``-inf``) gives 0.
    """
    if log1m_p == -math.inf:
        return 0
    g = math.log(u) / log1m_p
    if g > 2.0e9:
        return 2_000_000_000
    return int(g)


def numpy_generator(seed: int, stream: int, block: int = 0, day: int = -1) -> np.random.Generator:
    """A numpy Generator (Philox, counter-based) keyed by the same address.

    Used for vectorised draws from distributions numba lacks (beta, normal),
    one generator per block so results do not depend on the worker layout.
    """
    key = int(stream_key(seed, int(stream), day, block)) & 0xFFFFFFFFFFFFFFFF
    return np.random.Generator(np.random.Philox(key=key))
