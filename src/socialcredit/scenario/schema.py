"""Pydantic models for the scenario file's fixed parts.

The plugin tables (``[behaviour.*]``, ``[observation.*]``, ...) are validated
by the ``Config`` model of the plugin their ``kind`` names; see
``socialcredit.scenario.loader``.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Strict(BaseModel):
    """Base for every scenario model: unknown keys are errors, values are typed."""

    model_config = ConfigDict(extra="forbid", strict=False, frozen=True, allow_inf_nan=False)


Probability = Field(ge=0.0, le=1.0)


CONTEXTS = (
    "credit", "public_order", "speech", "civic", "leisure", "consumption", "family",
    "education", "tax", "health", "travel", "work", "social", "housing",
)
Context = Literal[CONTEXTS]  # type: ignore[valid-type]


class Safeguards(Strict):
    """Procedural safeguards of a system that records, scores or sanctions citizens.

    They are read by ``socialcredit audit``; the simulation does not model them.
    """

    notice: bool = Field(False, description="citizens are told when a record or score changes against them")
    explanation: bool = Field(False, description="the principal reasons are given on request")
    appeal: bool = Field(False, description="citizens can contest a record and have it corrected")


class OutputConfig(Strict):
    """What the run directory keeps per citizen."""

    panel: int = Field(
        100_000,
        ge=0,
        description="citizens followed in events.parquet and scores_monthly.parquet "
        "(all of them when the population is this size or smaller)",
    )


class ScenarioHeader(Strict):
    """Top-level keys of a scenario file other than the plugin tables."""

    name: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    description: str = ""
    extends: str | None = None
    output: OutputConfig = OutputConfig()
