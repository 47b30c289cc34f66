"""Compare a run with the published figures of ``scenarios/data/china/targets.toml``.

Each ``[[target]]`` row names a measure by its key; ``MEASURES`` maps keys to
functions of a run that return the simulated value, or None when the run does
not simulate that quantity (no such column, no court list, ...). A row whose
key has no measure, or whose measure returns None, is "not simulated" and never
fails; an ``informative`` row is shown but never fails either.

Court-list rates are measured over the whole run: a run shorter than the
2-year listing term has not reached a steady list, so its on-list share and
removals ratio run low.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from socialcredit.analysis.runs import open_run
from socialcredit.api import Run
from socialcredit.errors import UserError
from socialcredit.population.china import provinces, target_rows

if TYPE_CHECKING:
    from socialcredit.scenario import Scenario

KINDS = ("absolute", "relative", "at_most", "informative")
YEAR_DAYS = 365.0


@dataclass(frozen=True)
class Target:
    """One row of targets.toml."""

    key: str
    label: str
    target: float
    tolerance: float
    kind: str  # absolute | relative | at_most | informative
    unit: str
    mark: str
    source: str
    note: str = ""

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Target:
        """Validate one ``[[target]]`` table."""
        try:
            t = cls(key=str(row["key"]), label=str(row["label"]), target=float(row["target"]),
                    tolerance=float(row["tolerance"]), kind=str(row["kind"]), unit=str(row["unit"]),
                    mark=str(row["mark"]), source=str(row["source"]), note=str(row.get("note", "")))
        except (KeyError, TypeError, ValueError) as exc:
            raise UserError(f"targets.toml: bad row {row.get('key', '?')!r}: {exc}") from None
        if t.kind not in KINDS:
            raise UserError(f"targets.toml: {t.key}: kind must be one of {', '.join(KINDS)} (got {t.kind!r})")
        return t


def targets() -> list[Target]:
    """Every target row, in file order."""
    return [Target.from_row(row) for row in target_rows()]


# -- reading a run ---------------------------------------------------------------


class RunData:
    """What the measures read from a run directory; columns are loaded once, on first use."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self._columns: dict[str, np.ndarray] = {}

    @cached_property
    def citizen_columns(self) -> set[str]:
        """Column names of citizens.parquet."""
        import pyarrow.parquet as pq

        return set(pq.read_schema(self.run.path / "citizens.parquet").names)

    def has(self, *names: str) -> bool:
        """Whether citizens.parquet has every one of these columns."""
        return all(name in self.citizen_columns for name in names)

    def column(self, name: str) -> np.ndarray:
        """One column of citizens.parquet as a numpy array (float64 for numbers)."""
        if name not in self._columns:
            import pyarrow.parquet as pq

            values = pq.read_table(self.run.path / "citizens.parquet", columns=[name]).column(0).to_numpy()
            self._columns[name] = values.astype(np.float64) if values.dtype != np.bool_ else values
        return self._columns[name]

    def flag(self, name: str) -> np.ndarray:
        """A citizens column as booleans."""
        return self.column(name).astype(bool)

    @cached_property
    def daily(self) -> Any:
        """daily.parquet (a polars DataFrame)."""
        return self.run.daily

    @property
    def metrics(self) -> dict[str, float | None]:
        """summary.json metrics."""
        return self.run.metrics

    @property
    def citizens(self) -> int:
        """Number of citizens."""
        return int(self.run.summary["citizens"])

    @property
    def days(self) -> int:
        """Days simulated."""
        return int(self.run.summary["days"])

    def plugin(self, section: str, kind: str) -> dict[str, Any] | None:
        """The resolved scenario table of the first plugin of ``kind`` in ``section``, if any."""
        tables = self.run.manifest.get("scenario", {}).get(section, {})
        if section in ("population", "graph"):
            return tables if tables.get("kind") == kind else None
        return next((t for t in tables.values() if isinstance(t, dict) and t.get("kind") == kind), None)

    def daily_total(self, name: str) -> float | None:
        """Sum of a daily column over the run, None if the run has no such column."""
        return float(self.daily[name].sum()) if name in self.daily.columns else None


Measure = Callable[[RunData], float | None]


def _mean_of(name: str) -> Measure:
    """Share of citizens with a true flag (or mean of a column)."""
    return lambda d: float(d.column(name).mean()) if d.has(name) else None


