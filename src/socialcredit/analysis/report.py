"""The run report: one self-contained HTML file with the run's charts.

Each chart is built by one function from the run's tables; a chart whose
columns are absent is skipped with a note saying which.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from socialcredit.analysis import theme as th
from socialcredit.analysis.page import Chart, format_number, render, write_text_atomic
from socialcredit.analysis.runs import open_run
from socialcredit.analysis.theme import values
from socialcredit.api import Run

#: Headline tiles: metric, label, format kind for ``format_number``.
HEADLINE = (
    ("p_mean", "mean platform score", ""),
    ("p_share_below_550", "score below 550", "pct"),
    ("listed_now_share", "on the court list at the end", "pct"),
    ("listed_ever_share", "ever listed", "pct"),
    ("denied_trips_per_1000", "trips denied per 1,000 citizens", ""),
    ("misattributed_per_1000", "penalties given to innocents per 1,000", ""),
    ("shame_board_innocent_share", "innocent share of the shame board", "pct"),
    ("chilling_reduction", "fall in critical posts, first vs last 30 days", "pct"),
    ("di_listed_ever_minority", "listed-ever rate, minority / majority", "ratio"),
    ("income_loss_listed_ever", "mean income loss of the ever listed", "pct"),
)
#: Disparate impact: the outcomes examined (label, needed column, how to compute from citizens).
SCORE_CUT = 600
POINTS_CUT = 960
FOUR_FIFTHS = 0.8
UPPER = 1.25
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MA_DAYS = 7


def write_report(run_dir: str | Path, out: str | Path | None = None) -> Path:
    """Write the HTML report of a run (default ``<run>/report.html``) and return its path."""
    run = open_run(run_dir)
    target = Path(out) if out is not None else run.path / "report.html"
    html = build_report(run)
    write_text_atomic(target, html)
    return target


def build_report(run: Run) -> str:
    """The report of ``run`` as one HTML string."""
    data = RunData(run)
    groups = [
        {"title": "Scores and grades", "lede": panel_lede(data), "charts": [
            _guard(score_distribution, data), _guard(grade_shares, data)]},
        {"title": "The court list and its sanctions", "lede": "", "charts": [
            _guard(list_size, data), _guard(denials, data)]},
        {"title": "Disparate impact", "lede": (
            "Rates of three adverse outcomes by group, computed over all citizens at the end of the run. "
            "Ratios are always group / reference group: minority / majority, urban / rural, income quintile / "
            "richest quintile (Q5, by initial income), region / all other regions. Under the four-fifths rule "
            f"a ratio outside {FOUR_FIFTHS} – {UPPER} signals disparate impact."),
         "charts": _guard_many(disparate_impact, data)},
        {"title": "Side effects", "lede": "", "charts": [
            _guard(misattribution, data), _guard(cascade, data), _guard(chilling, data),
            _guard(network, data)]},
    ]
    return render("report.html.j2", title=f"socialcredit report: {run.scenario} ({run.path.name})",
                  run=run_facts(run), headline=headline(run.metrics), groups=groups, metrics=run.metrics)


# -- data access -------------------------------------------------------------


class RunData:
    """The run's tables, read on demand, only the columns needed."""

    def __init__(self, run: Run) -> None:
        self.run = run
        self._frames: dict[tuple[str, tuple[str, ...]], pl.DataFrame] = {}

    @cached_property
    def schemas(self) -> dict[str, list[str]]:
        out = {}
        for name in ("citizens", "daily", "scores_monthly", "events", "lists"):
            path = self.run.path / f"{name}.parquet"
            out[name] = list(pl.read_parquet_schema(path)) if path.is_file() else []
        return out

    def missing(self, table: str, *columns: str) -> str:
        """'' if ``table`` has every column, else a note naming what is absent."""
        absent = [c for c in columns if c not in self.schemas.get(table, [])]
        if not absent:
            return ""
        if not self.schemas.get(table):
            return f"this run has no {table}.parquet."
        return f"{table}.parquet has no column{'s' if len(absent) > 1 else ''} {', '.join(absent)}."

    def frame(self, table: str, *columns: str) -> pl.DataFrame:
        key = (table, columns)
        if key not in self._frames:
            self._frames[key] = pl.read_parquet(self.run.path / f"{table}.parquet", columns=list(columns))
        return self._frames[key]

    def has(self, table: str, column: str) -> bool:
        return column in self.schemas.get(table, [])

    @property
    def scenario(self) -> dict[str, Any]:
        return self.run.manifest.get("scenario", {})

    def grades(self) -> list[dict[str, Any]]:
        """Grade bands from the manifest's scenario, highest first ([] if none)."""
        grades = self.scenario.get("records", {}).get("points", {}).get("grades")
        if not isinstance(grades, list):
            return []
        return sorted(grades, key=lambda g: -g["min"])


