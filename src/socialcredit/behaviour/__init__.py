"""Behaviour stage: the true events citizens commit each day."""

from socialcredit.behaviour import bernoulli, formula  # noqa: F401  (register plugins)
