"""Outputs: run directories, Parquet tables, manifest."""

TABLES = ("citizens", "daily", "scores_monthly", "events", "lists")
