"""observation.channels: who sees which true events and whom they blame (SPEC 9.2 step 2)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.engine.events import MISATTRIBUTED, OBSERVED
from socialcredit.engine.simulation import Simulation
from socialcredit.observation.channels import observe_day
from socialcredit.scenario import Scenario

MANY_JAYWALKS = {"behaviour.jaywalk.rate_urban": 0.5, "behaviour.jaywalk.rate_rural": 0.5}


def _kind_events(sim, name):
    """Indices into the event buffer of today's events of kind ``name``."""
    k = sim.kinds.names.index(name)
    ka = sim.events.kind_at
    return np.concatenate([np.arange(ka[b, k], ka[b, k + 1]) for b in range(len(ka))]).astype(np.int64)


def _days(overrides, days=4, citizens=3_000, seed=3):
    """Yield the simulation after each of ``days`` days."""
    sim = Simulation(Scenario.load("ref").override(**overrides), citizens=citizens, days=days, seed=seed)
    for _ in range(days):
        sim.step()
        yield sim


def test_misattribution_stays_in_region_and_never_blames_the_actor():
    overrides = {**MANY_JAYWALKS, "observation.camera.detect_urban": 1.0, "observation.camera.detect_rural": 1.0,
                 "observation.camera.false_match": 1.0}
    total = 0
    positions = []
    for sim in _days(overrides):
        e = _kind_events(sim, "jaywalk")
        actor, target, flags = sim.events.citizen[e], sim.events.target[e], sim.events.flags[e]
        assert len(e) > 500
        assert np.all(flags & OBSERVED)
        assert np.all(flags & MISATTRIBUTED)
        assert np.all(target != actor)
        region = sim.citizens.region
        assert np.all(region[target] == region[actor])
        # uniform over the other citizens of the region: position of the target among them
        lo = sim.blocks.region_start[region[actor]]
        size = np.diff(sim.blocks.region_start)[region[actor]]
        rank = target - lo - (target > actor)
        assert np.all((rank >= 0) & (rank < size - 1))
        positions.append((rank + 0.5) / (size - 1))
        total += len(e)
        assert sim.daily_rows[-1]["jaywalk_misattributed"] == len(e)
        assert sim.daily_rows[-1]["jaywalk_observed"] == len(e)
    pos = np.concatenate(positions)
    assert abs(pos.mean() - 0.5) < 5 * math.sqrt(1 / 12 / total)


def test_false_match_zero_means_no_misattribution():
    overrides = {**MANY_JAYWALKS, "observation.camera.false_match": 0.0}
    for sim in _days(overrides, days=3):
        n = sim.events.total()
        assert n > 1_000
        flags = sim.events.flags[: sim.events.kind_at[-1, -1]]
        assert not np.any(flags & MISATTRIBUTED)
        e = _kind_events(sim, "jaywalk")
        np.testing.assert_array_equal(sim.events.target[e], sim.events.citizen[e])
        assert "jaywalk_misattributed" not in sim.daily_rows[-1]


def test_camera_detection_urban_and_rural():
    overrides = {**MANY_JAYWALKS, "observation.camera.false_match": 0.0}
    seen = {True: [0, 0], False: [0, 0]}
    for sim in _days(overrides, days=3):
        e = _kind_events(sim, "jaywalk")
        urban = (sim.citizens.flags[sim.events.citizen[e]] & dt.FLAG_URBAN) != 0
        obs = (sim.events.flags[e] & OBSERVED) != 0
        for u in (True, False):
            seen[u][0] += int(obs[urban == u].sum())
            seen[u][1] += int((urban == u).sum())
    for u, p in ((True, 0.7), (False, 0.1)):
        k, n = seen[u]
        assert n > 500
        assert abs(k / n - p) < 5 * math.sqrt(p * (1 - p) / n)


def test_platform_observes_members_only():
    overrides = {"behaviour.missed_payment.rate_urban": 0.2, "behaviour.missed_payment.rate_rural": 0.2,
                 "behaviour.gaming.rate_urban": 0.5, "behaviour.gaming.rate_rural": 0.5}
    for sim in _days(overrides, days=3):
        for name in ("missed_payment", "gaming"):
            e = _kind_events(sim, name)
            assert len(e) > 100
            member = (sim.citizens.flags[sim.events.citizen[e]] & dt.FLAG_MEMBER) != 0
            obs = (sim.events.flags[e] & OBSERVED) != 0
            np.testing.assert_array_equal(obs, member)  # detect = 1.0 for members
            assert 0 < member.sum() < len(e)
            assert not np.any(sim.events.flags[e] & MISATTRIBUTED)


def test_platform_detect_below_one_applies_to_members():
    overrides = {"observation.payment_platform.detect": 0.5,
                 "behaviour.gaming.rate_urban": 0.5, "behaviour.gaming.rate_rural": 0.5}
    k = n = 0
    for sim in _days(overrides, days=3, citizens=5_000):
        e = _kind_events(sim, "gaming")
        member = (sim.citizens.flags[sim.events.citizen[e]] & dt.FLAG_MEMBER) != 0
        obs = (sim.events.flags[e] & OBSERVED) != 0
        assert not np.any(obs & ~member)
        k += int(obs.sum())
        n += int(member.sum())
    assert n > 1_000
    assert abs(k / n - 0.5) < 5 * math.sqrt(0.25 / n)