def _age_share(lo: int, hi: int) -> Measure:
    def measure(d: RunData) -> float | None:
        if not d.has("age"):
            return None
        age = d.column("age")
        return float(((age >= lo) & (age < hi)).mean())
    return measure


def _sex_ratio(d: RunData) -> float | None:
    if not d.has("female"):
        return None
    women = float(d.column("female").sum())
    return 100.0 * (len(d.column("female")) - women) / women if women else None


def gini(values: np.ndarray) -> float:
    """Gini coefficient of non-negative values (0 for an empty or all-zero array)."""
    x = np.sort(np.asarray(values, np.float64))
    total = x.sum()
    if len(x) == 0 or total <= 0:
        return 0.0
    ranks = np.arange(1, len(x) + 1)
    return float(2.0 * np.dot(ranks, x) / (len(x) * total) - (len(x) + 1) / len(x))


def _income(stat: Callable[[np.ndarray], float], urban: bool | None = None) -> Measure:
    """A statistic of initial income (income0: before run-time income losses), optionally by urban flag."""
    def measure(d: RunData) -> float | None:
        if not d.has("income0") or (urban is not None and not d.has("urban")):
            return None
        income = d.column("income0")
        if urban is not None:
            income = income[d.flag("urban") == urban]
        return float(stat(income)) if len(income) else None
    return measure


def _online_payment(d: RunData) -> float | None:
    """Payment-platform members among internet users (messaging-app members)."""
    if not d.has("messaging", "member"):
        return None
    online = d.flag("messaging")
    return float(d.flag("member")[online].mean()) if online.any() else None


def _macro_region(name: str) -> Measure:
    """Population share of one NBS macro-region (only for populations whose regions are the 31 provinces)."""
    def measure(d: RunData) -> float | None:
        if d.plugin("population", "china") is None or not d.has("region"):
            return None
        in_region = np.array([m == name for m in provinces().macro_region])
        return float(in_region[d.column("region").astype(np.intp)].mean())
    return measure


def _new_listings(d: RunData) -> float | None:
    listings = d.daily_total("listings")
    return listings / d.citizens * YEAR_DAYS / d.days if listings is not None else None


def _removals_per_listing(d: RunData) -> float | None:
    listings, repaid = d.daily_total("listings"), d.daily_total("removals_repaid")
    return repaid / listings if listings and repaid is not None else None


def _term_years(d: RunData) -> float | None:
    court = d.plugin("records", "court-list")
    return float(court["term_days"]) / YEAR_DAYS if court and "term_days" in court else None


def _listed_share(d: RunData) -> float | None:
    return d.metrics.get("listed_now_share")


def _members_ge_650(d: RunData) -> float | None:
    """Share of payment-platform members whose platform score is at least 650 (runs with a score)."""
    if d.metrics.get("p_mean") is None or not d.has("score", "member"):
        return None
    member = d.flag("member")
    return float((d.column("score")[member] >= 650).mean()) if member.any() else None


MEASURES: dict[str, Measure] = {
    "urban_share": _mean_of("urban"),
    "hukou_urban_share": _mean_of("hukou_urban"),
    "age_0_15": _age_share(0, 16),
    "age_16_59": _age_share(16, 60),
    "age_60_plus": _age_share(60, 1000),
    "sex_ratio": _sex_ratio,
    "minority_share": _mean_of("minority"),
    "income_mean": _income(np.mean),
    "income_median": _income(np.median),
    "income_urban_mean": _income(np.mean, urban=True),
    "income_rural_mean": _income(np.mean, urban=False),
    "income_gini": _income(gini),
    "internet_share": _mean_of("messaging"),
    "online_payment_share": _online_payment,
    "region_east": _macro_region("East"),
    "region_central": _macro_region("Central"),
    "region_west": _macro_region("West"),
    "region_northeast": _macro_region("Northeast"),
    "new_listings_per_capita": _new_listings,
    "removals_repaid_per_listing": _removals_per_listing,
    "list_term_years": _term_years,
    "listed_share": _listed_share,
    "score_ge_650_members": _members_ge_650,
}


# -- comparing ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One compared target: the simulated value (None: not simulated), its error and verdict."""

    target: Target
    value: float | None
    error: float | None  # simulated - target (absolute, at_most, informative) or simulated / target - 1 (relative)
    ok: bool | None  # None: not simulated or informative

    @property
    def status(self) -> str:
        """ok, FAIL, informative or not simulated."""
        if self.value is None:
            return "not simulated"
        if self.ok is None:
            return "informative"
        return "ok" if self.ok else "FAIL"

    def to_dict(self) -> dict[str, Any]:
        """Plain data for --json."""
        return {**asdict(self.target), "simulated": self.value, "error": self.error, "ok": self.ok,
                "status": self.status}


