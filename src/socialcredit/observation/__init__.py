"""Observation stage: channels that see (some of) the true events."""

from socialcredit.observation import channels  # noqa: F401  (register plugins)
