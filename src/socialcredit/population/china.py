"""The `china` population: 31 provinces calibrated to published figures.

Published figures are package data, not constants in code:
``socialcredit/scenarios/data/china/provinces.csv`` (province populations,
macro-regions, 2023 incomes, 2020 urban and minority shares) and
``targets.toml`` (the calibration targets of ``shared/calibration.md``; the
population reads its national shares from there). The ``Config`` holds only
model assumptions (shapes, effects, correlations), each with a default that
meets the targets; ``socialcredit calibrate`` checks the result.

Attributes: ``region`` (province, NBS code order: 0 Beijing ... 30 Xinjiang),
``flags`` (FLAG_URBAN resident-urban, FLAG_MINORITY, FLAG_MEMBER =
payment-platform member = online-payment user), ``income`` = ``income0``
(per-capita disposable income, CNY/yr; children too, the NBS figure is per
capita), ``risk``, ``voice``; and in ``citizens.extra``: ``age``, ``female``,
``hukou_urban``, ``education`` (0 primary or less, 1 lower secondary, 2 upper
secondary, 3 tertiary), ``wealth``, ``debt``, ``messaging`` (messaging-app
member = internet user), ``consent`` (to data sharing), ``sociability``,
``conscientiousness`` and ``parent`` (id of a parent in the same province,
20-40 years older, or -1).

Order of ids. Within each province citizens are ordered by (urban flag,
income): rural citizens first, poorest first, then urban citizens, poorest
first. So citizens close in id are similar (same province, same side of the
urban/rural divide, similar income): the ``homophilous`` graph relies on it.

Income. Each (province, urban/rural) group has a mean: the province's 2023
income relative to the population-weighted mean, times the published national
mean × ``income_level``, split so urban = ``urban_income_ratio`` × rural. Within
a group (minorities × ``minority_income``, group mean kept), income = mean ×
X with E[X] = 1, X increasing in a normal score z: lognormal body, Pareto upper
tail (top ``income_top_share``), power-law lower tail (bottom
``income_bottom_share``) — the body alone cannot give a Gini of 0.465 with a
mean/median of 1.19. The NBS figures are not mutually consistent with a
66.16 % urban share: 0.6616 × 51,821 + 0.3384 × 21,691 = 41,625, 6 % above the
published mean of 39,218 (the household survey's urban weight is about 58 %).
The defaults split the gap (mean about +2 %, urban and rural means about -4 %
and -3 %), within every tolerance. Education, hukou and the income rank share
the score z (Gaussian copulas), so they correlate with income.

Determinism. Everything is a pure function of the seed and the block layout:
phase 1 draws urban, minority and income from
``numpy_generator(seed, POPULATION, block=b)``; each province is then ordered
by (urban, income, drawn position) — unique keys, so every sort algorithm gives
the same order; phase 2 draws the other attributes for the sorted positions of
block ``b`` from the same address on day -2; internet and payment intercepts
are solved on whole-population cell counts; phase 3 finds parents with
counter-based draws of the block's day -3 stream. Nothing depends on thread
counts.
"""

from __future__ import annotations

import csv
import math
import tomllib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated, Any

import numpy as np
from numba import njit, prange
from pydantic import Field, model_validator

from socialcredit import dtypes as dt
from socialcredit.engine.plugin import Plugin
from socialcredit.population.blocks import Blocks
from socialcredit.population.citizens import Citizens
from socialcredit.registry import register
from socialcredit.rng import Stream, below, numpy_generator, stream_key, uniform
from socialcredit.scenario.schema import Strict

DATA_PACKAGE = "socialcredit.scenarios"
DATA_DIR = ("data", "china")
AGE_MAX = 99  # single-year ages 0..99 (the last 5-year group is 95-99)
BANDS = (16, 60)  # age bands 0-15 / 16-59 / 60+
EDUCATION_LEVELS = 4
_SQRT2 = math.sqrt(2.0)
_POPULATION = int(Stream.POPULATION)

Share = Annotated[float, Field(ge=0.0, le=1.0)]
Logit = Annotated[float, Field(ge=-10.0, le=10.0)]
LogitNormal = tuple[Annotated[float, Field(ge=-10, le=10)], Annotated[float, Field(gt=0, le=5)]]
AgeKnot = tuple[Annotated[int, Field(ge=0, le=AGE_MAX)], Annotated[float, Field(gt=0.0, lt=1.0)]]

# Relative size of the 5-year age groups 0-4 ... 95-99 (millions, China about 2023; an assumption
# that shapes ages within the published bands, which are matched exactly).
DEFAULT_AGE_PROFILE = (56, 84, 85, 78, 75, 82, 120, 100, 92, 100, 122, 112, 80, 82, 62, 38, 24, 13, 5, 1.5)


