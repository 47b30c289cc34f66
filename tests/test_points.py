"""records.points: grade bands, grade lookup (SPEC 9.3) and the daily ledger (SPEC 9.2 step 3)."""

from __future__ import annotations

import copy

import numpy as np
import pytest
from pydantic import ValidationError

from socialcredit.engine.events import MISATTRIBUTED, OBSERVED
from socialcredit.records.points import PointsConfig, apply_points
from socialcredit.scenario import Scenario


@pytest.fixture(scope="module")
def points_plugin():
    return Scenario.load("ref").plugins("records")["points"]


@pytest.fixture()
def raw(points_plugin):
    return copy.deepcopy(points_plugin.config.model_dump())


# -- validation ---------------------------------------------------------------


def test_ref_config_is_valid(raw):
    cfg = PointsConfig.model_validate(raw)
    assert (cfg.base, cfg.min, cfg.max, cfg.listing_delta) == (1000, 0, 1200, -450)
    assert cfg.deltas == {"jaywalk": -10, "traffic_violation": -20, "critical_post": -30, "volunteering": 20}


def test_gap_between_bands_rejected(raw):
    raw["grades"][4]["min"] = 601  # C 601..849 leaves 600 unassigned (D is ..599)
    with pytest.raises(ValidationError, match="leave a gap"):
        PointsConfig.model_validate(raw)


def test_overlapping_bands_rejected(raw):
    raw["grades"][5]["max"] = 600  # D ..600 overlaps C 600..
    with pytest.raises(ValidationError, match="overlap"):
        PointsConfig.model_validate(raw)


def test_bands_not_reaching_max_rejected(raw):
    raw["grades"][0]["max"] = 1199
    with pytest.raises(ValidationError, match=r"must span 0\.\.1200"):
        PointsConfig.model_validate(raw)


def test_bands_not_reaching_min_rejected(raw):
    raw["grades"][5]["min"] = 1
    with pytest.raises(ValidationError, match=r"must span 0\.\.1200"):
        PointsConfig.model_validate(raw)


def test_inverted_band_rejected(raw):
    raw["grades"][1] = {"name": "AA", "min": 1049, "max": 1030}
    with pytest.raises(ValidationError):
        PointsConfig.model_validate(raw)


def test_base_outside_range_rejected(raw):
    raw["base"] = 1201
    with pytest.raises(ValidationError, match="base 1201 outside"):
        PointsConfig.model_validate(raw)


def test_unknown_key_rejected(raw):
    raw["bonus"] = 1
    with pytest.raises(ValidationError):
        PointsConfig.model_validate(raw)


# -- grades -------------------------------------------------------------------


def test_grade_names_and_metric_keys(points_plugin):
    assert points_plugin.grade_names() == ["A+++", "AA", "A", "B", "C", "D"]
    assert [g.metric_key for g in points_plugin.config.grades] == ["AAAplus", "AA", "A", "B", "C", "D"]


@pytest.mark.parametrize(
    ("points", "grade"),
    [
        (1200, "A+++"), (1050, "A+++"), (1049, "AA"), (1030, "AA"), (1029, "A"), (960, "A"),
        (959, "B"), (850, "B"), (849, "C"), (600, "C"), (599, "D"), (550, "D"), (0, "D"),
    ],
)
def test_grade_index(points_plugin, points, grade):
    idx = points_plugin.grade_index(np.array([points], np.int16))
    assert points_plugin.grade_names()[int(idx[0])] == grade


def test_grade_index_vectorised(points_plugin):
    pts = np.array([1050, 1049, 960, 959, 600, 599, 0, 1000, 1200], np.int16)
    idx = points_plugin.grade_index(pts)
    assert idx.dtype == np.int8
    np.testing.assert_array_equal(idx, [0, 1, 2, 3, 4, 5, 5, 2, 0])


# -- the ledger kernel --------------------------------------------------------
# Two regions of one block each: region 0 = citizens 0..2, region 1 = citizens 3..5.
# Kinds: 0 jaywalk (-10), 1 volunteering (+20), 2 untracked (delta 0).

DELTAS = np.array([-10, 20, 0], np.int64)
REGION_START = np.array([0, 3, 6], np.int64)
REGION_FIRST_BLOCK = np.array([0, 1, 2], np.int64)


def _apply(points, events, extra=(), extra_delta=-450, lo=0, hi=1200):
    """events: per block, per kind, a list of (target, flags)."""
    targets, flags = [], []
    kind_at = np.zeros((2, len(DELTAS) + 1), np.int64)
    for b in range(2):
        for k in range(len(DELTAS)):
            kind_at[b, k] = len(targets)
            for t, f in events.get((b, k), []):
                targets.append(t)
                flags.append(f)
        kind_at[b, len(DELTAS)] = len(targets)
    extra = np.array(sorted(extra), np.int32)
    extra_at = np.searchsorted(extra, REGION_START).astype(np.int64)
    pts = np.array(points, np.int16)
    apply_points(
        REGION_FIRST_BLOCK, REGION_START, DELTAS, lo, hi, pts,
        np.array(flags, np.uint8), np.array(targets, np.int32), kind_at,
        extra, extra_at, np.int64(extra_delta),
    )
    return pts


def test_changes_summed_then_clipped_once():
    # 1190 +20 -10 = 1200 (clipping after each change in that order would give 1190)
    pts = _apply([1190, 5, 1000, 1000, 1000, 1000], {
        (0, 1): [(0, OBSERVED)],
        (0, 0): [(0, OBSERVED), (1, OBSERVED)],
    })
    np.testing.assert_array_equal(pts, [1200, 0, 1000, 1000, 1000, 1000])


def test_low_clip_after_sum():
    # 5 -10 +20 = 15: the sum never goes through the floor
    pts = _apply([5, 1000, 1000, 1000, 1000, 1000], {(0, 0): [(0, OBSERVED)], (0, 1): [(0, OBSERVED)]})
    assert pts[0] == 15


def test_several_events_for_one_citizen():
    pts = _apply([1000] * 6, {(1, 0): [(4, OBSERVED)] * 3, (1, 1): [(4, OBSERVED), (5, OBSERVED)]})
    np.testing.assert_array_equal(pts, [1000, 1000, 1000, 1000, 990, 1020])


def test_unobserved_and_zero_delta_events_ignored():
    pts = _apply([1000] * 6, {
        (0, 0): [(0, 0), (1, OBSERVED)],
        (0, 2): [(2, OBSERVED)],
        (1, 1): [(3, np.uint8(0))],
    })
    np.testing.assert_array_equal(pts, [1000, 990, 1000, 1000, 1000, 1000])


def test_misattributed_penalty_goes_to_target():
    # the camera saw citizen 4 but blamed citizen 5: the event's target is 5
    pts = _apply([1000] * 6, {(1, 0): [(5, OBSERVED | MISATTRIBUTED)]})
    np.testing.assert_array_equal(pts, [1000, 1000, 1000, 1000, 1000, 990])


def test_listing_delta_added_with_the_days_events():
    pts = _apply([1000, 1000, 1000, 1000, 300, 1000], {(0, 1): [(1, OBSERVED)]}, extra=[1, 4])
    # 1000 + 20 - 450 = 570; 300 - 450 clips to 0
    np.testing.assert_array_equal(pts, [1000, 570, 1000, 1000, 0, 1000])


def test_custom_bounds():
    pts = _apply([10, 50, 0, 0, 0, 0], {(0, 0): [(0, OBSERVED)], (0, 1): [(1, OBSERVED)]}, lo=-100, hi=60)
    np.testing.assert_array_equal(pts[:2], [0, 60])
