"""Storage dtypes for citizen and graph arrays, chosen in one place.

Every per-citizen array uses the smallest dtype that holds its range; changing
a dtype here changes it everywhere.
"""

from __future__ import annotations

import numpy as np

CITIZEN_ID = np.int32  # citizen ids (up to 2.1e9 per partition)
REGION = np.uint8  # up to 255 regions
FLAGS = np.uint8  # bit set, see FLAG_* below
MONEY = np.float32  # income, income0 (CNY per year)
TRAIT = np.float32  # latent traits in [0, 1]
SCORE = np.float32  # platform score
POINTS = np.int16  # municipal points ledger
DAY = np.int16  # day numbers (runs are limited to MAX_DAYS)
COUNTER = np.uint8  # saturating monthly counters
DECAYED = np.float32  # lazily decayed counters (value part)
EVENT_KIND = np.uint8
EVENT_FLAGS = np.uint8

MAX_DAYS = 32_000  # day numbers must fit in DAY
NO_DAY = -1  # sentinel in DAY arrays ("never")

# Citizen flag bits (FLAGS array).
FLAG_URBAN = np.uint8(1)
FLAG_MINORITY = np.uint8(2)
FLAG_MEMBER = np.uint8(4)
FLAG_LISTED_EVER = np.uint8(8)
FLAG_SPEECH_PENALISED = np.uint8(16)
FLAG_PANEL = np.uint8(32)


def offsets_dtype(entries: int) -> type[np.signedinteger]:
    """CSR offset dtype: int32 while the entry count fits, else int64."""
    return np.int32 if entries < np.iinfo(np.int32).max else np.int64