@pytest.mark.parametrize(
    ("kind", "rate_key", "rate", "detect_key", "detect"),
    [
        ("traffic_violation", "behaviour.traffic_violation", 0.3, "observation.police.detect", 0.5),
        ("critical_post", "behaviour.critical_post", 1.0, "observation.monitoring.detect", 0.3),
        ("volunteering", "behaviour.volunteering", 0.3, "observation.volunteer_registry.detect", 0.8),
        ("traffic_violation", "behaviour.traffic_violation", 0.3, "observation.police.detect", 0.05),
    ],
)
def test_registry_detect_rate(kind, rate_key, rate, detect_key, detect):
    overrides = {f"{rate_key}.rate_urban": rate, f"{rate_key}.rate_rural": rate, detect_key: detect}
    k = n = 0
    for sim in _days(overrides, days=3):
        e = _kind_events(sim, kind)
        obs = (sim.events.flags[e] & OBSERVED) != 0
        k += int(obs.sum())
        n += len(e)
        assert sim.daily_rows[-1][f"{kind}_observed"] == int(obs.sum())
        np.testing.assert_array_equal(sim.events.target[e], sim.events.citizen[e])
    assert n > 800
    assert abs(k / n - detect) < 5 * math.sqrt(detect * (1 - detect) / n)


def test_unwatched_kinds_are_never_observed():
    for sim in _days({}, days=2):
        for name in ("trip", "loan_application", "repayment"):
            e = _kind_events(sim, name)
            assert not np.any(sim.events.flags[e] & (OBSERVED | MISATTRIBUTED))
            np.testing.assert_array_equal(sim.events.target[e], sim.events.citizen[e])
            assert f"{name}_observed" not in sim.daily_rows[-1]


# -- the kernel on a hand-built layout ------------------------------------------


def _observe(citizens, region_start, flags, false_match=1.0, spared=(), detect=1.0, members_only=0):
    """One kind, one block per region; every citizen in ``citizens`` (sorted) commits it."""
    region_start = np.array(region_start, np.int64)
    block_start = region_start.copy()
    block_region = np.arange(len(region_start) - 1, dtype=np.int64)
    ev_citizen = np.array(citizens, np.int32)
    kind_at = np.zeros((len(block_region), 2), np.int64)
    for b in range(len(block_region)):
        kind_at[b] = np.searchsorted(ev_citizen, block_start[b : b + 2])
    ev_flags = np.zeros(len(ev_citizen), np.uint8)
    ev_target = np.full(len(ev_citizen), -1, np.int32)
    observe_day(
        1, 0, block_start, block_region, region_start,
        np.array([detect]), np.array([detect]), np.array([members_only], np.uint8), np.array([false_match]),
        np.array([-1], np.int64), np.zeros((0, 0), np.float32),
        np.array([1234], np.int64), np.array(flags, np.uint8), np.array(sorted(spared), np.int64),
        ev_citizen, np.zeros(len(ev_citizen), np.uint8), ev_flags, ev_target, kind_at,
    )
    return ev_flags, ev_target


def test_region_of_one_citizen_keeps_the_blame():
    # region 0 = {0}, region 1 = {1, 2, 3}
    flags, target = _observe([0, 1, 2, 3], [0, 1, 4], [0, 0, 0, 0])
    assert flags[0] == OBSERVED and target[0] == 0
    assert np.all(flags[1:] == OBSERVED | MISATTRIBUTED)
    assert np.all((target[1:] >= 1) & (target[1:] <= 3))
    assert np.all(target[1:] != [1, 2, 3])


def test_region_of_two_blames_the_other():
    flags, target = _observe([0, 1], [0, 2], [0, 0])
    np.testing.assert_array_equal(target, [1, 0])
    assert np.all(flags & MISATTRIBUTED)


def test_spared_citizen_is_never_blamed():
    # region of two: the only possible wrong target of 0 is 1; sparing 1 keeps the blame on 0
    flags, target = _observe([0, 1], [0, 2], [0, 0], spared=[1])
    assert flags[0] == OBSERVED and target[0] == 0
    assert flags[1] == OBSERVED | MISATTRIBUTED and target[1] == 0


def test_members_only_kernel_flag():
    member = dt.FLAG_MEMBER
    flags, target = _observe([0, 1, 2], [0, 3], [member, 0, member], false_match=0.0, members_only=1)
    np.testing.assert_array_equal(flags, [OBSERVED, 0, OBSERVED])
    np.testing.assert_array_equal(target, [0, 1, 2])


def test_detect_zero_sees_nothing_but_sets_targets():
    flags, target = _observe([0, 1, 2], [0, 3], [0, 0, 0], detect=0.0)
    assert np.all(flags == 0)
    np.testing.assert_array_equal(target, [0, 1, 2])
