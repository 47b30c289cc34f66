"""population.china: shares calibrated to published figures, valid family links, id order, determinism."""

from __future__ import annotations

import math
from pathlib import Path

import numba
import numpy as np
import pytest
from pydantic import ValidationError

from socialcredit import dtypes as dt
from socialcredit.population import china
from socialcredit.population.blocks import Blocks
from socialcredit.population.china import (
    ChinaPopulation,
    ChinaPopulationConfig,
    provinces,
    published,
    sort_order,
    tables,
)
from socialcredit.population.citizens import Citizens

N = 200_000
SCENARIO = Path(__file__).parent / "data" / "china_population.toml"


def build(n: int, seed: int = 1, block_size: int | None = None, **config) -> tuple[Blocks, Citizens]:
    plugin = ChinaPopulation("population", ChinaPopulationConfig(**config))
    counts = plugin.region_counts(n, seed)
    blocks = Blocks.from_region_counts(counts) if block_size is None else \
        Blocks.from_region_counts(counts, block_size=block_size)
    cz = Citizens.empty(blocks.region_of())
    plugin.fill(cz, blocks, seed)
    return blocks, cz


@pytest.fixture(scope="module")
def pop():
    return build(N)


def gini(x: np.ndarray) -> float:
    x = np.sort(x.astype(np.float64))
    n = len(x)
    return float(2 * np.dot(np.arange(1, n + 1), x) / (n * x.sum()) - (n + 1) / n)


# -- published data ----------------------------------------------------------------


def test_province_table_is_complete():
    p = provinces()
    assert len(p) == 31 and len(set(p.name)) == 31 and len(set(p.code.tolist())) == 31
    assert abs(p.population.sum() - 1409.8) < 0.1  # calibration.md: sum 1,409.8
    assert set(p.macro_region) == {"East", "Central", "West", "Northeast"}
    assert np.all(p.income > 20_000) and p.income.max() == p.income[p.name.index("Shanghai")]
    assert np.all((p.urban > 0.3) & (p.urban < 0.95)) and np.all((p.minority >= 0) & (p.minority < 1))
    assert all("income:" in m for m in p.mark)
    shares = {r: float(p.weight[[m == r for m in p.macro_region]].sum()) for r in set(p.macro_region)}
    assert shares == pytest.approx({"East": 0.399, "Central": 0.258, "West": 0.271, "Northeast": 0.070}, abs=0.002)


def test_published_reads_targets_toml():
    assert published("urban_share") == 0.6616
    assert published("income_median") == 33_036
    with pytest.raises(KeyError):
        published("no_such_target")


# -- hand-checked helpers ----------------------------------------------------------


@pytest.mark.parametrize(("p", "z"), [(0.5, 0.0), (0.975, 1.959964), (0.001, -3.090232), (0.9999, 3.719016)])
def test_normal_quantiles(p, z):
    assert china.norm_ppf(p) == pytest.approx(z, abs=1e-5)
    zs, _ = china.income_draw(np.array([p]), ChinaPopulationConfig(), tables(ChinaPopulationConfig()).shape)
    assert float(zs[0]) == pytest.approx(z, abs=1e-5)


def test_income_shape_has_mean_one_and_increases():
    c = ChinaPopulationConfig()
    u = (np.arange(1_000_000) + 0.5) / 1_000_000
    _, x = china.income_draw(u, c, china.income_shape(c))
    assert np.all(np.diff(x) >= 0)
    assert x.mean() == pytest.approx(1.0, rel=0.01)  # the grid misses a little of the Pareto tail


