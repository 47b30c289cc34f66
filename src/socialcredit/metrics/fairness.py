"""Group rates and disparate-impact ratios, from counts.

Ratios here are always *group / reference group* (the AIF360 convention:
e.g. minority / majority, urban / rural), never lowest / highest; a ratio whose
denominator is zero (or whose group is empty) is None.
"""

from __future__ import annotations


def count_ratio(outcome_in_group: int, outcome: int, group: int, population: int) -> float | None:
    """Rate of an outcome inside a group divided by its rate in the rest of the population.

    ``outcome_in_group``: citizens of the group with the outcome; ``outcome``: all citizens
    with it; ``group``: the group's size; ``population``: everybody.
    """
    rest = population - group
    if group == 0 or rest == 0:
        return None
    outside = (outcome - outcome_in_group) / rest
    if outside == 0:
        return None
    return (outcome_in_group / group) / outside
