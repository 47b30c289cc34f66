"""Consequences stage: services granted or denied, and feedback through the network."""

from socialcredit.consequences import network, service, services, shame_board  # noqa: F401  (register plugins)