class _SkipError(Exception):
    """A chart that cannot be drawn from this run."""


def _need(data: RunData, table: str, *columns: str) -> None:
    note = data.missing(table, *columns)
    if note:
        raise _SkipError(note)


def _guard(build: Callable[[RunData], Chart], data: RunData) -> Chart:
    try:
        return build(data)
    except _SkipError as skip:
        title, caption, wide = CHARTS[build.__name__]
        return Chart(id=build.__name__.replace("_", "-"), title=title, caption=caption, note=str(skip), wide=wide)


def _guard_many(build: Callable[[RunData], list[Chart]], data: RunData) -> list[Chart]:
    try:
        return build(data)
    except _SkipError as skip:
        title, caption, wide = CHARTS[build.__name__]
        return [Chart(id=build.__name__.replace("_", "-"), title=title, caption=caption, note=str(skip), wide=wide)]


#: Title, caption and width of every chart (also used for the note when it is skipped).
CHARTS: dict[str, tuple[str, str, bool]] = {
    "score_distribution": (
        "Platform score distribution over time",
        "Quantiles of the platform score (350–950) of the panel citizens on each scoring day, "
        "with the first and last scoring days' histograms on the right.",
        True),
    "grade_shares": (
        "Municipal grades over time and at the end",
        "Share of panel citizens in each municipal points grade on each scoring day (left) "
        "and of all citizens at the end of the run (right).",
        True),
    "list_size": (
        "Court list size",
        "Citizens on the court list of dishonest persons each day (top), "
        "with the daily entries and exits, repaid or term ended (bottom).",
        False),
    "denials": (
        "Denied trips and loans",
        f"Flight and high-speed-rail trips denied to listed citizens and loan applications refused each day, "
        f"with a {MA_DAYS}-day moving average.",
        False),
    "disparate_impact": (
        "Disparate impact: outcome rates by group",
        "Share of each group that was ever listed, has a platform score below 600 "
        "or municipal points below 960.",
        True),
    "disparate_ratios": (
        "Disparate impact: ratios to the reference group",
        "Each dot is a group's outcome rate divided by its reference group's rate "
        "(minority / majority, urban / rural, Qk / Q5, region / other regions); "
        "the shaded band is 0.8 – 1.25.",
        True),
    "misattribution": (
        "Misattribution by cameras",
        "Jaywalks detected by cameras each day and those whose penalty went to an innocent citizen, "
        "with the running innocent share of the shame board.",
        False),
    "cascade": (
        "Cascade: income lost after listing",
        "Distribution of income loss, 1 − income / initial income, for citizens ever listed "
        "and those never listed.",
        False),
    "chilling": (
        "Chilling of speech",
        f"True critical posts written each day across the population, with a {MA_DAYS}-day moving average.",
        False),
    "network": (
        "Network fragmentation",
        "Friendships cut on each scoring day because one end was listed (left) and the share of each "
        "citizen's friendships still active, listed versus not listed citizens (right).",
        False),
}


def _chart(name: str, figure: Any, *, height: int = 360, note: str = "", table: dict[str, Any] | None = None,
           chart_id: str | None = None) -> Chart:
    title, caption, wide = CHARTS[name]
    return Chart(id=chart_id or name.replace("_", "-"), title=title, caption=caption, figure=figure, note=note,
                 wide=wide, height=height, table=table)


# -- charts ------------------------------------------------------------------


