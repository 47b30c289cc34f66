"""socialcredit: a simulator and audit lab for social credit systems.

Citizens are synthetic integer ids; nothing here touches real personal data.

>>> import socialcredit as sc
>>> run = sc.run("ref", citizens=2_000, days=30, seed=1)
>>> run.citizens.height
2000
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from socialcredit.api import Run, load, resume, run
from socialcredit.scenario import Scenario

try:
    __version__ = version("socialcredit")
except PackageNotFoundError:  # running from a source tree
    __version__ = "0.0.0+local"

__all__ = ["Run", "Scenario", "__version__", "load", "resume", "run"]
