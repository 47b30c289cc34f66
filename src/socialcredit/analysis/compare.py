"""Comparing two runs: every summary metric side by side, and per-citizen changes
when both runs simulated the same synthetic population."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from socialcredit.analysis.runs import open_run
from socialcredit.api import Run

QUANTILES = (0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99)
#: Citizen attributes drawn at t = 0 that must agree for a per-citizen comparison (those both runs have).
FIXED = ("region", "urban", "minority", "member", "income0", "risk", "voice", "age", "female", "hukou_urban",
         "education", "messaging", "consent", "parent", "sociability", "conscientiousness")
#: Yes/no outcomes compared citizen by citizen (those both runs have).
FLAGS = ("listed", "listed_ever", "red_list", "speech_penalised")
#: Numeric outcomes compared citizen by citizen, besides each run's scoring-system columns.
VALUES = ("score", "points", "income", "shamed", "active_degree")


@dataclass
class Comparison:
    """The result of ``compare``: a metric table and, for the same population, per-citizen changes."""

    a: str
    b: str
    metrics: pl.DataFrame
    citizens: dict[str, Any] | None = None
    same_population: bool = False
    reason: str = ""
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain, JSON-serialisable data (NaN and infinities as null)."""
        return _clean({
            "a": self.a,
            "b": self.b,
            "metrics": self.metrics.to_dicts(),
            "same_population": self.same_population,
            "reason": self.reason,
            "citizens": self.citizens,
        })


def compare(run_a: str | Path, run_b: str | Path) -> Comparison:
    """Compare run B with run A (B − A): metrics, and per-citizen outcomes where possible."""
    a, b = open_run(run_a), open_run(run_b)
    result = Comparison(a=str(a.path), b=str(b.path), metrics=metric_table(a.metrics, b.metrics))
    result.reason = _population_difference(a, b)
    if not result.reason:
        citizens_a, citizens_b = a.citizens, b.citizens
        result.reason = _attribute_difference(citizens_a, citizens_b)
        if not result.reason:
            result.same_population = True
            result.citizens = citizen_changes(citizens_a, citizens_b, _grade_order(a) or _grade_order(b),
                                              values=_value_columns(a, b))
    return result


def metric_table(a: dict[str, float | None], b: dict[str, float | None]) -> pl.DataFrame:
    """One row per metric (those of A in order, then any only in B): a, b, diff (B − A), rel ((B − A) / |A|)."""
    names = list(a) + [k for k in b if k not in a]
    rows = []
    for name in names:
        va, vb = _num(a.get(name)), _num(b.get(name))
        diff = vb - va if va is not None and vb is not None else None
        rel = diff / abs(va) if diff is not None and va else None
        rows.append({"metric": name, "a": va, "b": vb, "diff": diff, "rel": rel})
    schema = {"metric": pl.String, "a": pl.Float64, "b": pl.Float64, "diff": pl.Float64, "rel": pl.Float64}
    return pl.DataFrame(rows, schema=schema)


def citizen_changes(a: pl.DataFrame, b: pl.DataFrame, grades: list[str] | None = None,
                    values: tuple[str, ...] = VALUES) -> dict[str, Any]:
    """Per-citizen outcome changes from A to B (rows matched by citizen id): every yes/no outcome of ``FLAGS``
    and every numeric column of ``values`` that both runs have, and grade transitions."""
    joined = a.join(b, on="citizen", how="inner", suffix="_b").sort("citizen")
    n = joined.height
    out: dict[str, Any] = {"citizens": n}
    for flag in FLAGS:
        if flag in a.columns and flag in b.columns:
            fa = joined[flag].cast(pl.Boolean).to_numpy()
            fb = joined[f"{flag}_b"].cast(pl.Boolean).to_numpy()
            out[flag] = {
                "changed": int(np.count_nonzero(fa != fb)),
                "only_in_b": int(np.count_nonzero(fb & ~fa)),
                "only_in_a": int(np.count_nonzero(fa & ~fb)),
                "a": int(np.count_nonzero(fa)),
                "b": int(np.count_nonzero(fb)),
            }
    for value in values:
        if value in a.columns and value in b.columns:
            delta = joined[f"{value}_b"].to_numpy().astype(np.float64) - joined[value].to_numpy().astype(np.float64)
            out[f"{value}_change"] = _describe(delta)
    if "grade" in a.columns and "grade" in b.columns:
        out["grade_transitions"] = grade_transitions(joined["grade"], joined["grade_b"], grades)
    return out


