"""Analysis of finished runs: SQL over the tables, run comparison, parameter sweeps, HTML reports.

Each module has one job and is importable on its own (heavy libraries are
imported there, not here): ``sql.query``, ``compare.compare``,
``sweep.sweep``, ``report.write_report``. ``commands.register`` adds the
matching CLI commands to the Typer app.
"""
