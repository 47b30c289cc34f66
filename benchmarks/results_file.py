"""Updating one benchmark's part of the Markdown results file (``RESULTS.md``), keeping the others."""

from __future__ import annotations

import re
from pathlib import Path

TITLE = "# Benchmark results\n"


def write_section(path: Path, title: str, text: str) -> None:
    """Replace the section headed ``title`` (``## ...``, up to the next one), or append it."""
    old = path.read_text(encoding="utf-8") if path.exists() else TITLE
    pattern = re.compile(rf"{re.escape(title)}\n.*?(?=\n## |\Z)", re.S)
    new = pattern.sub(lambda _: text.rstrip("\n") + "\n", old) if pattern.search(old) \
        else old.rstrip("\n") + "\n\n" + text
    path.write_text(new, encoding="utf-8")


def write_top(path: Path, text: str) -> None:
    """Replace the part before the first section (``## ``), keeping the sections."""
    old = path.read_text(encoding="utf-8") if path.exists() else ""
    first = re.search(r"^## ", old, re.M)
    rest = old[first.start():] if first else ""
    path.write_text(TITLE + "\n" + text.rstrip("\n") + "\n" + ("\n" + rest if rest else ""), encoding="utf-8")