# -- published data ------------------------------------------------------------


@dataclass(frozen=True)
class Provinces:
    """The 31 provinces of provinces.csv, as arrays in region order."""

    code: np.ndarray  # GB/T 2260 code
    name: list[str]
    macro_region: list[str]  # East, Central, West, Northeast (NBS grouping)
    population: np.ndarray  # millions, 2020 census
    income: np.ndarray  # 2023 per-capita disposable income, CNY/yr
    urban: np.ndarray  # urban share 2020
    minority: np.ndarray  # ethnic-minority share 2020
    mark: list[str]

    @property
    def weight(self) -> np.ndarray:
        """Population shares (sum 1)."""
        return self.population / self.population.sum()

    def __len__(self) -> int:
        return len(self.name)


def data_file(name: str) -> Any:
    """A calibration data file of the china scenario (an importlib resource)."""
    return resources.files(DATA_PACKAGE).joinpath(*DATA_DIR, name)


@cache
def provinces() -> Provinces:
    """The province table (read once)."""
    with data_file("provinces.csv").open("r", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))

    def col(key: str) -> np.ndarray:
        return np.array([float(r[key]) for r in rows])

    return Provinces(
        code=col("code").astype(np.int64), name=[r["name"] for r in rows],
        macro_region=[r["macro_region"] for r in rows], population=col("population_millions"),
        income=col("income_2023"), urban=col("urban_share_2020"), minority=col("minority_share_2020"),
        mark=[r["mark"] for r in rows],
    )


@cache
def target_rows() -> tuple[dict[str, Any], ...]:
    """Every ``[[target]]`` row of targets.toml, in file order."""
    data = tomllib.loads(data_file("targets.toml").read_text(encoding="utf-8"))
    return tuple(data["target"])


def published(key: str) -> float:
    """The target value of one row of targets.toml."""
    for row in target_rows():
        if row["key"] == key:
            return float(row["target"])
    raise KeyError(key)


# -- small numeric helpers -----------------------------------------------------


def norm_cdf(x: float) -> float:
    """Standard normal distribution function."""
    return 0.5 * math.erfc(-x / _SQRT2)


def norm_ppf(p: float) -> float:
    """Standard normal quantile (bisection; ±inf at 0 and 1)."""
    if p <= 0.0:
        return -math.inf
    if p >= 1.0:
        return math.inf
    lo, hi = -40.0, 40.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if norm_cdf(mid) < p else (lo, mid)
    return 0.5 * (lo + hi)


def expit(x: np.ndarray) -> np.ndarray:
    """Logistic function."""
    return 1.0 / (1.0 + np.exp(-x))


def logit(p: np.ndarray) -> np.ndarray:
    """Inverse of ``expit``."""
    return np.log(p / (1.0 - p))


def solve_shift(fn: Any, target: float, lo: float = -30.0, hi: float = 30.0) -> float:
    """``c`` with ``fn(c) == target`` for ``fn`` increasing (bisection)."""
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if fn(mid) < target else (lo, mid)
    return 0.5 * (lo + hi)


def shifted_shares(shares: np.ndarray, weights: np.ndarray, target: float) -> np.ndarray:
    """``shares`` moved by one common logit shift so their weighted mean is ``target``."""
    base = logit(np.clip(shares, 1e-6, 1 - 1e-6))
    c = solve_shift(lambda s: float(weights @ expit(base + s)), target)
    return expit(base + c)


# -- the configuration (model assumptions) ---------------------------------------


