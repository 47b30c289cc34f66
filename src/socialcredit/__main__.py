"""``python -m socialcredit``."""

from socialcredit._entry import main

main()
