"""Services gated by the list and the score: travel bans and loan decisions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from numba import njit, prange
from pydantic import Field

from socialcredit.engine.events import DENIED
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.scenario.schema import Safeguards, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation


class TravelBanConfig(Strict):
    """Listed citizens are refused flights and high-speed rail."""

    attempt_urban: float = Field(ge=0, le=1, description="daily P(trip attempt), urban")
    attempt_rural: float = Field(ge=0, le=1, description="daily P(trip attempt), rural")
    income_factor: float = Field(gt=0, le=1, description="income is multiplied by this per denied trip")
    safeguards: Safeguards = Safeguards()


class LoanGateConfig(Strict):
    """Loans are approved only above a score and off the list."""

    apply_rate: float = Field(ge=0, le=1, description="daily P(loan application)")
    min_score: float = Field(ge=-1e6, le=1e6, description="lowest platform score approved")
    safeguards: Safeguards = Safeguards()


@njit(cache=True, parallel=True)
def deny_trips(kind, factor, list_start, income, ev_citizen, ev_flags, kind_at):
    """Deny trips of listed citizens (listed today included) and cut their income."""
    for b in prange(len(kind_at)):
        for e in range(kind_at[b, kind], kind_at[b, kind + 1]):
            i = ev_citizen[e]
            if list_start[i] >= 0:
                ev_flags[e] |= DENIED
                income[i] = income[i] * factor


@njit(cache=True, parallel=True)
def decide_loans(kind, min_score, list_start, score, ev_citizen, ev_flags, kind_at):
    """Deny loan applications below the score threshold or from listed citizens."""
    for b in prange(len(kind_at)):
        for e in range(kind_at[b, kind], kind_at[b, kind + 1]):
            i = ev_citizen[e]
            if list_start[i] >= 0 or score[i] < min_score:
                ev_flags[e] |= DENIED


@register("consequences", "travel-ban")
class TravelBan(Plugin):
    """Flight and high-speed-rail bans for listed citizens; denied trips cost income."""

    Config = TravelBanConfig
    steps = {"consequences": "apply"}

    def declare(self, sim: Simulation) -> None:
        """Register trip attempts as an event kind."""
        c = self.config
        self.kind_code = sim.kinds.add("trip", f"consequences.{self.name}", c.attempt_urban, c.attempt_rural)

    def apply(self, sim: Simulation, day: int) -> None:
        """Deny the day's trips of listed citizens."""
        ev, cz = sim.events, sim.citizens
        deny_trips(self.kind_code, self.config.income_factor, cz.list_start, cz.income,
                   ev.citizen, ev.flags, ev.kind_at)


@register("consequences", "loan-gate")
class LoanGate(Plugin):
    """Loan applications approved iff score ≥ min_score and not listed."""

    Config = LoanGateConfig
    steps = {"consequences": "apply"}

    def declare(self, sim: Simulation) -> None:
        """Register loan applications as an event kind."""
        c = self.config
        self.kind_code = sim.kinds.add("loan_application", f"consequences.{self.name}", c.apply_rate, c.apply_rate)

    def apply(self, sim: Simulation, day: int) -> None:
        """Decide the day's loan applications."""
        ev, cz = sim.events, sim.citizens
        decide_loans(self.kind_code, self.config.min_score, cz.list_start, cz.score,
                     ev.citizen, ev.flags, ev.kind_at)