class ChinaPopulationConfig(Strict):
    """Assumptions of the china population; published figures come from the data files."""

    # residence and hukou
    hukou_urban: Share = Field(0.42, description="share of citizens with an urban hukou (NBS: below 50 %)")
    hukou_rural_resident: Share = Field(0.03, description="P(urban hukou | rural resident)")
    hukou_income: float = Field(0.4, ge=0, lt=1, description="correlation of the urban-hukou latent with income "
                                "rank among urban residents (rural-hukou urban residents are poorer migrants)")
    # ages and sex
    age_profile: tuple[Annotated[float, Field(gt=0, le=1e6)], ...] = Field(
        DEFAULT_AGE_PROFILE, min_length=20, max_length=20,
        description="relative size of the 5-year age groups 0-4 ... 95-99 (shape within the published bands)")
    female_children: Share = Field(0.474, description="P(female) at ages 0-15 (sex ratio at birth about 111)")
    female_old: Share = Field(0.52, description="P(female) at 60+; ages 16-59 are solved to meet the sex ratio")
    # minority
    minority_rural_odds: float = Field(1.5, gt=0, le=20, description="odds ratio of minority status, rural vs "
                                       "urban residents of the same province")
    minority_income: float = Field(0.9, gt=0, le=2, description="income of minority citizens relative to the "
                                   "majority of the same province and urban group (group means kept)")
    # income: group means
    income_level: float = Field(1.02, gt=0.2, le=5, description="national mean income as a multiple of the "
                                "published mean; >1 splits the gap between the NBS means (module docstring)")
    urban_income_ratio: float = Field(2.2, ge=1, le=10, description="urban / rural mean income within a province")
    # income: shape within a group (mean 1): lognormal body, power-law bottom, Pareto top
    income_sigma: float = Field(0.3, gt=0, le=3, description="sd of log income in the lognormal body")
    income_top_share: float = Field(0.2, ge=0, lt=0.5, description="share drawn from the Pareto upper tail")
    income_top_alpha: float = Field(2.2, gt=1.05, le=20, description="Pareto exponent of the upper tail")
    income_bottom_share: float = Field(0.3, ge=0, lt=0.5, description="share drawn from the power-law lower tail")
    income_bottom_beta: float = Field(0.7, gt=0.05, le=20, description="exponent of the lower tail: "
                                      "P(income < x) ∝ x^beta below the junction")
    income_floor: float = Field(300.0, ge=1, le=1e5, description="smallest income (CNY/yr)")
    income_cap: float = Field(1e9, ge=1e5, le=1e12, description="largest income (CNY/yr)")
    # education: ordered probit on a latent
    education_thresholds: tuple[float, float, float] = Field(
        (-0.6, 0.55, 1.15), description="latent cut points between levels 0|1, 1|2, 2|3 (increasing)")
    education_urban: float = Field(0.6, ge=-5, le=5, description="latent shift for urban residents")
    education_cohort: float = Field(0.28, ge=-5, le=5, description="latent shift per decade younger than 40")
    education_income: float = Field(0.45, ge=0, lt=1, description="correlation of the latent with income rank")
    # wealth and debt
    wealth_multiple: float = Field(5.0, gt=0, le=1e3, description="median wealth / income at age 40, rural")
    wealth_age: float = Field(0.02, ge=-1, le=1, description="log wealth multiple per year of age above 40")
    wealth_urban: float = Field(0.4, ge=-5, le=5, description="log wealth multiple added for urban residents")
    wealth_sigma: float = Field(0.9, gt=0, le=5, description="sd of the log wealth multiple")
    debt_share: Share = Field(0.45, description="P(some debt) of an adult aged 25-55 of average risk")
    debt_multiple: float = Field(2.5, gt=0, le=100, description="median debt / income of a debtor")
    debt_sigma: float = Field(1.2, gt=0, le=5, description="sd of the log debt multiple")
    debt_risk: float = Field(1.5, ge=0, le=10, description="logit of P(debt) per unit of risk above 0.3")
    # internet and platforms
    internet_by_age: tuple[AgeKnot, ...] = Field(
        ((0, 0.02), (6, 0.3), (12, 0.75), (18, 0.95), (35, 0.97), (50, 0.9), (60, 0.72), (70, 0.45),
         (80, 0.2), (99, 0.05)), min_length=2,
        description="P(internet user) by age before shifts: [age, share] knots, linear between")
    internet_urban: Logit = Field(0.8, description="logit shift of internet use for urban residents")
    internet_education: Logit = Field(0.4, description="logit shift of internet use per education level")
    payment_by_age: tuple[AgeKnot, ...] = Field(
        ((0, 0.01), (10, 0.05), (14, 0.3), (18, 0.85), (25, 0.96), (45, 0.95), (60, 0.85), (75, 0.65),
         (99, 0.4)), min_length=2,
        description="P(online-payment user | internet user) by age before shifts: [age, share] knots")
    payment_urban: Logit = Field(0.5, description="logit shift of online payment for urban residents")
    consent: Share = Field(0.7, description="P(consents to data sharing | payment-platform member)")
    # latent traits: logit-normal (Beta-like on [0, 1]) plus shifts
    risk: LogitNormal = Field((-1.0, 0.8), description="logit mean and sd of risk propensity")
    risk_male: Logit = Field(0.3, description="logit shift of risk for men")
    risk_age: Logit = Field(-0.12, description="logit shift of risk per decade above 30")
    voice: LogitNormal = Field((-2.9, 1.0), description="logit mean and sd of outspokenness")
    voice_education: Logit = Field(0.3, description="logit shift of voice per education level")
    voice_age: Logit = Field(-0.12, description="logit shift of voice per decade above 30")
    sociability: LogitNormal = Field((0.0, 0.8), description="logit mean and sd of sociability")
    sociability_age: Logit = Field(-0.1, description="logit shift of sociability per decade above 30")
    conscientiousness: LogitNormal = Field((0.5, 0.8), description="logit mean and sd of conscientiousness")
    conscientiousness_age: Logit = Field(0.08, description="logit shift of conscientiousness per decade above 30")
    # family
    parent_max_age: int = Field(40, ge=0, le=AGE_MAX, description="citizens younger than this may have a parent")
    parent_share: Share = Field(0.9, description="P(a parent is looked for) for citizens younger than parent_max_age")
    parent_gap: tuple[Annotated[int, Field(ge=12, le=70)], Annotated[int, Field(ge=12, le=70)]] = Field(
        (20, 40), description="a parent is this many years older (inclusive)")
    parent_window: float = Field(0.01, gt=0, le=1, description="a parent is looked for among citizens this "
                                 "share of the province away in id (similar urban status and income)")
    parent_tries: int = Field(12, ge=1, le=100, description="candidates tried per citizen before giving up")

    @model_validator(mode="after")
    def _check(self) -> ChinaPopulationConfig:
        t = self.education_thresholds
        if not t[0] < t[1] < t[2]:
            raise ValueError("education_thresholds must be increasing")
        if self.parent_gap[0] > self.parent_gap[1]:
            raise ValueError("parent_gap must be [min, max] with min <= max")
        for name in ("internet_by_age", "payment_by_age"):
            ages = [a for a, _ in getattr(self, name)]
            if ages != sorted(set(ages)):
                raise ValueError(f"{name}: knot ages must be strictly increasing")
        return self


