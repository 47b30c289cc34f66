"""Deterministic identicons for synthetic citizen ids: a symmetric 5×5 pattern, never a face.

The picture is a function of the integer id only (SHA-256 of it), so the same
citizen looks the same on every page and in every run, and nothing about a
person — real or synthetic — is encoded in it.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

GRID = 5
CELL = 12
PAD = 6


@lru_cache(maxsize=4096)
def identicon_svg(citizen: int) -> str:
    """An SVG identicon for ``citizen``."""
    digest = hashlib.sha256(f"socialcredit-avatar:{citizen}".encode()).digest()
    hue = int.from_bytes(digest[:2], "big") % 360
    sat = 45 + digest[2] % 20
    light = 38 + digest[3] % 14
    colour = f"hsl({hue},{sat}%,{light}%)"
    size = GRID * CELL + 2 * PAD
    half = (GRID + 1) // 2
    bits = int.from_bytes(digest[4:8], "big")
    cells = []
    for row in range(GRID):
        for col in range(half):
            if bits >> (row * half + col) & 1:
                for c in {col, GRID - 1 - col}:
                    cells.append(f'<rect x="{PAD + c * CELL}" y="{PAD + row * CELL}" width="{CELL}" height="{CELL}"/>')
    if not cells:  # never blank
        cells.append(f'<rect x="{PAD + 2 * CELL}" y="{PAD + 2 * CELL}" width="{CELL}" height="{CELL}"/>')
    return (f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {size} {size}" width="{size}" height="{size}" '
            f'role="img" aria-label="identicon of synthetic citizen {citizen}">'
            f'<rect width="{size}" height="{size}" rx="8" fill="hsl({hue},30%,94%)"/>'
            f'<g fill="{colour}">{"".join(cells)}</g></svg>')
