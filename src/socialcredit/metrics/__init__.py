"""Metrics stage: daily aggregates, summary metrics, disparate impact."""
