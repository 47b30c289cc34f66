"""Explain one citizen's outcome: timeline, score decomposition, reason codes, sanctions, counterfactual.

The run is replayed from its manifest (same scenario, seed and size, so the
same world), tracing one citizen; a second replay spares that citizen every
camera misattribution (a correct camera blames the real actor instead), and
the two trajectories are compared.

Every scoring system that logs its parts (the reference score and the
``sesame``/``tencent``/``scorecard`` kinds) is decomposed on each scoring day:

    score = low + (high − low) · clip((Σ_d w_d · v_d − raw_offset) / raw_scale, 0, 1)

with each dimension's contribution in score points, the values the dimension's
formula read (captured during the replay), and, from one scoring day to the
next, which dimension moved and which of its inputs changed. Reason codes
follow the style of adverse-action notices (US Regulation B, 12 CFR 1002.9):
for each scoring system, the principal factors, at most four, that kept the
score below its maximum, largest first. Every sanction names the rule behind
it by its scenario key path (``consequences.flight.deny``) with the rule's
formula text.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from socialcredit.analysis.report import (
    ScoreSystem,
    ServiceRule,
    config,
    points_table,
    region_names,
    score_systems,
    service_rules,
    shame_kinds,
    tables,
)
from socialcredit.analysis.runs import open_run
from socialcredit.errors import UserError

MAX_REASONS = 4
#: Smallest change, in score points, reported as a dimension that moved.
MOVED = 0.05
#: Population attributes shown in the profile, when the population has them.
EXTRA_PROFILE = ("age", "female", "hukou_urban", "education", "messaging", "consent", "parent", "wealth", "debt",
                 "sociability", "conscientiousness")


@dataclass
class Explanation:
    """Everything ``explain`` knows about one citizen of one run."""

    citizen: int
    run: str
    scenario: str
    profile: dict[str, Any]
    events: list[dict[str, Any]]
    scores: list[dict[str, Any]]
    listings: list[dict[str, Any]]
    sanctions: list[dict[str, Any]]
    reasons: list[dict[str, Any]]
    final: dict[str, Any]
    counterfactual: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)
    systems: list[dict[str, Any]] = field(default_factory=list)
    rewards: list[dict[str, Any]] = field(default_factory=list)
    honours: list[dict[str, Any]] = field(default_factory=list)
    series: dict[str, list[Any]] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return dict(self.__dict__)


def explain(run_dir: str | Path, citizen: int, counterfactual: bool = True) -> Explanation:
    """Replay the run at ``run_dir`` and explain what happened to ``citizen``."""
    from socialcredit.scenario import Scenario

    run = open_run(run_dir)
    m = run.manifest
    n, days, seed = int(m["citizens"]), int(m["days"]), int(m["seed"])
    if not 0 <= citizen < n:
        raise UserError(f"--citizen {citizen}: out of range (this run has citizens 0..{n - 1})")
    scenario = Scenario(m["scenario"], m.get("scenario_source", str(run.path)))
    world = _Trace(_Replay(scenario, n, days, seed, citizen), m["scenario"])
    notes = []
    stored = run.sql(f"select score, points from citizens where citizen = {citizen}").row(0)
    if ("score" in world.final and abs(stored[0] - world.final["score"]) > 1e-3) or (
            "points" in world.final and stored[1] != world.final["points"]):
        notes.append("the replay does not reproduce the stored run exactly (another package version?)")
    cf = None
    if counterfactual:
        other = _Trace(_Replay(scenario, n, days, seed, citizen, spare=True), m["scenario"], light=True)
        cf = {
            "misattributed_penalties_received": world.count(lambda e: e["misattributed"]
                                                            and e["attributed_to"] == citizen),
            "factual": world.final,
            "without_misattribution": other.final,
            "difference": {k: _diff(other.final.get(k), world.final[k]) for k in world.final},
        }
    sanctions, rewards = world.sanctions()
    return Explanation(
        citizen=citizen, run=str(run.path), scenario=run.scenario, profile=world.profile,
        events=world.timeline(), scores=world.decomposition(), listings=world.listings(), sanctions=sanctions,
        reasons=world.reasons(), final=world.final, counterfactual=cf, notes=notes, systems=world.system_list(),
        rewards=rewards, honours=world.honours(), series=world.series,
    )


def _diff(a: Any, b: Any) -> Any:
    if a is None or b is None:
        return None
    if isinstance(a, bool) or isinstance(b, bool):
        return None if a == b else f"{b} → {a}"
    return a - b


class _Replay:
    """One replay of the run tracing one citizen: the trace (with the inputs each scorecard read), daily outputs."""

    def __init__(self, scenario: Any, n: int, days: int, seed: int, citizen: int, spare: bool = False) -> None:
        from socialcredit.engine.simulation import Simulation

        self.citizen = citizen
        self.sim = Simulation(scenario, n, days, seed, trace=(citizen,), spare=(citizen,) if spare else ())
        self.published: dict[str, list[Any]] = {}
        self.sim.run(on_day=None if spare else self._on_day)

    def _on_day(self, _day: int) -> None:
        for name, arr in self.sim.published().items():
            self.published.setdefault(name, []).append(_value(arr, self.citizen))


def _value(array: Any, i: int) -> Any:
    a = np.asarray(array)
    v = a.item() if a.ndim == 0 else a[i].item()
    if isinstance(v, float):
        return round(v, 6) if math.isfinite(v) else None
    return v


class _Trace:
    """One traced trajectory, organised."""

    def __init__(self, replay: _Replay, scenario: dict[str, Any], light: bool = False) -> None:
        from socialcredit import dtypes as dt

        sim, citizen = replay.sim, replay.citizen
        self.sim, self.citizen, self.scenario, self.replay = sim, citizen, scenario, replay
        self._decomposed: list[dict[str, Any]] | None = None
        self.events = [r for r in sim.trace if r["what"] == "event"]
        self.states = [r for r in sim.trace if r["what"] == "state"]
        self.scores = [r for r in sim.trace if r["what"] == "score"]
        self.systems = {s.name: s for s in score_systems(scenario)}
        self.services = service_rules(scenario)
        self.court = tables(scenario, "records", "court-list")
        self.points = points_table(scenario)
        self.honour = tables(scenario, "records", "honour-list")
        cz = sim.citizens
        flags = int(cz.flags[citizen])
        region = int(cz.region[citizen])
        self.profile = {
            "region": region, "region_name": region_names(scenario, [region])[region],
            "urban": bool(flags & dt.FLAG_URBAN), "minority": bool(flags & dt.FLAG_MINORITY),
            "member": bool(flags & dt.FLAG_MEMBER), "income0": float(cz.income0[citizen]),
            "risk": float(cz.risk[citizen]), "voice": float(cz.voice[citizen]),
            "friends": int(sim.graph.offsets[citizen + 1] - sim.graph.offsets[citizen]),
        }
        extra = getattr(cz, "extra", {}) or {}
        for key in EXTRA_PROFILE:
            if key in extra:
                self.profile[key] = _value(extra[key], citizen)
        last = self.states[-1]
        published = sim.published()
        final: dict[str, Any] = {}
        if any(s.column == "score" for s in self.systems.values()):
            final["score"] = last["score"]
        for s in self.systems.values():
            if s.column != "score" and s.column in published:
                final[s.column] = _value(published[s.column], citizen)
        if self.points is not None:
            final["points"] = last["points"]
        if self.court:
            final["listed"] = last["listed"]
            final["listed_ever"] = bool(flags & dt.FLAG_LISTED_EVER)
        for name, _ in self.honour:
            if name in published:
                final[name] = bool(_value(published[name], citizen))
        for name, arr in published.items():
            if name not in final and name not in self.systems and name not in dict(self.honour):
                final[name] = _value(arr, citizen)  # e.g. times on a shame board
        final["income"] = last["income"]
        final["active_friends"] = last["active_friends"]
        if tables(scenario, "consequences", "chill"):
            final["chill"] = last["chill"]
        for event in self.services:
            final[f"refused_{event}"] = self.count(lambda e, k=event: e["kind"] == k and e["denied"]
                                                   and e["actor"] == citizen)
        self.final = final
        self.series: dict[str, list[Any]] = {}
        if not light:
            self.series = {"day": [s["day"] for s in self.states]}
            if "score" in final:
                self.series["score"] = [round(s["score"], 4) for s in self.states]
            if "points" in final:
                self.series["points"] = [s["points"] for s in self.states]
            self.series["income"] = [round(s["income"], 2) for s in self.states]
            self.series["active_friends"] = [s["active_friends"] for s in self.states]
            for name, vals in replay.published.items():
                self.series[name] = vals

    def count(self, pred: Any) -> int:
        return sum(1 for e in self.events if pred(e))

    # -- what happened -------------------------------------------------------------

    def timeline(self) -> list[dict[str, Any]]:
        """Events with who did them and whom they were blamed on, from this citizen's side."""
        rated = {str(config("scoring", t).get("event") or "interaction"): name
                 for name, t in tables(self.scenario, "scoring", "peer-rating")}
        out = []
        for e in self.events:
            mine = e["actor"] == self.citizen
            service = self.services.get(e["kind"])
            if e["misattributed"]:
                role = (f"blamed on citizen {e['attributed_to']} by a camera (this citizen did it)" if mine
                        else f"done by citizen {e['actor']}, blamed on this citizen by a camera")
            elif service is not None:
                role = (f"{service.short} requested: refused ({service.key})" if e["denied"]
                        else f"{service.short} requested: served")
            elif e["kind"] in rated:
                role = f"rated by a friend after an interaction (scoring.{rated[e['kind']]})"
            elif e["observed"]:
                role = "observed"
            else:
                role = "not observed"
            out.append({**e, "role": role})
        return out

    def listings(self) -> list[dict[str, Any]]:
        """Court-list intervals from the daily state."""
        if not self.court:
            return []
        return _spans([s["day"] for s in self.states], [s["listed"] for s in self.states])

    def honours(self) -> list[dict[str, Any]]:
        """Red-list intervals from the daily published membership."""
        out = []
        for name, _ in self.honour:
            vals = self.replay.published.get(name)
            if vals:
                out += [{**span, "list": name} for span in _spans(list(range(len(vals))), [bool(v) for v in vals])]
        return out

    def system_list(self) -> list[dict[str, Any]]:
        logged = {r["system"] for r in self.scores}
        return [{"name": s.name, "kind": s.kind, "label": s.label, "column": s.column, "low": s.low,
                 "high": s.high, "holders": s.holders, "cut": s.cut, "cut_rule": s.cut_rule,
                 "decomposed": s.name in logged, "final": self.final.get(s.column)}
                for s in self.systems.values()]

    # -- decomposition ----------------------------------------------------------------

    def decomposition(self) -> list[dict[str, Any]]:
        """Every scoring-day record, with each dimension's contribution, inputs, and what moved since the last."""
        if self._decomposed is None:
            self._decomposed = self._decompose_all()
        return self._decomposed

    def _decompose_all(self) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        previous: dict[str, dict[str, Any]] = {}
        for r in self.scores:
            system = self.systems.get(r["system"])
            rec = self._decompose(r, system)
            prev = previous.get(r["system"])
            rec["moved"] = _moved(rec, prev) if prev is not None else []
            rec["first"] = prev is None
            previous[r["system"]] = rec
            out.append(rec)
        return out

    def _decompose(self, r: dict[str, Any], system: ScoreSystem | None) -> dict[str, Any]:
        table = config("scoring", (self.scenario.get("scoring") or {}).get(r["system"]) or {})
        low = float(r.get("low", system.low if system else table.get("low", 0.0)))
        high = float(r.get("high", system.high if system else low + float(table.get("span", 1.0))))
        offset = float(r.get("raw_offset", table.get("raw_offset", 0.0)))
        scale = float(r.get("raw_scale", table.get("raw_scale", 1.0)))
        gain = (high - low) / scale
        raw = 0.0
        for d, v in r["components"].items():
            raw += r["weights"][d] * v
        unclipped = low + (high - low) * (raw - offset) / scale
        expected = low + (high - low) * min(1.0, max(0.0, (raw - offset) / scale))
        inputs = r.get("inputs") or self._reference_inputs(r)
        dims = []
        for d, v in r["components"].items():
            w = r["weights"][d]
            meta = (system.dimensions.get(d) if system else None) or {}
            formula = meta.get("value", "")
            read = _formula_inputs(formula, inputs) if formula else inputs
            dims.append({
                "dimension": d, "label": meta.get("label") or d, "weight": w, "value": v,
                "points": round(gain * w * v, 4), "max_points": round(gain * w, 4),
                "points_lost": round(gain * w * (1.0 - v), 4), "formula": formula, "inputs": read,
            })
        return {
            **{k: r[k] for k in ("what", "system", "day", "citizen", "before", "after")},
            "components": r["components"], "weights": r["weights"],
            "label": system.label if system else r["system"], "low": low, "high": high, "raw_offset": offset,
            "raw_scale": scale, "raw": raw, "offset_points": round(gain * offset, 4), "unclipped": unclipped,
            "expected": expected,
            "clipped": "at the floor" if unclipped < low else ("at the ceiling" if unclipped > high else None),
            "dimensions": dims,
            **{k: v for k, v in r.items() if k.startswith("observed_")},
        }

    def _reference_inputs(self, r: dict[str, Any]) -> dict[str, Any]:
        """What the reference score read, from its own log and the state the day before."""
        out = {k: v for k, v in r.items() if k.startswith("observed_")}
        before = [s for s in self.states if s["day"] < r["day"]]
        if before:
            s = before[-1]
            out.update(listed=int(s["listed"]), points=s["points"], income=round(s["income"], 2),
                       active_friends=s["active_friends"])
        return out

    # -- reasons --------------------------------------------------------------------------

    def reasons(self) -> list[dict[str, Any]]:
        """For each scoring system: the principal reasons its latest score is below the maximum, largest first."""
        latest: dict[str, dict[str, Any]] = {}
        for rec in self.decomposition():
            latest[rec["system"]] = rec
        out = []
        for system, rec in latest.items():
            kind = self.systems[system].kind if system in self.systems else ""
            texts = _reference_texts(rec, self.scenario, self.profile, self.states) if kind == "reference-score" \
                else {}
            lost = []
            for d in rec["dimensions"]:
                if d["points_lost"] <= MOVED:
                    continue
                reason = texts.get(d["dimension"]) or _reason_text(d)
                lost.append({"system": system, "dimension": d["dimension"], "label": d["label"],
                             "points_lost": round(d["points_lost"], 1), "value": round(d["value"], 3),
                             "reason": reason, "day": rec["day"]})
            out += sorted(lost, key=lambda x: -x["points_lost"])[:MAX_REASONS]
        return out

    # -- sanctions ----------------------------------------------------------------------------

    def sanctions(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Every sanction (and reward) with the rule behind it: key path and formula text."""
        sc = self.scenario
        out: list[dict[str, Any]] = []
        rewards: list[dict[str, Any]] = []
        deltas: dict[str, int] = {}
        points_name = None
        if self.points is not None:
            points_name, points = self.points
            deltas = {k: int(v) for k, v in (points.get("deltas") or {}).items()}
        boards = tables(sc, "consequences", "shame-board")
        shown_kinds = set(shame_kinds(sc)) if boards else set()
        court = self.court[0] if self.court else None
        me = self.citizen
        for e in self.events:
            who = e["attributed_to"] if e["observed"] else e["actor"]
            wrong = " (misattributed: someone else's act)" if e["misattributed"] and who == me else ""
            service = self.services.get(e["kind"])
            if service is not None and e["denied"] and e["actor"] == me:
                out.append(_service_sanction(e["day"], service))
            if e["defaulted"] and e["actor"] == me and court is not None:
                out.append(_listing_sanction(e["day"], court, self.services, "after defaulting on a court judgment"))
            if e["observed"] and who == me and e["kind"] in deltas and deltas[e["kind"]] != 0:
                delta = deltas[e["kind"]]
                item = {"day": e["day"], "sanction": f"municipal points {delta:+d} for {e['kind'].replace('_', ' ')}"
                        f"{wrong}", "rule": f"records.{points_name}.deltas.{e['kind']}",
                        "formula": f"{delta:+d} points per observed {e['kind']}", "misattributed": bool(wrong)}
                (out if delta < 0 else rewards).append(item)
            if e["observed"] and who == me and e["kind"] in shown_kinds:
                name = boards[0][0]
                out.append({"day": e["day"], "sanction": f"shown on the public shame board for "
                            f"{e['kind'].replace('_', ' ')}{wrong}", "rule": f"consequences.{name}.events",
                            "formula": "observed " + ", ".join(boards[0][1].get("events") or []) + " displayed under "
                            "the citizen blamed", "misattributed": bool(wrong)})
        if court is not None:
            defaulted = {e["day"] for e in self.events if e["defaulted"] and e["actor"] == me}
            for span in self.listings():
                if span["start_day"] not in defaulted:
                    how = ("from the start of the run (initial listing)" if span["start_day"] == 0
                           else "without a logged default")
                    item = _listing_sanction(span["start_day"], court, self.services, how)
                    if span["start_day"] == 0:
                        item["rule"] = f"records.{court[0]}.initial_share"
                    out.append(item)
                listing_delta = int(self.points[1].get("listing_delta") or 0) if self.points else 0
                if listing_delta:
                    out.append({"day": span["start_day"], "sanction": f"municipal points {listing_delta:+d} on "
                                "entering the court list", "rule": f"records.{points_name}.listing_delta",
                                "formula": f"{listing_delta:+d} points on listing", "misattributed": False})
        for name, table in self.honour:
            for span in [h for h in self.honours() if h["list"] == name]:
                rule = {"rule": f"records.{name}.rule", "formula": str(table.get("rule", "?")), "misattributed": False}
                rewards.append({"day": span["start_day"], "sanction": "entered the red list (perks)", **rule})
                if span["end_day"] is not None:
                    out.append({"day": span["end_day"], "sanction": "removed from the red list (perks lost)", **rule})
        unfriend = tables(sc, "consequences", "unfriend")
        friends = [s["active_friends"] for s in self.states]
        for prev, cur, s in zip(friends, friends[1:], self.states[1:], strict=False):
            if cur < prev:
                if unfriend:
                    name, t = unfriend[0]
                    rule, formula = (f"consequences.{name}", f"each tie to a listed citizen cut with p = "
                                     f"{t.get('probability', '?')} every {t.get('every_days', '?')} days")
                else:
                    rule, formula = "consequences", "ties cut"
                out.append({"day": s["day"], "sanction": f"unfriended by {prev - cur} friend(s)", "rule": rule,
                            "formula": formula, "misattributed": False})
        key = lambda r: (r["day"], r["rule"])  # noqa: E731
        return sorted(out, key=key), sorted(rewards, key=key)


def _spans(days: list[int], flags: list[bool]) -> list[dict[str, Any]]:
    spans, start = [], None
    for day, on in zip(days, flags, strict=True):
        if on and start is None:
            start = day
        elif not on and start is not None:
            spans.append({"start_day": start, "end_day": day})
            start = None
    if start is not None:
        spans.append({"start_day": start, "end_day": None})
    return spans


def _service_sanction(day: int, s: ServiceRule) -> dict[str, Any]:
    what = f"{s.label} refused" if s.ban else f"{s.label} not granted (perk withheld)"
    if s.agency:
        what += f" by {s.agency}"
    if s.income_factor != 1.0:
        what += f"; income × {s.income_factor:g}"
    formula = s.formula if s.ban else f"served only if {s.formula}"
    return {"day": day, "sanction": what, "rule": s.key, "formula": formula, "context": s.context,
            "misattributed": False}


def _listing_sanction(day: int, court: tuple[str, dict[str, Any]], services: dict[str, ServiceRule],
                      how: str) -> dict[str, Any]:
    name, t = court
    joint = [s.short for s in services.values() if s.ban and "listed" in s.formula.replace("parent_listed", "")]
    text = f"listed on the court list of dishonest persons {how}"
    if joint:
        text += f" (joint punishment: {', '.join(joint)} refused while listed)"
    formula = (f"a judgment when debt stress ≥ {t.get('stress_threshold', '?')}; listed for {t.get('term_days', '?')}"
               " days unless repaid")
    return {"day": day, "sanction": text, "rule": f"records.{name}", "formula": formula, "misattributed": False}


def _formula_inputs(formula: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """The inputs a formula reads (those captured), in the order they appear."""
    try:
        from socialcredit.scenario.expressions import parse

        names = parse(formula, "explain").names
    except Exception:
        return inputs
    order = sorted(names, key=lambda n: formula.find(n))
    return {n: inputs[n] for n in order if n in inputs}


def _fmt(v: Any) -> str:
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, float):
        if v.is_integer() and abs(v) < 1e9:
            return f"{v:.0f}"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.3g}"
    return str(v)


def _moved(rec: dict[str, Any], prev: dict[str, Any]) -> list[dict[str, Any]]:
    """Dimensions whose contribution changed since the previous scoring day, largest change first, and why."""
    before = {d["dimension"]: d for d in prev["dimensions"]}
    out = []
    for d in rec["dimensions"]:
        p = before.get(d["dimension"])
        if p is None:
            continue
        change = d["points"] - p["points"]
        if abs(change) < MOVED:
            continue
        changed = {k: [p["inputs"].get(k), v] for k, v in d["inputs"].items() if p["inputs"].get(k) != v}
        why = ", ".join(f"{k} {_fmt(a)} → {_fmt(b)}" for k, (a, b) in changed.items()) or "inputs unchanged"
        out.append({"dimension": d["dimension"], "label": d["label"], "value_before": p["value"],
                    "value_after": d["value"], "points_change": round(change, 2), "changed_inputs": changed,
                    "why": why})
    return sorted(out, key=lambda x: -abs(x["points_change"]))


def _reason_text(d: dict[str, Any]) -> str:
    """The dimension's label, its value, and what its formula read (event counts only where some were seen)."""
    shown = {k: v for k, v in d["inputs"].items() if not (k.startswith(("seen_", "total_")) and not v)}
    read = ", ".join(f"{k} = {_fmt(v)}" for k, v in shown.items())
    quiet = [k for k in d["inputs"] if k not in shown]
    if quiet and not any(k.startswith(("seen_", "total_")) for k in shown):
        read = ", ".join(x for x in (read, "no " + "/".join(k.removeprefix("seen_").removeprefix("total_")
                                                            for k in quiet) + " seen") if x)
    return f"{d['label']}: {d['value']:.2f} of 1" + (f" ({read})" if read else "")


def _reference_texts(rec: dict[str, Any], scenario: dict[str, Any], profile: dict[str, Any],
                     states: list[dict[str, Any]]) -> dict[str, str]:
    """Reasons of the reference score, in its own terms."""
    cfg = config("scoring", (scenario.get("scoring") or {}).get(rec["system"]) or {})
    state = [s for s in states if s["day"] <= rec["day"]][-1] if states else {}
    member = profile["member"]
    behaviour = []
    if rec.get("observed_gaming_days"):
        behaviour.append(f"{rec['observed_gaming_days']} gaming day(s) seen by the platform this month")
    if rec.get("observed_critical_posts"):
        behaviour.append(f"{rec['observed_critical_posts']} critical post(s) seen this month")
    if not member:
        behaviour.append("not a platform member: behaviour scored as unknown")
    out = {
        "history": ("missed payments seen by the payment platform" if member
                    else "not a platform member: credit history unknown"),
        "behaviour": "; ".join(behaviour) or "behaviour",
        "relationships": "friends' average score is low, or few friends remain",
    }
    if "income_log_offset" in cfg and "income_log_scale" in cfg and state:
        lo = math.exp(cfg["income_log_offset"])
        hi = math.exp(cfg["income_log_offset"] + cfg["income_log_scale"])
        out["capacity"] = f"income ¥{state['income']:,.0f} a year (capacity counts from ¥{lo:,.0f} to ¥{hi:,.0f})"
    if state:
        out["characteristics"] = ("on the court list of dishonest persons" if state["listed"]
                                  else f"municipal points {state['points']} below {cfg.get('low_points_below', '?')}")
    return out


# -- text output ---------------------------------------------------------------------


def print_explanation(ex: Explanation, out: Any) -> None:
    """Write ``ex`` for people to a rich console."""
    from rich.table import Table

    def esc(text: Any) -> str:
        return str(text).replace("[", r"\[")

    p = ex.profile
    where = p.get("region_name") or f"region {p['region']}"
    extra = []
    if "age" in p:
        extra.append(f"age {p['age']}")
    if "female" in p:
        extra.append("woman" if p["female"] else "man")
    if "hukou_urban" in p:
        extra.append(f"{'urban' if p['hukou_urban'] else 'rural'} hukou")
    out.print(f"[bold]Citizen {ex.citizen}[/bold] of run {esc(ex.run)} ({ex.scenario}) — synthetic: {esc(where)}, "
              f"{'urban' if p['urban'] else 'rural'} resident, {'minority' if p['minority'] else 'majority'}, "
              + "".join(f"{x}, " for x in extra)
              + f"{'platform member' if p['member'] else 'not a platform member'}, income ¥{p['income0']:,.0f} at "
              f"day 0, {p['friends']} friends")
    f = ex.final
    parts = [f"{s['label']} ({s['name']}) {_fmt(f[s['column']])}" for s in ex.systems if s["column"] in f]
    if "points" in f:
        parts.append(f"points {f['points']}")
    if "listed" in f:
        parts.append(("on the court list" if f["listed"] else "not listed")
                     + (" (listed at some point)" if f.get("listed_ever") and not f["listed"] else ""))
    parts.append(f"income ¥{f['income']:,.0f}")
    parts.append(f"{f['active_friends']} friends left")
    refused = sum(v for k, v in f.items() if k.startswith("refused_"))
    if refused:
        parts.append(f"{refused} request(s) refused")
    out.print("End of run: " + ", ".join(parts))
    for note in ex.notes:
        out.print(f"[yellow]note:[/yellow] {esc(note)}")
    if ex.reasons:
        table = Table(title="Principal reasons each score is lower (latest scoring day; adverse-action style)",
                      box=None, title_justify="left")
        for col in ("system", "dimension", "points lost", "reason"):
            table.add_column(col)
        for r in ex.reasons:
            table.add_row(r["system"], r["dimension"], f"{r['points_lost']:.1f}", esc(r["reason"]))
        out.print(table)
    by_system: dict[str, list[dict[str, Any]]] = {}
    for s in ex.scores:
        by_system.setdefault(s["system"], []).append(s)
    for system, recs in by_system.items():
        dims = [d["dimension"] for d in recs[0]["dimensions"]]
        table = Table(title=f"{recs[0]['label']} ({system}): points contributed by each dimension per scoring day "
                      f"(score = {recs[0]['low']:g} + Σ − offset, clipped to {recs[0]['low']:g}..{recs[0]['high']:g})",
                      box=None, title_justify="left")
        for col in ("day", "before", *dims, "offset", "after"):
            table.add_column(col, justify="right")
        for s in recs:
            table.add_row(str(s["day"]), f"{s['before']:.1f}", *(f"{d['points']:.1f}" for d in s["dimensions"]),
                          f"−{s['offset_points']:.1f}", f"{s['after']:.1f}" + (" *" if s["clipped"] else ""))
        out.print(table)
        if any(s["clipped"] for s in recs):
            out.print("  * clipped to the score's range")
        for s in recs:
            for m in s["moved"]:
                out.print(f"  day {s['day']}: {m['dimension']} {m['points_change']:+.1f} points — {esc(m['why'])}")
    table = Table(title="Timeline of events (true and observed)", box=None, title_justify="left")
    for col in ("day", "event", "what happened"):
        table.add_column(col)
    for e in ex.events:
        style = "red" if e["misattributed"] or e["denied"] else None
        table.add_row(str(e["day"]), e["kind"], esc(e["role"]), style=style)
    out.print(table)
    if ex.listings:
        spans = [f"listed day {x['start_day']}"
                 + (f" to day {x['end_day']}" if x["end_day"] is not None else ", still listed") for x in ex.listings]
        out.print("Court list: " + "; ".join(spans))
    for title, rows in (("Sanctions and the rule behind each", ex.sanctions), ("Rewards", ex.rewards)):
        if not rows:
            continue
        table = Table(title=title, box=None, title_justify="left")
        for col in ("day", "sanction" if rows is ex.sanctions else "reward", "rule (key path)", "formula"):
            table.add_column(col, overflow="fold")
        for s in rows:
            table.add_row(str(s["day"]), esc(s["sanction"]), s["rule"], esc(s.get("formula", "")),
                          style="red" if s.get("misattributed") else None)
        out.print(table)
    cf = ex.counterfactual
    if cf is not None:
        out.print(f"Counterfactual: {cf['misattributed_penalties_received']} misattributed penalt(y/ies) received. "
                  "Without camera misattribution against this citizen:")
        table = Table(box=None)
        for col in ("", "factual", "without misattribution"):
            table.add_column(col)
        for k, v in cf["factual"].items():
            w = cf["without_misattribution"].get(k)
            table.add_row(k, _fmt(round(v, 2) if isinstance(v, float) else v),
                          _fmt(round(w, 2) if isinstance(w, float) else w))
        out.print(table)
