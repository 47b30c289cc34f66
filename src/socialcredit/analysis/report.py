"""The run report: one self-contained HTML file with the run's charts.

What the report shows follows the run's scenario (its resolved copy in the
manifest): one score-distribution chart for every scoring system, grade
shares where there are municipal points, each list (court list, red list,
shame board), refusals by service for every ``<service>_denied`` column,
disparate impact by group (provinces by name for the ``china`` population),
misattribution, cascades, chilling and network fragmentation. Each chart is
built by one function from the run's tables; a chart whose data the run does
not have is left out, and the page ends with a list of what was left out
and why.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache, cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from socialcredit.analysis import theme as th
from socialcredit.analysis.page import Chart, format_number, render, write_text_atomic
from socialcredit.analysis.runs import open_run
from socialcredit.analysis.theme import values
from socialcredit.api import Run

FOUR_FIFTHS = 0.8
UPPER = 1.25
QUANTILES = (0.05, 0.25, 0.5, 0.75, 0.95)
MA_DAYS = 7
#: Points below which a citizen counts as penalised when the scenario's grades do not say (ref: grade A).
POINTS_CUT = 960
#: Score cut of the reference score when the scenario has no loan gate.
SCORE_CUT = 600
#: Most headline tiles shown.
MAX_TILES = 12


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
    groups, omitted = chart_groups(data)
    return render("report.html.j2", title=f"socialcredit report: {run.scenario} ({run.path.name})",
                  run=run_facts(run), headline=headline(run.metrics, data), groups=groups, omitted=omitted,
                  systems=system_facts(data), metrics=run.metrics)


# -- what the run's scenario contains ----------------------------------------------


def tables(scenario: dict[str, Any], section: str, *kinds: str) -> list[tuple[str, dict[str, Any]]]:
    """The scenario's tables of ``section`` (those of ``kinds`` if given), in file order; dropped ones skipped."""
    out = []
    for name, table in (scenario.get(section) or {}).items():
        if isinstance(table, dict) and (not kinds or table.get("kind") in kinds):
            out.append((name, table))
    return out


def config(section: str, table: dict[str, Any]) -> dict[str, Any]:
    """A scenario table with the plugin's defaults filled in (the table as given if it cannot be validated)."""
    try:
        from socialcredit.registry import lookup

        cls = lookup(section, str(table.get("kind")))
        model = getattr(cls, "Config", None)
        if model is None:
            return dict(table)
        full = model.model_validate({k: v for k, v in table.items() if k != "kind"}).model_dump(mode="json")
        return {"kind": table.get("kind"), **full}
    except Exception:
        return dict(table)


#: Names of the shipped kinds of scoring system, for people.
SYSTEM_LABELS = {
    "sesame": "Sesame-like score", "tencent": "Tencent-like score", "reference-score": "platform score",
    "peer-rating": "peer rating", "scorecard": "scorecard",
}
#: Words for the usual holder formulas.
HOLDER_WORDS = {"1": "citizens", "member": "payment-platform members", "messaging": "messaging-app users"}


@dataclass(frozen=True)
class ScoreSystem:
    """A scoring system of the run, as the report sees it."""

    name: str  # the scenario table (scoring.<name>) and the field formulas read
    kind: str
    column: str  # column in citizens.parquet and scores_monthly.parquet
    label: str
    low: float
    high: float
    holders: str = "1"  # formula: who holds the score
    cut: float | None = None  # below this is adverse
    cut_rule: str = ""  # where the cut comes from (a key path) or why it was chosen
    initial: float | None = None
    primary: bool = False
    dimensions: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {weight, label, value}

    @property
    def holder_words(self) -> str:
        return HOLDER_WORDS.get(self.holders.strip(), f"holders ({self.holders})")

    @property
    def range_text(self) -> str:
        return f"{self.low:g}–{self.high:g}" + (" stars" if self.kind == "peer-rating" else "")


@dataclass(frozen=True)
class ServiceRule:
    """A service whose requests are refused by a rule (a ban) or served only under one (a perk)."""

    event: str  # the request's event kind (daily columns <event>, <event>_denied)
    table: str  # consequences.<table>
    label: str
    agency: str
    context: str
    key: str  # the rule's key path
    formula: str  # the rule's text, as refusal condition for bans and as condition to serve for perks
    ban: bool
    income_factor: float = 1.0

    @property
    def short(self) -> str:
        return self.label.split(" (")[0]


def score_systems(scenario: dict[str, Any]) -> list[ScoreSystem]:
    """Every scoring system of the scenario, the one writing ``score`` first."""
    rules = [(s.key, s.formula, s.ban) for s in service_rules(scenario).values()]
    out = []
    for name, raw in tables(scenario, "scoring"):
        t = config("scoring", raw)
        kind = str(t.get("kind"))
        if kind == "peer-rating":
            low, high, column, primary = 1.0, 5.0, name, False
        elif kind == "reference-score":
            low = float(t.get("low", 350))
            high = low + float(t.get("span", 600))
            column, primary = "score", True
        elif "low" in t and "high" in t:
            low, high = float(t["low"]), float(t["high"])
            primary = bool(t.get("primary"))
            column = "score" if primary else name
        else:
            continue
        initial = t.get("initial")
        initial = float(initial) if isinstance(initial, int | float) else None
        cut, cut_rule = _cut(name, kind, t, rules, scenario, low, high, initial)
        dims = {d: {"weight": v.get("weight"), "label": v.get("label") or d, "value": v.get("value", "")}
                for d, v in (t.get("dimensions") or {}).items() if isinstance(v, dict)}
        if kind == "reference-score":
            dims = {d: {"weight": w, "label": REFERENCE_LABELS.get(d, d), "value": ""}
                    for d, w in (t.get("weights") or {}).items()}
        out.append(ScoreSystem(
            name=name, kind=kind, column=column, label=SYSTEM_LABELS.get(kind, name.replace("_", " ")), low=low,
            high=high, holders=str(t.get("holders") or "1"), cut=cut, cut_rule=cut_rule, initial=initial,
            primary=primary, dimensions=dims))
    out.sort(key=lambda s: not s.primary)
    return out


#: Dimension labels of the reference score (its table has weights only).
REFERENCE_LABELS = {
    "history": "credit history: missed payments seen by the platform",
    "behaviour": "behaviour: gaming and critical posts seen by the platform",
    "capacity": "fulfilment capacity: income",
    "characteristics": "personal characteristics: court list, municipal points",
    "relationships": "interpersonal relationships: friends' scores",
}
_COMPARE = r"\b{field}\s*(<=|<|>=|>)\s*(-?\d+(?:\.\d+)?)"


def _cut(name: str, kind: str, t: dict[str, Any], rules: list[tuple[str, str, bool]], scenario: dict[str, Any],
         low: float, high: float, initial: float | None) -> tuple[float | None, str]:
    """The score below which a holder is worse off: from a service rule that reads the score, else a default."""
    if kind == "reference-score":
        for table, gate in tables(scenario, "consequences", "loan-gate"):
            if isinstance(gate.get("min_score"), int | float):
                return float(gate["min_score"]), f"consequences.{table}.min_score"
        return float(SCORE_CUT), "below 600"
    for want_ban in (True, False):
        for key, text, ban in rules:
            if ban != want_ban:
                continue
            match = re.search(_COMPARE.format(field=re.escape(name)), text)
            if match:
                return float(match.group(2)), key
    if initial is not None and low < initial < high:
        return initial, "below the initial score"
    return (low + high) / 2, "below the middle of the range"


def service_rules(scenario: dict[str, Any]) -> dict[str, ServiceRule]:
    """Services with a refusal rule, by request event kind (``service`` tables; ref's travel ban and loan gate)."""
    out: dict[str, ServiceRule] = {}
    for name, t in tables(scenario, "consequences"):
        kind = t.get("kind")
        if kind == "service":
            key = "deny" if t.get("deny") is not None else "allow"
            out[name] = ServiceRule(
                event=name, table=name, label=str(t.get("label") or name.replace("_", " ")),
                agency=str(t.get("agency") or ""), context=str(t.get("context") or ""),
                key=f"consequences.{name}.{key}", formula=str(t.get(key)), ban=key == "deny",
                income_factor=float(t.get("income_factor", 1.0)))
        elif kind == "travel-ban":
            out["trip"] = ServiceRule(
                event="trip", table=name, label="trip by plane or high-speed rail", agency="courts (travel ban)",
                context="travel", key=f"consequences.{name}", formula="listed", ban=True,
                income_factor=float(t.get("income_factor", 1.0)))
        elif kind == "loan-gate":
            out["loan_application"] = ServiceRule(
                event="loan_application", table=name, label="loan application", agency="lenders",
                context="credit", key=f"consequences.{name}.min_score",
                formula=f"listed or score < {t.get('min_score', '?')}", ban=True)
    return out


def camera_kinds(scenario: dict[str, Any]) -> list[str]:
    """Event kinds seen by face-matching cameras."""
    out: list[str] = []
    for _, t in tables(scenario, "observation", "camera"):
        out += [e for e in t.get("events") or ["jaywalk"] if e not in out]
    return out


