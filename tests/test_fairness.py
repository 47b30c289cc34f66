"""metrics.fairness: disparate-impact ratios from counts."""

from __future__ import annotations

import pytest

from socialcredit.metrics.fairness import count_ratio


def test_ratio_of_rates_inside_and_outside_the_group():
    # group of 100 with 30 outcomes; the other 900 have 90: 0.3 / 0.1
    assert count_ratio(30, 120, 100, 1000) == pytest.approx(3.0)
    assert count_ratio(10, 100, 100, 1000) == pytest.approx(1.0)


@pytest.mark.parametrize("args", [(0, 0, 0, 10), (5, 5, 10, 10), (3, 3, 5, 10)])
def test_undefined_ratios_are_none(args):
    # empty group, empty rest, no outcome outside the group
    assert count_ratio(*args) is None