# -- derived tables (pure functions of the config and the data) ------------------


@dataclass(frozen=True)
class Tables:
    """Per-province and per-age probabilities and means derived once per fill."""

    urban: np.ndarray  # P(urban) by province
    minority: np.ndarray  # [2, R]: P(minority) by (rural, urban) and province
    income_mean: np.ndarray  # [2, R]: mean income by (rural, urban) and province
    minority_factor: np.ndarray  # [2, 2, R]: income factor by (majority, minority), (rural, urban), province
    age_cdf: np.ndarray  # cumulative distribution of single-year ages 0..AGE_MAX
    female: np.ndarray  # P(female) by age
    shape: tuple[float, ...]  # income-shape constants: sigma, z_low, z_top, x_low, x_top, norm


def income_shape(c: ChinaPopulationConfig) -> tuple[float, ...]:
    """Constants of the within-group income shape; ``norm`` makes its mean 1.

    X = exp(sigma z) on the body; above quantile 1 - t a Pareto tail
    x_top (q / t)^(-1/alpha) with q = P(Z > z); below quantile l a power law
    x_low (p / l)^(1/beta) with p = P(Z < z). X is increasing in z.
    """
    s, t, a = c.income_sigma, c.income_top_share, c.income_top_alpha
    low, b = c.income_bottom_share, c.income_bottom_beta
    z_top, z_low = norm_ppf(1.0 - t), norm_ppf(low)
    x_top = math.exp(s * z_top) if t > 0 else 0.0
    x_low = math.exp(s * z_low) if low > 0 else 0.0
    body = math.exp(s * s / 2) * (norm_cdf(z_top - s) - norm_cdf(z_low - s))
    mean = body + t * x_top * a / (a - 1) + low * x_low * b / (b + 1)
    return s, z_low, z_top, x_low, x_top, mean


def _minority_by_urban(share: np.ndarray, urban: np.ndarray, odds: float) -> np.ndarray:
    """P(minority) of (rural, urban) residents per province: rural odds = ``odds`` × urban odds."""
    out = np.empty((2, len(share)))
    for r in range(len(share)):
        def mean(c: float, r: int = r) -> float:
            pu = 1 / (1 + math.exp(-c))
            pr = 1 / (1 + math.exp(-c - math.log(odds)))
            return urban[r] * pu + (1 - urban[r]) * pr
        c = solve_shift(mean, share[r])
        out[1, r] = 1 / (1 + math.exp(-c))
        out[0, r] = 1 / (1 + math.exp(-c - math.log(odds)))
    return out


def age_distribution(c: ChinaPopulationConfig) -> np.ndarray:
    """P(age) for ages 0..AGE_MAX: the profile's shape, scaled to the published band shares."""
    per_year = np.repeat(np.asarray(c.age_profile, float) / 5.0, 5)[: AGE_MAX + 1]
    bands = np.array([published("age_0_15"), published("age_16_59"), published("age_60_plus")])
    edges = (0, *BANDS, AGE_MAX + 1)
    for k in range(3):
        sl = slice(edges[k], edges[k + 1])
        per_year[sl] *= bands[k] / bands.sum() / per_year[sl].sum()
    return per_year