def grade_transitions(a: pl.Series, b: pl.Series, order: list[str] | None = None) -> dict[str, Any]:
    """Counts of citizens by (grade in A, grade in B): ``{"grades": [...], "counts": [[...]]}``, rows are A.

    Grades come in ``order`` (every one of them, used or not), then any others seen, sorted.
    """
    ga, gb = a.cast(pl.String), b.cast(pl.String)
    seen = set(ga.drop_nulls().unique()) | set(gb.drop_nulls().unique())
    grades = list(order or []) + sorted(seen - set(order or []))
    index = {g: i for i, g in enumerate(grades)}
    counts = np.zeros((len(grades), len(grades)), dtype=np.int64)
    pairs = pl.DataFrame({"a": ga, "b": gb}).drop_nulls().group_by("a", "b").len()
    for row in pairs.iter_rows(named=True):
        counts[index[row["a"]], index[row["b"]]] = row["len"]
    return {"grades": grades, "counts": counts.tolist()}


def _describe(delta: np.ndarray) -> dict[str, Any]:
    if not len(delta):
        return {"mean": None, "changed": 0, "quantiles": {}}
    qs = np.quantile(delta, QUANTILES)
    return {
        "mean": float(delta.mean()),
        "sd": float(delta.std()),
        "min": float(delta.min()),
        "max": float(delta.max()),
        "changed": int(np.count_nonzero(delta)),
        "quantiles": {f"p{round(q * 100)}": float(v) for q, v in zip(QUANTILES, qs, strict=True)},
    }


def _population_difference(a: Run, b: Run) -> str:
    """Why the two runs do not simulate the same citizens ('' if they do)."""
    ma, mb = a.manifest, b.manifest
    for key in ("seed", "citizens"):
        if ma.get(key) != mb.get(key):
            return f"different {key} ({ma.get(key)} vs {mb.get(key)})"
    pa, pb = ma.get("scenario", {}).get("population"), mb.get("scenario", {}).get("population")
    if pa != pb:
        return "different scenario population"
    return ""


def _attribute_difference(a: pl.DataFrame, b: pl.DataFrame) -> str:
    if a.height != b.height:
        return f"different citizen tables ({a.height} vs {b.height} rows)"
    for column in FIXED:
        if column in a.columns and column in b.columns and not a[column].equals(b[column]):
            return f"citizens differ in {column}"
    return ""


def _grade_order(run: Run) -> list[str] | None:
    from socialcredit.analysis.report import points_table

    found = points_table(run.manifest.get("scenario", {}))
    grades = found[1].get("grades") if found else None
    return [g["name"] for g in sorted(grades, key=lambda g: -g["min"])] if isinstance(grades, list) else None


def _value_columns(a: Run, b: Run) -> tuple[str, ...]:
    """The numeric outcomes to compare: the platform score where either run has a system writing it, every
    other scoring system's column, then points, income and the rest of ``VALUES``."""
    from socialcredit.analysis.report import points_table, score_systems

    systems = score_systems(a.manifest.get("scenario", {})) + score_systems(b.manifest.get("scenario", {}))
    columns = [s.column for s in systems]
    has_points = any(points_table(r.manifest.get("scenario", {})) for r in (a, b))
    out: list[str] = []
    for column in [*columns, *VALUES]:
        if column in out or (column == "score" and "score" not in columns) or (column == "points" and not has_points):
            continue
        out.append(column)
    return tuple(out)


def _num(value: Any) -> float | None:
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def _clean(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