def score_distribution(data: RunData) -> Chart:
    """Quantile bands of the panel's platform score per scoring day; first vs last histogram."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    _need(data, "scores_monthly", "day", "score")
    frame = data.frame("scores_monthly", "day", "score")
    if frame.is_empty():
        raise _SkipError("scores_monthly.parquet is empty (no scoring day in the run).")
    q = (frame.group_by("day").agg(
        *[pl.col("score").quantile(p, interpolation="linear").alias(f"q{round(p * 100)}") for p in QUANTILES],
        pl.col("score").mean().alias("mean"),
    ).sort("day"))
    days = values(q["day"])
    fig = make_subplots(rows=1, cols=2, column_widths=[0.66, 0.34], horizontal_spacing=0.08,
                        subplot_titles=("quantiles per scoring day", "histogram, first and last scoring day"))
    band = [("q5", "q95", 0.13, "5th – 95th percentile"), ("q25", "q75", 0.28, "25th – 75th percentile")]
    for lo, hi, alpha, name in band:
        fig.add_trace(go.Scatter(x=days, y=values(q[hi]), mode="lines", line={"width": 0}, showlegend=False,
                                 hoverinfo="skip", legendgroup=name), 1, 1)
        fig.add_trace(go.Scatter(x=days, y=values(q[lo]), mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor=th.rgba(th.BLUE, alpha), name=name, legendgroup=name,
                                 hoverinfo="skip"), 1, 1)
    fig.add_trace(go.Scatter(x=days, y=values(q["q50"]), mode="lines+markers", name="median",
                             line={"color": th.BLUE, "width": 2.5}, marker={"size": 5}), 1, 1)
    fig.add_trace(go.Scatter(x=days, y=values(q["mean"]), mode="lines", name="mean",
                             line={"color": th.INK, "width": 1.5, "dash": "dot"}), 1, 1)
    cut = data.scenario.get("consequences", {}).get("loans", {}).get("min_score")
    if isinstance(cut, int | float):
        fig.add_hline(y=cut, line={"color": th.RED, "width": 1, "dash": "dash"}, row=1, col=1,
                      annotation_text=f"loan threshold {cut:g}", annotation_position="bottom right",
                      annotation_font={"size": 11, "color": th.RED})
    first, last = days[0], days[-1]
    edges = np.arange(350, 951, 20)
    for day, colour, name in ((first, th.GREY, f"day {first}"), (last, th.BLUE, f"day {last}")):
        scores = frame.filter(pl.col("day") == day)["score"].to_numpy()
        counts, _ = np.histogram(scores, bins=edges)
        share = counts / max(len(scores), 1) * 100
        fig.add_trace(go.Bar(x=values(edges[:-1] + 10), y=values(share.round(3)), name=name, width=18,
                             marker={"color": th.rgba(colour, 0.55 if colour == th.GREY else 0.75)},
                             hovertemplate="score %{x}±10: %{y:.1f}%<extra>" + name + "</extra>"), 1, 2)
    fig.update_layout(**th.layout(top=70, barmode="overlay", hovermode="x unified"))
    th.style_axes(fig)
    fig.update_xaxes(title_text="day", row=1, col=1)
    fig.update_yaxes(title_text="platform score", range=[340, 960], row=1, col=1)
    fig.update_xaxes(title_text="platform score", range=[340, 960], row=1, col=2)
    fig.update_yaxes(title_text="% of panel", row=1, col=2)
    n = frame.filter(pl.col("day") == last).height
    return _chart("score_distribution", fig, height=400,
                  note=f"Panel of {n:,} citizens (scores_monthly.parquet); {len(days)} scoring days.")


def grade_shares(data: RunData) -> Chart:
    """Stacked grade shares of the panel over time and of all citizens at the end."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    grades = data.grades()
    if not grades:
        raise _SkipError("the run's scenario has no municipal points grades (records.points.grades).")
    _need(data, "scores_monthly", "day", "points")
    frame = data.frame("scores_monthly", "day", "points")
    if frame.is_empty():
        raise _SkipError("scores_monthly.parquet is empty (no scoring day in the run).")
    names = [g["name"] for g in grades]
    colours = th.grade_colours(len(names))
    labelled = frame.with_columns(grade=_grade_expr(pl.col("points"), grades))
    shares = (labelled.group_by("day", "grade").len()
              .with_columns(share=pl.col("len") / pl.col("len").sum().over("day") * 100).sort("day"))
    days = sorted(frame["day"].unique().to_list())
    fig = make_subplots(rows=1, cols=2, column_widths=[0.7, 0.3], horizontal_spacing=0.1,
                        subplot_titles=("panel, each scoring day", "all citizens, end of run"))
    for name, colour in zip(names, colours, strict=True):
        sub = shares.filter(pl.col("grade") == name)
        by_day = dict(zip(sub["day"].to_list(), sub["share"].to_list(), strict=True))
        fig.add_trace(go.Scatter(x=days, y=[round(by_day.get(d, 0.0), 4) for d in days], name=name,
                                 stackgroup="grades", mode="lines", line={"width": 0.5, "color": colour},
                                 fillcolor=th.rgba(colour, 0.85), legendgroup=name,
                                 hovertemplate="%{y:.2f}%<extra>" + name + "</extra>"), 1, 1)
    if data.has("citizens", "points"):
        end = data.frame("citizens", "points").with_columns(grade=_grade_expr(pl.col("points"), grades))
        counts = dict(end.group_by("grade").len().iter_rows())
        total = max(end.height, 1)
        final = [counts.get(name, 0) / total * 100 for name in names]
        fig.add_trace(go.Bar(x=[round(v, 4) for v in final], y=names, orientation="h", showlegend=False,
                             marker={"color": colours}, text=[f"{v:.1f}%" for v in final], textposition="outside",
                             cliponaxis=False, hovertemplate="%{y}: %{x:.2f}%<extra></extra>"), 1, 2)
    fig.update_layout(**th.layout(top=70, hovermode="x unified"))
    th.style_axes(fig)
    fig.update_xaxes(title_text="day", row=1, col=1)
    fig.update_yaxes(title_text="% of panel", range=[0, 100], row=1, col=1)
    fig.update_xaxes(title_text="% of citizens", row=1, col=2, rangemode="tozero")
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    bands = ", ".join(f"{g['name']} ≥ {g['min']}" for g in grades)
    return _chart("grade_shares", fig, height=380, note=f"Grade bands from the scenario: {bands}.")


