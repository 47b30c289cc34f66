"""Scoring stage: scoring systems, each on its own schedule."""

from socialcredit.scoring import reference  # noqa: F401  (register plugins)
