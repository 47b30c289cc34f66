"""Data sharing between observation channels and the systems that score or sanction.

A scoring system reads directly only the channels in its ``sources``; a
``data-sharing`` table lists the flows that pass other channels' observations
on, and whether each needs the citizen's consent::

    [records.sharing]
    kind = "data-sharing"
    flows = [{ source = "messaging_platform", to = ["sesame"], consent = true }]

A flow that needs consent passes on only the records of citizens with
``consent`` set (a population attribute); without that attribute, nobody's.
"""

from __future__ import annotations

from pydantic import Field

from socialcredit.engine.plugin import Plugin
from socialcredit.registry import register
from socialcredit.scenario.schema import Strict


class Flow(Strict):
    """Observations of one channel passed on to some systems."""

    source: str = Field(min_length=1, max_length=100, description="observation channel (table name)")
    to: list[str] = Field(min_length=1, description="systems (table names) that receive the data")
    consent: bool = Field(True, description="only the records of citizens who consented")


class DataSharingConfig(Strict):
    """Which channels' data reach which systems."""

    flows: list[Flow] = Field(default_factory=list, description="the data flows")


@register("records", "data-sharing")
class DataSharing(Plugin):
    """The scenario's data-sharing policy (read by scoring systems at set-up and by audits)."""

    Config = DataSharingConfig

    def flow(self, source: str, system: str) -> Flow | None:
        """The flow passing ``source``'s data to ``system``, or None."""
        return next((f for f in self.config.flows if f.source == source and system in f.to), None)
