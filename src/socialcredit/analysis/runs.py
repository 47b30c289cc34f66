"""Opening run directories for analysis, with one-line errors for bad paths."""

from __future__ import annotations

from pathlib import Path

from socialcredit.api import Run
from socialcredit.errors import UserError


def open_run(path: str | Path) -> Run:
    """The run at ``path``; a UserError if it is missing or not a run directory."""
    directory = Path(path)
    if not directory.exists():
        raise UserError(f"{directory}: no such run directory")
    if not directory.is_dir():
        raise UserError(f"{directory}: not a run directory (not a directory)")
    return Run(directory)
