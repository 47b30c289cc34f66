"""records.counters: decayed (seen_<kind>) and total (total_<kind>) counts of observed attributed events."""

from __future__ import annotations

import math

import numpy as np
import pytest

from socialcredit import dtypes as dt
from socialcredit.engine.events import MISATTRIBUTED, OBSERVED
from socialcredit.engine.simulation import Simulation
from socialcredit.records.counters import bring_up_to, count_events, decayed_values
from socialcredit.scenario import Scenario

TAU = 5.0
DAYS = 12
N = 3_000


# -- kernels on hand-made arrays ------------------------------------------------------

# Two regions of one block each: block 0 = citizens 0..3, block 1 = citizens 4..7; two kinds.
# Buffer: block 0 holds events 0, 1 (kind 0) and 2 (kind 1); block 1 holds 3, 4 (kind 0) and 5 (kind 1).
REGION_FIRST_BLOCK = np.array([0, 1, 2], np.int64)
KIND_AT = np.array([[0, 2, 3], [3, 5, 6]], np.int64)
EV_FLAGS = np.array([OBSERVED, 0, OBSERVED, OBSERVED, OBSERVED | MISATTRIBUTED, OBSERVED], np.uint8)
EV_TARGET = np.array([1, 2, 0, 5, 5, 4], np.int32)  # event 4 was committed by 6, attributed to 5


def test_count_events_decayed_by_hand():
    value = np.array([0, 2, 0, 0, 0, 1, 0, 0], dt.DECAYED)
    last = np.array([0, 6, 0, 0, 0, 10, 0, 3], dt.DAY)
    count_events(REGION_FIRST_BLOCK, 0, 10, TAU, value, last, value, True, EV_FLAGS, EV_TARGET, KIND_AT)
    want = [0, 2 * math.exp(-4 / TAU) + 1, 0, 0, 0, 3, 0, 0]  # 2 unobserved; 5 gets two at no decay
    np.testing.assert_allclose(value, want, rtol=1e-6)
    np.testing.assert_array_equal(last, [0, 10, 0, 0, 0, 10, 0, 3])  # only updated citizens move


def test_count_events_total_by_hand():
    total = np.array([1, 0, 0, 0, 0, 0, 0, 0], dt.DECAYED)
    dummy = np.zeros(1, dt.DAY)
    count_events(REGION_FIRST_BLOCK, 0, 10, TAU, total, dummy, total, False, EV_FLAGS, EV_TARGET, KIND_AT)
    np.testing.assert_array_equal(total, [1, 1, 0, 0, 0, 2, 0, 0])
    count_events(REGION_FIRST_BLOCK, 1, 11, TAU, total, dummy, total, False, EV_FLAGS, EV_TARGET, KIND_AT)
    np.testing.assert_array_equal(total, [2, 1, 0, 0, 1, 2, 0, 0])


def test_reads_of_a_few_do_not_write_back_and_catching_up_everyone_does():
    value = np.array([1, 2, 4, 0], dt.DECAYED)
    last = np.array([0, 5, 10, 3], dt.DAY)
    part = np.empty(2, np.float32)
    decayed_values(value, last, 15, TAU, np.array([2, 0], np.int64), part)
    np.testing.assert_allclose(part, [4 * math.exp(-1), math.exp(-3)], rtol=1e-6)
    np.testing.assert_array_equal(value, [1, 2, 4, 0])
    np.testing.assert_array_equal(last, [0, 5, 10, 3])
    bring_up_to(value, last, 10, TAU)
    np.testing.assert_allclose(value, [math.exp(-2), 2 * math.exp(-1), 4, 0], rtol=1e-6)
    np.testing.assert_array_equal(last, [10, 10, 10, 3])  # a zero count needs no catching up


# -- in a simulation ------------------------------------------------------------------------


def _scenario(**extra) -> Scenario:
    """ref, many jaywalks, half seen, a third of the seen ones misattributed; a formula reads the counts."""
    return Scenario.load("ref").override(**{
        "records.event_counters": {"kind": "event-counters", "decay_days": TAU},
        "behaviour.probe": {"kind": "formula", "context": "civic",
                            "rate": "0 * (seen_jaywalk + total_jaywalk)"},
        "behaviour.jaywalk.rate_urban": 0.2,
        "behaviour.jaywalk.rate_rural": 0.2,
        "observation.camera.detect_urban": 0.5,
        "observation.camera.detect_rural": 0.5,
        "observation.camera.false_match": 0.3,
        **extra,
    })


def _jaywalks(sim):
    k = sim.kinds.names.index("jaywalk")
    ka, ev = sim.events.kind_at, sim.events
    e = np.concatenate([np.arange(ka[b, k], ka[b, k + 1]) for b in range(len(ka))]).astype(np.int64)
    return ev.citizen[e].copy(), ev.target[e].copy(), (ev.flags[e] & OBSERVED) != 0


@pytest.fixture(scope="module")
def run():
    sim = Simulation(_scenario(), citizens=N, days=DAYS, seed=5)
    log = []
    for day in range(DAYS):
        sim.step()
        actor, target, observed = _jaywalks(sim)
        log.append((day, actor, target, observed))
    return sim, log