def test_tables_meet_published_shares_exactly():
    c = ChinaPopulationConfig()
    tab, w = tables(c), provinces().weight
    assert float(w @ tab.urban) == pytest.approx(published("urban_share"), abs=1e-9)
    by_province = tab.urban * tab.minority[1] + (1 - tab.urban) * tab.minority[0]
    assert float(w @ by_province) == pytest.approx(published("minority_share"), abs=1e-9)
    assert np.all(tab.minority[0] > tab.minority[1])  # minorities more rural
    mean = tab.urban * tab.income_mean[1] + (1 - tab.urban) * tab.income_mean[0]
    assert float(w @ mean) == pytest.approx(c.income_level * published("income_mean"), rel=1e-9)
    ratio = tab.income_mean[1] / tab.income_mean[0]
    assert np.allclose(ratio, c.urban_income_ratio)
    p_age = np.diff(np.concatenate([[0.0], tab.age_cdf]))
    assert p_age[:16].sum() == pytest.approx(published("age_0_15"), abs=1e-9)
    assert p_age[60:].sum() == pytest.approx(published("age_60_plus"), abs=1e-9)
    assert float(p_age @ tab.female) == pytest.approx(100 / (100 + published("sex_ratio")), abs=1e-9)


def test_sort_order_by_urban_then_income_ties_in_drawn_order():
    urban = np.array([1, 0, 1, 0], np.uint8)
    income = np.array([5.0, 3.0, 1.0, 3.0], np.float32)
    assert sort_order(urban, income).tolist() == [1, 3, 2, 0]


def test_parents_hand_case():
    # one province of four: ages 10, 35, 60, 5 (window: the whole province, many tries)
    blocks = Blocks.from_region_counts(np.array([4]))
    age = np.array([10, 35, 60, 5], np.uint8)
    c = ChinaPopulationConfig(parent_window=1.0, parent_tries=100, parent_share=1.0)
    parent = china.find_parents(7, blocks, age, c)
    assert parent.tolist() == [1, 2, -1, 1]  # 10 and 5 -> 35; 35 -> 60; 60 is too old to look


@pytest.mark.parametrize("n", [1, 2, 31, 64, 1000])
def test_tiny_populations(n):
    _blocks, cz = build(n)
    assert cz.n == n and int(np.bincount(cz.region, minlength=31).sum()) == n
    parent = cz.extra["parent"]
    assert np.all((parent == -1) | ((parent >= 0) & (parent < n)))
    assert np.all(cz.income > 0) and np.all(cz.income == cz.income0)


def test_config_is_checked():
    with pytest.raises(ValidationError):
        ChinaPopulationConfig(education_thresholds=(1.0, 0.5, 2.0))
    with pytest.raises(ValidationError):
        ChinaPopulationConfig(hukou_urban=1.5)
    with pytest.raises(ValidationError):
        ChinaPopulationConfig(no_such_key=1)
    with pytest.raises(ValidationError):
        ChinaPopulationConfig(internet_by_age=((10, 0.5), (5, 0.6)))


# -- calibrated shares at 200k citizens -------------------------------------------------


def test_region_shares_follow_census(pop):
    _, cz = pop
    share = np.bincount(cz.region, minlength=31) / cz.n
    assert np.abs(share - provinces().weight).max() < 0.003
    macro = np.array(provinces().macro_region)[cz.region]
    for name, target in (("East", 0.399), ("Central", 0.258), ("West", 0.271), ("Northeast", 0.070)):
        assert abs((macro == name).mean() - target) < 0.01


def test_residence_hukou_and_minority(pop):
    _, cz = pop
    urban, hukou = cz.flag(dt.FLAG_URBAN), cz.extra["hukou_urban"].astype(bool)
    assert abs(urban.mean() - 0.6616) < 0.01
    assert 0.38 < hukou.mean() < 0.5
    assert hukou[urban].mean() > 10 * hukou[~urban].mean()  # urban hukou implies urban residence mostly
    migrants = urban & ~hukou
    assert 0.15 < migrants.mean() < 0.35
    assert cz.income[migrants].mean() < cz.income[urban & hukou].mean()
    minority = cz.flag(dt.FLAG_MINORITY)
    assert abs(minority.mean() - 0.0889) < 0.005
    names = provinces().name
    by_province = np.bincount(cz.region, weights=minority, minlength=31) / np.bincount(cz.region, minlength=31)
    assert by_province[names.index("Tibet")] > 0.7 and by_province[names.index("Xinjiang")] > 0.4
    assert by_province[names.index("Jiangsu")] < 0.03


