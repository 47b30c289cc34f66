"""scoring.peer_rating: Nosedive-style stars from friends, weighted by the raters' own ratings."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from socialcredit.engine import checkpoint
from socialcredit.engine.events import DENIED
from socialcredit.engine.kernels import positions
from socialcredit.engine.simulation import Simulation
from socialcredit.errors import ScenarioError
from socialcredit.rng import stream_key, uniform, uniform_open
from socialcredit.scenario import Scenario
from socialcredit.scoring.peer_rating import NOISE, apply_stars, give_stars

SCENARIO = Path(__file__).parent / "data" / "peer_rating.toml"
N, DAYS, SEED = 2_000, 40, 7


def _csr(n, edges, cut=()):
    """CSR of undirected ``edges``; those in ``cut`` stored as ~j in both rows."""
    rows = [[] for _ in range(n)]
    for i, j in edges:
        rows[i].append(j)
        rows[j].append(i)
    cut = {frozenset(e) for e in cut}
    offsets = np.concatenate([[0], np.cumsum([len(r) for r in rows])]).astype(np.int32)
    nbr = [(~j if frozenset((i, j)) in cut else j) for i, r in enumerate(rows) for j in sorted(r)]
    return offsets, np.array(nbr, np.int32)


def _rate(ratees, quality, rating, weight, offsets, nbr, *, base=3.0, quality_weight=2.0, conformity=0.5,
          reference=-1.0, noise="none", noise_sd=0.0, rater_power=2.0, memory=0.5, low=3.5, day=0, seed=1):
    """One day of ratings for ``ratees`` (one block holding everyone): (rater, stars, weight, block changes)."""
    n = len(rating)
    ev_citizen = np.array(ratees, np.int32)
    pos = np.arange(len(ratees), dtype=np.int64)
    pos_at = np.array([0, len(ratees)], np.int64)
    block_start = np.array([0, n], np.int64)
    rater = np.empty(len(ratees), np.int64)
    stars = np.empty(len(ratees), np.int64)
    w = np.empty(len(ratees), np.float64)
    give_stars(seed, 12345, day, block_start, pos, pos_at, ev_citizen, np.asarray(quality, np.float64),
               offsets, nbr, rating, base, quality_weight, conformity, reference, NOISE[noise], noise_sd,
               rater_power, rater, stars, w)
    d_sum = np.zeros(1, np.float64)
    d_low = np.zeros(1, np.int64)
    apply_stars(pos, pos_at, ev_citizen, rater, stars, w, memory, np.float32(low), rating, weight, d_sum, d_low)
    return rater, stars, w, float(d_sum[0]), int(d_low[0])


# -- kernels on hand-made arrays ------------------------------------------------


def test_stars_weights_and_running_mean_by_hand():
    # 0-1 active, 0-2 cut, 3-4 cut, 4-5 active: 0 is rated by 1, 5 by 4, 3 by nobody
    offsets, nbr = _csr(6, [(0, 1), (0, 2), (3, 4), (4, 5)], cut=[(0, 2), (3, 4)])
    rating = np.array([4.5, 5.0, 1.0, 3.0, 2.5, 2.0], np.float32)
    weight = np.ones(6, np.float32)
    rater, stars, w, d_sum, d_low = _rate([0, 3, 5], [1.0, 0.5, 1.0], rating, weight, offsets, nbr)
    np.testing.assert_array_equal(rater, [1, -1, 4])
    # 0: 3 + 2·(1 − 0.5) + 0.5·(4.5 − 5) = 3.75 → 4, weight (5/5)² = 1
    # 5: 3 + 2·(1 − 0.5) + 0.5·(2 − 2.5) = 3.75 → 4, weight (2.5/5)² = 0.25
    np.testing.assert_array_equal(stars[[0, 2]], [4, 4])
    np.testing.assert_allclose(w[[0, 2]], [1.0, 0.25])
    # R' = (R·W·m + s·w) / (W·m + w), W' = W·m + w with m = 0.5
    r0 = (4.5 * 0.5 + 4 * 1.0) / (0.5 + 1.0)  # 4.1667
    r5 = (2.0 * 0.5 + 4 * 0.25) / (0.5 + 0.25)  # 2.6667
    np.testing.assert_allclose(rating, [r0, 5.0, 1.0, 3.0, 2.5, r5], rtol=1e-6)
    np.testing.assert_allclose(weight, [1.5, 1, 1, 1, 1, 0.75], rtol=1e-6)
    # the block's change of the sum and of the count below 3.5 (5 rose from 2.0 to 2.67: still below)
    assert d_sum == pytest.approx((r0 - 4.5) + (r5 - 2.0), rel=1e-6)
    assert d_low == 0


def test_halves_round_up_and_stars_are_clipped_to_1_5():
    offsets, nbr = _csr(6, [(0, 1), (2, 3), (4, 5)])
    rating = np.full(6, 4.0, np.float32)
    weight = np.ones(6, np.float32)
    # 0: 3 + 2·0.25 = 3.5 → 4; 2: 3 + 2·5 = 13 → 5; 4: 3 − 2·5 = −7 → 1
    _, stars, _, _, _ = _rate([0, 2, 4], [0.75, 5.5, -4.5], rating, weight, offsets, nbr, conformity=0.0)
    np.testing.assert_array_equal(stars, [4, 5, 1])


def test_high_rated_raters_weigh_more():
    # 0 is rated by 1 (rating 5), 2 by 3 (rating 2.5): same stars (4), same start (2.0)
    offsets, nbr = _csr(4, [(0, 1), (2, 3)])
    rating = np.array([2.0, 5.0, 2.0, 2.5], np.float32)
    weight = np.ones(4, np.float32)
    _, stars, w, _, d_low = _rate([0, 2], [0.5, 0.5], rating, weight, offsets, nbr, base=4.0, conformity=0.0, low=3.0,
                                   rater_power=2.0, memory=0.5)
    np.testing.assert_array_equal(stars, [4, 4])
    np.testing.assert_allclose(w, [1.0, 0.25])
    assert rating[0] == pytest.approx((2.0 * 0.5 + 4 * 1.0) / 1.5, rel=1e-6)  # 3.333
    assert rating[2] == pytest.approx((2.0 * 0.5 + 4 * 0.25) / 0.75, rel=1e-6)  # 2.667
    assert rating[0] > rating[2]
    assert d_low == -1  # 0 rose above 3.0, 2 stayed below


def test_everyone_is_rated_from_start_of_day_ratings():
    # 0 and 1 rate each other; the weight of each star uses the other's rating *before* today
    offsets, nbr = _csr(2, [(0, 1)])
    rating = np.array([5.0, 1.0], np.float32)
    weight = np.ones(2, np.float32)
    _, stars, w, _, _ = _rate([0, 1], [0.5, 0.5], rating, weight, offsets, nbr, base=3.0, conformity=0.0,
                              rater_power=1.0, memory=1.0)
    np.testing.assert_array_equal(stars, [3, 3])
    np.testing.assert_allclose(w, [0.2, 1.0])
    # simultaneous: R0 = (5 + 3·0.2)/1.2, R1 = (1 + 3·1)/2 (sequential updates would give 4.43 or 1.93)
    np.testing.assert_allclose(rating, [(5 + 0.6) / 1.2, 2.0], rtol=1e-6)


def test_conformity_against_the_rater_or_the_initial_rating():
    offsets, nbr = _csr(4, [(0, 1), (2, 3)])
    rating = np.array([4.0, 2.0, 2.0, 4.0], np.float32)
    weight = np.ones(4, np.float32)
    # rater reference: 0 is above its rater (+2·1 → 5), 2 below (−2·1 → 1)
    _, stars, _, _, _ = _rate([0, 2], [0.5, 0.5], rating.copy(), weight.copy(), offsets, nbr, base=3.0,
                              conformity=1.0, reference=-1.0)
    np.testing.assert_array_equal(stars, [5, 1])
    # initial reference 3.0: both ratees differ from 3 by −1 → 2 stars each
    _, stars, _, _, _ = _rate([0, 2], [0.5, 0.5], np.array([2.0, 2.0, 2.0, 4.0], np.float32), weight.copy(),
                              offsets, nbr, base=3.0, conformity=1.0, reference=3.0)
    np.testing.assert_array_equal(stars, [2, 2])


def test_rater_is_a_uniform_active_friend_never_a_cut_one():
    # 0's friends: 1, 2, 3 active, 4 cut
    offsets, nbr = _csr(5, [(0, 1), (0, 2), (0, 3), (0, 4)], cut=[(0, 4)])
    seen = []
    for day in range(3_000):
        rating = np.full(5, 4.0, np.float32)
        rater, _, _, _, _ = _rate([0], [0.5], rating, np.ones(5, np.float32), offsets, nbr, day=day)
        seen.append(int(rater[0]))
    counts = np.bincount(seen, minlength=5)
    assert counts[0] == 0 and counts[4] == 0
    assert np.all(np.abs(counts[1:4] - 1000) < 5 * math.sqrt(1000 * 2 / 3))


def test_uniform_noise_has_the_configured_sd():
    offsets, nbr = _csr(2, [(0, 1)])
    stars = []
    for day in range(4_000):
        _, s, _, _, _ = _rate([0], [0.5], np.full(2, 3.0, np.float32), np.ones(2, np.float32), offsets, nbr,
                              base=3.0, conformity=0.0, noise="uniform", noise_sd=0.5, day=day)
        stars.append(int(s[0]))
    # uniform on 3 ± 0.866: P(2) = P(4) = (0.866 − 0.5) / 1.732 = 0.211
    share = np.bincount(stars, minlength=6) / len(stars)
    assert share[2] == pytest.approx(0.211, abs=0.025) and share[4] == pytest.approx(0.211, abs=0.025)
    assert share[1] == 0 and share[5] == 0


# -- the plugin in a simulation -----------------------------------------------------


@pytest.fixture(scope="module")
def scenario() -> Scenario:
    return Scenario.load(SCENARIO)


def _oracle_day(sim: Simulation, plugin, day: int, rating: np.ndarray, weight: np.ndarray, nbr: np.ndarray):
    """Expected ratings after ``day`` from the start-of-day state, recomputed in plain Python."""
    c, ev, g = plugin.config, sim.events, sim.graph
    rating = rating.astype(np.float64)
    weight = weight.astype(np.float64)
    new_r, new_w = rating.copy(), weight.copy()
    risk = sim.citizens.risk
    k = plugin.kind_code
    rated = 0
    for b in range(len(ev.kind_at)):
        lo = int(sim.blocks.block_start[b])
        key = stream_key(sim.seed, plugin.stream, day, b)
        for e in range(ev.kind_at[b, k], ev.kind_at[b, k + 1]):
            i = int(ev.citizen[e])
            row = [int(j) for j in nbr[g.offsets[i]:g.offsets[i + 1]]]
            friends = [j for j in row if j >= 0]
            if not friends:
                continue
            ctr = (i - lo) * 4
            j = row[int(uniform(key, ctr) * len(row))]  # one entry of the row; a cut one: redraw among active
            if j < 0:
                j = friends[int(uniform(key, ctr + 3) * len(friends))]
            z = c.noise_sd * math.sqrt(-2 * math.log(uniform_open(key, ctr + 1))) * math.cos(
                2 * math.pi * uniform(key, ctr + 2))
            quality = min(1.0, max(0.0, 1.0 - float(risk[i])))  # the scenario's quality = "1 - risk"
            s = c.base + c.quality_weight * (quality - 0.5) + c.conformity * (rating[i] - rating[j]) + z
            s = min(5, max(1, math.floor(s + 0.5)))
            w = (rating[j] / 5) ** c.rater_power
            kept = weight[i] * c.memory
            new_r[i] = (rating[i] * kept + s * w) / (kept + w)
            new_w[i] = kept + w
            rated += 1
    return new_r, new_w, rated


def test_a_simulated_day_matches_a_hand_replay(scenario):
    sim = Simulation(scenario, citizens=N, days=DAYS, seed=SEED)
    plugin = sim.plugins["scoring"]["rating"]
    for _ in range(12):
        sim.step()
    rating, weight, nbr = plugin.rating.copy(), plugin.weight.copy(), sim.graph.neighbours.copy()
    day = sim.day
    sim.step()
    want_r, want_w, rated = _oracle_day(sim, plugin, day, rating, weight, nbr)
    assert rated > 100
    np.testing.assert_allclose(plugin.rating, want_r, rtol=2e-6)
    np.testing.assert_allclose(plugin.weight, want_w, rtol=2e-6)
    row = sim.daily_rows[-1]
    assert row["rating_interactions"] == rated
    assert row["interaction"] >= rated  # attempts include citizens without an active friend


def test_daily_columns_are_exact_aggregates_and_ratings_stay_in_1_5(scenario):
    sim = Simulation(scenario, citizens=N, days=DAYS, seed=SEED)
    sim.run()
    r = sim.plugins["scoring"]["rating"].rating
    row = sim.daily_rows[-1]
    assert row["rating_mean"] == float(np.mean(r, dtype=np.float64))  # running sum is exact
    assert row["rating_low_share"] == np.count_nonzero(r < np.float32(3.9)) / N
    assert 3.0 <= row["rating_stars_mean"] <= 5.0
    assert r.min() >= 1.0 and r.max() <= 5.0
    assert np.count_nonzero(r != np.float32(4.0)) > N // 2  # most were rated at least once
    assert sum(d["rating_interactions"] for d in sim.daily_rows) > 0.2 * N * DAYS * 0.5
    # the service gate reads the published field: denied iff rating < 3.9 at the time of the request
    ev = sim.events
    pos = positions(ev.kind_at, sim.kinds.code("lounge", "test"))
    assert len(pos) > 0
    denied = (ev.flags[pos] & DENIED) != 0
    np.testing.assert_array_equal(denied, r[ev.citizen[pos]] < np.float32(3.9))
    assert sim.published()["rating"] is r


def test_same_seed_same_ratings_and_other_seed_differs(scenario):
    a = Simulation(scenario, citizens=N, days=15, seed=SEED)
    a.run()
    b = Simulation(scenario, citizens=N, days=15, seed=SEED)
    b.run()
    c = Simulation(scenario, citizens=N, days=15, seed=SEED + 1)
    c.run()
    ra, rb, rc = (s.plugins["scoring"]["rating"].rating for s in (a, b, c))
    np.testing.assert_array_equal(ra, rb)
    assert not np.array_equal(ra, rc)


def test_checkpoint_resume_equals_uninterrupted(scenario, tmp_path):
    straight = Simulation(scenario, citizens=N, days=DAYS, seed=SEED)
    straight.run()
    first = Simulation(scenario, citizens=N, days=DAYS, seed=SEED)
    for _ in range(17):
        first.step()
    checkpoint.save(first, tmp_path / "ck", {"scenario": scenario.to_dict()})
    resumed = Simulation(scenario, citizens=N, days=DAYS, seed=SEED)
    checkpoint.restore(resumed, tmp_path / "ck", json.loads((tmp_path / "ck" / "checkpoint.json").read_text()))
    resumed.run()
    p, q = straight.plugins["scoring"]["rating"], resumed.plugins["scoring"]["rating"]
    np.testing.assert_array_equal(p.rating, q.rating)
    np.testing.assert_array_equal(p.weight, q.weight)
    assert straight.daily_rows == resumed.daily_rows


def test_a_formula_rate_that_reads_missing_traits_is_refused(scenario):
    with pytest.raises(ScenarioError, match=r"scoring\.rating\.interaction.*sociability"):
        Simulation(scenario.override(**{"scoring.rating.interaction": "0.05 * (0.5 + sociability)"}),
                   citizens=64, days=1, seed=0)


@pytest.mark.parametrize("key, value", [("memory", 0.0), ("initial", 6.0), ("noise", "cauchy"),
                                        ("event", "Bad Name"), ("quality", "risk +")])
def test_invalid_config_is_rejected(scenario, key, value):
    with pytest.raises(ScenarioError, match=rf"scoring\.rating.*{key}"):
        scenario.override(**{f"scoring.rating.{key}": value})
