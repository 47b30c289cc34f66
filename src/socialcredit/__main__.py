"""``python -m socialcredit``."""

from socialcredit.cli import main

main()