def test_urban_share_higher_in_east_and_municipalities(pop):
    _, cz = pop
    urban = cz.flag(dt.FLAG_URBAN)
    by = np.bincount(cz.region, weights=urban, minlength=31) / np.bincount(cz.region, minlength=31)
    names = provinces().name
    assert by[names.index("Shanghai")] > 0.85 and by[names.index("Beijing")] > 0.85
    assert by[names.index("Tibet")] < 0.5


def test_ages_and_sex(pop):
    _, cz = pop
    age, female = cz.extra["age"], cz.extra["female"]
    assert age.dtype == np.uint8 and age.max() <= china.AGE_MAX
    for lo, hi, target in ((0, 16, 0.176), (16, 60, 0.613), (60, 200, 0.211)):
        assert abs(((age >= lo) & (age < hi)).mean() - target) < 0.01
    ratio = 100 * (1 - female.mean()) / female.mean()
    assert abs(ratio - 104.5) < 1
    assert female[age >= 60].mean() > female[age < 16].mean()  # women outlive men; boys outnumber girls


def test_income_calibration(pop):
    _, cz = pop
    income, urban = cz.income0.astype(np.float64), cz.flag(dt.FLAG_URBAN)
    assert abs(income.mean() / 39_218 - 1) < 0.05
    assert abs(np.median(income) / 33_036 - 1) < 0.05
    assert abs(income[urban].mean() / 51_821 - 1) < 0.07
    assert abs(income[~urban].mean() / 21_691 - 1) < 0.07
    assert abs(gini(income) - 0.465) < 0.03
    names = provinces().name
    by = np.bincount(cz.region, weights=income, minlength=31) / np.bincount(cz.region, minlength=31)
    assert by[names.index("Shanghai")] > 2.5 * by[names.index("Gansu")]
    children = cz.extra["age"] < 16
    assert 0.7 < income[children].mean() / income.mean() < 1.3  # per-capita: children have incomes too


def test_internet_and_payment_platforms(pop):
    _, cz = pop
    ex = cz.extra
    online, member = ex["messaging"].astype(bool), cz.flag(dt.FLAG_MEMBER)
    assert abs(online.mean() - 0.775) < 0.03
    assert not np.any(member & ~online)  # online payment needs the internet
    assert abs(member[online].mean() - 0.864) < 0.03
    age, urban = ex["age"], cz.flag(dt.FLAG_URBAN)
    assert online[age >= 60].mean() < online[(age >= 20) & (age < 60)].mean()
    assert online[~urban].mean() < online[urban].mean()
    assert member[age < 12].mean() < 0.1
    consent = ex["consent"].astype(bool)
    assert not np.any(consent & ~member) and abs(consent[member].mean() - 0.7) < 0.02


def test_education_traits_wealth_debt(pop):
    _, cz = pop
    ex = cz.extra
    edu, age, urban = ex["education"], ex["age"], cz.flag(dt.FLAG_URBAN)
    assert edu.max() == 3 and np.all(edu[age < 13] == 0)
    adults = age >= 25
    assert edu[adults & urban].mean() > edu[adults & ~urban].mean()
    assert edu[(age >= 25) & (age < 35)].mean() > edu[age >= 65].mean()
    assert 0.08 < (edu[adults] == 3).mean() < 0.3
    for name, arr in (("risk", cz.risk), ("voice", cz.voice), ("sociability", ex["sociability"]),
                      ("conscientiousness", ex["conscientiousness"])):
        assert arr.dtype == np.float32 and arr.min() > 0 and arr.max() < 1, name
    assert 0.2 < cz.risk.mean() < 0.4 and 0.05 < cz.voice.mean() < 0.15
    young_educated = (age >= 18) & (age < 35) & (edu == 3)
    assert cz.voice[young_educated].mean() > cz.voice[(age >= 60) & (edu == 0)].mean()
    wealth, debt = ex["wealth"], ex["debt"]
    assert wealth.dtype == debt.dtype == np.float32 and np.all(wealth > 0) and np.all(debt >= 0)
    has_debt = debt > 0
    assert 0.2 < has_debt.mean() < 0.5 and has_debt[age < 18].mean() < 0.01
    working = (age >= 25) & (age <= 55)
    assert has_debt[working & (cz.risk > 0.5)].mean() > has_debt[working & (cz.risk < 0.2)].mean()
    assert np.corrcoef(np.log(cz.income[has_debt]), np.log(debt[has_debt]))[0, 1] > 0.3


