"""observation.camera `match_multiplier`: per-group false-match rates."""

from __future__ import annotations

import math

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.engine.events import MISATTRIBUTED, OBSERVED
from socialcredit.engine.simulation import Simulation
from socialcredit.errors import ScenarioError
from socialcredit.scenario import Scenario

FALSE_MATCH = 0.05
BASE = {
    "behaviour.jaywalk.rate_urban": 0.5,
    "behaviour.jaywalk.rate_rural": 0.5,
    "observation.camera.detect_urban": 1.0,
    "observation.camera.detect_rural": 1.0,
    "observation.camera.false_match": FALSE_MATCH,
}


def _misattribution(overrides, citizens=40_000, days=3, seed=8):
    """Per group (majority, minority): observed jaywalks and misattributed ones."""
    sim = Simulation(Scenario.load("ref").override(**{**BASE, **overrides}), citizens=citizens, days=days, seed=seed)
    minority = (sim.citizens.flags & dt.FLAG_MINORITY) != 0
    seen, wrong = np.zeros(2), np.zeros(2)
    k = sim.kinds.names.index("jaywalk")
    for _ in range(days):
        sim.step()
        ka, ev = sim.events.kind_at, sim.events
        e = np.concatenate([np.arange(ka[b, k], ka[b, k + 1]) for b in range(len(ka))]).astype(np.int64)
        group = minority[ev.citizen[e]].astype(int)
        obs = (ev.flags[e] & OBSERVED) != 0
        mis = (ev.flags[e] & MISATTRIBUTED) != 0
        assert np.all(obs)
        assert np.all((ev.target[e] != ev.citizen[e]) == mis)
        seen += np.bincount(group, minlength=2)
        wrong += np.bincount(group[mis], minlength=2)
    return sim, seen, wrong


def _within_5_sigma(wrong, seen, p):
    sd = math.sqrt(seen * p * (1 - p))
    assert abs(wrong - seen * p) < 5 * sd, (wrong, seen * p, sd)


def test_minority_actors_are_misattributed_multiplier_times_as_often():
    sim, seen, wrong = _misattribution({"observation.camera.match_multiplier": "1 + 4 * minority"})
    assert seen[1] > 3_000
    _within_5_sigma(wrong[0], seen[0], FALSE_MATCH)
    _within_5_sigma(wrong[1], seen[1], FALSE_MATCH * 5)
    minority = (sim.citizens.flags & dt.FLAG_MINORITY) != 0
    np.testing.assert_array_equal(sim.match_table[0], np.where(minority, 5.0, 1.0))
    assert sim.kind_arrays["match_row"][sim.kinds.names.index("jaywalk")] == 0


def test_without_a_multiplier_the_rate_is_unchanged():
    sim, seen, wrong = _misattribution({})
    _within_5_sigma(wrong[0], seen[0], FALSE_MATCH)
    _within_5_sigma(wrong[1], seen[1], FALSE_MATCH)
    assert sim.match_table.shape == (0, 0)
    assert sim.kind_arrays["match_row"][sim.kinds.names.index("jaywalk")] == -1


def test_a_multiplied_rate_is_capped_at_one():
    _, seen, wrong = _misattribution({"observation.camera.match_multiplier": "1 + 100 * minority"},
                                     citizens=10_000, days=1)
    assert wrong[1] == seen[1] > 100  # 0.05 * 101 > 1: every minority act is blamed on someone else
    _within_5_sigma(wrong[0], seen[0], FALSE_MATCH)


def test_a_negative_or_nan_multiplier_is_clipped():
    sim, seen, wrong = _misattribution({"observation.camera.match_multiplier": "sqrt(0.5 - minority) * 0 - minority"},
                                       citizens=10_000, days=1)
    # majority: sqrt(0.5) * 0 - 0 = 0 -> no misattribution; minority: NaN -> 1 (unchanged)
    minority = (sim.citizens.flags & dt.FLAG_MINORITY) != 0
    np.testing.assert_array_equal(sim.match_table[0], np.where(minority, 1.0, 0.0))
    assert wrong[0] == 0 and seen[0] > 1_000


def test_unknown_field_in_the_multiplier():
    with pytest.raises(ScenarioError, match=r"observation\.camera\.match_multiplier.*'ethnicity'"):
        Simulation(Scenario.load("ref").override(**{"observation.camera.match_multiplier": "1 + ethnicity"}),
                   citizens=50, days=1, seed=1)
