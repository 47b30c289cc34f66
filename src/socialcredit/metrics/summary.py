"""Summary metrics of a finished run (SPEC 9.4) and the run's tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from socialcredit.metrics.fairness import count_ratio
from socialcredit.metrics.totals import Totals

if TYPE_CHECKING:
    from socialcredit.engine.simulation import Simulation


@dataclass
class Results:
    """What a finished simulation hands to the writer: metrics, timings, the simulation."""

    sim: Simulation
    metrics: dict[str, float | None]
    timings: dict[str, float] = field(default_factory=dict)

    @classmethod
    def from_simulation(cls, sim: Simulation) -> Results:
        """Compute the summary metrics of ``sim`` at its current day."""
        timings = dict(sim.timings)
        timings.update({f"stage_{k}_seconds": v for k, v in sim.plan.seconds.items()})
        return cls(sim=sim, metrics=summary_metrics(sim, sim.daily_rows), timings=timings)

    @property
    def daily(self) -> Any:
        """The daily table as a polars DataFrame."""
        import polars as pl

        return pl.DataFrame(self.sim.daily_rows, infer_schema_length=None)


METRICS_9_4 = (
    "p_mean", "p_sd", "p_share_below_550", "p_share_ge_650", "p_share_ge_700", "m_mean",
    "grade_share_AAAplus", "grade_share_AA", "grade_share_A", "grade_share_B", "grade_share_C", "grade_share_D",
    "listed_now_share", "listed_ever_share", "judgments_per_1000", "denied_trips_per_1000",
    "loans_denied_per_1000", "misattributed_per_1000", "shame_board_innocent_share", "unfriended_edge_share",
    "posts_first_30", "posts_last_30", "chilling_reduction", "di_listed_ever_minority",
    "di_p_below_600_minority", "di_m_below_960_urban", "income_loss_listed_ever", "citizen_days_per_s",
)


def has_primary_score(sim: Simulation) -> bool:
    """Whether some scoring system computes the citizens' platform score ``score``."""
    return any(p.kind == "reference-score" or getattr(p.config, "primary", False)
               for p in sim.plugins["scoring"].values())


def column(rows: list[dict[str, Any]], name: str) -> np.ndarray:
    """One column of the daily rows (missing values count as 0)."""
    return np.array([row.get(name) or 0 for row in rows], dtype=np.float64)


def grade_lows(sim: Simulation) -> np.ndarray | None:
    """Lower bounds of the points grades, highest first (None without a points system)."""
    points = sim.find("records", "points")
    return None if points is None else np.array([g.min for g in points.config.grades], np.int64)


def final_totals(sim: Simulation) -> Totals:
    """Per-block totals of the final state of ``sim`` (see ``metrics.totals``)."""
    return Totals.of(sim.citizens, sim.blocks.block_start, grade_lows(sim))


def summary_metrics(sim: Simulation, daily: list[dict[str, Any]], totals: Totals | None = None,
                    ) -> dict[str, float | None]:
    """Every metric of SPEC 9.4 (null where the scenario lacks the system it measures), plus grade shares.

    Whole-population figures come from ``totals`` (by default those of ``sim``'s citizens):
    a distributed run passes the totals its partitions computed.
    """
    t = final_totals(sim) if totals is None else totals
    n = sim.n
    out: dict[str, float | None] = {}

    def total(name: str) -> float:
        return float(column(daily, name).sum())

    def per_1000(value: float) -> float:
        return 1000.0 * value / n

    primary = has_primary_score(sim)
    def share(name: str) -> float:
        return t.count(name) / n if n else 0.0

    if primary:
        mean, sd = t.score_mean_sd()
        out.update(
            p_mean=mean,
            p_sd=sd,
            p_share_below_550=share("score_below_550"),
            p_share_ge_650=share("score_ge_650"),
            p_share_ge_700=share("score_ge_700"),
        )
    points = sim.find("records", "points")
    if points is not None:
        out["m_mean"] = t.count("points_sum") / n
        for g, c in zip(points.config.grades, t.band_counts(), strict=True):
            out[f"grade_share_{g.metric_key}"] = float(c) / n
    court = sim.find("records", "court-list")
    if court is not None:
        out["listed_now_share"] = share("listed_now")
        out["listed_ever_share"] = share("listed_ever")
        out["judgments_per_1000"] = per_1000(total("judgments"))
    trips, loans = ["trip_denied"], ["loan_application_denied"]
    for name, plugin in sim.plugins["consequences"].items():  # bans defined as services
        if plugin.kind == "service" and plugin.config.deny is not None:
            if plugin.config.context == "travel":
                trips.append(f"{name}_denied")
            elif plugin.config.context == "credit":
                loans.append(f"{name}_denied")
    out["denied_trips_per_1000"] = per_1000(sum(total(c) for c in trips))
    out["loans_denied_per_1000"] = per_1000(sum(total(c) for c in loans))
    camera_kinds = [k for k, fm in zip(sim.kinds.names, sim.kinds.false_match, strict=True) if fm > 0]
    shown = sum(total(f"{k}_observed") for k in camera_kinds)
    wrong = sum(total(f"{k}_misattributed") for k in camera_kinds)
    out["misattributed_per_1000"] = per_1000(wrong)
    out["shame_board_innocent_share"] = wrong / shown if shown else None
    unfriend = sim.find("consequences", "unfriend")
    if unfriend is not None:
        out["unfriended_edge_share"] = unfriend.cut_total / sim.graph.edges if sim.graph.edges else None
    chill = sim.find("consequences", "chill")
    if chill is not None and daily and chill.config.speech_event in daily[0]:
        posts = column(daily, chill.config.speech_event)
        first = per_1000(float(posts[:30].sum()))
        last = per_1000(float(posts[-30:].sum()))
        out["posts_first_30"] = first
        out["posts_last_30"] = last
        out["chilling_reduction"] = 1.0 - last / first if first else None
    minority, urban = t.count("minority"), t.count("urban")
    if court is not None:
        out["di_listed_ever_minority"] = count_ratio(t.count("listed_ever_minority"), t.count("listed_ever"),
                                                     minority, n)
    if primary:
        out["di_p_below_600_minority"] = count_ratio(t.count("score_below_600_minority"),
                                                     t.count("score_below_600"), minority, n)
    if points is not None:
        out["di_m_below_960_urban"] = count_ratio(t.count("points_below_960_urban"), t.count("points_below_960"),
                                                  urban, n)
    if court is not None:
        out["income_loss_listed_ever"] = t.income_loss_mean()
    seconds = sim.timings.get("simulation_seconds", 0.0)
    simulated = sim.timings.get("days_simulated", sim.day)
    out["citizen_days_per_s"] = n * simulated / seconds if seconds > 0 else None
    for name in METRICS_9_4:  # the same names for every scenario; null where a system is absent
        out.setdefault(name, None)
    return out


def clean(metrics: dict[str, Any]) -> dict[str, float | None]:
    """Metrics with NaN/inf turned into None (JSON null)."""
    return {k: (None if v is None or not np.isfinite(v) else float(v)) for k, v in metrics.items()}