def _grade_expr(points: pl.Expr, grades: list[dict[str, Any]]) -> pl.Expr:
    expr = pl.when(points >= grades[0]["min"]).then(pl.lit(grades[0]["name"]))
    for g in grades[1:]:
        expr = expr.when(points >= g["min"]).then(pl.lit(g["name"]))
    return expr.otherwise(pl.lit(grades[-1]["name"]))


def list_size(data: RunData) -> Chart:
    """Listed citizens per day, entries and exits per day."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    _need(data, "daily", "day", "listed_now")
    cols = ["day", "listed_now"] + [c for c in ("listings", "removals_repaid", "removals_term")
                                    if data.has("daily", c)]
    daily = data.frame("daily", *cols)
    days = values(daily["day"])
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=days, y=values(daily["listed_now"]), name="on the list", mode="lines",
                             line={"color": th.BLUE, "width": 2}, fill="tozeroy",
                             fillcolor=th.rgba(th.BLUE, 0.1)), 1, 1)
    if "listings" in daily.columns:
        fig.add_trace(go.Bar(x=days, y=values(daily["listings"]), name="entries",
                             marker={"color": th.RED, "line": {"width": 0}}), 2, 1)
    for column, name, colour in (("removals_repaid", "exits: repaid", th.TEAL),
                                 ("removals_term", "exits: term ended", th.AMBER)):
        if column in daily.columns:
            fig.add_trace(go.Bar(x=days, y=values(-daily[column]), name=name,
                                 marker={"color": colour, "line": {"width": 0}},
                                 customdata=values(daily[column]),
                                 hovertemplate="%{customdata}<extra>" + name + "</extra>"), 2, 1)
    fig.update_layout(**th.layout(barmode="relative", hovermode="x unified", bargap=0))
    th.style_axes(fig)
    fig.update_yaxes(title_text="citizens listed", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="per day (exits < 0)", row=2, col=1)
    fig.update_xaxes(title_text="day", row=2, col=1)
    last = daily["listed_now"][-1] if daily.height else 0
    entries = int(daily["listings"].sum()) if "listings" in daily.columns else None
    note = f"{last:,} on the list on the last day" + (f"; {entries:,} entries in all." if entries is not None
                                                      else ".")
    return _chart("list_size", fig, height=420, note=note)


def denials(data: RunData) -> Chart:
    """Denied trips and refused loans per day with a moving average."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    series = [(c, label, colour) for c, label, colour in (
        ("trip_denied", "trips denied", th.RED), ("loan_application_denied", "loans refused", th.PURPLE))
        if data.has("daily", c)]
    if not series:
        raise _SkipError("daily.parquet has no columns trip_denied, loan_application_denied.")
    _need(data, "daily", "day")
    daily = data.frame("daily", "day", *[c for c, _, _ in series])
    days = values(daily["day"])
    fig = make_subplots(rows=len(series), cols=1, shared_xaxes=True, vertical_spacing=0.12,
                        subplot_titles=[f"{label}: per day (bars) and {MA_DAYS}-day mean (line)"
                                        for _, label, _ in series])
    for row, (column, label, colour) in enumerate(series, start=1):
        fig.add_trace(go.Bar(x=days, y=values(daily[column]), name=f"{label} per day",
                             marker={"color": th.rgba(colour, 0.35), "line": {"width": 0}}), row, 1)
        fig.add_trace(go.Scatter(x=days, y=values(_moving_average(daily[column])), mode="lines",
                                 name=f"{label}, {MA_DAYS}-day mean", line={"color": colour, "width": 2}), row, 1)
        fig.update_yaxes(title_text="per day", rangemode="tozero", row=row, col=1)
    fig.update_layout(**th.layout(top=36, hovermode="x unified", bargap=0, showlegend=False))
    th.style_axes(fig)
    fig.update_xaxes(title_text="day", row=len(series), col=1)
    totals = "; ".join(f"{label}: {int(daily[c].sum()):,} in all" for c, label, _ in series)
    return _chart("denials", fig, height=420, note=totals + ".")


def _moving_average(series: pl.Series) -> pl.Series:
    return series.cast(pl.Float64).rolling_mean(window_size=MA_DAYS, min_samples=1).round(3)


@dataclass
class _Group:
    family: str
    name: str
    mask: np.ndarray
    ref_name: str
    ref: np.ndarray


