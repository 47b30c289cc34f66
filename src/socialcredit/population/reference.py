"""The reference population of SPEC section 9.1."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from pydantic import Field

from socialcredit import dtypes as dt
from socialcredit.engine.plugin import Plugin
from socialcredit.population.blocks import Blocks
from socialcredit.population.citizens import Citizens
from socialcredit.registry import register
from socialcredit.rng import Stream, numpy_generator
from socialcredit.scenario.schema import Strict

Share = Annotated[float, Field(ge=0.0, le=1.0)]
MIN_INCOME, MAX_INCOME = 1.0, 1e12  # CNY/yr: incomes are clipped to this range
BetaShape = tuple[Annotated[float, Field(gt=0, le=1e4)], Annotated[float, Field(gt=0, le=1e4)]]


class ReferencePopulationConfig(Strict):
    """Independent attributes, regions uniform (SPEC 9.1)."""

    regions: int = Field(ge=1, le=255, description="number of regions, equally likely")
    urban: Share = Field(description="P(urban)")
    minority: Share = Field(description="P(minority)")
    member: Share = Field(description="P(payment-platform member)")
    income_log_mean: float = Field(ge=0, le=20, description="mean of log income (CNY/yr) for rural majority")
    income_log_urban: float = Field(ge=-5, le=5, description="added to the log mean when urban")
    income_log_minority: float = Field(ge=-5, le=5, description="added to the log mean for minority")
    income_log_sd: float = Field(gt=0, le=3, description="sd of log income")
    risk_beta: BetaShape = Field(description="Beta(a, b) of risk propensity")
    voice_beta: BetaShape = Field(description="Beta(a, b) of outspokenness")


@register("population", "reference")
class ReferencePopulation(Plugin):
    """Citizens with independent attributes; regions of equal expected size."""

    Config = ReferencePopulationConfig

    def region_counts(self, n: int, seed: int) -> np.ndarray:
        """Citizens per region: the multinomial counts of i.i.d. uniform regions."""
        c = self.config
        gen = numpy_generator(seed, Stream.POPULATION, block=-1)
        return gen.multinomial(n, np.full(c.regions, 1.0 / c.regions)).astype(np.int64)

    def fill(self, citizens: Citizens, blocks: Blocks, seed: int, block_base: int = 0) -> None:
        """Draw every attribute, block by block from the block's own stream
        (``block_base``: global index of block 0, for a partition of a distributed run)."""
        c = self.config
        for b in range(blocks.count):
            lo, hi = int(blocks.block_start[b]), int(blocks.block_start[b + 1])
            m = hi - lo
            gen = numpy_generator(seed, Stream.POPULATION, block=b + block_base)
            urban = gen.random(m) < c.urban
            minority = gen.random(m) < c.minority
            member = gen.random(m) < c.member
            log_mu = c.income_log_mean + c.income_log_urban * urban + c.income_log_minority * minority
            income = np.clip(np.exp(gen.normal(log_mu, c.income_log_sd)), MIN_INCOME, MAX_INCOME)
            citizens.income[lo:hi] = income
            citizens.risk[lo:hi] = gen.beta(*c.risk_beta, size=m)
            citizens.voice[lo:hi] = gen.beta(*c.voice_beta, size=m)
            citizens.flags[lo:hi] = (
                urban * dt.FLAG_URBAN + minority * dt.FLAG_MINORITY + member * dt.FLAG_MEMBER
            ).astype(dt.FLAGS)
        citizens.income0[:] = citizens.income