def female_by_age(c: ChinaPopulationConfig, p_age: np.ndarray) -> np.ndarray:
    """P(female) by age: given for children and the old, solved for 16-59 to meet the sex ratio."""
    overall = 100.0 / (100.0 + published("sex_ratio"))
    young, mid, old = p_age[: BANDS[0]].sum(), p_age[BANDS[0] : BANDS[1]].sum(), p_age[BANDS[1] :].sum()
    f_mid = (overall - young * c.female_children - old * c.female_old) / mid
    out = np.full(AGE_MAX + 1, f_mid)
    out[: BANDS[0]] = c.female_children
    out[BANDS[1] :] = c.female_old
    return np.clip(out, 0.0, 1.0)


def tables(c: ChinaPopulationConfig) -> Tables:
    """Province, age and income tables of a config (published figures from the data files)."""
    p = provinces()
    w = p.weight
    urban = shifted_shares(p.urban, w, published("urban_share"))
    minority = _minority_by_urban(shifted_shares(p.minority, w, published("minority_share")), urban,
                                  c.minority_rural_odds)
    level = c.income_level * published("income_mean") * p.income / float(w @ p.income)
    k = c.urban_income_ratio
    rural_mean = level / (urban * k + 1 - urban)
    income_mean = np.stack([rural_mean, k * rural_mean])
    denom = 1 - minority + minority * c.minority_income  # keeps each group's mean
    factor = np.stack([1 / denom, c.minority_income / denom])
    p_age = age_distribution(c)
    return Tables(urban=urban, minority=minority, income_mean=income_mean, minority_factor=factor,
                  age_cdf=np.cumsum(p_age) / p_age.sum(), female=female_by_age(c, p_age), shape=income_shape(c))


# -- kernels ---------------------------------------------------------------------

# Acklam's rational approximation of the normal quantile (relative error < 1.2e-9).
_A = (-3.969683028665376e01, 2.209460984245205e02, -2.759285104469687e02, 1.383577518672690e02,
      -3.066479806614716e01, 2.506628277459239e00)
_B = (-5.447609879822406e01, 1.615858368580409e02, -1.556989798598866e02, 6.680131188771972e01,
      -1.328068155288572e01)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e00, -2.549732539343734e00,
      4.374664141464968e00, 2.938163982698783e00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e00, 3.754408661907416e00)
_P_LOW = 0.02425


@njit(cache=True, inline="always")
def _ppf(p):
    """Standard normal quantile of ``p`` in (0, 1)."""
    if p < _P_LOW or p > 1.0 - _P_LOW:
        q = math.sqrt(-2.0 * math.log(p if p < 0.5 else 1.0 - p))
        x = ((((((_C[0] * q + _C[1]) * q + _C[2]) * q + _C[3]) * q + _C[4]) * q + _C[5])
             / ((((_D[0] * q + _D[1]) * q + _D[2]) * q + _D[3]) * q + 1.0))
        return x if p < 0.5 else -x
    q = p - 0.5
    r = q * q
    return ((((((_A[0] * r + _A[1]) * r + _A[2]) * r + _A[3]) * r + _A[4]) * r + _A[5]) * q
            / (((((_B[0] * r + _B[1]) * r + _B[2]) * r + _B[3]) * r + _B[4]) * r + 1.0))


@njit(cache=True, nogil=True)
def _shape_kernel(u, sigma, low_share, top_share, beta, alpha, x_low, x_top, z, x):
    """Normal scores ``z`` and income multipliers ``x`` (before normalisation) of uniforms ``u``."""
    for k in range(len(u)):
        p = min(max(u[k], 1e-300), 1.0 - 1.1e-16)
        z[k] = _ppf(p)
        if p > 1.0 - top_share:
            x[k] = x_top * ((1.0 - p) / top_share) ** (-1.0 / alpha)
        elif p < low_share:
            x[k] = x_low * (p / low_share) ** (1.0 / beta)
        else:
            x[k] = math.exp(sigma * z[k])


def income_draw(u: np.ndarray, c: ChinaPopulationConfig, shape: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray]:
    """Normal scores (float32) and income multipliers of mean 1 (increasing in u) for uniforms ``u``."""
    sigma, _, _, x_low, x_top, norm = shape
    z = np.empty(len(u), np.float64)
    x = np.empty(len(u), np.float64)
    _shape_kernel(u, sigma, c.income_bottom_share, c.income_top_share, c.income_bottom_beta, c.income_top_alpha,
                  x_low, x_top, z, x)
    return z.astype(np.float32), x / norm


@njit(cache=True, nogil=True)
def _categorical(u, cdf, out):
    """``out[k]`` = the first index whose cumulative probability exceeds ``u[k]`` (u in [0, 1))."""
    buckets = 4096
    start = np.searchsorted(cdf, np.arange(buckets) / buckets, side="right")  # a lower bound per bucket
    last = len(cdf) - 1
    for k in range(len(u)):
        i = start[int(u[k] * buckets)]
        while i < last and cdf[i] <= u[k]:
            i += 1
        out[k] = i