def _groups(cz: pl.DataFrame) -> list[_Group]:
    groups: list[_Group] = []
    if "minority" in cz.columns:
        m = cz["minority"].to_numpy()
        groups.append(_Group("minority", "minority", m, "majority", ~m))
    if "urban" in cz.columns:
        u = cz["urban"].to_numpy()
        groups.append(_Group("urban", "urban", u, "rural", ~u))
    if "income0" in cz.columns and cz.height >= 5:
        q = _quintile(cz["income0"].to_numpy())
        top = q == 4
        groups += [_Group("income quintile", f"Q{k + 1}", q == k, "Q5", top) for k in range(4)]
    if "region" in cz.columns:
        r = cz["region"].to_numpy()
        groups += [_Group("region", f"region {k}", r == k, "other regions", r != k) for k in np.unique(r)]
    return groups


def _quintile(income: np.ndarray) -> np.ndarray:
    """0 (poorest fifth) .. 4 (richest fifth), by rank so that ties cannot empty a quintile."""
    order = np.argsort(income, kind="stable")
    q = np.empty(len(income), dtype=np.int8)
    q[order] = (np.arange(len(income)) * 5 // len(income)).astype(np.int8)
    return q


def _outcomes(data: RunData) -> list[tuple[str, str]]:
    return [(key, label) for key, label, column in (
        ("listed_ever", "ever listed", "listed_ever"),
        ("score_low", f"score < {SCORE_CUT}", "score"),
        ("points_low", f"points < {POINTS_CUT}", "points"),
    ) if data.has("citizens", column)]


def _rate(outcome: np.ndarray, mask: np.ndarray) -> float | None:
    size = int(np.count_nonzero(mask))
    return float(np.count_nonzero(outcome & mask)) / size if size else None


def disparate_impact(data: RunData) -> list[Chart]:
    """Two charts: outcome rates by group, and ratios group / reference group with 0.8 and 1.25 marked."""
    outcomes = _outcomes(data)
    if not outcomes:
        raise _SkipError("citizens.parquet has none of the columns listed_ever, score, points.")
    cols = [c for c in ("minority", "urban", "income0", "region", "listed_ever", "score", "points")
            if data.has("citizens", c)]
    cz = data.frame("citizens", *cols)
    flags = {"listed_ever": cz["listed_ever"].to_numpy() if "listed_ever" in cz.columns else None,
             "score_low": cz["score"].to_numpy() < SCORE_CUT if "score" in cz.columns else None,
             "points_low": cz["points"].to_numpy() < POINTS_CUT if "points" in cz.columns else None}
    groups = _groups(cz)
    if not groups:
        raise _SkipError("citizens.parquet has none of the columns minority, urban, income0, region.")
    ratios = {key: [_ratio(flags[key], g) for g in groups] for key, _ in outcomes}
    labels = [f"{g.name} / {g.ref_name}" for g in groups]
    table_rows = []
    for i, g in enumerate(groups):
        row = [labels[i], f"{int(np.count_nonzero(g.mask)):,}"]
        for key, _ in outcomes:
            rate, r = _rate(flags[key], g.mask), ratios[key][i]
            text = "n/a" if rate is None else f"{rate:.2%} ({'n/a' if r is None else f'{r:.2f}'})"
            row.append(("!" if _flagged(r) else "") + text)
        table_rows.append(row)
    table = {"summary": "Rates and ratios as a table (flagged: outside 0.8 – 1.25)", "open": False,
             "header": ["group / reference", "citizens in group"] + [f"{label}: rate (ratio)"
                                                                     for _, label in outcomes],
             "rows": table_rows}
    return [
        _chart("disparate_impact", _rates_figure(groups, outcomes, flags), height=340,
               note="Darker bars: the group; lighter bars: its reference group (majority, rural, Q5)."),
        _chart("disparate_ratios", _ratios_figure(labels, outcomes, ratios), height=max(420, 130 + 19 * len(labels)),
               table=table, note="Red dots lie outside 0.8 – 1.25; a hollow triangle at the left edge is a ratio "
                                 "of 0. Small groups (a region of a small run) give noisy ratios."),
    ]


def _ratio(outcome: np.ndarray, group: _Group) -> float | None:
    inside, ref = _rate(outcome, group.mask), _rate(outcome, group.ref)
    return inside / ref if inside is not None and ref else None


def _flagged(r: float | None) -> bool:
    return r is not None and (r < FOUR_FIFTHS or r > UPPER)


def _rates_figure(groups: list[_Group], outcomes: list[tuple[str, str]], flags: dict[str, Any]) -> Any:
    """Horizontal bars: each outcome's rate in the two-sided groups and the income quintiles."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    bars: list[tuple[str, str, np.ndarray]] = []  # regions only as ratios: 31 bars per outcome do not read
    for g in groups:
        if g.family in ("minority", "urban"):
            bars += [(g.family, g.name, g.mask), (g.family, g.ref_name, g.ref)]
        elif g.family == "income quintile":
            bars.append((g.family, g.name, g.mask))
    quintiles = [g for g in groups if g.family == "income quintile"]
    if quintiles:
        bars.append(("income quintile", "Q5", quintiles[0].ref))
    colour = {"minority": th.RED, "urban": th.TEAL, "income quintile": th.AMBER}
    reference = ("majority", "rural", "Q5")
    names = [("income " if f == "income quintile" else "") + n for f, n, _ in bars]
    fig = make_subplots(rows=1, cols=len(outcomes), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[label for _, label in outcomes])
    for col, (key, _label) in enumerate(outcomes, start=1):
        rates = [_rate(flags[key], mask) for _, _, mask in bars]
        pct = [None if r is None else round(r * 100, 4) for r in rates]
        fig.add_trace(go.Bar(x=pct, y=names, orientation="h", showlegend=False,
                             marker={"color": [th.rgba(colour[f], 0.4 if n in reference else 0.9)
                                               for f, n, _ in bars]},
                             text=[None if v is None else f"{v:.1f}%" for v in pct], textposition="outside",
                             cliponaxis=False, textfont={"size": 10, "color": th.MUTED},
                             hovertemplate="%{y}: %{x:.2f}%<extra></extra>"), 1, col)
        top = max((v for v in pct if v is not None), default=1.0)
        fig.update_xaxes(title_text="% of group", range=[0, top * 1.22], row=1, col=col)
    fig.update_layout(**th.layout(top=36, showlegend=False, bargap=0.25))
    th.style_axes(fig)
    fig.update_yaxes(autorange="reversed", tickfont={"size": 11})
    return fig


def _ratios_figure(labels: list[str], outcomes: list[tuple[str, str]],
                   ratios: dict[str, list[float | None]]) -> Any:
    """Dots on a log scale: every group's ratio to its reference, 0.8 and 1.25 marked."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    present = [r for rs in ratios.values() for r in rs if r]
    lo = min([0.5, *present]) / 1.25
    hi = max([2.0, *present]) * 1.25
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 1, 1.25, 2, 5, 10, 20, 50, 100) if lo <= t <= hi]
    fig = make_subplots(rows=1, cols=len(outcomes), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[label for _, label in outcomes])
    for col, (key, _label) in enumerate(outcomes, start=1):
        rs = ratios[key]
        shown = [lo * 1.05 if r == 0 else r for r in rs]
        fig.add_trace(go.Scatter(
            x=[None if r is None else round(r, 4) for r in shown], y=labels, mode="markers", showlegend=False,
            customdata=[None if r is None else round(r, 3) for r in rs],
            marker={"color": [th.RED if _flagged(r) else th.BLUE for r in rs], "size": 8,
                    "symbol": ["triangle-left-open" if r == 0 else "circle" for r in rs],
                    "line": {"width": 1.5, "color": [th.RED if _flagged(r) else th.BLUE for r in rs]}},
            hovertemplate="%{y}: %{customdata}<extra></extra>"), 1, col)
        # after the trace: plotly skips shapes on subplots that are still empty
        fig.add_vrect(x0=FOUR_FIFTHS, x1=UPPER, fillcolor=th.rgba(th.TEAL, 0.12), line_width=0, layer="below",
                      row=1, col=col)
        for x in (FOUR_FIFTHS, UPPER):
            fig.add_vline(x=x, row=1, col=col, layer="below", line={"color": th.TEAL, "width": 1, "dash": "dash"})
        fig.add_vline(x=1.0, row=1, col=col, layer="below", line={"color": th.GREY, "width": 1})
        fig.update_xaxes(type="log", range=[np.log10(lo), np.log10(hi)], tickvals=ticks,
                         ticktext=[f"{t:g}" for t in ticks], title_text="group / reference (log scale)",
                         row=1, col=col)
    fig.update_layout(**th.layout(top=36))
    th.style_axes(fig)
    fig.update_xaxes(tickfont={"size": 10})
    fig.update_yaxes(autorange="reversed", tickfont={"size": 11})
    return fig


