"""Records stage: ledgers, counters and lists kept from observed events."""

from socialcredit.records import court_list, points  # noqa: F401  (register plugins)
