"""Scoring stage: scoring systems, each on its own schedule."""

from socialcredit.scoring import peer_rating, reference, scorecard  # noqa: F401  (register plugins)
