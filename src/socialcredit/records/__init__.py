"""Records stage: ledgers, counters and lists kept from observed events."""

from socialcredit.records import counters, court_list, honour_list, points, sharing  # noqa: F401  (register plugins)