def _closed_form(log, at_day, n=N):
    seen, total, last = np.zeros(n), np.zeros(n), np.zeros(n, np.int64)
    for day, _, target, observed in log:
        t = target[observed]
        np.add.at(seen, t, math.exp(-(at_day - day) / TAU))
        np.add.at(total, t, 1)
        last[t] = day
    return seen, total, last


def test_the_run_has_misattributed_and_unobserved_events(run):
    _, log = run
    actor = np.concatenate([a for _, a, _, _ in log])
    target = np.concatenate([t for _, _, t, _ in log])
    observed = np.concatenate([o for _, _, _, o in log])
    assert len(actor) > 3_000
    assert 0.4 < observed.mean() < 0.6
    assert 0.2 < (actor != target)[observed].mean() < 0.4


def test_everyone_equals_the_closed_form(run):
    sim, log = run
    assert sim.day == DAYS
    seen, total, _ = _closed_form(log, DAYS)
    env = sim.fields.everyone(["seen_jaywalk", "total_jaywalk"])
    np.testing.assert_allclose(env["seen_jaywalk"], seen, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(env["total_jaywalk"], total)
    later = _closed_form(log, DAYS + 20)[0]
    np.testing.assert_allclose(sim.counters.everyone("jaywalk", True, DAYS + 20), later, rtol=1e-5, atol=1e-7)


def test_at_equals_the_closed_form(run):
    sim, log = run
    ids = np.array([0, 17, 5, N - 1, 1_234, 2_000, 17], np.int64)
    for day in (DAYS, DAYS + 3, DAYS + 100):
        seen, total, _ = _closed_form(log, day)
        np.testing.assert_allclose(sim.counters.at("jaywalk", True, day, ids), seen[ids], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(sim.counters.at("jaywalk", False, day, ids), total[ids])
    seen, _, _ = _closed_form(log, DAYS)
    np.testing.assert_allclose(sim.fields.at(["seen_jaywalk"], ids)["seen_jaywalk"], seen[ids], rtol=1e-5)


def test_counts_go_to_the_attributed_citizen_and_only_observed_ones(run):
    sim, log = run
    _, total, last = _closed_form(log, DAYS)
    got = sim.counters.everyone("jaywalk", False, DAYS)
    by_actor = np.zeros(N)
    everything = np.zeros(N)
    for _, actor, target, observed in log:
        np.add.at(by_actor, actor[observed], 1)
        np.add.at(everything, target, 1)
    np.testing.assert_array_equal(got, total)
    assert np.count_nonzero(got != by_actor) > 100  # the actor of a misattributed act is not counted
    assert np.count_nonzero(got != everything) > 100  # unobserved acts are not counted
    assert got.sum() == sum(int(o.sum()) for *_, o in log)
    # lazily kept: the stored value is as of each citizen's last counted event, or of the last
    # whole-population catch-up (an earlier test brought everyone to day DAYS + 20), for non-zero counts
    key = sim.counters.tracked[(sim.kinds.names.index("jaywalk"), True)]
    stored = sim.counters.arrays[f"{key}_last"]
    counted = sim.counters.arrays[f"{key}_value"] != 0
    assert np.all((stored == last) | (counted & (stored == DAYS + 20)))


def test_untracked_kinds_are_not_counted(run):
    sim, _ = run
    gaming = sim.kinds.names.index("gaming")
    assert set(sim.counters.tracked) == {(sim.kinds.names.index("jaywalk"), True),
                                         (sim.kinds.names.index("jaywalk"), False)}
    assert (gaming, True) not in sim.counters.tracked


def test_nothing_counted_when_nothing_observed():
    sim = Simulation(_scenario(**{"observation.camera.detect_urban": 0.0, "observation.camera.detect_rural": 0.0}),
                     citizens=1_000, days=3, seed=1)
    events = 0
    for _ in range(3):
        sim.step()
        events += len(_jaywalks(sim)[0])
    assert events > 200
    np.testing.assert_array_equal(sim.counters.everyone("jaywalk", False, 3), np.zeros(1_000))
    np.testing.assert_array_equal(sim.counters.everyone("jaywalk", True, 3), np.zeros(1_000))


def test_state_restore_round_trip():
    a = Simulation(_scenario(), citizens=1_000, days=10, seed=9)
    for _ in range(5):
        a.step()
    saved = {k: v.copy() for k, v in a.counters.state().items()}
    assert len(saved) == 3  # seen value, seen last, total value
    for _ in range(5):
        a.step()

    b = Simulation(_scenario(), citizens=1_000, days=10, seed=9)
    arrays_before = dict(b.counters.arrays)
    b.counters.restore(saved)
    for key, arr in b.counters.arrays.items():
        assert arr is arrays_before[key]  # restored in place
        np.testing.assert_array_equal(arr, saved[key])
    b.day = 5  # jaywalks do not depend on the other plugins' state: replay days 5..9
    for _ in range(5):
        b.step()
    for key, arr in a.counters.state().items():
        np.testing.assert_array_equal(b.counters.arrays[key], arr)
    np.testing.assert_array_equal(b.counters.everyone("jaywalk", True, 10), a.counters.everyone("jaywalk", True, 10))