def test_parent_links_are_valid(pop):
    _, cz = pop
    parent, age = cz.extra["parent"], cz.extra["age"].astype(np.int64)
    assert parent.dtype == np.int32
    has = parent >= 0
    kids = np.flatnonzero(has)
    assert np.all(cz.region[parent[kids]] == cz.region[kids])
    gap = age[parent[kids]] - age[kids]
    assert gap.min() >= 20 and gap.max() <= 40
    assert not np.any(has[age >= 40])
    assert has[age < 40].mean() > 0.8
    assert np.all(parent[~has] == -1)
    # a parent is near in the (urban, income) order: same urban status for most
    urban = cz.flag(dt.FLAG_URBAN)
    assert (urban[parent[kids]] == urban[kids]).mean() > 0.95


def test_within_province_order(pop):
    blocks, cz = pop
    urban = cz.flag(dt.FLAG_URBAN).astype(np.int64)
    for r in range(31):
        lo, hi = int(blocks.region_start[r]), int(blocks.region_start[r + 1])
        u, inc = urban[lo:hi], cz.income[lo:hi]
        assert np.all(np.diff(u) >= 0), r
        same = np.diff(u) == 0
        assert np.all(np.diff(inc)[same] >= 0), r


# -- determinism -------------------------------------------------------------------------


def _arrays(cz: Citizens) -> dict[str, np.ndarray]:
    return cz.arrays()


def test_same_seed_same_population_whatever_the_threads():
    _, a = build(70_000, seed=5, block_size=4096)
    before = numba.get_num_threads()
    numba.set_num_threads(1)
    try:
        _, b = build(70_000, seed=5, block_size=4096)
    finally:
        numba.set_num_threads(before)
    for name, arr in _arrays(a).items():
        assert np.array_equal(arr, _arrays(b)[name]), name
    _, c = build(70_000, seed=6, block_size=4096)
    assert not np.array_equal(a.income, c.income)


def test_blocks_draw_from_their_own_streams():
    # a province's citizens do not change when another province grows (only the platform
    # intercepts, solved on the whole population, may move a few memberships)
    plugin = ChinaPopulation("population", ChinaPopulationConfig())
    fills = []
    for extra in (0, 500):
        counts = np.full(31, 300, np.int64)
        counts[30] += extra
        blocks = Blocks.from_region_counts(counts, block_size=256)
        cz = Citizens.empty(blocks.region_of())
        plugin.fill(cz, blocks, 3)
        fills.append(cz)
    a, b = fills
    first = slice(0, 300)
    for name in ("income", "risk", "voice", "age", "female", "education", "wealth", "debt", "parent"):
        assert np.array_equal(a.get(name)[first], b.get(name)[first]), name
    fixed = dt.FLAG_URBAN | dt.FLAG_MINORITY
    assert np.array_equal(a.flags[first] & fixed, b.flags[first] & fixed)


def test_registered_and_used_by_a_scenario():
    from socialcredit.engine.simulation import Simulation
    from socialcredit.registry import lookup
    from socialcredit.scenario import Scenario

    assert lookup("population", "china") is ChinaPopulation
    sim = Simulation(Scenario.load(SCENARIO), citizens=5_000, days=1, seed=2)
    assert set(sim.citizens.extra) >= {"age", "female", "hukou_urban", "education", "wealth", "debt",
                                        "messaging", "consent", "sociability", "conscientiousness", "parent"}
    assert math.isclose(float(sim.citizens.income0.mean()), float(sim.citizens.income.mean()))
