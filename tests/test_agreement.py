"""Statistical agreement of the engine's `ref` with an independent implementation of SPEC 9.

`tests/oracle_ref.py` is a plain, eager numpy implementation written separately
from the engine (whole-population draws every day, its own random generator).
Over several seeds at 20,000 citizens × 365 days, every SPEC 9.4 metric must
agree in mean within a few standard errors.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest

from socialcredit.engine.simulation import Simulation
from socialcredit.scenario import Scenario

_spec = importlib.util.spec_from_file_location("oracle_ref", Path(__file__).with_name("oracle_ref.py"))
oracle = importlib.util.module_from_spec(_spec)
sys.modules["oracle_ref"] = oracle
_spec.loader.exec_module(oracle)

CITIZENS, DAYS, SEEDS = 20_000, 365, range(1, 9)
SIGMAS = 4.5
SKIP = {"citizen_days_per_s"}


def _engine(seed: int) -> dict[str, float | None]:
    return Simulation(Scenario.load("ref"), CITIZENS, DAYS, seed).run().metrics


@pytest.fixture(scope="module")
def samples() -> tuple[list[dict], list[dict]]:
    ours = [_engine(s) for s in SEEDS]
    theirs = [oracle.simulate(CITIZENS, DAYS, 1000 + s) for s in SEEDS]
    return ours, theirs


def test_same_metric_names(samples):
    ours, theirs = samples
    assert set(ours[0]) == set(theirs[0])


@pytest.mark.slow
def test_every_metric_agrees(samples):
    ours, theirs = samples
    failures = []
    for name in sorted(set(theirs[0]) - SKIP):
        a = np.array([m[name] for m in ours if m[name] is not None], float)
        b = np.array([m[name] for m in theirs if m[name] is not None], float)
        assert len(a) >= 6 and len(b) >= 6, name
        se = math.sqrt(a.var(ddof=1) / len(a) + b.var(ddof=1) / len(b))
        diff = abs(a.mean() - b.mean())
        if diff > SIGMAS * se + 1e-9:
            failures.append(f"{name}: engine {a.mean():.6g} vs oracle {b.mean():.6g} (diff {diff:.3g}, se {se:.3g})")
    assert not failures, "\n".join(failures)


def test_headline_values_are_plausible(samples):
    ours, _ = samples
    m = ours[0]
    assert 590 < m["p_mean"] < 630
    assert 0.01 < m["listed_ever_share"] < 0.04
    assert 0.005 < m["shame_board_innocent_share"] < 0.02  # false_match = 0.01
    assert 0.0 < m["chilling_reduction"] < 0.4
    assert abs(sum(v for k, v in m.items() if k.startswith("grade_share_")) - 1.0) < 1e-9
