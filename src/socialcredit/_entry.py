"""Console entry point: a Ctrl-C while the CLI is still importing exits quietly with 130."""

from __future__ import annotations

import sys


def main() -> None:
    """Import the CLI, then run it."""
    try:
        from socialcredit.cli import main as cli_main
    except KeyboardInterrupt:
        sys.stderr.write("interrupted: nothing was written\n")
        sys.exit(130)
    cli_main()
