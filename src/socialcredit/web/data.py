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
    "refused": "most service requests refused (bans and perks withheld)",
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
        from socialcredit.analysis.report import headline, panel_lede, system_facts

        data = self._report_data
        return {"run": self.info(), "headline": headline(self.run.metrics, data),
                "metrics": {k: v for k, v in self.run.metrics.items() if v is not None},
                "panel_note": panel_lede(data), "systems": system_facts(data)}

    # -- the report's charts -----------------------------------------------------

    @cached_property
    def _report_data(self) -> Any:
        from socialcredit.analysis.report import RunData

        return RunData(self.run)

    @cached_property
    def charts_json(self) -> bytes:
        """The report's chart groups, each chart with its plotly figure as JSON data."""
        from socialcredit.analysis import report as rp

        groups, omitted = rp.chart_groups(self._report_data)
        out = []
        for g in groups:
            out.append({"id": g["id"], "title": g["title"], "lede": g["lede"], "charts": [{
                "id": c.id, "title": c.title, "caption": c.caption, "note": c.note, "wide": c.wide,
                "height": c.height, "table": c.table,
                "figure": json.loads(c.figure_json) if c.figure_json else None,
            } for c in g["charts"]]})
        return dumps({"run": self.name, "groups": out, "omitted": omitted})

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

    @cached_property
    def _systems(self) -> Any:
        return self._report_data.systems

    @cached_property
    def _refused(self) -> pl.DataFrame:
        """Per panel citizen: service requests refused (events cover the panel)."""
        services = list(self._report_data.services)
        if not self.has("events") or not services:
            return pl.DataFrame(schema={"citizen": pl.Int32, "refused": pl.UInt32})
        return (pl.scan_parquet(self.run.path / "events.parquet")
                .filter(pl.col("denied") & pl.col("kind").cast(pl.String).is_in(services))
                .group_by("citizen").agg(pl.len().alias("refused")).collect())

    def picks(self, kind: str, limit: int) -> dict[str, Any]:
        from socialcredit.analysis.report import points_table

        if kind not in PICKS:
            raise NotFoundError(f"unknown list {kind!r} (lists: {', '.join(PICKS)})")
        scenario = self._report_data.scenario
        columns = [c for c in ("citizen", "region", "urban", "minority", "score", "points", "grade", "listed",
                               "listed_since", *[s.column for s in self._systems]) if c in self.citizens.columns]
        cz = self.citizens.select(list(dict.fromkeys(columns)))
        description = PICKS[kind]
        if kind == "penalised":
            first = next((s for s in self._systems if s.column in cz.columns), None)
            if points_table(scenario) is not None:
                rows = cz.sort(["points", "citizen"]).head(limit)
            elif first is not None:
                rows = cz.sort([first.column, "citizen"]).head(limit)
                description = f"lowest {first.label} ({first.name}) at the end of the run"
            else:
                rows = cz.join(self._refused, on="citizen").sort(["refused", "citizen"], descending=[True, False])
                rows = rows.head(limit)
                description = PICKS["refused"]
        elif kind == "listed":
            rows = cz.filter(pl.col("listed")).sort(["listed_since", "citizen"]).head(limit)
        elif kind == "refused":
            rows = (self._refused.join(cz, on="citizen").sort(["refused", "citizen"], descending=[True, False])
                    .head(limit))
        else:
            blamed = self._blamed.filter(pl.col("misattributed") > 0)
            rows = (blamed.join(cz, on="citizen").sort(["misattributed", "citizen"], descending=[True, False])
                    .head(limit))
        if "misattributed" not in rows.columns:
            rows = rows.join(self._blamed.select("citizen", "misattributed", "penalties"), on="citizen", how="left")
        if "refused" not in rows.columns:
            rows = rows.join(self._refused, on="citizen", how="left")
        out = _plain(rows.to_dicts())
        names = self._report_data.region_names
        for r in out:
            r["region_name"] = names.get(r.get("region"), f"region {r.get('region')}")
            r["summary"] = self._summary(r)
        return {"run": self.name, "list": kind, "description": description, "citizens": out}

    def _summary(self, r: dict[str, Any]) -> str:
        """One line on a picked citizen: grade and points, each score, refusals."""
        from socialcredit.analysis.report import points_table

        parts = []
        if points_table(self._report_data.scenario) is not None and "points" in r:
            parts.append((f"grade {r['grade']} · " if r.get("grade") is not None else "") + f"{r['points']} points")
        for s in self._systems:
            if r.get(s.column) is not None:
                parts.append(f"{s.name} {r[s.column]:.{1 if s.kind == 'peer-rating' else 0}f}")
        if r.get("refused"):
            parts.append(f"{r['refused']} refused")
        return " · ".join(parts)

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
              .filter(pl.col("kind").cast(pl.String).is_in(self.board_kinds) & pl.col("observed"))
              .select("day", pl.col("citizen").alias("actor"), pl.col("attributed_to").alias("citizen"),
                      pl.col("kind").cast(pl.String), "misattributed")
              .collect())
        regions = self.citizens.select([c for c in ("citizen", "region", "points", "grade")
                                        if c in self.citizens.columns])
        names = self._report_data.region_names
        board = ev.join(regions, on="citizen", how="left").sort(["day", "citizen"], descending=[True, False])
        return board.with_columns(region_name=pl.col("region").replace_strict(
            {int(k): v for k, v in names.items()}, default=None, return_dtype=pl.String))

    @cached_property
    def board_kinds(self) -> list[str]:
        """Event kinds shown on the board: the shame board's (the cameras' where the scenario has no board)."""
        from socialcredit.analysis.report import shame_kinds

        return shame_kinds(self._report_data.scenario) or ["jaywalk"]

    def shame(self, offset: int, limit: int, innocent_only: bool) -> dict[str, Any]:
        board = self._board
        total, innocent = board.height, int(board["misattributed"].sum())
        shown = board.filter(pl.col("misattributed")) if innocent_only else board
        page = shown.slice(offset, limit)
        # actor is who really did it: shown only for misattributed rows, to explain the error
        rows = page.with_columns(actor=pl.when(pl.col("misattributed")).then(pl.col("actor")).otherwise(None))
        panel = self.run.manifest.get("panel_citizens")
        return {
            "run": self.name, "kinds": self.board_kinds, "total": total, "innocent": innocent,
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
        """The court list (if the scenario has one) and refusals by service, for a province and group."""
        if region is not None and region not in self.regions:
            raise NotFoundError(f"region {region} is not in run {self.name!r} (regions {self.regions[0]}.."
                                f"{self.regions[-1]})")
        data = self._report_data
        extra = [c for c in ("hukou_urban", "female") if c in self.citizens.columns]
        cz = self.citizens.select("citizen", "region", "minority", "urban", "listed", "listed_ever", "in_panel",
                                  *extra)
        group = cz.filter(_filter(region, minority, urban))
        days = self.days
        names = data.region_names
        out: dict[str, Any] = {
            "run": self.name, "filter": {"region": region, "minority": minority, "urban": urban},
            "regions": self.regions, "region_names": {str(r): names.get(r, f"region {r}") for r in self.regions},
            "region_word": data.region_word, "group_citizens": group.height, "citizens": self.citizens_n,
            "days": list(range(days)), "court_list": None, "all": {}, "group": None,
        }
        has_court = data.court_list is not None and self.has("lists") and data.has("daily", "listed_now")
        if has_court:
            out["court_list"] = f"records.{data.court_list}"
            cols = [c for c in ("listed_now", "listings", "removals_repaid", "removals_term") if data.has("daily", c)]
            daily = self.read("daily", "day", *cols)
            out["days"] = daily["day"].to_list()
            out["all"] = {k: daily[k].to_list() for k in cols}
            out["group"] = self._court_group(group, days, initial=self._initial_listing)
        out["bans"] = self._bans(group)
        refused = self._refused
        panel = cz.filter(pl.col("in_panel")).join(refused, on="citizen", how="left").with_columns(
            pl.col("refused").fill_null(0))
        by_region = (cz.filter(_filter(None, minority, urban)).group_by("region")
                     .agg(pl.len().alias("citizens"), pl.col("listed").sum().alias("listed_now"),
                          pl.col("listed_ever").sum().alias("listed_ever")).sort("region")
                     .with_columns((pl.col("listed_now") / pl.col("citizens") * 1000).round(3).alias("per_1000"),
                                   (pl.col("listed_ever") / pl.col("citizens") * 1000).round(3)
                                   .alias("ever_per_1000")))
        refused_by_region = (panel.filter(_filter(None, minority, urban)).group_by("region")
                             .agg(pl.len().alias("panel"), (pl.col("refused") > 0).sum().alias("refused_citizens")))
        by_region = by_region.join(refused_by_region, on="region", how="left").with_columns(
            (pl.col("refused_citizens") / pl.col("panel") * 1000).round(3).alias("refused_per_1000"))
        rows = by_region.to_dicts()
        for r in rows:
            r["name"] = names.get(r["region"], f"region {r['region']}")
        out["by_region"] = rows
        groups = []
        families = [("minority", "minority", "majority"), ("urban", "urban", "rural"),
                    ("hukou_urban", "urban hukou", "rural hukou"), ("female", "women", "men")]
        for col, yes, no in families:
            if col not in group.columns:
                continue
            for flag, label in ((True, yes), (False, no)):
                sub = group.filter(pl.col(col).cast(pl.Boolean) == flag)
                sub_panel = panel.join(sub.select("citizen"), on="citizen", how="semi")
                groups.append({"grouping": col, "group": label, "citizens": sub.height,
                               "listed_now": int(sub["listed"].sum()) if has_court else None,
                               "listed_ever": int(sub["listed_ever"].sum()) if has_court else None,
                               "panel": sub_panel.height,
                               "refused_citizens": int((sub_panel["refused"] > 0).sum()),
                               "refused": int(sub_panel["refused"].sum())})
        out["by_group"] = groups
        return _plain(out)

    @cached_property
    def _initial_listing(self) -> bool:
        """Whether the court list starts non-empty (``initial_share``): day-0 intervals are then not entries."""
        from socialcredit.analysis.report import config, tables

        found = tables(self._report_data.scenario, "records", "court-list")
        return bool(found) and float(config("records", found[0][1]).get("initial_share") or 0) > 0

    def _court_group(self, group: pl.DataFrame, days: int, initial: bool = False) -> dict[str, Any]:
        """Court-list size, entries and exits per day for the citizens of ``group`` (from lists.parquet); with
        ``initial``, those listed when the run starts are counted apart (``listed_at_start``), not as entries."""
        intervals = self.read("lists", "citizen", "start_day", "end_day", "exit").join(
            group.select("citizen"), on="citizen", how="semi")
        start = intervals["start_day"].to_numpy().astype(np.int64)
        end = intervals["end_day"].fill_null(days).to_numpy().astype(np.int64)
        steps = np.zeros(days + 1, dtype=np.int64)
        np.add.at(steps, np.clip(start, 0, days), 1)
        np.add.at(steps, np.clip(end, 0, days), -1)
        listed_now = np.cumsum(steps)[:days]
        entries = np.bincount(np.clip(start, 0, days), minlength=days + 1)[:days]
        at_start = 0
        if initial and days:
            at_start, entries[0] = int(entries[0]), 0
        ended = intervals.filter(pl.col("end_day").is_not_null())
        exits = {}
        for reason in ("repaid", "term_ended"):
            e = ended.filter(pl.col("exit").cast(pl.String) == reason)["end_day"].to_numpy().astype(np.int64)
            exits[reason] = np.bincount(np.clip(e, 0, days), minlength=days + 1)[:days]
        per = 1000 / group.height if group.height else None
        return {
            "listed_now": listed_now, "entries": entries, "exits_repaid": exits["repaid"],
            "exits_term_ended": exits["term_ended"],
            "listed_now_per_1000": None if per is None else np.round(listed_now * per, 4),
            "listed_at_end": int(group["listed"].sum()), "listed_ever": int(group["listed_ever"].sum()),
            "listed_at_start": at_start,
        }

    @cached_property
    def _denied(self) -> pl.DataFrame:
        services = list(self._report_data.services)
        return (pl.scan_parquet(self.run.path / "events.parquet")
                .filter(pl.col("denied") & pl.col("kind").cast(pl.String).is_in(services))
                .select("day", "citizen", pl.col("kind").cast(pl.String)).collect())

    @cached_property
    def _service_totals(self) -> dict[str, tuple[int | None, int]]:
        """Per service: requests and refusals over the run, everyone (daily.parquet)."""
        data = self._report_data
        out: dict[str, tuple[int | None, int]] = {}
        for event in data.services:
            cols = [f"{event}_denied"] + ([event] if data.has("daily", event) else [])
            daily = self.read("daily", *cols)
            out[event] = (int(daily[event].sum()) if event in daily.columns else None,
                          int(daily[f"{event}_denied"].sum()))
        return out

    def _bans(self, group: pl.DataFrame) -> dict[str, Any]:
        """Refused requests per day and service for the group's panel citizens (events cover the panel only),
        with each service's rule and its totals over everyone."""
        days = self.days
        panel = group.filter(pl.col("in_panel"))
        services = self._report_data.services
        ev = (self._denied.join(panel.select("citizen"), on="citizen", how="semi") if self.has("events")
              else pl.DataFrame(schema={"day": pl.Int16, "citizen": pl.Int32, "kind": pl.String}))
        rows = []
        for event, rule in services.items():
            d = ev.filter(pl.col("kind") == event)["day"].to_numpy().astype(np.int64)
            per_day = np.bincount(np.clip(d, 0, days), minlength=days + 1)[:days]
            requests, refused_all = self._service_totals[event]
            rows.append({"event": event, "label": rule.label, "short": rule.short, "agency": rule.agency,
                         "context": rule.context, "ban": rule.ban, "rule": rule.key, "formula": rule.formula,
                         "refused": per_day, "refused_total": int(per_day.sum()), "all_requests": requests,
                         "all_refused": refused_all})
        rows.sort(key=lambda r: (not r["ban"], -r["all_refused"], r["event"]))
        return {"panel_citizens": panel.height, "services": rows}

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
        names = self._report_data.region_names
        for row in impact:  # provinces by name where the population has them
            if row.get("grouping") == "region" and isinstance(row.get("group"), str):
                k = row["group"].removeprefix("region ").strip()
                if k.isdigit() and int(k) in names:
                    row["group"] = names[int(k)]
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
