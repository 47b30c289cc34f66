"""Invariants as property tests over random scenarios and populations."""

from __future__ import annotations

import numpy as np
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit import dtypes as dt
from socialcredit.engine.simulation import Simulation
from socialcredit.metrics.summary import Results
from socialcredit.scenario import Scenario

REF = Scenario.load("ref")

scenarios = st.fixed_dictionaries({
    "observation.camera.false_match": st.floats(0, 1),
    "observation.camera.detect_urban": st.floats(0, 1),
    "behaviour.missed_payment.rate_urban": st.floats(0, 0.05),
    "behaviour.missed_payment.rate_rural": st.floats(0, 0.05),
    "records.court_list.default_cap": st.floats(0, 1),
    "records.court_list.term_days": st.integers(1, 60),
    "records.court_list.repay_rate": st.floats(0, 1),
    "consequences.unfriend.probability": st.floats(0, 1),
    "consequences.unfriend.every_days": st.integers(1, 40),
    "scoring.platform.every_days": st.integers(1, 40),
    "population.regions": st.integers(1, 40),
    "graph.draws": st.integers(0, 8),
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(overrides=scenarios, citizens=st.integers(1, 3000), days=st.integers(1, 120), seed=st.integers(0, 2**32))
def test_invariants(overrides, citizens, days, seed):
    scn = REF.override(**overrides)
    sim = Simulation(scn, citizens=citizens, days=days, seed=seed)
    edges0 = sim.graph.edges
    sim.run()
    cz, g = sim.citizens, sim.graph
    # scores and points stay in range; grades partition the point range
    assert np.all((cz.score >= 350) & (cz.score <= 950))
    assert np.all((cz.points >= 0) & (cz.points <= 1200))
    points = sim.find("records", "points")
    assert np.bincount(points.grade_index(cz.points), minlength=6).sum() == citizens
    # conservation of citizens and edges: cut edges keep their place, both entries cut together
    assert len(cz.region) == citizens and g.edges == edges0
    ids = g.ids()
    rows = np.repeat(np.arange(citizens), np.diff(g.offsets))
    cut = g.neighbours < 0
    pairs = {(int(a), int(b)) for a, b in zip(rows[cut], ids[cut], strict=True)}
    assert pairs == {(b, a) for a, b in pairs}
    # no one is listed past their term (listed on t0 means days t0 .. t0 + term - 1)
    term = scn.data["records"]["court_list"]["term_days"]
    listed = cz.list_start >= 0
    assert np.all((sim.day - 1) - cz.list_start[listed] <= term - 1)
    assert np.all(cz.flags[listed] & dt.FLAG_LISTED_EVER)
    lists = sim.find("records", "court-list").table(sim.day)
    closed = lists.filter(pl.col("end_day").is_not_null())
    assert (closed["end_day"] - closed["start_day"] <= term).all()
    assert (closed["end_day"] > closed["start_day"]).all()
    # misattribution never crosses regions and never blames the actor
    if len(sim.panel_events):
        ev = sim.panel_events.concat()
        wrong = (ev["flags"] & 2) != 0
        assert np.all(cz.region[ev["citizen"][wrong]] == cz.region[ev["target"][wrong]])
        assert np.all(ev["citizen"][wrong] != ev["target"][wrong])
    # metrics are finite or null; shares are shares
    metrics = Results.from_simulation(sim).metrics
    for name, value in metrics.items():
        assert value is None or np.isfinite(value), name
        if name.endswith("_share") and value is not None:
            assert 0.0 <= value <= 1.0, name
