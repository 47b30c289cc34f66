"""Group rates and disparate-impact ratios.

Ratios here are always *group / reference group* (the AIF360 convention:
e.g. minority / majority, urban / rural), never lowest / highest; a ratio whose
denominator is zero (or whose group is empty) is None.
"""

from __future__ import annotations

import numpy as np


def share(mask: np.ndarray) -> float:
    """Share of True values (0 for an empty array)."""
    return float(np.count_nonzero(mask)) / len(mask) if len(mask) else 0.0


def rate(outcome: np.ndarray, group: np.ndarray) -> float | None:
    """Rate of ``outcome`` inside ``group``; None if the group is empty."""
    size = int(np.count_nonzero(group))
    return float(np.count_nonzero(outcome & group)) / size if size else None


def ratio(outcome: np.ndarray, group: np.ndarray) -> float | None:
    """Rate of ``outcome`` in ``group`` divided by its rate in the rest."""
    inside, outside = rate(outcome, group), rate(outcome, ~group)
    if inside is None or outside is None or outside == 0:
        return None
    return inside / outside
