"""Outputs: run directories, Parquet tables, manifest."""
