"""Behaviours that happen on a day with a probability: base rate × propensity."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

from pydantic import Field, model_validator

from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.scenario.schema import Context, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation

Form = Literal["constant", "risk_factor", "risk_strain", "voice_unchilled", "prosocial", "risk"]


class BernoulliConfig(Strict):
    """Daily probability = (rate_urban if urban else rate_rural) × propensity.

    Propensities: ``constant`` 1; ``risk_factor`` a = risk_offset + risk;
    ``risk_strain`` a · min(strain_cap, sqrt(strain_income / income));
    ``voice_unchilled`` voice · (1 − chill); ``prosocial`` prosocial_offset − risk;
    ``risk`` risk.
    """

    context: Context = Field(description="the social context the behaviour belongs to (where its data comes from)")
    rate_urban: float = Field(ge=0.0, le=1.0, description="base daily probability, urban citizens")
    rate_rural: float = Field(ge=0.0, le=1.0, description="base daily probability, rural citizens")
    propensity: Form = "constant"
    risk_offset: float | None = Field(None, ge=0.0, le=100.0, description="a = risk_offset + risk")
    strain_income: float | None = Field(None, gt=0.0, le=1e9, description="income (CNY/yr) where strain is 1")
    strain_cap: float | None = Field(None, gt=0.0, le=1e6, description="largest strain factor")
    prosocial_offset: float | None = Field(None, ge=1.0, le=100.0, description="prosocial = offset − risk")

    @model_validator(mode="after")
    def _needs(self) -> BernoulliConfig:
        needed = {
            "risk_factor": ("risk_offset",),
            "risk_strain": ("risk_offset", "strain_income", "strain_cap"),
            "prosocial": ("prosocial_offset",),
        }.get(self.propensity, ())
        missing = [k for k in needed if getattr(self, k) is None]
        if missing:
            raise ValueError(f"propensity {self.propensity!r} needs {', '.join(missing)}")
        return self

    def params(self) -> tuple[float, float, float]:
        """(p0, p1, p2) of the propensity form."""
        if self.propensity == "prosocial":
            return (float(self.prosocial_offset), 0.0, 0.0)
        return (
            float(self.risk_offset or 0.0),
            float(self.strain_income or 0.0),
            float(self.strain_cap or 0.0),
        )


@register("behaviour", "bernoulli")
class Bernoulli(Plugin):
    """An event kind named after its table (``[behaviour.jaywalk]`` → ``jaywalk``)."""

    Config = BernoulliConfig

    def declare(self, sim: Simulation) -> None:
        """Register the event kind."""
        c = self.config
        sim.kinds.add(
            self.name, f"behaviour.{self.name}", c.rate_urban, c.rate_rural, c.propensity, c.params()
        )
