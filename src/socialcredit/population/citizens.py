"""Citizens as a struct of arrays (one typed numpy array per attribute)."""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from socialcredit import dtypes as dt


@dataclass
class Citizens:
    """State every stage may read: one array per attribute, index = citizen id.

    Plugin-private state (stress, counters, ...) lives in the plugin that owns
    it; this holds what several stages share.
    """

    region: np.ndarray  # REGION
    flags: np.ndarray  # FLAGS bit set (urban, minority, member, listed-ever, ...)
    income: np.ndarray  # MONEY, current yearly income
    income0: np.ndarray  # MONEY, income at day 0
    risk: np.ndarray  # TRAIT, risk propensity
    voice: np.ndarray  # TRAIT, outspokenness
    chill: np.ndarray  # TRAIT, fear-driven reduction of speech in [0, 1]
    list_start: np.ndarray  # DAY, day listed on the court list, NO_DAY if not listed
    score: np.ndarray  # SCORE, platform score
    points: np.ndarray  # POINTS, municipal points
    extra: dict[str, np.ndarray] = field(default_factory=dict)  # population-specific attributes (age, ...)

    @property
    def n(self) -> int:
        """Number of citizens."""
        return len(self.region)

    def arrays(self) -> dict[str, np.ndarray]:
        """All attribute arrays by name, the population-specific ones included."""
        out = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "extra"}
        out.update(self.extra)
        return out

    def get(self, name: str) -> np.ndarray:
        """One attribute array by name (a core field or a population-specific one)."""
        if name in self.extra:
            return self.extra[name]
        if name == "extra" or not hasattr(self, name):
            raise KeyError(name)
        return getattr(self, name)

    def flag(self, bit: np.uint8) -> np.ndarray:
        """Boolean array of one flag bit."""
        return (self.flags & bit) != 0

    @property
    def nbytes(self) -> int:
        """Bytes held by the attribute arrays."""
        return sum(a.nbytes for a in self.arrays().values())

    @classmethod
    def empty(cls, region: np.ndarray) -> Citizens:
        """Citizens of the given regions with every other attribute zeroed."""
        n = len(region)
        return cls(
            region=region.astype(dt.REGION, copy=False),
            flags=np.zeros(n, dt.FLAGS),
            income=np.zeros(n, dt.MONEY),
            income0=np.zeros(n, dt.MONEY),
            risk=np.zeros(n, dt.TRAIT),
            voice=np.zeros(n, dt.TRAIT),
            chill=np.zeros(n, dt.TRAIT),
            list_start=np.full(n, dt.NO_DAY, dt.DAY),
            score=np.zeros(n, dt.SCORE),
            points=np.zeros(n, dt.POINTS),
        )