def misattribution(data: RunData) -> Chart:
    """Camera detections vs misattributions per day and the running innocent share."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    kinds = [c[: -len("_misattributed")] for c in data.schemas.get("daily", [])
             if c.endswith("_misattributed") and data.has("daily", c[: -len("_misattributed")] + "_observed")]
    if not kinds:
        raise _SkipError("daily.parquet has no columns jaywalk_observed, jaywalk_misattributed.")
    _need(data, "daily", "day")
    kind = "jaywalk" if "jaywalk" in kinds else kinds[0]
    daily = data.frame("daily", "day", f"{kind}_observed", f"{kind}_misattributed")
    days = values(daily["day"])
    observed, wrong = daily[f"{kind}_observed"], daily[f"{kind}_misattributed"]
    cum_obs, cum_wrong = observed.cum_sum().cast(pl.Float64), wrong.cum_sum().cast(pl.Float64)
    share = (cum_wrong / cum_obs * 100).fill_nan(None).round(4)
    label = kind.replace("_", " ")
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, vertical_spacing=0.08, row_heights=[0.5, 0.5],
                        specs=[[{}], [{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=days, y=values(observed), name="detected",
                         marker={"color": th.rgba(th.BLUE, 0.55), "line": {"width": 0}}), 1, 1)
    fig.add_trace(go.Bar(x=days, y=values(wrong), name="pinned on an innocent",
                         marker={"color": th.rgba(th.RED, 0.75), "line": {"width": 0}}), 2, 1)
    fig.add_trace(go.Scatter(x=days, y=values(share), name="innocent share so far", mode="lines",
                             line={"color": th.INK, "width": 2}), 2, 1, secondary_y=True)
    fig.update_layout(**th.layout(hovermode="x unified", bargap=0))
    th.style_axes(fig)
    fig.update_yaxes(title_text="detected / day", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="innocents / day", rangemode="tozero", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="innocent share", rangemode="tozero", row=2, col=1, secondary_y=True,
                     showgrid=False, ticksuffix="%", tickformat=".1f", nticks=4)
    fig.update_xaxes(title_text="day", row=2, col=1)
    total_obs, total_wrong = int(observed.sum()), int(wrong.sum())
    note = (f"{total_wrong:,} of {total_obs:,} detected {label}s were pinned on an innocent "
            f"({total_wrong / total_obs:.2%})." if total_obs else "No detections.")
    return _chart("misattribution", fig, height=420, note=note)


def cascade(data: RunData) -> Chart:
    """Histogram of income loss (1 − income / income0): ever listed vs never listed."""
    import plotly.graph_objects as go

    _need(data, "citizens", "income", "income0", "listed_ever")
    cz = data.frame("citizens", "income", "income0", "listed_ever")
    loss = (1.0 - cz["income"].to_numpy().astype(np.float64) / cz["income0"].to_numpy()) * 100
    listed = cz["listed_ever"].to_numpy()
    step = 2.5
    top = max(float(np.nanmax(loss)) if len(loss) else 0.0, 10.0)
    edges = np.arange(-step / 2, top + step, step)
    centres = (edges[:-1] + step / 2).round(2)
    fig = go.Figure()
    notes = []
    for mask, name, colour in ((listed, "ever listed", th.RED), (~listed, "never listed", th.GREY)):
        group = loss[mask]
        counts, _ = np.histogram(np.clip(group, edges[0], edges[-1] - 1e-9), bins=edges)
        share = counts / max(len(group), 1) * 100
        fig.add_trace(go.Bar(x=values(centres), y=values(share.round(4)), name=f"{name} ({len(group):,})",
                             marker={"color": th.rgba(colour, 0.8), "line": {"width": 0}},
                             hovertemplate="loss ≈ %{x}%: %{y:.2f}% of group<extra>" + name + "</extra>"))
        if len(group):
            notes.append(f"{name}: mean loss {group.mean():.2f}%, {np.mean(group > 0.01):.1%} lost income")
    fig.update_layout(**th.layout(barmode="group", bargap=0.2))
    th.style_axes(fig)
    fig.update_xaxes(title_text=f"income lost since day 0 (%), bins of {step}%")
    fig.update_yaxes(title_text="% of group", rangemode="tozero")
    return _chart("cascade", fig, height=380, note="; ".join(notes) + ".")


def chilling(data: RunData) -> Chart:
    """Critical posts per day with a moving average."""
    import plotly.graph_objects as go

    _need(data, "daily", "day", "critical_post")
    daily = data.frame("daily", "day", "critical_post")
    days = values(daily["day"])
    fig = go.Figure()
    fig.add_trace(go.Bar(x=days, y=values(daily["critical_post"]), name="critical posts per day",
                         marker={"color": th.rgba(th.PURPLE, 0.3), "line": {"width": 0}}))
    fig.add_trace(go.Scatter(x=days, y=values(_moving_average(daily["critical_post"])), mode="lines",
                             name=f"{MA_DAYS}-day mean", line={"color": th.PURPLE, "width": 2.5}))
    fig.update_layout(**th.layout(hovermode="x unified", bargap=0))
    th.style_axes(fig)
    fig.update_xaxes(title_text="day")
    fig.update_yaxes(title_text="posts per day", rangemode="tozero")
    reduction = data.run.metrics.get("chilling_reduction")
    note = (f"Posts fell by {reduction:.1%} from the first to the last 30 days (chilling_reduction)."
            if isinstance(reduction, int | float) else "")
    return _chart("chilling", fig, height=380, note=note)


def network(data: RunData) -> Chart:
    """Edges cut per scoring day; share of friendships still active, listed vs not."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    _need(data, "daily", "day", "edges_cut")
    _need(data, "citizens", "degree", "active_degree", "listed")
    daily = data.frame("daily", "day", "edges_cut")
    cut = daily.filter(pl.col("edges_cut") > 0)
    if data.has("daily", "score_mean"):  # scoring days, with or without cuts
        scoring = data.frame("daily", "day", "score_mean").filter(pl.col("score_mean").is_not_null())["day"]
        cut = daily.filter(pl.col("day").is_in(scoring.implode()) | (pl.col("edges_cut") > 0))
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.14, column_widths=[0.5, 0.5],
                        subplot_titles=("friendships cut per scoring day", "share of friendships still active"))
    fig.add_trace(go.Bar(x=values(cut["day"]), y=values(cut["edges_cut"]), name="friendships cut",
                         marker={"color": th.AMBER}, showlegend=False,
                         hovertemplate="day %{x}: %{y:,} cut<extra></extra>"), 1, 1)
    cz = data.frame("citizens", "degree", "active_degree", "listed").filter(pl.col("degree") > 0)
    frac = (cz["active_degree"].cast(pl.Float64) / cz["degree"]).to_numpy() * 100
    listed = cz["listed"].to_numpy()
    edges = np.arange(-5.0, 110.0, 10.0)
    for mask, name, colour in ((listed, "listed now", th.RED), (~listed, "not listed", th.GREY)):
        counts, _ = np.histogram(frac[mask], bins=edges)
        share = counts / max(int(np.count_nonzero(mask)), 1) * 100
        fig.add_trace(go.Bar(x=values(edges[:-1] + 5), y=values(share.round(4)),
                             name=f"{name} ({int(np.count_nonzero(mask)):,})",
                             marker={"color": th.rgba(colour, 0.8), "line": {"width": 0}},
                             hovertemplate="%{x}% active: %{y:.2f}% of group<extra>" + name + "</extra>"), 1, 2)
    layout = th.layout(top=70, barmode="group", bargap=0.15)
    layout["legend"].update(x=0.57)
    fig.update_layout(**layout)
    th.style_axes(fig)
    fig.update_xaxes(title_text="day", row=1, col=1)
    fig.update_yaxes(title_text="friendships cut", rangemode="tozero", row=1, col=1)
    fig.update_xaxes(title_text="% still active (bins of 10%)", tickvals=list(range(0, 101, 20)), row=1, col=2)
    fig.update_yaxes(title_text="% of group", rangemode="tozero", row=1, col=2)
    share = data.run.metrics.get("unfriended_edge_share")
    note = (f"{share:.2%} of all friendships were cut over the run (unfriended_edge_share)."
            if isinstance(share, int | float) else "")
    return _chart("network", fig, height=380, note=note)


