"""Services that check a citizen's record before serving them: bans, gates and perks.

Each ``service`` table defines an event kind named after it (a request) with a
formula rate, and a rule evaluated on the requesting citizens at the moment of
the request: ``deny = "listed"`` refuses when true (a ban: flights, hotels,
property, loans, private school, civil-service posts ...), ``allow =
"sesame >= 650"`` serves only when true (a perk: deposit-free rental, visa
fast-track ...). A refusal is marked on the event (``denied``) and may cut the
citizen's income (a lost trip, job or contract). Work per day is proportional
to the day's requests.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field, model_validator

from socialcredit.behaviour.formula import RateFormula
from socialcredit.engine.events import DENIED
from socialcredit.engine.kernels import positions
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.scenario.expressions import Formula, parse
from socialcredit.scenario.schema import Context, Safeguards, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation


class ServiceConfig(Strict):
    """A service whose requests are checked against a rule."""

    context: Context = Field(description="the social context of the service")
    label: str = Field("", max_length=200, description="what is requested, in words")
    agency: str = Field("", max_length=200, description="who enforces the rule (joint punishment)")
    attempt: Formula = Field(description="daily probability of a request, a formula")
    refresh_days: int = Field(30, ge=1, le=3650, description="re-evaluate the attempt formula every this many days")
    deny: Formula | None = Field(None, description="refuse the request when this is true (a ban)")
    allow: Formula | None = Field(None, description="serve only when this is true (a perk)")
    income_factor: float = Field(1.0, gt=0, le=1, description="income multiplied by this per refusal")
    safeguards: Safeguards = Safeguards()

    @model_validator(mode="after")
    def _one_rule(self) -> ServiceConfig:
        if (self.deny is None) == (self.allow is None):
            raise ValueError("give exactly one of deny (a ban) and allow (a perk)")
        return self


@register("consequences", "service")
class Service(Plugin):
    """Requests for a service, refused by a rule over the requester's record."""

    Config = ServiceConfig
    steps = {"behaviour": "refresh", "consequences": "apply"}

    def declare(self, sim: Simulation) -> None:
        """Register the request as an event kind with a formula rate."""
        where = f"consequences.{self.name}"
        self.kind_code = sim.kinds.add(self.name, where, 1.0, 1.0, "table")
        self.rate = RateFormula(self.config.attempt, f"{where}.attempt", self.kind_code)
        self.sim = sim

    def setup(self, sim: Simulation) -> None:
        """Parse the rule and resolve the fields it reads."""
        c = self.config
        key = "deny" if c.deny is not None else "allow"
        self.refuse_when_true = key == "deny"
        self.rule = parse(c.deny if c.deny is not None else c.allow, f"consequences.{self.name}.{key}")
        sim.fields.require(self.rule, f"consequences.{self.name}.{key}")
        self.rate.setup(sim)
        self._refused_today = 0

    def refresh(self, sim: Simulation, day: int) -> None:
        """Re-evaluate request rates on schedule."""
        if day % self.config.refresh_days == 0:
            self.rate.refresh(sim)

    def apply(self, sim: Simulation, day: int) -> None:
        """Check the day's requests; mark refusals; cut income where a refusal costs it."""
        ev = sim.events
        pos = positions(ev.kind_at, self.kind_code)
        if not len(pos):
            self._refused_today = 0
            return
        ids = ev.citizen[pos].astype(np.int64)
        verdict = np.broadcast_to(self.rule.evaluate(sim.fields.at(self.rule.names, ids)), ids.shape) != 0
        refused = verdict if self.refuse_when_true else ~verdict
        ev.flags[pos[refused]] |= DENIED
        self._refused_today = int(np.count_nonzero(refused))
        if self.config.income_factor != 1.0:
            who = ids[refused]
            sim.citizens.income[who] *= np.float32(self.config.income_factor)

    def state(self) -> dict[str, np.ndarray]:
        """The current request rates."""
        return {"rates": self.rate.state(self.sim)}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the saved request rates."""
        self.rate.restore(self.sim, arrays["rates"])
