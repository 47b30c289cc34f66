"""Consequences stage: services granted or denied, and feedback through the network."""

from socialcredit.consequences import network, services  # noqa: F401  (register plugins)
