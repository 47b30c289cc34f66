"""Behaviours whose daily probability is a formula over citizen fields.

``[behaviour.jaywalk] kind = "formula", rate = "0.004 * (0.5 + risk) if urban else 0.002"``
defines the event kind ``jaywalk``. The formula is evaluated for everyone on
day 0 and then every ``refresh_days`` days (a whole-population pass, chunk by
chunk), so it may read slowly changing state (income, chill, scores, lists);
in between, the day's events are sampled sparsely against the largest rate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from socialcredit.engine.fields import evaluate_everyone
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.scenario.expressions import Formula, parse
from socialcredit.scenario.schema import Context, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation


class FormulaConfig(Strict):
    """Daily probability = ``rate`` (a formula; values clipped to [0, 1])."""

    context: Context = Field(description="the social context the behaviour belongs to (where its data comes from)")
    rate: Formula = Field(description="daily probability per citizen, a formula over citizen fields")
    refresh_days: int = Field(30, ge=1, le=3650, description="re-evaluate the formula every this many days")


class RateFormula:
    """One event kind's formula rate: a row of the simulation's rate table and its bound."""

    def __init__(self, source: str, where: str, kind: int) -> None:
        self.expr = parse(source, where)
        self.where = where
        self.kind = kind

    def setup(self, sim: Simulation) -> None:
        """Resolve field names; bind the table row."""
        sim.fields.require(self.expr, self.where)
        self.row = int(sim.kinds.params[self.kind][0])
        self.static = all(sim.fields.is_static(name) for name in self.expr.names)
        self.evaluated = False

    def refresh(self, sim: Simulation) -> None:
        """Evaluate for everyone (once, if the formula reads only fixed attributes);
        clip to [0, 1] with NaN read as 0; update the sampling bound."""
        if self.static and self.evaluated:
            return
        rates = np.empty(sim.n, np.float32)
        env = sim.fields.everyone(self.expr.names)
        evaluate_everyone(self.expr, env, sim.n, rates)
        np.fmax(rates, 0.0, out=rates)  # fmax/fmin: a NaN gives way to the bound
        np.fmin(rates, 1.0, out=rates)
        sim.set_rates(self.row, rates)
        self.set_bound(sim, rates)
        self.evaluated = True

    def set_bound(self, sim: Simulation, rates: np.ndarray) -> None:
        """Sampling bound = the largest rate."""
        bound = float(rates.max()) if sim.n else 0.0
        ka = sim.kind_arrays
        ka["bound"][self.kind] = bound
        with np.errstate(divide="ignore"):
            ka["log1m_bound"][self.kind] = np.log1p(-min(bound, 1.0))

    def state(self, sim: Simulation) -> np.ndarray:
        """The rates (saved in checkpoints: they depend on the state when they were evaluated)."""
        return sim.rates(self.row)

    def restore(self, sim: Simulation, rates: np.ndarray) -> None:
        """Set saved rates and recompute the bound."""
        sim.set_rates(self.row, rates)
        self.set_bound(sim, rates)
        self.evaluated = True


@register("behaviour", "formula")
class FormulaBehaviour(Plugin):
    """An event kind named after its table, with a formula rate."""

    Config = FormulaConfig
    steps = {"behaviour": "refresh"}

    def declare(self, sim: Simulation) -> None:
        """Register the event kind (rates come from the table)."""
        where = f"behaviour.{self.name}"
        kind = sim.kinds.add(self.name, where, 1.0, 1.0, "table")
        self.rate = RateFormula(self.config.rate, f"{where}.rate", kind)
        self.sim = sim

    def setup(self, sim: Simulation) -> None:
        """Resolve the formula's fields."""
        self.rate.setup(sim)

    def refresh(self, sim: Simulation, day: int) -> None:
        """Re-evaluate the rates on schedule (before the day's events are drawn)."""
        if day % self.config.refresh_days == 0:
            self.rate.refresh(sim)

    def state(self) -> dict[str, np.ndarray]:
        """The current rates."""
        return {"rates": self.rate.state(self.sim)}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the saved rates."""
        self.rate.restore(self.sim, arrays["rates"])
