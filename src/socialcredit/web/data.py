"""What the dashboard shows, computed from run directories (read-only) and cached in memory.

One ``RunData`` per run named on the command line. Tables are read once with
only the columns needed; the report's charts and each explained citizen are
built once and kept as JSON bytes.
"""

from __future__ import annotations

import json
import threading
from collections import OrderedDict
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from socialcredit.analysis.theme import _plain
from socialcredit.api import Run
from socialcredit.errors import UserError

#: Explanations kept in memory per server (least recently used dropped first).
EXPLAIN_CACHE = 256
#: The lists a citizen can be picked from.
PICKS = {
    "penalised": "lowest municipal points at the end of the run (most deductions)",
    "misattributed": "most camera penalties for someone else's act (innocents)",
    "listed": "on the court list at the end of the run, longest listed first",
}
MAX_PAGE = 200


def dumps(value: Any) -> bytes:
    """Strict JSON (no NaN), numpy values made plain."""
    return json.dumps(_plain(value), allow_nan=False, separators=(",", ":"), ensure_ascii=False).encode()


class NotFoundError(Exception):
    """Something the client asked for does not exist (answered 404)."""


class RunData:
    """One run directory, as the dashboard sees it."""

    def __init__(self, name: str, run: Run) -> None:
        self.name = name
        self.run = run
        self._lock = threading.Lock()
        self._explain_locks: dict[int, threading.Lock] = {}
        self._explained: OrderedDict[int, bytes] = OrderedDict()

    # -- basics ----------------------------------------------------------------

    @cached_property
    def citizens_n(self) -> int:
        return int(self.run.summary["citizens"])

    @cached_property
    def days(self) -> int:
        return int(self.run.summary["days"])

    def check_citizen(self, citizen: int) -> int:
        if not 0 <= citizen < self.citizens_n:
            raise NotFoundError(f"citizen {citizen} is not in run {self.name!r} (citizens 0..{self.citizens_n - 1})")
        return citizen

    def has(self, table: str) -> bool:
        return (self.run.path / f"{table}.parquet").is_file()

    def read(self, table: str, *columns: str) -> pl.DataFrame:
        path = self.run.path / f"{table}.parquet"
        if not path.is_file():
            raise NotFoundError(f"run {self.name!r} has no {table}.parquet")
        present = set(pl.read_parquet_schema(path))
        missing = [c for c in columns if c not in present]
        if missing:
            raise NotFoundError(f"{table}.parquet of run {self.name!r} has no column(s) {', '.join(missing)}")
        return pl.read_parquet(path, columns=list(columns))

    @cached_property
    def citizens(self) -> pl.DataFrame:
        return pl.read_parquet(self.run.path / "citizens.parquet").sort("citizen")

    def info(self) -> dict[str, Any]:
        from socialcredit.analysis.report import run_facts

        facts = run_facts(self.run)
        facts.pop("path", None)
        return {"name": self.name, **facts}

    def summary(self) -> dict[str, Any]:
        from socialcredit.analysis.report import headline, panel_lede

        return {"run": self.info(), "headline": headline(self.run.metrics), "metrics": self.run.metrics,
                "panel_note": panel_lede(self._report_data)}

    # -- the report's charts -----------------------------------------------------

    @cached_property
    def _report_data(self) -> Any:
        from socialcredit.analysis.report import RunData

        return RunData(self.run)

    @cached_property
    def charts_json(self) -> bytes:
        """The report's chart groups, each chart with its plotly figure as JSON data."""
        from socialcredit.analysis import report as rp

        data = self._report_data
        groups = [
            ("Scores and grades", rp.panel_lede(data), [rp._guard(rp.score_distribution, data),
                                                         rp._guard(rp.grade_shares, data)]),
            ("The court list and its sanctions", "", [rp._guard(rp.list_size, data), rp._guard(rp.denials, data)]),
            ("Disparate impact", "Rates of adverse outcomes by group; ratios are group / reference group "
             f"(minority / majority, urban / rural, Qk / Q5, region / other regions). Outside {rp.FOUR_FIFTHS} – "
             f"{rp.UPPER} signals disparate impact under the four-fifths rule.",
             rp._guard_many(rp.disparate_impact, data)),
            ("Side effects", "", [rp._guard(rp.misattribution, data), rp._guard(rp.cascade, data),
                                  rp._guard(rp.chilling, data), rp._guard(rp.network, data)]),
        ]
        out = []
        for title, lede, charts in groups:
            out.append({"title": title, "lede": lede, "charts": [{
                "id": c.id, "title": c.title, "caption": c.caption, "note": c.note, "wide": c.wide,
                "height": c.height, "table": c.table,
                "figure": json.loads(c.figure_json) if c.figure_json else None,
            } for c in charts]})
        return dumps({"run": self.name, "groups": out})

    # -- citizens ----------------------------------------------------------------

    def citizen(self, citizen: int) -> dict[str, Any]:
        self.check_citizen(citizen)
        row = self.citizens.row(citizen, named=True)
        if row["citizen"] != citizen:  # not sorted densely: look it up
            found = self.citizens.filter(pl.col("citizen") == citizen)
            if found.is_empty():
                raise NotFoundError(f"citizen {citizen} is not in run {self.name!r}")
            row = found.row(0, named=True)
        return _plain(row)

    @cached_property
    def _blamed(self) -> pl.DataFrame:
        """Per citizen: observed penalties received and how many were someone else's act."""
        if not self.has("events"):
            return pl.DataFrame(schema={"citizen": pl.Int32, "penalties": pl.UInt32, "misattributed": pl.UInt32})
        ev = self.read("events", "attributed_to", "observed", "misattributed").filter(pl.col("observed"))
        return (ev.group_by(pl.col("attributed_to").alias("citizen"))
                .agg(pl.len().alias("penalties"), pl.col("misattributed").sum().alias("misattributed")))

    def picks(self, kind: str, limit: int) -> dict[str, Any]:
        if kind not in PICKS:
            raise NotFoundError(f"unknown list {kind!r} (lists: {', '.join(PICKS)})")
        cz = self.citizens.select("citizen", "region", "urban", "minority", "score", "points", "grade", "listed",
                                  "listed_since")
        if kind == "penalised":
            rows = cz.sort(["points", "score", "citizen"]).head(limit)
        elif kind == "listed":
            rows = cz.filter(pl.col("listed")).sort(["listed_since", "citizen"]).head(limit)
        else:
            blamed = self._blamed.filter(pl.col("misattributed") > 0)
            rows = (blamed.join(cz, on="citizen").sort(["misattributed", "citizen"], descending=[True, False])
                    .head(limit))
        rows = rows.join(self._blamed.select("citizen", "misattributed", "penalties"), on="citizen", how="left") \
            if "misattributed" not in rows.columns else rows
        return {"run": self.name, "list": kind, "description": PICKS[kind], "citizens": _plain(rows.to_dicts())}

    def explain(self, citizen: int) -> bytes:
        """The explain view of one citizen (a replay of the run, cached)."""
        self.check_citizen(citizen)
        with self._lock:
            if citizen in self._explained:
                self._explained.move_to_end(citizen)
                return self._explained[citizen]
            lock = self._explain_locks.setdefault(citizen, threading.Lock())
        with lock:
            with self._lock:
                if citizen in self._explained:
                    return self._explained[citizen]
            from socialcredit.analysis.explain import explain

            doc = explain(self.run.path, citizen).to_dict()
            doc["run"] = self.name
            doc["stored"] = self.citizen(citizen)
            doc["monthly"] = self._monthly(citizen)
            blob = dumps(doc)
            with self._lock:
                self._explained[citizen] = blob
                while len(self._explained) > EXPLAIN_CACHE:
                    self._explained.popitem(last=False)
                self._explain_locks.pop(citizen, None)
            return blob

    def _monthly(self, citizen: int) -> list[dict[str, Any]]:
        if not self.has("scores_monthly"):
            return []
        frame = pl.scan_parquet(self.run.path / "scores_monthly.parquet").filter(pl.col("citizen") == citizen)
        return frame.sort("day").collect().to_dicts()

    # -- shame board ---------------------------------------------------------------

    @cached_property
    def _board(self) -> pl.DataFrame:
        if not self.has("events"):
            raise NotFoundError(f"run {self.name!r} has no events.parquet")
        ev = (pl.scan_parquet(self.run.path / "events.parquet")
              .filter((pl.col("kind").cast(pl.String) == "jaywalk") & pl.col("observed"))
              .select("day", pl.col("citizen").alias("actor"), pl.col("attributed_to").alias("citizen"),
                      "misattributed")
              .collect())
        regions = self.citizens.select("citizen", "region", "points", "grade")
        return ev.join(regions, on="citizen", how="left").sort(["day", "citizen"], descending=[True, False])

    def shame(self, offset: int, limit: int, innocent_only: bool) -> dict[str, Any]:
        board = self._board
        total, innocent = board.height, int(board["misattributed"].sum())
        shown = board.filter(pl.col("misattributed")) if innocent_only else board
        page = shown.slice(offset, limit)
        # actor is who really did it: shown only for misattributed rows, to explain the error
        rows = page.with_columns(actor=pl.when(pl.col("misattributed")).then(pl.col("actor")).otherwise(None))
        panel = self.run.manifest.get("panel_citizens")
        return {
            "run": self.name, "total": total, "innocent": innocent,
            "innocent_share": innocent / total if total else None,
            "metric_innocent_share": self.run.metrics.get("shame_board_innocent_share"),
            "matching": shown.height, "offset": offset, "limit": limit,
            "panel_citizens": panel, "citizens": self.citizens_n,
            "entries": _plain(rows.to_dicts()),
        }

    # -- lists and bans --------------------------------------------------------------

    @cached_property
    def regions(self) -> list[int]:
        return sorted(int(r) for r in self.citizens["region"].unique().to_list())

    def lists(self, region: int | None, minority: bool | None, urban: bool | None) -> dict[str, Any]:
        if region is not None and region not in self.regions:
            raise NotFoundError(f"region {region} is not in run {self.name!r} (regions {self.regions[0]}.."
                                f"{self.regions[-1]})")
        cz = self.citizens.select("citizen", "region", "minority", "urban", "listed", "listed_ever", "in_panel")
        group = cz.filter(_filter(region, minority, urban))
        days = self.days
        daily = self.read("daily", "day", "listed_now", "listings", "removals_repaid", "removals_term",
                          "trip_denied", "loan_application_denied")
        out: dict[str, Any] = {
            "run": self.name, "filter": {"region": region, "minority": minority, "urban": urban},
            "regions": self.regions, "group_citizens": group.height, "citizens": self.citizens_n,
            "days": daily["day"].to_list(), "all": {k: daily[k].to_list() for k in daily.columns if k != "day"},
        }
        intervals = self.read("lists", "citizen", "start_day", "end_day", "exit").join(
            group.select("citizen"), on="citizen", how="semi")
        start = intervals["start_day"].to_numpy().astype(np.int64)
        end = intervals["end_day"].fill_null(days).to_numpy().astype(np.int64)
        steps = np.zeros(days + 1, dtype=np.int64)
        np.add.at(steps, np.clip(start, 0, days), 1)
        np.add.at(steps, np.clip(end, 0, days), -1)
        listed_now = np.cumsum(steps)[:days]
        entries = np.bincount(np.clip(start, 0, days), minlength=days + 1)[:days]
        ended = intervals.filter(pl.col("end_day").is_not_null())
        exits = {}
        for reason in ("repaid", "term_ended"):
            e = ended.filter(pl.col("exit").cast(pl.String) == reason)["end_day"].to_numpy().astype(np.int64)
            exits[reason] = np.bincount(np.clip(e, 0, days), minlength=days + 1)[:days]
        per = 1000 / group.height if group.height else None
        out["group"] = {
            "listed_now": listed_now, "entries": entries, "exits_repaid": exits["repaid"],
            "exits_term_ended": exits["term_ended"],
            "listed_now_per_1000": None if per is None else np.round(listed_now * per, 4),
            "listed_at_end": int(group["listed"].sum()), "listed_ever": int(group["listed_ever"].sum()),
        }
        out["bans"] = self._bans(group)
        by_region = (cz.filter(_filter(None, minority, urban)).group_by("region")
                     .agg(pl.len().alias("citizens"), pl.col("listed").sum().alias("listed_now"),
                          pl.col("listed_ever").sum().alias("listed_ever")).sort("region")
                     .with_columns((pl.col("listed_now") / pl.col("citizens") * 1000).round(3).alias("per_1000"),
                                   (pl.col("listed_ever") / pl.col("citizens") * 1000).round(3)
                                   .alias("ever_per_1000")))
        out["by_region"] = by_region.to_dicts()
        groups = []
        for col, yes, no in (("minority", "minority", "majority"), ("urban", "urban", "rural")):
            for flag, label in ((True, yes), (False, no)):
                sub = group.filter(pl.col(col) == flag)
                groups.append({"grouping": col, "group": label, "citizens": sub.height,
                               "listed_now": int(sub["listed"].sum()), "listed_ever": int(sub["listed_ever"].sum())})
        out["by_group"] = groups
        return _plain(out)

    @cached_property
    def _denied(self) -> pl.DataFrame:
        return (pl.scan_parquet(self.run.path / "events.parquet")
                .filter(pl.col("denied") & pl.col("kind").cast(pl.String).is_in(["trip", "loan_application"]))
                .select("day", "citizen", pl.col("kind").cast(pl.String)).collect())

    def _bans(self, group: pl.DataFrame) -> dict[str, Any]:
        """Denied trips and loans per day for the group's panel citizens (events cover the panel only)."""
        days = self.days
        panel = group.filter(pl.col("in_panel"))
        if not self.has("events"):
            return {"panel_citizens": panel.height, "trips_denied": [], "loans_denied": []}
        ev = self._denied.join(panel.select("citizen"), on="citizen", how="semi")
        out: dict[str, Any] = {"panel_citizens": panel.height}
        for kind, key in (("trip", "trips_denied"), ("loan_application", "loans_denied")):
            d = ev.filter(pl.col("kind") == kind)["day"].to_numpy().astype(np.int64)
            out[key] = np.bincount(np.clip(d, 0, days), minlength=days + 1)[:days]
        return out

    # -- audit -------------------------------------------------------------------------

    def audit(self) -> dict[str, Any]:
        """Findings for the run's scenario and four-fifths disparate impact (computed once)."""
        return self._audit

    @cached_property
    def _audit(self) -> dict[str, Any]:
        try:
            from socialcredit.analysis.audit import audit_scenario, disparate_impact
        except ImportError:
            return {"run": self.name, "available": False, "message": "audit not available in this version",
                    "findings": [], "disparate_impact": []}
        scenario = self.run.manifest.get("scenario") or self.run.scenario
        findings = [f.to_dict() for f in audit_scenario(scenario)]
        try:
            impact = disparate_impact(self.run.path)
        except UserError as exc:
            impact, note = [], str(exc)
        else:
            note = ""
        return _plain({"run": self.name, "scenario": self.run.scenario, "available": True, "message": note,
                       "findings": findings, "disparate_impact": impact})


def _filter(region: int | None, minority: bool | None, urban: bool | None) -> pl.Expr:
    """Citizens of a region and group (None: any)."""
    out = pl.lit(True)
    if region is not None:
        out = out & (pl.col("region") == region)
    if minority is not None:
        out = out & (pl.col("minority") == minority)
    if urban is not None:
        out = out & (pl.col("urban") == urban)
    return out


class Store:
    """The runs a server shows, by name (the run directory's basename as given)."""

    def __init__(self, run_dirs: list[str | Path]) -> None:
        from socialcredit.analysis.runs import open_run

        if not run_dirs:
            raise UserError("serve: name at least one run directory")
        self.runs: dict[str, RunData] = {}
        for d in run_dirs:
            path = Path(d)
            name = path.resolve().name if path.name in ("", ".", "..") else path.name
            if name in self.runs:
                raise UserError(f"{d}: two runs are named {name!r} (run names are the directories' basenames)")
            self.runs[name] = RunData(name, open_run(path))

    def get(self, name: str) -> RunData:
        try:
            return self.runs[name]
        except KeyError:
            raise NotFoundError(f"no run named {name!r} (runs: {', '.join(self.runs)})") from None