@njit(cache=True, parallel=True)
def _parents_kernel(seed, block_start, block_region, region_start, age, max_age, share, window_share,
                    gap_lo, gap_hi, tries, out):
    """Parents by counter-based draws (block streams of day -3); see ``find_parents``."""
    for b in prange(len(block_region)):
        key = stream_key(seed, _POPULATION, -3, b)
        r = block_region[b]
        rlo, rhi = region_start[r], region_start[r + 1]
        size = rhi - rlo
        window = max(1, min(size - 1, int(window_share * size + 0.5)))
        for i in range(block_start[b], block_start[b + 1]):
            out[i] = -1
            base = (i - block_start[b]) * (tries + 1)
            if size < 2 or age[i] >= max_age or uniform(key, base) >= share:
                continue
            for t in range(tries):
                d = below(key, base + 1 + t, 2 * window)
                off = d - window if d < window else d - window + 1
                j = i + off
                if j < rlo or j >= rhi:
                    j = i - off
                j = min(max(j, rlo), rhi - 1)
                gap = np.int64(age[j]) - np.int64(age[i])
                if gap_lo <= gap <= gap_hi:
                    out[i] = j
                    break


def for_blocks(blocks: Blocks, fn: Callable[[int, int, int], None]) -> None:
    """Call ``fn(b, lo, hi)`` for every block, in order (blocks write disjoint slices)."""
    for b in range(blocks.count):
        fn(b, int(blocks.block_start[b]), int(blocks.block_start[b + 1]))


def _interp_knots(knots: tuple[tuple[int, float], ...], ages: np.ndarray) -> np.ndarray:
    xs = np.array([a for a, _ in knots], float)
    ys = np.array([s for _, s in knots], float)
    return np.interp(ages, xs, ys)


def _logit_normal(gen: np.random.Generator, spec: tuple[float, float], shift: np.ndarray) -> np.ndarray:
    """Beta-like values on (0, 1): expit(Normal(mean, sd) + shift), float32."""
    z = gen.standard_normal(len(shift), dtype=np.float32) * np.float32(spec[1]) + np.float32(spec[0])
    z += shift
    return expit(z).astype(dt.TRAIT, copy=False)


# -- the plugin --------------------------------------------------------------------


