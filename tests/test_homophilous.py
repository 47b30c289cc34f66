"""population.homophilous: a valid symmetric CSR with heavy-tailed degrees, homophily and family edges."""

from __future__ import annotations

from pathlib import Path

import numba
import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.population import homophilous as hm
from socialcredit.population.blocks import Blocks
from socialcredit.population.china import ChinaPopulation, ChinaPopulationConfig, provinces
from socialcredit.population.citizens import Citizens
from socialcredit.population.graph import Graph
from socialcredit.population.homophilous import Homophilous, HomophilousConfig, homophilous_csr

N = 100_000
SCENARIO = Path(__file__).parent / "data" / "china_population.toml"


def population(n: int, seed: int = 1, block_size: int = 8192) -> tuple[Blocks, Citizens]:
    plugin = ChinaPopulation("population", ChinaPopulationConfig())
    blocks = Blocks.from_region_counts(plugin.region_counts(n, seed), block_size=block_size)
    cz = Citizens.empty(blocks.region_of())
    plugin.fill(cz, blocks, seed)
    return blocks, cz


@pytest.fixture(scope="module")
def built():
    blocks, cz = population(N)
    return blocks, cz, homophilous_csr(blocks, 1, HomophilousConfig(), cz)


def pairs(g: Graph) -> tuple[np.ndarray, np.ndarray]:
    return np.repeat(np.arange(g.n), np.diff(g.offsets)), g.ids()


def check_csr(g: Graph, n: int) -> None:
    """Sorted rows, no self-loops or duplicates, ids in range, all active, symmetric."""
    assert g.n == n and g.offsets[0] == 0 and g.offsets[-1] == len(g.neighbours)
    assert np.all(g.neighbours >= 0) and (len(g.neighbours) == 0 or g.neighbours.max() < n)
    src, dst = pairs(g)
    assert not np.any(src == dst)
    starts = np.zeros(len(dst), bool)
    starts[g.offsets[:-1][np.diff(g.offsets) > 0]] = True
    assert np.all((np.diff(dst) > 0) | starts[1:]), "rows strictly increasing"
    fwd = np.sort(src.astype(np.int64) * n + dst)
    back = np.sort(dst.astype(np.int64) * n + src)
    assert np.array_equal(fwd, back), "symmetric"


def test_valid_symmetric_csr(built):
    _, _, g = built
    check_csr(g, N)
    assert g.neighbours.dtype == dt.CITIZEN_ID and g.edges == g.active_edges()


def test_degree_mean_and_heavy_tail(built):
    _, _, g = built
    deg = g.degree()
    assert 10 <= deg.mean() <= 20
    assert deg.max() >= 8 * deg.mean()
    assert np.percentile(deg, 99) > 2.5 * np.median(deg)
    tail = np.sort(deg)[::-1][:1000]  # log-log slope of the top ranks: a power law, not an exponential
    slope = np.polyfit(np.log(tail), np.log(np.arange(1, 1001)), 1)[0]
    assert -6 < slope < -1.5


def test_province_homophily_matches_local_share(built):
    _, cz, g = built
    src, dst = pairs(g)
    same = (cz.region[src] == cz.region[dst]).mean()
    w = np.bincount(cz.region, minlength=31) / cz.n
    c = HomophilousConfig()
    expected_draws = c.local_share + (1 - c.local_share) * float(w @ w)
    # family edges (in-province) raise the share a little, duplicates lower it a little
    assert expected_draws - 0.02 < same < expected_draws + 0.04


def test_urban_and_income_homophily(built):
    _, cz, g = built
    src, dst = pairs(g)
    urban = cz.flag(dt.FLAG_URBAN)
    random_same = urban.mean() ** 2 + (1 - urban.mean()) ** 2
    assert (urban[src] == urban[dst]).mean() > random_same + 0.15
    log_income = np.log(cz.income.astype(np.float64))
    assert np.corrcoef(log_income[src], log_income[dst])[0, 1] > 0.35


def test_family_edges_present(built):
    _, cz, g = built
    parent = cz.extra["parent"]
    kids = np.flatnonzero(parent >= 0)
    assert len(kids) > 0.3 * cz.n
    key = np.sort(pairs(g)[0].astype(np.int64) * cz.n + g.ids())
    wanted = kids.astype(np.int64) * cz.n + parent[kids]
    assert np.all(key[np.searchsorted(key, wanted)] == wanted)