# -- header ------------------------------------------------------------------


def run_facts(run: Run) -> dict[str, Any]:
    """Scenario, size, seed, panel and timing facts shown in the report's header (and the dashboard)."""
    m, s = run.manifest, run.summary
    wall = m.get("wall_seconds")
    finished = m.get("finished")
    if isinstance(finished, str):
        with contextlib.suppress(ValueError):
            finished = dt.datetime.fromisoformat(finished).strftime("%Y-%m-%d %H:%M UTC")
    return {
        "scenario": s.get("scenario", "?"),
        "description": m.get("scenario", {}).get("description", ""),
        "citizens": s.get("citizens"),
        "days": s.get("days"),
        "seed": s.get("seed"),
        "panel": m.get("panel_citizens"),
        "finished": finished,
        "wall": f"{wall:.1f} s" if isinstance(wall, int | float) else None,
        "path": str(run.path),
    }


def panel_lede(data: RunData) -> str:
    """One sentence saying which citizens the per-citizen charts cover."""
    panel = data.run.manifest.get("panel_citizens")
    n = data.run.summary.get("citizens")
    if isinstance(panel, int) and isinstance(n, int) and panel < n:
        return (f"Scores over time come from a fixed random panel of {panel:,} of the {n:,} citizens; "
                "end-of-run figures use every citizen.")
    return "Scores over time cover every citizen (the panel is the whole population)."


def headline(metrics: dict[str, Any]) -> list[dict[str, str]]:
    """The headline tiles: key, label and formatted value of each headline metric present."""
    return [{"key": key, "label": label, "value": format_number(metrics.get(key), kind)}
            for key, label, kind in HEADLINE if key in metrics]
