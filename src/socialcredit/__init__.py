"""socialcredit: a simulator and audit lab for social credit systems.

Citizens are synthetic integer ids; nothing here touches real personal data.

>>> import socialcredit as sc
>>> run = sc.run("ref", citizens=2_000, days=30, seed=1)
>>> run.citizens.height
2000

The public names are imported on first use, so ``import socialcredit`` is cheap.
"""

from __future__ import annotations

import os

# The numba kernels own the cores. Idle OpenBLAS worker threads (started by
# numpy's first BLAS call) spin beside them and slow every parallel kernel
# launch by milliseconds; nothing here needs a threaded BLAS.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("socialcredit")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"

__all__ = ["Run", "Scenario", "__version__", "load", "resume", "run"]

_LAZY = {"Run": "socialcredit.api", "load": "socialcredit.api", "resume": "socialcredit.api",
         "run": "socialcredit.api", "Scenario": "socialcredit.scenario"}

if TYPE_CHECKING:
    from socialcredit.api import Run, load, resume, run
    from socialcredit.scenario import Scenario


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'socialcredit' has no attribute {name!r}")