@register("population", "china")
class ChinaPopulation(Plugin):
    """Citizens of 31 provinces calibrated to NBS, census and CNNIC figures (see module docstring)."""

    Config = ChinaPopulationConfig

    def region_counts(self, n: int, seed: int) -> np.ndarray:
        """Citizens per province: multinomial counts with 2020 census population shares."""
        gen = numpy_generator(seed, Stream.POPULATION, block=-1)
        return gen.multinomial(n, provinces().weight).astype(np.int64)

    def fill(self, citizens: Citizens, blocks: Blocks, seed: int) -> None:
        """Draw every attribute (phases 1-3 of the module docstring)."""
        c = self.config
        tab = tables(c)
        z = self._phase1(citizens, blocks, seed, tab)
        self._sort_regions(citizens, blocks, z)
        u_net, u_pay = self._phase2(citizens, blocks, seed, tab, z)
        del z
        self._platforms(citizens, u_net, u_pay)
        del u_net, u_pay
        self._phase3(citizens, blocks, seed)
        citizens.income0[:] = citizens.income

    # phase 1: urban, minority, income (what the id order depends on)

    def _phase1(self, cz: Citizens, blocks: Blocks, seed: int, tab: Tables) -> np.ndarray:
        c = self.config
        z = np.empty(cz.n, np.float32)

        def block(b: int, lo: int, hi: int) -> None:
            r = int(blocks.block_region[b])
            gen = numpy_generator(seed, Stream.POPULATION, block=b)
            urban = gen.random(hi - lo, dtype=np.float32) < tab.urban[r]
            u = urban.astype(np.intp)
            minority = gen.random(hi - lo, dtype=np.float32) < tab.minority[u, r]
            z[lo:hi], shape = income_draw(gen.random(hi - lo), c, tab.shape)
            mean = tab.income_mean[u, r] * tab.minority_factor[minority.astype(np.intp), u, r]
            cz.income[lo:hi] = np.clip(mean * shape, c.income_floor, c.income_cap)
            cz.flags[lo:hi] = urban * dt.FLAG_URBAN + minority * dt.FLAG_MINORITY

        for_blocks(blocks, block)
        return z

    @staticmethod
    def _sort_regions(cz: Citizens, blocks: Blocks, z: np.ndarray) -> None:
        """Order each province by (urban, income); ties keep their drawn order."""
        for r in range(blocks.regions):
            lo, hi = int(blocks.region_start[r]), int(blocks.region_start[r + 1])
            if hi - lo < 2:
                continue
            order = sort_order(cz.flags[lo:hi] & dt.FLAG_URBAN, cz.income[lo:hi])
            for arr in (cz.income, cz.flags, z):
                arr[lo:hi] = arr[lo:hi][order]

    # phase 2: everything else, for the sorted positions

    def _phase2(self, cz: Citizens, blocks: Blocks, seed: int, tab: Tables,
                z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = cz.n
        ex = cz.extra
        for name, dtype in (("age", np.uint8), ("female", np.uint8), ("hukou_urban", np.uint8),
                            ("education", np.uint8), ("wealth", dt.MONEY), ("debt", dt.MONEY),
                            ("messaging", np.uint8), ("consent", np.uint8), ("sociability", dt.TRAIT),
                            ("conscientiousness", dt.TRAIT)):
            ex[name] = np.zeros(n, dtype)
        u_net = np.empty(n, np.float32)
        u_pay = np.empty(n, np.float32)

        def block(b: int, lo: int, hi: int) -> None:
            gen = numpy_generator(seed, Stream.POPULATION, block=b, day=-2)
            self._draw_block(cz, slice(lo, hi), gen, tab, z[lo:hi])
            u_net[lo:hi] = gen.random(hi - lo, dtype=np.float32)
            u_pay[lo:hi] = gen.random(hi - lo, dtype=np.float32)

        for_blocks(blocks, block)
        return u_net, u_pay

    def _draw_block(self, cz: Citizens, sl: slice, gen: np.random.Generator, tab: Tables, z: np.ndarray) -> None:
        c, ex = self.config, cz.extra
        m = len(z)
        urban = (cz.flags[sl] & dt.FLAG_URBAN) != 0
        age = np.empty(m, np.uint8)
        _categorical(gen.random(m), tab.age_cdf, age)
        female = gen.random(m, dtype=np.float32) < tab.female[age]
        ex["age"][sl] = age
        ex["female"][sl] = female
        ex["hukou_urban"][sl] = self._hukou(gen, urban, z)
        edu = self._education(gen, urban, age, z)
        ex["education"][sl] = edu
        decades = (age.astype(np.float32) - 30) / 10
        f32 = np.float32
        cz.risk[sl] = _logit_normal(gen, c.risk, f32(c.risk_male) * ~female + f32(c.risk_age) * decades)
        cz.voice[sl] = _logit_normal(gen, c.voice, f32(c.voice_education) * edu + f32(c.voice_age) * decades)
        ex["sociability"][sl] = _logit_normal(gen, c.sociability, f32(c.sociability_age) * decades)
        ex["conscientiousness"][sl] = _logit_normal(gen, c.conscientiousness, f32(c.conscientiousness_age) * decades)
        income = cz.income[sl]
        ex["wealth"][sl] = self._wealth(gen, income, urban, age)
        ex["debt"][sl] = self._debt(gen, income, urban, age, cz.risk[sl])
        ex["consent"][sl] = gen.random(m, dtype=np.float32) < c.consent  # applies to members only, below

    def _hukou(self, gen: np.random.Generator, urban: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Urban hukou: rare in rural areas; among urban residents, more likely the richer."""
        c = self.config
        u = published("urban_share")
        among_urban = np.clip((c.hukou_urban - (1 - u) * c.hukou_rural_resident) / u, 0.0, 1.0)
        rho = c.hukou_income
        latent = rho * z + math.sqrt(1 - rho * rho) * gen.standard_normal(len(z), dtype=np.float32)
        noise = gen.random(len(z), dtype=np.float32)
        return np.where(urban, latent > norm_ppf(1 - among_urban), noise < c.hukou_rural_resident)

    def _education(self, gen: np.random.Generator, urban: np.ndarray, age: np.ndarray, z: np.ndarray) -> np.ndarray:
        """Highest level attained or in progress: ordered probit, capped by age."""
        c = self.config
        rho = c.education_income
        latent = (rho * z + math.sqrt(1 - rho * rho) * gen.standard_normal(len(z), dtype=np.float32)
                  + c.education_urban * urban + c.education_cohort * (40 - age.astype(np.float32)) / 10)
        t0, t1, t2 = c.education_thresholds
        level = (latent > t0).astype(np.uint8) + (latent > t1) + (latent > t2)
        cap = (age >= 13).astype(np.uint8) + (age >= 16) + (age >= 19)  # in progress: <13: 0, 13-15: 1, 16-18: 2
        return np.minimum(level, cap)

    def _wealth(self, gen: np.random.Generator, income: np.ndarray, urban: np.ndarray,
                age: np.ndarray) -> np.ndarray:
        """Net wealth (CNY): income × a lognormal multiple growing with age, higher in towns."""
        c = self.config
        f32 = np.float32
        log_mult = gen.standard_normal(len(age), dtype=np.float32) * f32(c.wealth_sigma)
        log_mult += f32(math.log(c.wealth_multiple)) + f32(c.wealth_age) * (age.astype(np.float32) - 40)
        log_mult += f32(c.wealth_urban) * urban
        return income * np.exp(log_mult)

    def _debt(self, gen: np.random.Generator, income: np.ndarray, urban: np.ndarray, age: np.ndarray,
              risk: np.ndarray) -> np.ndarray:
        """Debt (CNY): adults of working age and risky citizens borrow more often; amount scales with income."""
        c = self.config
        f32 = np.float32
        life = np.where((age >= 25) & (age <= 55), f32(0), np.where(age < 18, f32(-8), f32(-1)))
        base = f32(logit(np.clip(c.debt_share, 1e-9, 1 - 1e-9)))
        p = expit(base + life + f32(c.debt_risk) * (risk - f32(0.3)) + f32(0.3) * urban)
        has = gen.random(len(age), dtype=np.float32) < p
        mult = np.exp(gen.standard_normal(len(age), dtype=np.float32) * f32(c.debt_sigma)) * f32(c.debt_multiple)
        return np.where(has, income * mult * (f32(0.5) + risk), f32(0))

    # internet and payment platforms: intercepts solved on whole-population cells

    def _platforms(self, cz: Citizens, u_net: np.ndarray, u_pay: np.ndarray) -> None:
        c, ex = self.config, cz.extra
        urban = (cz.flags & dt.FLAG_URBAN) != 0
        cell = (ex["age"].astype(np.int32) * 2 + urban) * EDUCATION_LEVELS + ex["education"]
        p_net, p_pay = platform_tables(c, np.bincount(cell, minlength=(AGE_MAX + 1) * 2 * EDUCATION_LEVELS))
        internet = u_net < p_net[cell]
        member = internet & (u_pay < p_pay[cell])
        ex["messaging"][:] = internet
        ex["consent"] &= member
        cz.flags |= (member * dt.FLAG_MEMBER).astype(dt.FLAGS)

    # phase 3: parents

    def _phase3(self, cz: Citizens, blocks: Blocks, seed: int) -> None:
        cz.extra["parent"] = find_parents(seed, blocks, cz.extra["age"], self.config)


def platform_tables(c: ChinaPopulationConfig, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """P(internet) and P(payment | internet) per (age, urban, education) cell, shifted to the published
    shares given the cells' ``counts``."""
    cells = np.arange(len(counts))
    edu = cells % EDUCATION_LEVELS
    urban = (cells // EDUCATION_LEVELS) % 2
    age = cells // (2 * EDUCATION_LEVELS)
    total = max(int(counts.sum()), 1)
    base_net = logit(_interp_knots(c.internet_by_age, age)) + c.internet_urban * urban + c.internet_education * edu
    s_net = solve_shift(lambda s: float(counts @ expit(base_net + s)) / total, published("internet_share"))
    p_net = expit(base_net + s_net)
    users = counts * p_net
    base_pay = logit(_interp_knots(c.payment_by_age, age)) + c.payment_urban * urban
    s_pay = solve_shift(lambda s: float(users @ expit(base_pay + s)) / max(users.sum(), 1e-12),
                        published("online_payment_share"))
    return p_net.astype(np.float32), expit(base_pay + s_pay).astype(np.float32)


def sort_order(urban: np.ndarray, income: np.ndarray) -> np.ndarray:
    """Permutation ordering citizens by (urban, income, position).

    The position makes every key unique, so the order is the same whatever
    sort algorithm numpy picks on this machine (income is positive float32,
    whose bit patterns sort like the values).
    """
    m = len(income)
    bits = income.astype(np.float32).view(np.int32).astype(np.int64)
    if m <= 1 << 27:
        return np.argsort((urban.astype(np.int64) << 58) | (bits << 27) | np.arange(m, dtype=np.int64))
    return np.argsort((urban.astype(np.int64) << 32) | bits, kind="stable")


def find_parents(seed: int, blocks: Blocks, age: np.ndarray, c: ChinaPopulationConfig) -> np.ndarray:
    """Parent of every citizen (an id in the same province), or -1.

    A citizen younger than ``parent_max_age`` looks for a parent with
    probability ``parent_share``: up to ``parent_tries`` candidates at a random
    id distance of at most ``parent_window`` × province size (so of similar
    urban status and income; reflected at the province's ends), taking the
    first whose age gap is within ``parent_gap``. Counter-based draws from
    block streams of day -3.
    """
    out = np.empty(len(age), dt.CITIZEN_ID)
    _parents_kernel(seed, blocks.block_start, blocks.block_region, blocks.region_start, age, c.parent_max_age,
                    c.parent_share, c.parent_window, c.parent_gap[0], c.parent_gap[1], c.parent_tries, out)
    return out