def test_deterministic_and_thread_independent(built):
    blocks, cz, g = built
    again = homophilous_csr(blocks, 1, HomophilousConfig(), cz)
    assert np.array_equal(g.offsets, again.offsets) and np.array_equal(g.neighbours, again.neighbours)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        single = homophilous_csr(blocks, 1, HomophilousConfig(), cz)
    finally:
        numba.set_num_threads(before)
    assert np.array_equal(g.neighbours, single.neighbours)
    other = homophilous_csr(blocks, 2, HomophilousConfig(), cz)
    assert not np.array_equal(g.neighbours[:1000], other.neighbours[:1000])


def test_local_only_near_only():
    blocks, cz = population(20_000)
    c = HomophilousConfig(local_share=1.0, near_share=1.0, near_window=0.001, family=False)
    g = homophilous_csr(blocks, 3, c, cz)
    check_csr(g, cz.n)
    src, dst = pairs(g)
    assert np.all(cz.region[src] == cz.region[dst])
    size = np.diff(blocks.region_start)[cz.region[src]]
    window = np.maximum(1, np.minimum(size - 1, np.floor(0.001 * size + 0.5)))
    assert np.all(np.abs(src.astype(np.int64) - dst) <= window)


def test_without_citizens_and_without_family():
    blocks = Blocks.from_region_counts(np.array([500, 0, 1, 2, 300]), block_size=64)
    g = homophilous_csr(blocks, 1, HomophilousConfig())
    check_csr(g, blocks.n)
    assert 10 <= g.degree().mean() <= 20
    small, cz = population(3_000)
    no_family = homophilous_csr(small, 1, HomophilousConfig(family=False), cz)
    check_csr(no_family, cz.n)


@pytest.mark.parametrize("counts", [[1], [2], [0, 1], [1, 1, 1], [5, 0, 0, 3]])
def test_tiny_graphs(counts):
    blocks = Blocks.from_region_counts(np.array(counts), block_size=2)
    g = homophilous_csr(blocks, 4, HomophilousConfig(mean_draws=3))
    check_csr(g, blocks.n)
    if blocks.n == 1:
        assert g.edges == 0


def national_count(u: float, k: int, p: float) -> int:
    return hm._national_count(u, k, p, max(p, 1 - p) ** np.arange(k + 1.0))


@pytest.mark.parametrize(("u", "k", "p", "x"), [(0.5, 0, 0.3, 0), (0.9, 7, 0.0, 0), (0.2, 7, 1.0, 7),
                                                (0.0, 5, 0.5, 0), (0.999999, 3, 0.5, 3), (0.0, 4, 0.9, 4),
                                                (0.999999, 4, 0.9, 0)])  # p > 0.5: counted from the other side
def test_binomial_by_inversion_hand_cases(u, k, p, x):
    assert national_count(u, k, p) == x


@pytest.mark.parametrize(("k", "p"), [(12, 0.15), (12, 0.85), (1000, 0.99), (1000, 0.01)])
def test_binomial_by_inversion_moments(k, p):
    u = (np.arange(20_000) + 0.5) / 20_000
    draws = np.array([national_count(v, k, p) for v in u])
    assert draws.mean() == pytest.approx(k * p, rel=0.01)
    assert draws.var() == pytest.approx(k * p * (1 - p), rel=0.05)


def test_plugin_uses_population_and_scenario():
    from socialcredit.engine.simulation import Simulation
    from socialcredit.registry import lookup
    from socialcredit.scenario import Scenario

    assert lookup("graph", "homophilous") is Homophilous and Homophilous.uses_population
    sim = Simulation(Scenario.load(SCENARIO), citizens=20_000, days=1, seed=1)
    g = sim.graph
    check_csr(g, 20_000)
    parent = sim.citizens.extra["parent"]
    kid = int(np.flatnonzero(parent >= 0)[0])
    assert parent[kid] in g.ids()[g.offsets[kid]:g.offsets[kid + 1]]
    assert len(provinces()) == sim.blocks.regions