def shame_kinds(scenario: dict[str, Any]) -> list[str]:
    """Event kinds shown on public shame boards (the camera's kinds where there is no board table: ref)."""
    out: list[str] = []
    for _, t in tables(scenario, "consequences", "shame-board"):
        out += [e for e in t.get("events") or [] if e not in out]
    return out or camera_kinds(scenario)


def region_names(scenario: dict[str, Any], regions: list[int]) -> dict[int, str]:
    """Province names for the china population, by region index; 'region k' otherwise."""
    names: list[str] = []
    if (scenario.get("population") or {}).get("kind") == "china":
        names = _province_names()
    return {r: names[r] if 0 <= r < len(names) else f"region {r}" for r in regions}


@cache
def _province_names() -> list[str]:
    from importlib import resources

    try:
        path = resources.files("socialcredit.scenarios").joinpath("data", "china", "provinces.csv")
        with path.open("r", encoding="utf-8") as fh:
            return [row["name"] for row in csv.DictReader(fh)]
    except (OSError, KeyError, ModuleNotFoundError):
        return []


def points_table(scenario: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The municipal points table (records of kind ``points``), if any."""
    found = tables(scenario, "records", "points")
    return found[0] if found else None


def points_cut(scenario: dict[str, Any]) -> float:
    """The lowest points of the grade a citizen starts in (below it: marked down a grade)."""
    found = points_table(scenario)
    if found:
        t = found[1]
        base = t.get("base")
        for g in t.get("grades") or []:
            if isinstance(base, int | float) and g.get("min", 0) <= base <= g.get("max", base):
                return float(g["min"])
    return float(POINTS_CUT)


# -- data access -------------------------------------------------------------


class RunData:
    """The run's tables, read on demand, only the columns needed; and what its scenario contains."""

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

    @cached_property
    def systems(self) -> list[ScoreSystem]:
        """Scoring systems whose column the run's tables hold."""
        return [s for s in score_systems(self.scenario)
                if self.has("citizens", s.column) or self.has("scores_monthly", s.column)]

    @cached_property
    def services(self) -> dict[str, ServiceRule]:
        """Services with refusals counted in daily.parquet (``<event>_denied``), in the scenario's order."""
        rules = service_rules(self.scenario)
        out = {e: r for e, r in rules.items() if self.has("daily", f"{e}_denied")}
        for column in self.schemas.get("daily", []):  # a refusal column the scenario does not describe
            event = column.removesuffix("_denied")
            if column.endswith("_denied") and event not in out:
                out[event] = ServiceRule(event=event, table=event, label=event.replace("_", " "), agency="",
                                         context="", key=f"consequences.{event}", formula="?", ban=True)
        return out

    @cached_property
    def court_list(self) -> str | None:
        found = tables(self.scenario, "records", "court-list")
        return found[0][0] if found else None

    def grades(self) -> list[dict[str, Any]]:
        """Grade bands from the manifest's scenario, highest first ([] if none)."""
        found = points_table(self.scenario)
        grades = found[1].get("grades") if found else None
        if not isinstance(grades, list):
            return []
        return sorted(grades, key=lambda g: -g["min"])

    @cached_property
    def citizens_index(self) -> pl.Series:
        return self.frame("citizens", "citizen")["citizen"]

    def holders(self, system: ScoreSystem) -> tuple[np.ndarray, str]:
        """Mask over citizens.parquet rows of who holds ``system``'s score, and a note if it could not be read."""
        n = len(self.citizens_index)
        text = system.holders.strip()
        if text in ("1", "true", "True"):
            return np.ones(n, dtype=bool), ""
        try:
            from socialcredit.scenario.expressions import parse

            expr = parse(text, f"scoring.{system.name}.holders")
            absent = [name for name in expr.names if not self.has("citizens", name)]
            if absent:
                return np.ones(n, dtype=bool), f"holders formula reads {', '.join(sorted(absent))}: everyone counted"
            cz = self.frame("citizens", *sorted(expr.names))
            env = {c: cz[c].to_numpy().astype(np.float64) for c in cz.columns}
            return np.broadcast_to(np.asarray(expr.evaluate(env)) != 0, (n,)).copy(), ""
        except Exception as exc:
            return np.ones(n, dtype=bool), f"holders formula not evaluated ({exc}): everyone counted"

    @cached_property
    def region_names(self) -> dict[int, str]:
        if not self.has("citizens", "region"):
            return {}
        regions = sorted(int(r) for r in self.frame("citizens", "region")["region"].unique().to_list())
        return region_names(self.scenario, regions)

    @property
    def region_word(self) -> str:
        return "province" if (self.scenario.get("population") or {}).get("kind") == "china" else "region"


class _SkipError(Exception):
    """A chart that cannot be drawn from this run."""


def _need(data: RunData, table: str, *columns: str) -> None:
    note = data.missing(table, *columns)
    if note:
        raise _SkipError(note)


class _Charts:
    """Builds charts, keeping the ones drawn and noting the ones left out (with why)."""

    def __init__(self, data: RunData) -> None:
        self.data = data
        self.omitted: list[dict[str, str]] = []

    def take(self, title: str, build: Callable[..., Chart | list[Chart]], *args: Any) -> list[Chart]:
        try:
            out = build(self.data, *args)
        except _SkipError as skip:
            self.omitted.append({"title": title, "reason": str(skip)})
            return []
        return out if isinstance(out, list) else [out]


def chart_groups(data: RunData) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """The report's sections (title, lede, charts drawn) and the charts left out, each with the reason."""
    c = _Charts(data)
    scores = [ch for s in data.systems for ch in c.take(f"{s.label} distribution", score_distribution, s)]
    if not data.systems:
        c.omitted.append({"title": "Score distributions", "reason": "the scenario has no scoring system."})
    scores += c.take("Municipal grades", grade_shares)
    lists = c.take("Court list", list_size)
    for name, table in tables(data.scenario, "records", "honour-list"):
        lists += c.take(f"Red list ({name})", honour_list, name, table)
    for name, table in tables(data.scenario, "consequences", "shame-board"):
        lists += c.take(f"Shame board ({name})", shame_board, name, table)
    bans = c.take("Refusals by service", denials)
    if bans:
        bans += c.take("Refusals over time", denials_over_time)
    impact = c.take("Disparate impact", disparate_impact)
    effects = (c.take("Misattribution by cameras", misattribution) + c.take("Cascade", cascade)
               + c.take("Chilling of speech", chilling) + c.take("Network fragmentation", network))
    groups = [
        {"id": "scores", "title": "Scores and grades", "lede": panel_lede(data), "charts": scores},
        {"id": "lists", "title": _lists_title(lists), "lede": "", "charts": lists},
        {"id": "bans", "title": "Bans and refusals by service", "lede": bans_lede(data), "charts": bans},
        {"id": "impact", "title": "Disparate impact", "lede": impact_lede(data), "charts": impact},
        {"id": "effects", "title": "Misattribution, cascades, chilling, fragmentation", "lede": "",
         "charts": effects},
    ]
    groups = [g for g in groups if g["charts"]]
    for g in groups:  # a half-width chart left alone on its row takes the whole row
        half = [ch for ch in g["charts"] if not ch.wide]
        if len(half) % 2:
            half[-1].wide = True
    return groups, c.omitted


def _lists_title(charts: list[Chart]) -> str:
    names = [name for prefix, name in (("list-size", "the court list"), ("honour-list", "the red list"),
                                       ("shame-board", "the shame board")) if any(c.id.startswith(prefix)
                                                                                  for c in charts)]
    if not names:
        return "Lists"
    return "Lists: " + (", ".join(names[:-1]) + " and " + names[-1] if len(names) > 1 else names[0])


def bans_lede(data: RunData) -> str:
    if not data.services:
        return ""
    bans = sum(1 for s in data.services.values() if s.ban)
    perks = len(data.services) - bans
    return (f"{len(data.services)} service{'s' if len(data.services) != 1 else ''} check a citizen's record: "
            f"{bans} ban{'s' if bans != 1 else ''} (refused when the rule holds) and {perks} perk"
            f"{'s' if perks != 1 else ''} (served only when the rule holds). Counts are every request of the run "
            "(daily.parquet).")


def impact_lede(data: RunData) -> str:
    return (f"Rates of adverse outcomes by group at the end of the run, over all citizens (scores: over their "
            f"holders; refusals: over the panel). Ratios are always group / reference group: minority / majority, "
            f"urban / rural, women / men, income quintile / richest quintile (Q5, by initial income), "
            f"{data.region_word} / all other {data.region_word}s. Under the four-fifths rule a ratio outside "
            f"{FOUR_FIFTHS} – {UPPER} signals disparate impact.")


def _chart(chart_id: str, title: str, caption: str, figure: Any, *, wide: bool = False, height: int = 360,
           note: str = "", table: dict[str, Any] | None = None) -> Chart:
    return Chart(id=chart_id, title=title, caption=caption, figure=figure, note=note, wide=wide, height=height,
                 table=table)


# -- charts: scores ------------------------------------------------------------


def score_distribution(data: RunData, system: ScoreSystem) -> Chart:
    """Quantile bands of a score over the panel's holders per scoring day; first vs last histogram."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    col = system.column
    mask, holder_note = data.holders(system)
    if data.missing("scores_monthly", "day", "citizen", col):
        return _score_at_end(data, system, data.missing("scores_monthly", "day", "citizen", col))
    frame = data.frame("scores_monthly", "day", "citizen", col).drop_nulls(col)
    if not mask.all():
        held = data.citizens_index.filter(pl.Series(mask))
        frame = frame.join(pl.DataFrame({"citizen": held}), on="citizen", how="semi")
    if frame.is_empty():
        return _score_at_end(data, system, "scores_monthly.parquet has no snapshot (no scoring day in the run).")
    q = (frame.group_by("day").agg(
        *[pl.col(col).quantile(p, interpolation="linear").alias(f"q{round(p * 100)}") for p in QUANTILES],
        pl.col(col).mean().alias("mean"),
    ).sort("day"))
    days = values(q["day"])
    colour = th.PURPLE if system.kind == "peer-rating" else (th.BLUE if system.primary else th.TEAL)
    fig = make_subplots(rows=1, cols=2, column_widths=[0.64, 0.36], horizontal_spacing=0.08,
                        subplot_titles=("quantiles per scoring day", "histogram, first and last scoring day"))
    for lo, hi, alpha, name in (("q5", "q95", 0.13, "5th – 95th percentile"),
                                ("q25", "q75", 0.28, "25th – 75th percentile")):
        fig.add_trace(go.Scatter(x=days, y=values(q[hi]), mode="lines", line={"width": 0}, showlegend=False,
                                 hoverinfo="skip", legendgroup=name), 1, 1)
        fig.add_trace(go.Scatter(x=days, y=values(q[lo]), mode="lines", line={"width": 0}, fill="tonexty",
                                 fillcolor=th.rgba(colour, alpha), name=name, legendgroup=name,
                                 hoverinfo="skip"), 1, 1)
    fig.add_trace(go.Scatter(x=days, y=values(q["q50"]), mode="lines+markers", name="median",
                             line={"color": colour, "width": 2.5}, marker={"size": 5}), 1, 1)
    fig.add_trace(go.Scatter(x=days, y=values(q["mean"]), mode="lines", name="mean",
                             line={"color": th.INK, "width": 1.5, "dash": "dot"}), 1, 1)
    if system.cut is not None and system.cut_rule.startswith(("consequences.", "records.")):
        fig.add_hline(y=system.cut, line={"color": th.RED, "width": 1, "dash": "dash"}, row=1, col=1,
                      annotation_text=f"{system.cut:g}: {system.cut_rule}",
                      annotation_position="top right" if system.cut > float(q["q50"][-1]) else "bottom right",
                      annotation_font={"size": 11, "color": th.RED})
    first, last = days[0], days[-1]
    span = system.high - system.low
    bins = 40 if system.kind == "peer-rating" else 30
    edges = np.linspace(system.low, system.high, bins + 1)
    width = span / bins
    for day, tint, name in ((first, th.GREY, f"day {first}"), (last, colour, f"day {last}")):
        scores = frame.filter(pl.col("day") == day)[col].to_numpy()
        counts, _ = np.histogram(np.clip(scores, system.low, system.high), bins=edges)
        share = counts / max(len(scores), 1) * 100
        fig.add_trace(go.Bar(x=values((edges[:-1] + width / 2).round(4)), y=values(share.round(3)), name=name,
                             width=width * 0.9,
                             marker={"color": th.rgba(tint, 0.55 if tint == th.GREY else 0.75)},
                             hovertemplate=f"%{{x:.4g}} ± {width / 2:.3g}: %{{y:.1f}}%<extra>{name}</extra>"), 1, 2)
    pad = span * 0.02
    unit = "stars" if system.kind == "peer-rating" else "score"
    fig.update_layout(**th.layout(top=70, barmode="overlay", hovermode="x unified"))
    th.style_axes(fig)
    fig.update_xaxes(title_text="day", row=1, col=1)
    fig.update_yaxes(title_text=f"{system.name} ({unit})", range=[system.low - pad, system.high + pad], row=1, col=1)
    fig.update_xaxes(title_text=f"{system.name} ({unit})", range=[system.low - pad, system.high + pad], row=1, col=2)
    fig.update_yaxes(title_text="% of holders in the panel", row=1, col=2)
    n = frame.filter(pl.col("day") == last).height
    notes = [f"{n:,} {system.holder_words} in the panel (scores_monthly.{col}); {len(days)} scoring days."]
    if system.cut is not None:
        below = float((frame.filter(pl.col("day") == last)[col] < system.cut).mean() or 0.0)
        notes.append(f"{below:.1%} below {system.cut:g} ({system.cut_rule}) on day {last}.")
    if holder_note:
        notes.append(holder_note + ".")
    chart_id = _chart_id(system)
    title = f"{system.label.capitalize()} distribution over time ({system.name}, {system.range_text})"
    caption = (f"Quantiles of the {system.label} of the panel's {system.holder_words} on each scoring day, with "
               "the first and last scoring days' histograms on the right.")
    return _chart(chart_id, title, caption, fig, wide=True, height=400, note=" ".join(notes))


def _chart_id(system: ScoreSystem) -> str:
    return "score-distribution" if system.column == "score" else f"score-distribution-{system.name}"


def _score_at_end(data: RunData, system: ScoreSystem, why: str) -> Chart:
    """A score without panel snapshots: its daily mean (if kept) and the holders' histogram at the end."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    col = system.column
    mean_col = f"{system.name}_mean"
    has_daily = data.has("daily", mean_col)
    if not data.has("citizens", col):
        raise _SkipError(why)
    mask, holder_note = data.holders(system)
    end = data.frame("citizens", col)[col].to_numpy()[mask]
    if not len(end):
        raise _SkipError(f"nobody holds this score ({system.holders}).")
    colour = th.PURPLE if system.kind == "peer-rating" else (th.BLUE if system.primary else th.TEAL)
    cols = 2 if has_daily else 1
    fig = make_subplots(rows=1, cols=cols, column_widths=[0.62, 0.38] if has_daily else None,
                        horizontal_spacing=0.13, subplot_titles=(
                            ("mean of all citizens per day", "histogram at the end of the run") if has_daily
                            else ("histogram at the end of the run",)))
    if has_daily:
        daily = data.frame("daily", "day", mean_col).drop_nulls(mean_col)
        fig.add_trace(go.Scatter(x=values(daily["day"]), y=values(daily[mean_col].round(4)), mode="lines",
                                 name="mean", line={"color": colour, "width": 2.5}), 1, 1)
        low_col = f"{system.name}_low_share"
        if data.has("daily", low_col):
            low = data.frame("daily", "day", low_col).drop_nulls(low_col)
            mark = config("scoring", data.scenario.get("scoring", {}).get(system.name) or {}).get("low_threshold")
            fig.add_trace(go.Scatter(x=values(low["day"]), y=values((low[low_col] * 100).round(3)), mode="lines",
                                     name=f"% below {mark:g} (right axis)" if isinstance(mark, int | float)
                                     else "% low (right axis)", yaxis="y3",
                                     line={"color": th.RED, "width": 1.5, "dash": "dot"}))
            fig.update_layout(yaxis3={"overlaying": "y", "side": "right", "showgrid": False, "ticksuffix": "%",
                                      "rangemode": "tozero", "anchor": "x", "tickformat": ".1f", "nticks": 5,
                                      "tickfont": {"color": th.RED}})
    bins = 40 if system.kind == "peer-rating" else 30
    edges = np.linspace(system.low, system.high, bins + 1)
    width = (system.high - system.low) / bins
    counts, _ = np.histogram(np.clip(end, system.low, system.high), bins=edges)
    fig.add_trace(go.Bar(x=values((edges[:-1] + width / 2).round(4)), y=values((counts / len(end) * 100).round(3)),
                         width=width * 0.9, name="end of run", marker={"color": th.rgba(colour, 0.75)},
                         hovertemplate=f"%{{x:.4g}} ± {width / 2:.3g}: %{{y:.1f}}%<extra></extra>"), 1, cols)
    if system.cut is not None and has_daily and system.cut_rule.startswith(("consequences.", "records.")):
        fig.add_hline(y=system.cut, line={"color": th.RED, "width": 1, "dash": "dash"}, row=1, col=1,
                      annotation_text=f"{system.cut:g}: {system.cut_rule}", annotation_position="bottom right",
                      annotation_font={"size": 11, "color": th.RED})
    pad = (system.high - system.low) * 0.02
    unit = "stars" if system.kind == "peer-rating" else "score"
    fig.update_layout(**th.layout(top=70, hovermode="x unified"))
    th.style_axes(fig)
    if has_daily:
        fig.update_xaxes(title_text="day", row=1, col=1)
        fig.update_yaxes(title_text=f"{system.name} ({unit})", range=[system.low - pad, system.high + pad], row=1,
                         col=1)
    fig.update_xaxes(title_text=f"{system.name} ({unit})", range=[system.low - pad, system.high + pad], row=1,
                     col=cols)
    fig.update_yaxes(title_text=f"% of {system.holder_words}", row=1, col=cols)
    notes = [f"{len(end):,} {system.holder_words} (citizens.{col}); no panel snapshots: {why}"]
    if system.cut is not None:
        notes.append(f"{float(np.mean(end < system.cut)):.1%} below {system.cut:g} ({system.cut_rule}) at the end.")
    if holder_note:
        notes.append(holder_note + ".")
    title = (f"{system.label.capitalize()} distribution" + (" over time" if has_daily else " at the end")
             + f" ({system.name}, {system.range_text})")
    caption = (f"The mean {system.label} of all citizens each day and the histogram of its "
               f"{system.holder_words} at the end of the run." if has_daily else
               f"Histogram of the {system.label} of its {system.holder_words} at the end of the run.")
    return _chart(_chart_id(system), title, caption, fig, wide=True, height=400, note=" ".join(notes))


def grade_shares(data: RunData) -> Chart:
    """Stacked grade shares of the panel over time and of all citizens at the end."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    grades = data.grades()
    if not grades:
        raise _SkipError("the scenario has no municipal points grades (records of kind points).")
    over_time = not data.missing("scores_monthly", "day", "points")
    frame = data.frame("scores_monthly", "day", "points") if over_time else pl.DataFrame(
        schema={"day": pl.Int16, "points": pl.Int16})
    over_time = not frame.is_empty()
    if not over_time and not data.has("citizens", "points"):
        raise _SkipError("the run has no points (no scores_monthly.points, no citizens.points).")
    names = [g["name"] for g in grades]
    colours = th.grade_colours(len(names))
    bands = ", ".join(f"{g['name']} ≥ {g['min']}" for g in grades)
    if not over_time:  # no scoring day: the end of the run only
        fig = go.Figure()
        _end_grades(fig, data, grades, colours, None)
        fig.update_layout(**th.layout(showlegend=False))
        th.style_axes(fig)
        fig.update_xaxes(title_text="% of citizens", rangemode="tozero")
        fig.update_yaxes(autorange="reversed")
        return _chart("grade-shares", "Municipal grades at the end of the run",
                      "Share of all citizens in each municipal points grade at the end of the run (the run had no "
                      "scoring day, so no snapshots over time).", fig, height=320,
                      note=f"Grade bands from the scenario: {bands}.")
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
        _end_grades(fig, data, grades, colours, (1, 2))
    fig.update_layout(**th.layout(top=70, hovermode="x unified"))
    th.style_axes(fig)
    fig.update_xaxes(title_text="day", row=1, col=1)
    fig.update_yaxes(title_text="% of panel", range=[0, 100], row=1, col=1)
    fig.update_xaxes(title_text="% of citizens", row=1, col=2, rangemode="tozero")
    fig.update_yaxes(autorange="reversed", row=1, col=2)
    return _chart("grade-shares", "Municipal grades over time and at the end",
                  "Share of panel citizens in each municipal points grade on each scoring day (left) "
                  "and of all citizens at the end of the run (right).", fig, wide=True, height=380,
                  note=f"Grade bands from the scenario: {bands}.")


def _end_grades(fig: Any, data: RunData, grades: list[dict[str, Any]], colours: list[str],
                cell: tuple[int, int] | None) -> None:
    """Horizontal bars: the share of all citizens in each grade at the end of the run."""
    import plotly.graph_objects as go

    names = [g["name"] for g in grades]
    end = data.frame("citizens", "points").with_columns(grade=_grade_expr(pl.col("points"), grades))
    counts = dict(end.group_by("grade").len().iter_rows())
    total = max(end.height, 1)
    final = [counts.get(name, 0) / total * 100 for name in names]
    bar = go.Bar(x=[round(v, 4) for v in final], y=names, orientation="h", showlegend=False,
                 marker={"color": colours}, text=[f"{v:.1f}%" for v in final], textposition="outside",
                 cliponaxis=False, hovertemplate="%{y}: %{x:.2f}%<extra></extra>")
    if cell is None:
        fig.add_trace(bar)
    else:
        fig.add_trace(bar, *cell)


def _grade_expr(points: pl.Expr, grades: list[dict[str, Any]]) -> pl.Expr:
    expr = pl.when(points >= grades[0]["min"]).then(pl.lit(grades[0]["name"]))
    for g in grades[1:]:
        expr = expr.when(points >= g["min"]).then(pl.lit(g["name"]))
    return expr.otherwise(pl.lit(grades[-1]["name"]))


# -- charts: lists ---------------------------------------------------------------


def _size_and_flows(days: list[Any], size: pl.Series, size_name: str, colour: str,
                    flows: list[tuple[pl.Series, str, str, int]], size_title: str) -> Any:
    """Two stacked panels: a list's size per day (top); entries (up) and exits (down) per day (bottom)."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.62, 0.38], vertical_spacing=0.06)
    fig.add_trace(go.Scatter(x=days, y=values(size), name=size_name, mode="lines",
                             line={"color": colour, "width": 2, "shape": "hv"}, fill="tozeroy",
                             fillcolor=th.rgba(colour, 0.1)), 1, 1)
    for series, name, tint, sign in flows:
        fig.add_trace(go.Bar(x=days, y=values(series * sign), name=name, marker={"color": tint, "line": {"width": 0}},
                             customdata=values(series), hovertemplate="%{customdata}<extra>" + name + "</extra>"),
                      2, 1)
    fig.update_layout(**th.layout(barmode="relative", hovermode="x unified", bargap=0))
    th.style_axes(fig)
    fig.update_yaxes(title_text=size_title, rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="per day (exits < 0)", row=2, col=1)
    fig.update_xaxes(title_text="day", row=2, col=1)
    return fig


def list_size(data: RunData) -> Chart:
    """Court list: listed citizens per day, entries and exits per day."""
    if data.court_list is None and not data.has("daily", "listings"):
        raise _SkipError("the scenario has no court list (records of kind court-list).")
    _need(data, "daily", "day", "listed_now")
    cols = ["day", "listed_now"] + [c for c in ("listings", "removals_repaid", "removals_term")
                                    if data.has("daily", c)]
    daily = data.frame("daily", *cols)
    flows = [(daily[c], name, tint, sign) for c, name, tint, sign in (
        ("listings", "entries", th.RED, 1), ("removals_repaid", "exits: repaid", th.TEAL, -1),
        ("removals_term", "exits: term ended", th.AMBER, -1)) if c in daily.columns]
    fig = _size_and_flows(values(daily["day"]), daily["listed_now"], "on the list", th.BLUE, flows,
                          "citizens listed")
    last = daily["listed_now"][-1] if daily.height else 0
    entries = int(daily["listings"].sum()) if "listings" in daily.columns else None
    note = f"{last:,} on the list on the last day" + (f"; {entries:,} entries in all." if entries is not None
                                                      else ".")
    key = f"records.{data.court_list}" if data.court_list else "the court list"
    return _chart("list-size", "Court list of dishonest persons: size, entries and exits",
                  f"Citizens on the court list ({key}) each day (top), with the daily entries after a defaulted "
                  "judgment and the exits, debt repaid or term ended (bottom).", fig, height=420, note=note)


def honour_list(data: RunData, name: str, table: dict[str, Any]) -> Chart:
    """The red list: members after each review, entries and exits."""
    size, entries, exits = f"{name}_size", f"{name}_entries", f"{name}_exits"
    _need(data, "daily", "day", size)
    cols = ["day", size] + [c for c in (entries, exits) if data.has("daily", c)]
    daily = data.frame("daily", *cols)
    if not daily[size].fill_null(0).sum() and not (entries in daily.columns and daily[entries].fill_null(0).sum()):
        rule = table.get("rule", "?")
        raise _SkipError(f"nobody was on the red list during the run (records.{name}.rule = “{rule}”).")
    flows = [(daily[c], label, tint, sign) for c, label, tint, sign in (
        (entries, "entries", th.TEAL, 1), (exits, "exits", th.RED, -1)) if c in daily.columns]
    fig = _size_and_flows(values(daily["day"]), daily[size], "on the list", th.TEAL, flows, "citizens listed")
    n = data.run.summary.get("citizens") or 0
    last = int(daily[size][-1]) if daily.height else 0
    note = f"{last:,} on the list on the last day" + (f" ({last / n:.2%} of citizens)." if n else ".")
    rule = table.get("rule", "?")
    return _chart(f"honour-list-{name}", f"Red list of model citizens ({name})",
                  f"Citizens on the red list after each review, admitted while records.{name}.rule = “{rule}” "
                  "holds (top), with entries and exits at each review (bottom).", fig, height=420, note=note)


def shame_board(data: RunData, name: str, table: dict[str, Any]) -> Chart:
    """A public shame board: displays per day with the innocents shown, and how often citizens were shown."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    shown, innocents = f"{name}_displayed", f"{name}_innocents_displayed"
    _need(data, "daily", "day", shown)
    cols = ["day", shown] + ([innocents] if data.has("daily", innocents) else [])
    daily = data.frame("daily", *cols)
    if not daily[shown].fill_null(0).sum():
        raise _SkipError(f"nobody was displayed on the board during the run (daily.{shown} is 0).")
    days = values(daily["day"])
    per_citizen = data.has("citizens", "shamed")
    fig = make_subplots(rows=1, cols=2 if per_citizen else 1, column_widths=[0.64, 0.36] if per_citizen else None,
                        horizontal_spacing=0.1, subplot_titles=(
                            ("displays per day", "citizens by times displayed") if per_citizen else None))
    guilty = daily[shown] - (daily[innocents] if innocents in daily.columns else 0)
    fig.add_trace(go.Bar(x=days, y=values(guilty), name="the actor shown", marker={"color": th.rgba(th.BLUE, 0.55)}),
                  1, 1)
    if innocents in daily.columns:
        fig.add_trace(go.Bar(x=days, y=values(daily[innocents]), name="an innocent shown (false match)",
                             marker={"color": th.rgba(th.RED, 0.85)}), 1, 1)
    total = int(daily[shown].sum())
    wrong = int(daily[innocents].sum()) if innocents in daily.columns else 0
    notes = [f"{total:,} displays, {wrong:,} of them innocents ({wrong / total:.2%})." if total else "No displays."]
    if per_citizen:
        times = data.frame("citizens", "shamed")["shamed"].to_numpy()
        labels = ["1", "2", "3", "4", "5–9", "10+"]
        bounds = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 9), (10, 1 << 30)]
        counts = [int(np.count_nonzero((times >= lo) & (times <= hi))) for lo, hi in bounds]
        fig.add_trace(go.Bar(x=labels, y=counts, name="citizens", showlegend=False,
                             marker={"color": th.rgba(th.PURPLE, 0.8)}, text=[f"{c:,}" for c in counts],
                             textposition="outside", cliponaxis=False,
                             hovertemplate="shown %{x} times: %{y:,} citizens<extra></extra>"), 1, 2)
        fig.update_xaxes(title_text="times displayed", type="category", row=1, col=2)
        fig.update_yaxes(title_text="citizens", rangemode="tozero", row=1, col=2)
        notes.append(f"{int(np.count_nonzero(times)):,} citizens were displayed at least once.")
    fig.update_layout(**th.layout(top=70, barmode="stack", bargap=0.05, hovermode="x unified"))
    th.style_axes(fig)
    fig.update_xaxes(title_text="day", row=1, col=1)
    fig.update_yaxes(title_text="displays per day", rangemode="tozero", row=1, col=1)
    kinds = ", ".join(k.replace("_", " ") for k in table.get("events") or [])
    return _chart(f"shame-board-{name}", f"Public shame board ({name})",
                  f"Observed acts ({kinds}) displayed each day under the citizen a camera or registry blamed, "
                  "innocents shown after a false match in red, and how many times citizens were shown (right).",
                  fig, wide=True, height=380, note=" ".join(notes))


# -- charts: bans by service -------------------------------------------------------


def _service_totals(data: RunData) -> list[dict[str, Any]]:
    services = data.services
    if not services:
        raise _SkipError("the run has no refusal counts (no daily <service>_denied column: no ban or perk).")
    cols = [f"{e}_denied" for e in services] + [e for e in services if data.has("daily", e)]
    daily = data.frame("daily", *cols)
    rows = []
    for event, rule in services.items():
        refused = int(daily[f"{event}_denied"].sum())
        requests = int(daily[event].sum()) if event in daily.columns else None
        rows.append({"event": event, "rule": rule, "refused": refused, "requests": requests,
                     "share": refused / requests if requests else None})
    return rows


def denials(data: RunData) -> Chart:
    """Requests refused over the run, by service: counts and share of requests; bans vs perks withheld."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    rows = sorted(_service_totals(data), key=lambda r: (not r["rule"].ban, -r["refused"], r["event"]))
    if not any(r["refused"] for r in rows):
        asked = sum(r["requests"] or 0 for r in rows)
        raise _SkipError(f"no request was refused in this run ({asked:,} requests to {len(rows)} service"
                         f"{'s' if len(rows) != 1 else ''}).")
    names = [r["rule"].short for r in rows]
    colours = [th.rgba(th.RED, 0.85) if r["rule"].ban else th.rgba(th.AMBER, 0.9) for r in rows]
    hover = [f"{r['rule'].label}<br>{r['rule'].agency}<br>{r['rule'].key} = {r['rule'].formula}" for r in rows]
    fig = make_subplots(rows=1, cols=2, shared_yaxes=True, horizontal_spacing=0.04, column_widths=[0.55, 0.45],
                        subplot_titles=("requests refused over the run", "share of requests refused"))
    fig.add_trace(go.Bar(x=[r["refused"] for r in rows], y=names, orientation="h", showlegend=False,
                         marker={"color": colours}, customdata=hover, text=[f"{r['refused']:,}" for r in rows],
                         textposition="outside", cliponaxis=False, textfont={"size": 10, "color": th.MUTED},
                         hovertemplate="%{customdata}<br>refused: %{x:,}<extra></extra>"), 1, 1)
    share = [None if r["share"] is None else round(r["share"] * 100, 4) for r in rows]
    fig.add_trace(go.Bar(x=share, y=names, orientation="h", showlegend=False, marker={"color": colours},
                         customdata=hover, text=[None if v is None else f"{v:.1f}%" for v in share],
                         textposition="outside", cliponaxis=False, textfont={"size": 10, "color": th.MUTED},
                         hovertemplate="%{customdata}<br>refused: %{x:.2f}% of requests<extra></extra>"), 1, 2)
    for label, tint in (("ban: refused when the rule holds", th.RED), ("perk: withheld unless the rule holds",
                                                                      th.AMBER)):
        if any((r["rule"].ban if tint == th.RED else not r["rule"].ban) for r in rows):
            fig.add_trace(go.Bar(x=[None], y=[None], name=label, marker={"color": tint}, showlegend=True), 1, 1)
    top = max([r["refused"] for r in rows] + [1])
    top_share = max([v for v in share if v is not None] + [1.0])
    fig.update_layout(**th.layout(top=70, bargap=0.25))
    th.style_axes(fig)
    fig.update_xaxes(title_text="refused", range=[0, top * 1.18], row=1, col=1)
    fig.update_xaxes(title_text="% of requests", range=[0, top_share * 1.22], nticks=6, row=1, col=2)
    fig.update_yaxes(autorange="reversed", tickfont={"size": 11})
    table = {"summary": "Every service, its agency and rule", "open": False,
             "header": ["service", "agency", "rule (key path)", "formula", "requests", "refused", "share"],
             "rows": [[r["rule"].label, r["rule"].agency or "–", r["rule"].key, r["rule"].formula,
                       "n/a" if r["requests"] is None else f"{r['requests']:,}", f"{r['refused']:,}",
                       "n/a" if r["share"] is None else f"{r['share']:.2%}"] for r in rows]}
    total = sum(r["refused"] for r in rows)
    n = data.run.summary.get("citizens") or 0
    note = f"{total:,} requests refused in all" + (f" ({1000 * total / n:.2f} per 1,000 citizens)." if n else ".")
    return _chart("denials", "Bans and refusals by service",
                  "Requests refused over the whole run for each service: bans (refused when a deny rule holds) in "
                  "red, perks withheld (an allow rule not met) in amber, as counts (left) and as a share of the "
                  "service's requests (right).", fig, wide=True, height=max(240, 130 + 30 * len(rows)), note=note,
                  table=table)


def denials_over_time(data: RunData) -> Chart:
    """Refusals per week, stacked by service (services that refused anyone)."""
    import plotly.graph_objects as go

    rows = [r for r in _service_totals(data) if r["refused"] > 0]
    if not rows:
        raise _SkipError("no request was refused in this run.")
    events = [r["event"] for r in sorted(rows, key=lambda r: -r["refused"])]
    daily = data.frame("daily", "day", *[f"{e}_denied" for e in events])
    weekly = (daily.with_columns(week=(pl.col("day") // 7) * 7).group_by("week")
              .agg(*[pl.col(f"{e}_denied").sum() for e in events]).sort("week"))
    fig = go.Figure()
    for event, colour in zip(events, th.palette(len(events)), strict=True):
        rule = data.services[event]
        fig.add_trace(go.Bar(x=values(weekly["week"]), y=values(weekly[f"{event}_denied"]), name=rule.short,
                             marker={"color": colour, "line": {"width": 0}},
                             hovertemplate="days %{x}–%{customdata}: %{y:,}<extra>" + rule.short + "</extra>",
                             customdata=values(weekly["week"] + 6)))
    fig.update_layout(**th.layout(top=70, barmode="stack", bargap=0.1, hovermode="x unified"))
    th.style_axes(fig)
    fig.update_xaxes(title_text="week (first day)")
    fig.update_yaxes(title_text="refused per week", rangemode="tozero")
    return _chart("denials-over-time", "Refusals over time, by service",
                  "Requests refused in each week of the run, stacked by service (services that refused nobody are "
                  "left out).", fig, wide=True, height=380)


def _moving_average(series: pl.Series) -> pl.Series:
    return series.cast(pl.Float64).rolling_mean(window_size=MA_DAYS, min_samples=1).round(3)


# -- charts: disparate impact ------------------------------------------------------


@dataclass
class _Group:
    family: str
    name: str
    mask: np.ndarray
    ref_name: str
    ref: np.ndarray


@dataclass
class _Outcome:
    key: str
    label: str
    flag: np.ndarray  # adverse outcome, per citizen
    valid: np.ndarray  # who it is defined for (holders of a score; the panel for refusals)
    source: str  # where it comes from, for the table


# boolean attributes compared: column, attribute, group where true, group where false
_BINARY = (("minority", "minority", "minority", "majority"), ("urban", "urban", "urban", "rural"),
           ("hukou_urban", "hukou", "urban hukou", "rural hukou"), ("female", "sex", "women", "men"))


def _groups(cz: pl.DataFrame, names: dict[int, str], word: str) -> list[_Group]:
    groups: list[_Group] = []
    for column, attribute, yes, no in _BINARY:
        if column in cz.columns:
            flag = cz[column].to_numpy().astype(bool)
            groups.append(_Group(attribute, yes, flag, no, ~flag))
    if "income0" in cz.columns and cz.height >= 5:
        q = _quintile(cz["income0"].to_numpy())
        top = q == 4
        groups += [_Group("income quintile", f"Q{k + 1}", q == k, "Q5", top) for k in range(4)]
    if "region" in cz.columns:
        r = cz["region"].to_numpy()
        groups += [_Group("region", names.get(int(k), f"{word} {k}"), r == k, f"other {word}s", r != k)
                   for k in np.unique(r)]
    return groups


def _quintile(income: np.ndarray) -> np.ndarray:
    """0 (poorest fifth) .. 4 (richest fifth), by rank so that ties cannot empty a quintile."""
    order = np.argsort(income, kind="stable")
    q = np.empty(len(income), dtype=np.int8)
    q[order] = (np.arange(len(income)) * 5 // len(income)).astype(np.int8)
    return q


def _outcomes(data: RunData) -> list[_Outcome]:
    """The adverse outcomes this run can measure, per citizen."""
    n = len(data.citizens_index)
    everyone = np.ones(n, dtype=bool)
    out = []
    if data.court_list is not None and data.has("citizens", "listed_ever"):
        out.append(_Outcome("listed_ever", "ever on the court list",
                            data.frame("citizens", "listed_ever")["listed_ever"].to_numpy().astype(bool), everyone,
                            f"records.{data.court_list}"))
    for s in data.systems:
        if s.cut is None or not data.has("citizens", s.column):
            continue
        holders, _ = data.holders(s)
        values_ = data.frame("citizens", s.column)[s.column].to_numpy()
        key = "score_low" if s.column == "score" else f"{s.name}_low"
        out.append(_Outcome(key, f"{s.name} < {s.cut:g}", values_ < s.cut, holders,
                            f"{s.label}, cut {s.cut_rule}; over {s.holder_words}"))
    if points_table(data.scenario) is not None and data.has("citizens", "points"):
        cut = points_cut(data.scenario)
        out.append(_Outcome("points_low", f"points < {cut:g}",
                            data.frame("citizens", "points")["points"].to_numpy() < cut, everyone,
                            "municipal points below the starting grade"))
    if tables(data.scenario, "consequences", "shame-board") and data.has("citizens", "shamed"):
        out.append(_Outcome("shamed", "shown on a shame board",
                            data.frame("citizens", "shamed")["shamed"].to_numpy() > 0, everyone,
                            "citizens.shamed > 0"))
    refused = _refused_citizens(data)
    if refused is not None:
        out.append(_Outcome("refused", "refused a service", refused[0], refused[1],
                            "any request refused (events of the panel)"))
    return out


def _refused_citizens(data: RunData) -> tuple[np.ndarray, np.ndarray] | None:
    """Per citizen: refused at least once (panel events), and the panel mask; None without the data."""
    if not data.services or not data.has("events", "denied") or not data.has("citizens", "in_panel"):
        return None
    kinds = list(data.services)
    ev = (pl.scan_parquet(data.run.path / "events.parquet")
          .filter(pl.col("denied") & pl.col("kind").cast(pl.String).is_in(kinds))
          .select("citizen").unique().collect())
    ids = data.citizens_index
    flag = ids.is_in(ev["citizen"].implode()).to_numpy()
    panel = data.frame("citizens", "in_panel")["in_panel"].to_numpy().astype(bool)
    return flag & panel, panel


def _rate(outcome: _Outcome, mask: np.ndarray) -> float | None:
    inside = mask & outcome.valid
    size = int(np.count_nonzero(inside))
    return float(np.count_nonzero(outcome.flag & inside)) / size if size else None


def _ratio(outcome: _Outcome, group: _Group) -> float | None:
    inside, ref = _rate(outcome, group.mask), _rate(outcome, group.ref)
    return inside / ref if inside is not None and ref else None


def _flagged(r: float | None) -> bool:
    return r is not None and (r < FOUR_FIFTHS or r > UPPER)


def disparate_impact(data: RunData) -> list[Chart]:
    """Two charts: outcome rates by group, and ratios group / reference group with 0.8 and 1.25 marked."""
    outcomes = _outcomes(data)
    if not outcomes:
        raise _SkipError("the run has no adverse outcome to compare (no court list, score, points, board or ban).")
    cols = [c for c in ("minority", "urban", "hukou_urban", "female", "income0", "region")
            if data.has("citizens", c)]
    if not cols:
        raise _SkipError("citizens.parquet has none of the columns minority, urban, income0, region.")
    cz = data.frame("citizens", *cols)
    groups = _groups(cz, data.region_names, data.region_word)
    ratios = {o.key: [_ratio(o, g) for g in groups] for o in outcomes}
    labels = [f"{g.name} / {g.ref_name}" for g in groups]
    table_rows = []
    for i, g in enumerate(groups):
        row = [labels[i], f"{int(np.count_nonzero(g.mask)):,}"]
        for o in outcomes:
            rate, r = _rate(o, g.mask), ratios[o.key][i]
            text = "n/a" if rate is None else f"{rate:.2%} ({'n/a' if r is None else f'{r:.2f}'})"
            row.append(("!" if _flagged(r) else "") + text)
        table_rows.append(row)
    table = {"summary": "Rates and ratios as a table (flagged: outside 0.8 – 1.25)", "open": False,
             "header": ["group / reference", "citizens in group"] + [f"{o.label}: rate (ratio)" for o in outcomes],
             "rows": table_rows}
    flagged = sum(_flagged(r) for rs in ratios.values() for r in rs)
    sources = "; ".join(f"{o.label}: {o.source}" for o in outcomes)
    word = data.region_word
    return [
        _chart("disparate-impact", "Disparate impact: outcome rates by group",
               "Share of each group with each adverse outcome at the end of the run (darker bars: the group; "
               f"lighter bars: its reference group; {word}s appear as ratios below).",
               _rates_figure(groups, outcomes), wide=True, height=140 + 24 * _bar_rows(groups),
               note=f"Outcomes — {sources}."),
        _chart("disparate-ratios", "Disparate impact: ratios to the reference group",
               "Each dot is a group's outcome rate divided by its reference group's rate (minority / majority, "
               f"urban / rural, women / men, Qk / Q5, {word} / other {word}s); the shaded band is 0.8 – 1.25.",
               _ratios_figure(labels, outcomes, ratios), wide=True, height=max(420, 140 + 19 * len(labels)),
               table=table, note=f"{flagged} group/outcome ratios lie outside 0.8 – 1.25 (red). A hollow triangle at "
               "the left edge is a ratio of 0. Small groups (a province of a small run) give noisy ratios."),
    ]


def _bar_groups(groups: list[_Group]) -> list[tuple[str, str, np.ndarray]]:
    bars: list[tuple[str, str, np.ndarray]] = []  # regions only as ratios: 31 bars per outcome do not read
    for g in groups:
        if g.family in ("minority", "urban", "hukou", "sex"):
            bars += [(g.family, g.name, g.mask), (g.family, g.ref_name, g.ref)]
        elif g.family == "income quintile":
            bars.append((g.family, g.name, g.mask))
    quintiles = [g for g in groups if g.family == "income quintile"]
    if quintiles:
        bars.append(("income quintile", "Q5", quintiles[0].ref))
    return bars


def _bar_rows(groups: list[_Group]) -> int:
    return max(len(_bar_groups(groups)), 4)


def _rates_figure(groups: list[_Group], outcomes: list[_Outcome]) -> Any:
    """Horizontal bars: each outcome's rate in the two-sided groups and the income quintiles."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    bars = _bar_groups(groups)
    colour = {"minority": th.RED, "urban": th.TEAL, "hukou": th.BLUE, "sex": th.PURPLE, "income quintile": th.AMBER}
    reference = ("majority", "rural", "rural hukou", "men", "Q5")
    names = [("income " if f == "income quintile" else "") + n for f, n, _ in bars]
    fig = make_subplots(rows=1, cols=len(outcomes), shared_yaxes=True, horizontal_spacing=0.03,
                        subplot_titles=[o.label for o in outcomes])
    for col, o in enumerate(outcomes, start=1):
        rates = [_rate(o, mask) for _, _, mask in bars]
        pct = [None if r is None else round(r * 100, 4) for r in rates]
        fig.add_trace(go.Bar(x=pct, y=names, orientation="h", showlegend=False,
                             marker={"color": [th.rgba(colour[f], 0.4 if n in reference else 0.9)
                                               for f, n, _ in bars]},
                             text=[None if v is None else f"{v:.1f}%" for v in pct], textposition="outside",
                             cliponaxis=False, textfont={"size": 10, "color": th.MUTED},
                             hovertemplate="%{y}: %{x:.2f}%<extra>" + o.label + "</extra>"), 1, col)
        top = max((v for v in pct if v is not None), default=1.0) or 1.0
        fig.update_xaxes(title_text="% of group", range=[0, top * 1.3], row=1, col=col)
    fig.update_layout(**th.layout(top=40, showlegend=False, bargap=0.25))
    th.style_axes(fig)
    fig.update_xaxes(tickfont={"size": 10}, nticks=4)
    fig.update_yaxes(autorange="reversed", tickfont={"size": 11})
    return fig


def _ratios_figure(labels: list[str], outcomes: list[_Outcome], ratios: dict[str, list[float | None]]) -> Any:
    """Dots on a log scale: every group's ratio to its reference, 0.8 and 1.25 marked."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    present = [r for rs in ratios.values() for r in rs if r]
    lo = min([0.5, *present]) / 1.25
    hi = max([2.0, *present]) * 1.25
    ticks = [t for t in (0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 0.8, 1, 1.25, 2, 5, 10, 20, 50, 100) if lo <= t <= hi]
    if len(outcomes) > 3:  # narrow panels: fewer ticks
        ticks = [t for t in ticks if t in (0.01, 0.1, 0.5, 1, 2, 10, 100)]
    fig = make_subplots(rows=1, cols=len(outcomes), shared_yaxes=True, horizontal_spacing=0.025,
                        subplot_titles=[o.label for o in outcomes])
    for col, o in enumerate(outcomes, start=1):
        rs = ratios[o.key]
        shown = [lo * 1.05 if r == 0 else r for r in rs]
        fig.add_trace(go.Scatter(
            x=[None if r is None else round(r, 4) for r in shown], y=labels, mode="markers", showlegend=False,
            customdata=[None if r is None else round(r, 3) for r in rs],
            marker={"color": [th.RED if _flagged(r) else th.BLUE for r in rs], "size": 8,
                    "symbol": ["triangle-left-open" if r == 0 else "circle" for r in rs],
                    "line": {"width": 1.5, "color": [th.RED if _flagged(r) else th.BLUE for r in rs]}},
            hovertemplate="%{y}: %{customdata}<extra>" + o.label + "</extra>"), 1, col)
        # after the trace: plotly skips shapes on subplots that are still empty
        fig.add_vrect(x0=FOUR_FIFTHS, x1=UPPER, fillcolor=th.rgba(th.TEAL, 0.12), line_width=0, layer="below",
                      row=1, col=col)
        for x in (FOUR_FIFTHS, UPPER):
            fig.add_vline(x=x, row=1, col=col, layer="below", line={"color": th.TEAL, "width": 1, "dash": "dash"})
        fig.add_vline(x=1.0, row=1, col=col, layer="below", line={"color": th.GREY, "width": 1})
        fig.update_xaxes(type="log", range=[np.log10(lo), np.log10(hi)], tickvals=ticks,
                         ticktext=[f"{t:g}" for t in ticks], title_text="ratio (log)", row=1, col=col)
    fig.update_layout(**th.layout(top=40))
    th.style_axes(fig)
    fig.update_xaxes(tickfont={"size": 10}, tickangle=0)
    fig.update_yaxes(autorange="reversed", tickfont={"size": 11})
    return fig


# -- charts: side effects --------------------------------------------------------------


def misattribution(data: RunData) -> Chart:
    """Camera detections vs misattributions per day (all camera kinds), the running innocent share, and
    innocents blamed per 1,000 citizens by group."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    kinds = [c[: -len("_misattributed")] for c in data.schemas.get("daily", [])
             if c.endswith("_misattributed") and data.has("daily", c[: -len("_misattributed")] + "_observed")]
    if not kinds:
        raise _SkipError("daily.parquet has no <event>_misattributed column (no face-matching camera).")
    _need(data, "daily", "day")
    daily = data.frame("daily", "day", *[f"{k}_{s}" for k in kinds for s in ("observed", "misattributed")])
    days = values(daily["day"])
    observed = daily.select(pl.sum_horizontal([f"{k}_observed" for k in kinds]))[:, 0]
    wrong = daily.select(pl.sum_horizontal([f"{k}_misattributed" for k in kinds]))[:, 0]
    if not observed.fill_null(0).sum():
        raise _SkipError("cameras detected nothing during the run.")
    cum_obs, cum_wrong = observed.cum_sum().cast(pl.Float64), wrong.cum_sum().cast(pl.Float64)
    share = (cum_wrong / cum_obs * 100).fill_nan(None).round(4)
    by_group = _innocents_by_group(data, kinds)
    cols = 2 if by_group else 1
    fig = make_subplots(rows=2, cols=cols, shared_xaxes=False, vertical_spacing=0.1, horizontal_spacing=0.16,
                        row_heights=[0.5, 0.5], column_widths=[0.64, 0.36] if by_group else None,
                        specs=[[{}, {"rowspan": 2}], [{"secondary_y": True}, None]] if by_group
                        else [[{}], [{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=days, y=values(observed), name="detected",
                         marker={"color": th.rgba(th.BLUE, 0.55), "line": {"width": 0}}), 1, 1)
    fig.add_trace(go.Bar(x=days, y=values(wrong), name="pinned on an innocent",
                         marker={"color": th.rgba(th.RED, 0.75), "line": {"width": 0}}), 2, 1)
    fig.add_trace(go.Scatter(x=days, y=values(share), name="innocent share so far", mode="lines",
                             line={"color": th.INK, "width": 2}), 2, 1, secondary_y=True)
    if by_group:
        names = [name for name, _, _ in by_group]
        rates = [rate for _, rate, _ in by_group]
        fig.add_trace(go.Bar(x=rates, y=names, orientation="h", showlegend=False, width=0.6,
                             marker={"color": [th.rgba(th.RED, 0.85) if i % 2 == 0 else th.rgba(th.RED, 0.4)
                                               for i in range(len(names))]},
                             text=[f"{r:.2f}" for r in rates], textposition="outside", cliponaxis=False,
                             textfont={"size": 10, "color": th.MUTED}, customdata=[n for _, _, n in by_group],
                             hovertemplate="%{y}: %{x:.3f} per 1,000 (%{customdata:,} citizens)<extra></extra>"),
                      1, 2)
        fig.update_xaxes(title_text="innocents blamed per 1,000 (panel)", rangemode="tozero",
                         range=[0, max([*rates, 0.01]) * 1.3], row=1, col=2)
        fig.update_yaxes(autorange="reversed", row=1, col=2)
    fig.update_layout(**th.layout(hovermode="x unified", bargap=0))
    th.style_axes(fig)
    fig.update_yaxes(title_text="detected / day", rangemode="tozero", row=1, col=1)
    fig.update_yaxes(title_text="innocents / day", rangemode="tozero", row=2, col=1, secondary_y=False)
    fig.update_yaxes(title_text="innocent share", rangemode="tozero", row=2, col=1, secondary_y=True,
                     showgrid=False, ticksuffix="%", tickformat=".1f", nticks=4)
    fig.update_xaxes(title_text="day", row=2, col=1)
    total_obs, total_wrong = int(observed.sum()), int(wrong.sum())
    per_kind = ", ".join(f"{k.replace('_', ' ')} {int(daily[f'{k}_misattributed'].sum()):,} of "
                         f"{int(daily[f'{k}_observed'].sum()):,}" for k in kinds)
    note = (f"{total_wrong:,} of {total_obs:,} camera detections were pinned on an innocent "
            f"({total_wrong / total_obs:.2%}; {per_kind})." if total_obs else "No detections.")
    return _chart("misattribution", "Misattribution by cameras: innocents punished",
                  f"Acts detected by face-matching cameras ({', '.join(k.replace('_', ' ') for k in kinds)}) each "
                  "day and those whose penalty went to an innocent after a false match, with the running innocent "
                  "share" + (" and, right, innocents blamed per 1,000 citizens of each group." if by_group else "."),
                  fig, wide=bool(by_group), height=440, note=note)


def _innocents_by_group(data: RunData, kinds: list[str]) -> list[tuple[str, float, int]]:
    """Misattributed penalties received per 1,000 panel citizens, for each side of each two-sided group."""
    if not data.has("events", "misattributed") or not data.has("citizens", "in_panel"):
        return []
    cols = [c for c in ("female", "minority", "urban") if data.has("citizens", c)]
    if not cols:
        return []
    ev = (pl.scan_parquet(data.run.path / "events.parquet")
          .filter(pl.col("misattributed") & pl.col("kind").cast(pl.String).is_in(kinds))
          .group_by(pl.col("attributed_to").alias("citizen")).agg(pl.len().alias("blamed")).collect())
    cz = (pl.read_parquet(data.run.path / "citizens.parquet", columns=["citizen", "in_panel", *cols])
          .filter(pl.col("in_panel")).join(ev, on="citizen", how="left").with_columns(pl.col("blamed").fill_null(0)))
    out = []
    for column, yes, no in (("female", "women", "men"), ("minority", "minority", "majority"),
                            ("urban", "urban", "rural")):
        if column not in cz.columns:
            continue
        for flag, name in ((True, yes), (False, no)):
            sub = cz.filter(pl.col(column).cast(pl.Boolean) == flag)
            if sub.height:
                out.append((name, round(1000 * float(sub["blamed"].sum()) / sub.height, 4), sub.height))
    return out


def cascade(data: RunData) -> Chart:
    """Histogram of income loss (1 − income / income0): ever listed vs never listed (or refused vs not)."""
    import plotly.graph_objects as go

    _need(data, "citizens", "income", "income0")
    cz = data.frame("citizens", "income", "income0")
    loss = (1.0 - cz["income"].to_numpy().astype(np.float64) / cz["income0"].to_numpy()) * 100
    listed_ever = (data.frame("citizens", "listed_ever")["listed_ever"].to_numpy().astype(bool)
                   if data.court_list is not None and data.has("citizens", "listed_ever") else None)
    if listed_ever is not None and listed_ever.any():
        split = [(listed_ever, "ever listed", th.RED), (~listed_ever, "never listed", th.GREY)]
        what = "citizens ever on the court list and those never listed"
    else:
        refused = _refused_citizens(data)
        if refused is None or not refused[0].any():
            raise _SkipError("nobody was listed or refused a service, so there is no cascade to show.")
        flag, panel = refused
        split = [(flag, "refused a service", th.RED), (panel & ~flag, "never refused", th.GREY)]
        what = "panel citizens refused a service at least once and those never refused"
    step = 2.5
    top = max(float(np.nanmax(loss)) if len(loss) else 0.0, 10.0)
    edges = np.arange(-step / 2, top + step, step)
    centres = (edges[:-1] + step / 2).round(2)
    fig = go.Figure()
    notes = []
    for mask, name, colour in split:
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
    return _chart("cascade", "Cascade: income lost after sanctions",
                  f"Distribution of income loss, 1 − income / initial income, for {what}.", fig, height=380,
                  note="; ".join(notes) + ".")


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
    return _chart("chilling", "Chilling of speech",
                  f"True critical posts written each day across the population, with a {MA_DAYS}-day moving "
                  "average.", fig, height=380, note=note)


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
                        subplot_titles=("friendships cut per day", "share of friendships still active"))
    fig.add_trace(go.Bar(x=values(cut["day"]), y=values(cut["edges_cut"]), name="friendships cut",
                         marker={"color": th.AMBER}, showlegend=False,
                         hovertemplate="day %{x}: %{y:,} cut<extra></extra>"), 1, 1)
    cz = data.frame("citizens", "degree", "active_degree", "listed").filter(pl.col("degree") > 0)
    frac = (cz["active_degree"].cast(pl.Float64) / cz["degree"]).to_numpy() * 100
    listed = cz["listed"].to_numpy().astype(bool)
    edges = np.arange(-5.0, 110.0, 10.0)
    for mask, name, colour in ((listed, "listed now", th.RED), (~listed, "not listed", th.GREY)):
        if not mask.any():
            continue
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
    return _chart("network", "Network fragmentation",
                  "Friendships cut each day because one end was listed or shamed (left) and the share of each "
                  "citizen's friendships still active, listed versus not listed citizens (right).", fig,
                  wide=True, height=380, note=note)


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


def system_facts(data: RunData) -> list[dict[str, str]]:
    """One line per system of the scenario, for the report's header."""
    out = [{"kind": s.label, "key": f"scoring.{s.name}",
            "text": f"{s.range_text}, held by {s.holder_words}"
                    + (f"; adverse below {s.cut:g} ({s.cut_rule})" if s.cut is not None else "")}
           for s in data.systems]
    for name, t in tables(data.scenario, "records", "court-list"):
        out.append({"kind": "court list", "key": f"records.{name}", "text": f"listed for {t.get('term_days', '?')} "
                    "days after a defaulted judgment"})
    found = points_table(data.scenario)
    if found:
        name, t = found
        out.append({"kind": "municipal points", "key": f"records.{name}",
                    "text": f"base {t.get('base', '?')}, grades {', '.join(g['name'] for g in data.grades())}"})
    for name, t in tables(data.scenario, "records", "honour-list"):
        out.append({"kind": "red list", "key": f"records.{name}", "text": f"rule “{t.get('rule', '?')}”"})
    for name, t in tables(data.scenario, "consequences", "shame-board"):
        out.append({"kind": "shame board", "key": f"consequences.{name}",
                    "text": "shows observed " + ", ".join(k.replace("_", " ") for k in t.get("events") or [])})
    if data.services:
        bans = [s.short for s in data.services.values() if s.ban]
        perks = [s.short for s in data.services.values() if not s.ban]
        text = "; ".join(p for p in (f"bans: {', '.join(bans)}" if bans else "",
                                     f"perks: {', '.join(perks)}" if perks else "") if p)
        out.append({"kind": "services", "key": "consequences", "text": text})
    return out


def panel_lede(data: RunData) -> str:
    """One sentence saying which citizens the per-citizen charts cover."""
    panel = data.run.manifest.get("panel_citizens")
    n = data.run.summary.get("citizens")
    if isinstance(panel, int) and isinstance(n, int) and panel < n:
        return (f"Scores over time come from a fixed random panel of {panel:,} of the {n:,} citizens; "
                "end-of-run figures use every citizen.")
    return "Scores over time cover every citizen (the panel is the whole population)."


#: Headline tiles from summary.json: metric, label, format kind for ``format_number``, what the scenario needs.
HEADLINE = (
    ("p_mean", "mean platform score", "", "score"),
    ("p_share_below_550", "platform score below 550, all citizens", "pct", "score"),
    ("listed_now_share", "on the court list at the end", "pct", "court"),
    ("listed_ever_share", "ever listed", "pct", "court"),
    ("denied_trips_per_1000", "trips denied per 1,000 citizens", "", "trip"),
    ("misattributed_per_1000", "penalties given to innocents per 1,000", "", "camera"),
    ("shame_board_innocent_share", "innocent share of the shame board", "pct", "camera"),
    ("chilling_reduction", "fall in critical posts, first vs last 30 days", "pct", ""),
    ("di_listed_ever_minority", "listed-ever rate, minority / majority", "ratio", "court"),
    ("income_loss_listed_ever", "mean income loss of the ever listed", "pct", "court"),
)


def headline(metrics: dict[str, Any], data: RunData | None = None) -> list[dict[str, str]]:
    """The headline tiles: key, label and formatted value of each headline metric the run's scenario has.

    With ``data``, metrics of systems the scenario lacks are left out and tiles computed from the run's tables
    are added (each secondary score's mean, refusals by every service, the red list); at most ``MAX_TILES``."""
    if data is None:
        return [{"key": key, "label": label, "value": format_number(metrics.get(key), kind)}
                for key, label, kind, _ in HEADLINE if key in metrics]
    has = {"score": any(s.column == "score" for s in data.systems), "court": data.court_list is not None,
           "trip": data.has("daily", "trip_denied"), "camera": bool(camera_kinds(data.scenario)), "": True}
    primary = next((s for s in data.systems if s.column == "score"), None)
    extra = _computed_tiles(data)
    tiles: list[dict[str, str]] = []
    for key, label, kind, needs in HEADLINE:
        if key == "listed_now_share":  # after the scores
            tiles += extra["scores"]
        if key == "misattributed_per_1000":  # after the court list and its bans
            tiles += extra["refusals"]
        if not has[needs] or metrics.get(key) is None:
            continue
        if key == "p_mean" and primary is not None:
            label = f"mean {primary.label} ({primary.name}), all citizens"
        if key == "p_share_below_550" and primary is not None and (primary.low, primary.high) != (350, 950):
            continue
        tiles.append({"key": key, "label": label, "value": format_number(metrics[key], kind)})
    tiles += extra["lists"]
    return tiles[:MAX_TILES]


def _computed_tiles(data: RunData) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {"scores": [], "refusals": [], "lists": []}
    n = data.run.summary.get("citizens") or 0
    for s in data.systems:
        if s.column == "score" or not data.has("citizens", s.column):
            continue
        mask, _ = data.holders(s)
        vals = data.frame("citizens", s.column)[s.column].to_numpy()[mask]
        if len(vals):
            out["scores"].append({"key": f"citizens.{s.column}", "label": f"mean {s.label}, {s.holder_words}",
                                  "value": format_number(float(vals.mean()))})
    services = {e: r for e, r in data.services.items() if e not in ("trip",)}
    if services and n:
        daily = data.frame("daily", *[f"{e}_denied" for e in services])
        total = float(sum(daily[c].sum() for c in daily.columns))
        out["refusals"].append({"key": "daily.*_denied", "label": "service requests refused per 1,000 citizens",
                                "value": format_number(1000 * total / n)})
    for name, _ in tables(data.scenario, "records", "honour-list"):
        if data.has("citizens", name) and n:
            share = float(data.frame("citizens", name)[name].cast(pl.Float64).mean() or 0.0)
            out["lists"].append({"key": f"citizens.{name}", "label": "on the red list at the end",
                                 "value": format_number(share, "pct")})
    return out
