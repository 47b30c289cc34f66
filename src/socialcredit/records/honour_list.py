"""The red list (honour list) of model citizens, reviewed on a schedule.

    [records.red_list]
    kind = "honour-list"
    rule = "points >= 1050 and not listed_ever"
    every_days = 30

On review days (``(day + 1) % every_days == 0``, in the scoring stage after the
scoring systems, so the rule sees the new scores) the list becomes exactly the
citizens for whom ``rule`` is true; the others leave it. The rule may read the
list itself (``red_list or points >= 1050`` keeps members once admitted).
Membership is published as a field named after the table (``red_list``,
boolean: 0/1 in arithmetic) for perks defined as ``service`` tables, e.g.
``allow = "red_list"``. Entries and exits are counted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from pydantic import Field

from socialcredit.engine.fields import CHUNK
from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.scenario.expressions import Formula, parse
from socialcredit.scenario.schema import Context, Safeguards, Strict

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation


class HonourListConfig(Strict):
    """Who is on the red list: a rule over citizen fields, re-applied on a schedule."""

    rule: Formula = Field(description="a citizen is on the list when this is true (after each review)")
    every_days: int = Field(30, ge=1, le=3650, description="review days: (day + 1) % every_days == 0")
    context: Context = Field("civic", description="the social context the list belongs to")
    label: str = Field("", max_length=200, description="what the list is, in words")
    agency: str = Field("", max_length=200, description="who keeps the list")
    safeguards: Safeguards = Safeguards()


@register("records", "honour-list")
class HonourList(Plugin):
    """Red list of model citizens: membership = the rule, on review days."""

    Config = HonourListConfig
    steps = {"scoring": "review"}
    order = 90  # after the scoring systems

    def declare(self, sim: Simulation) -> None:
        """Publish membership as a field named after the table."""
        self.members = np.zeros(sim.n, np.bool_)
        self.size = 0
        self.entries_total = 0
        self.exits_total = 0
        self._today = (0, 0)
        sim.fields.provide(self.name, lambda: self.members, f"records.{self.name}")

    def setup(self, sim: Simulation) -> None:
        """Parse the rule and resolve the fields it reads."""
        where = f"records.{self.name}.rule"
        self.rule = parse(self.config.rule, where)
        sim.fields.require(self.rule, where)

    def runs_on(self, day: int) -> bool:
        """Review days: (day + 1) % every_days == 0."""
        return (day + 1) % self.config.every_days == 0

    def review(self, sim: Simulation, day: int) -> None:
        """Re-apply the rule to everyone (from the state before the review); count entries and exits."""
        env = sim.fields.everyone(self.rule.names)
        new = np.empty(sim.n, np.bool_)
        for lo in range(0, sim.n, CHUNK):
            hi = min(sim.n, lo + CHUNK)
            value = self.rule.evaluate(env, lo, hi)
            new[lo:hi] = np.broadcast_to(value, (hi - lo,)) != 0  # NaN counts as true, as in the language
        entries = int(np.count_nonzero(new & ~self.members))
        exits = int(np.count_nonzero(self.members & ~new))
        self.members[...] = new
        self.size += entries - exits
        self.entries_total += entries
        self.exits_total += exits
        self._today = (entries, exits)

    def daily(self, day: int) -> dict[str, float]:
        """Size of the list; entries and exits on review days (0 otherwise)."""
        entries, exits = self._today if self.runs_on(day) else (0, 0)
        return {f"{self.name}_size": self.size, f"{self.name}_entries": entries, f"{self.name}_exits": exits}

    def published(self) -> dict[str, np.ndarray]:
        """Membership, for the run's tables."""
        return {self.name: self.members}

    def state(self) -> dict[str, np.ndarray]:
        """Membership and the entry/exit counts."""
        return {"members": self.members, "entries_total": np.array(self.entries_total),
                "exits_total": np.array(self.exits_total)}

    def restore(self, arrays: dict[str, np.ndarray]) -> None:
        """Set the saved state (in place: formulas keep reading the same array)."""
        self.members[...] = arrays["members"]
        self.size = int(np.count_nonzero(self.members))
        self.entries_total = int(arrays["entries_total"])
        self.exits_total = int(arrays["exits_total"])
