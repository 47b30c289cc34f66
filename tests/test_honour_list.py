"""records.honour_list: the red list of model citizens, reviewed on a schedule."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.engine import checkpoint
from socialcredit.engine.events import DENIED
from socialcredit.engine.kernels import positions
from socialcredit.engine.simulation import Simulation
from socialcredit.errors import ScenarioError
from socialcredit.scenario import Scenario

SCENARIO = Path(__file__).parent / "data" / "honour_list.toml"
N, SEED = 3_000, 11


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario.load(SCENARIO)


def _rule(sim) -> np.ndarray:
    """The scenario's rule, ``points >= 1050 and not listed_ever``, computed by hand."""
    return (sim.citizens.points >= 1050) & ((sim.citizens.flags & dt.FLAG_LISTED_EVER) == 0)


@pytest.fixture(scope="module")
def run(scenario):
    """60 days stepped one by one; membership and perk decisions kept at the review days."""
    sim = Simulation(scenario, citizens=N, days=60, seed=SEED)
    red = sim.plugins["records"]["red_list"]
    at_review, perk_checks = {}, []
    while sim.day < sim.days:
        members_before = red.members.copy()
        sim.step()
        day = sim.day - 1
        if (day + 1) % 30 == 0:
            at_review[day] = _rule(sim)
        ev = sim.events  # perks are decided in the consequences stage, before the day's review
        pos = positions(ev.kind_at, sim.kinds.code("visa_fast_track", "test"))
        perk_checks.append(((ev.flags[pos] & DENIED) != 0, members_before[ev.citizen[pos]]))
        if day == 44:
            mid = (red.members.copy(), _rule(sim))
    return sim, red, at_review, perk_checks, mid


def test_membership_equals_the_rule_on_the_final_state(run):
    sim, red, at_review, _, _ = run
    np.testing.assert_array_equal(red.members, _rule(sim))  # day 59 is a review day, the last step of it
    np.testing.assert_array_equal(at_review[59], red.members)
    assert 0 < red.members.sum() < N
    assert sim.published()["red_list"] is red.members
    assert sim.fields.everyone(["red_list"])["red_list"] is red.members


def test_list_changes_only_on_review_days(run):
    _, _, at_review, _, (members, rule_now) = run
    np.testing.assert_array_equal(members, at_review[29])  # day 44: as reviewed on day 29
    assert not np.array_equal(members, rule_now)  # though points have moved since


def test_sizes_entries_and_exits(run):
    sim, red, at_review, _, _ = run
    rows = sim.daily_rows
    sizes = [r["red_list_size"] for r in rows]
    assert sizes[:29] == [0] * 29
    assert sizes[29:59] == [int(at_review[29].sum())] * 30
    assert sizes[59] == int(red.members.sum())
    first_in = int(at_review[29].sum())
    later_in = int((at_review[59] & ~at_review[29]).sum())
    later_out = int((at_review[29] & ~at_review[59]).sum())
    assert [r["red_list_entries"] for r in rows] == [0] * 29 + [first_in] + [0] * 29 + [later_in]
    assert [r["red_list_exits"] for r in rows] == [0] * 29 + [0] + [0] * 29 + [later_out]
    assert red.entries_total == first_in + later_in and red.exits_total == later_out
    assert red.entries_total - red.exits_total == sizes[-1]


def test_perk_is_granted_exactly_to_members(run):
    _, _, _, perk_checks, _ = run
    denied = np.concatenate([d for d, _ in perk_checks])
    member = np.concatenate([m for _, m in perk_checks])
    assert len(denied) > 100 and member.any()
    np.testing.assert_array_equal(denied, ~member)


def test_a_rule_that_reads_the_list_keeps_members(scenario):
    sticky = scenario.override(**{"records.red_list.rule": "red_list or (points >= 1050 and not listed_ever)"})
    sim = Simulation(sticky, citizens=N, days=90, seed=SEED)
    red = sim.plugins["records"]["red_list"]
    for _ in range(30):
        sim.step()
    first = red.members.copy()
    sim.run()
    assert first.any()
    assert np.all(red.members[first])  # nobody leaves
    assert red.exits_total == 0


def test_same_seed_same_list(scenario):
    lists = []
    for _ in range(2):
        sim = Simulation(scenario, citizens=N, days=30, seed=SEED)
        sim.run()
        lists.append((sim.plugins["records"]["red_list"].members.copy(), sim.daily_rows))
    np.testing.assert_array_equal(lists[0][0], lists[1][0])
    assert lists[0][1] == lists[1][1]


def test_checkpoint_resume_equals_uninterrupted(scenario, tmp_path):
    straight = Simulation(scenario, citizens=N, days=65, seed=SEED)
    straight.run()
    first = Simulation(scenario, citizens=N, days=65, seed=SEED)
    for _ in range(40):
        first.step()
    checkpoint.save(first, tmp_path / "ck", {"scenario": scenario.to_dict()})
    resumed = Simulation(scenario, citizens=N, days=65, seed=SEED)
    checkpoint.restore(resumed, tmp_path / "ck", json.loads((tmp_path / "ck" / "checkpoint.json").read_text()))
    resumed.run()
    a, b = straight.plugins["records"]["red_list"], resumed.plugins["records"]["red_list"]
    np.testing.assert_array_equal(a.members, b.members)
    assert (a.entries_total, a.exits_total) == (b.entries_total, b.exits_total)
    assert straight.daily_rows == resumed.daily_rows


def test_unknown_field_in_the_rule_is_named(scenario):
    with pytest.raises(ScenarioError, match=r"records\.red_list\.rule.*'virtue'"):
        Simulation(scenario.override(**{"records.red_list.rule": "virtue > 3"}), citizens=64, days=1, seed=0)


@pytest.mark.parametrize("key, value", [("every_days", 0), ("rule", "points >="), ("context", "heaven")])
def test_invalid_config_is_rejected(scenario, key, value):
    with pytest.raises(ScenarioError, match=rf"records\.red_list.*{key}"):
        scenario.override(**{f"records.red_list.{key}": value})