def compare(target: Target, value: float | None) -> Row:
    """Judge one simulated value against its target."""
    if value is None or not math.isfinite(value):
        return Row(target, None, None, None)
    if target.kind == "relative" and target.target:
        error = value / target.target - 1.0
        return Row(target, value, error, abs(error) <= target.tolerance + 1e-12)
    error = value - target.target
    if target.kind in ("absolute", "relative"):  # a relative row with target 0: compared absolutely
        return Row(target, value, error, abs(error) <= target.tolerance + 1e-12)
    if target.kind == "at_most":
        return Row(target, value, error, value <= target.target)
    return Row(target, value, error, None)


def calibrate_run(run: Run, measures: dict[str, Measure] | None = None) -> list[Row]:
    """Every target row compared with the run (rows without a measure are not simulated)."""
    data = RunData(run)
    table = MEASURES if measures is None else measures
    rows = []
    for t in targets():
        fn = table.get(t.key)
        rows.append(compare(t, fn(data) if fn is not None else None))
    return rows


def passed(rows: list[Row]) -> bool:
    """Whether every measured, non-informative row is within its tolerance."""
    return all(r.ok is not False for r in rows)


def load_scenario(scenario: str | Path | None = None, sets: list[str] | None = None, citizens: int = 200_000,
                  days: int = 365, seed: int = 1) -> Scenario:
    """The scenario to run (default ``china``) with ``--set`` overrides, checked before any work."""
    from socialcredit.engine.simulation import check_size, preflight
    from socialcredit.scenario import Scenario

    scn = Scenario.load(scenario or "china").with_sets(sets or [])
    check_size(citizens, days, seed)
    preflight(scn)
    return scn


def calibrate(scenario: str | Path | Scenario | None = None, *, run_dir: str | Path | None = None,
              citizens: int = 200_000, days: int = 365, seed: int = 1, sets: list[str] | None = None,
              out: str | Path | None = None) -> tuple[Run, list[Row]]:
    """Run ``scenario`` (kept in ``out`` if given), or open ``run_dir``, and compare it with the targets."""
    if run_dir is not None:
        run = open_run(run_dir)
    else:
        from socialcredit import api
        from socialcredit.scenario import Scenario

        scn = scenario if isinstance(scenario, Scenario) else load_scenario(scenario, sets, citizens, days, seed)
        run = api.run(scn, citizens=citizens, days=days, seed=seed, out=out)
    return run, calibrate_run(run)


# -- printing ----------------------------------------------------------------------


def fmt_value(value: float | None, unit: str) -> str:
    """A value in its unit: shares in %, money in CNY, people in millions."""
    if value is None:
        return "—"
    if unit == "share":
        return f"{100 * value:.2f} %"
    if unit == "per_capita_year":
        return f"{100 * value:.3f} %/yr"
    if unit == "cny":
        return f"¥{value:,.0f}"
    if unit == "people":
        return f"{value / 1e6:,.2f} M"
    if unit == "years":
        return f"{value:.2f} yr"
    return f"{value:.4g}"


def fmt_error(row: Row) -> str:
    """Error in the row's own terms: points for shares, % for relative rows."""
    if row.error is None:
        return "—"
    if row.target.kind == "relative":
        return f"{100 * row.error:+.1f} %"
    if row.target.unit in ("share", "per_capita_year"):
        return f"{100 * row.error:+.2f} pt"
    return f"{row.error:+.3g}"


def fmt_tolerance(t: Target) -> str:
    """The tolerance as written in calibration.md."""
    if t.kind == "informative":
        return "informative"
    if t.kind == "at_most":
        return f"≤ {fmt_value(t.target, t.unit)}"
    if t.kind == "relative":
        return f"±{100 * t.tolerance:.0f} %"
    if t.unit in ("share", "per_capita_year"):
        return f"±{100 * t.tolerance:g} pt"
    return f"±{t.tolerance:g}"


def to_json(run: Run, rows: list[Row]) -> str:
    """The comparison as JSON text."""
    return json.dumps({"run": str(run.path), "scenario": run.scenario, "citizens": run.summary["citizens"],
                       "days": run.summary["days"], "passed": passed(rows),
                       "rows": [r.to_dict() for r in rows]}, indent=2, allow_nan=False)
