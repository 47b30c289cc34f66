"""Static policy audit of a scenario's rules, and disparate impact of a run.

Each finding names the rule (its scenario key path) and the legal standard it
runs into:

- cross-context: a score or list built from data of one social context leads
  to detrimental treatment in another (EU AI Act, Reg. 2024/1689, Art. 5(1)(c)(i));
- disproportionate: treatment out of proportion to the behaviour or its
  gravity (Art. 5(1)(c)(ii));
- guilt-by-association: a citizen's score depends on their friends' scores;
- speech-penalty: expression is penalised;
- no-notice / no-explanation / no-appeal: a system that records, scores or
  sanctions citizens without telling them, giving reasons (cf. US ECOA /
  Regulation B, 12 CFR 1002.9) or letting them contest the record;
- no-expiry: penalties that never lapse;
- innocents-without-remedy: camera misattribution with no appeal.

Disparate impact follows the four-fifths rule (29 CFR 1607.4(D)): within a
grouping, each group's *favourable* rate (not listed, score ≥ 600, points ≥
960) divided by the highest group's rate; a ratio below 0.8 is evidence of
adverse impact.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from socialcredit.errors import UserError

ART_I = "EU AI Act Art. 5(1)(c)(i)"
ART_II = "EU AI Act Art. 5(1)(c)(ii)"
ECOA = "fair-information practice; cf. ECOA / Reg. B 12 CFR 1002.9"
FOUR_FIFTHS = 0.8

# Event kinds that plugins add themselves, and their contexts.
BUILT_IN_CONTEXTS = {"repayment": "credit", "trip": "travel", "loan_application": "credit"}
SCORECARDS = {"scorecard", "sesame", "tencent"}
SANCTIONING = {"court-list", "points", "reference-score", "travel-ban", "loan-gate", "service", "honour-list",
               "peer-rating", "shame-board", *SCORECARDS}
# Population attributes: personal characteristics rather than behaviour.
PERSONAL = {"age", "female", "urban", "hukou_urban", "education", "minority", "member", "messaging", "consent",
            "region", "risk", "voice", "sociability", "conscientiousness", "parent"}


@dataclass(frozen=True)
class Finding:
    """One problem with a scenario's rules."""

    code: str
    title: str
    key_path: str
    detail: str
    law: str

    def to_dict(self) -> dict[str, str]:
        """Plain data."""
        return asdict(self)


def audit_scenario(scenario: Any) -> list[Finding]:
    """Findings for a scenario (a name, a path, a ``Scenario`` or its resolved dict)."""
    from socialcredit.scenario import Scenario

    if isinstance(scenario, dict):
        data = scenario
    elif isinstance(scenario, Scenario):
        data = scenario.data
    else:
        data = Scenario.load(scenario).data
    return _Auditor(data).run()


class _Auditor:
    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.findings: list[Finding] = []
        self.contexts = dict(BUILT_IN_CONTEXTS)
        for name, table in self.tables("behaviour"):
            self.contexts[name] = table.get("context", "unknown")
        for name, table in self.tables("consequences"):
            if table.get("kind") == "service":
                self.contexts[name] = table.get("context", "unknown")
        self.court = self._first("records", "court-list")
        self.points = self._first("records", "points")
        self.scores = self.tables("scoring")

    def _first(self, section: str, kind: str) -> tuple[str, dict[str, Any]] | None:
        for name, table in self.tables(section):
            if table.get("kind") == kind:
                return name, table
        return None

    def tables(self, section: str) -> list[tuple[str, dict[str, Any]]]:
        """The section's plugin tables, without parts dropped with ``= false``."""
        return [(n, t) for n, t in self.data.get(section, {}).items() if isinstance(t, dict)]

    def add(self, code: str, title: str, key: str, detail: str, law: str) -> None:
        self.findings.append(Finding(code, title, key, detail, law))

    # -- what each system is built from ------------------------------------

    def court_inputs(self) -> set[str]:
        if self.court is None:
            return set()
        return {self.contexts.get(self.court[1]["judgment_event"], "unknown")}

    def points_inputs(self) -> set[str]:
        if self.points is None:
            return set()
        _, t = self.points
        out = {self.contexts.get(k, "unknown") for k, v in t.get("deltas", {}).items() if v}
        if t.get("listing_delta"):
            out |= self.court_inputs()
        return out

    def score_inputs(self, table: dict[str, Any]) -> set[str]:
        if table.get("kind") in SCORECARDS:
            return self.system_inputs("", table)
        w = table.get("weights", {})
        out = set()
        if w.get("history"):
            out.add(self.contexts.get(table["missed_event"], "unknown"))
        if w.get("behaviour"):
            if table.get("gaming_weight"):
                out.add(self.contexts.get(table["gaming_event"], "unknown"))
            if table.get("speech_weight"):
                out.add(self.contexts.get(table["speech_event"], "unknown"))
        if w.get("capacity"):
            out.add("credit")  # income: a credit-capacity input
        if w.get("characteristics"):
            if table.get("listed_value", 1) < 1:
                out |= self.court_inputs()
            if table.get("low_points_value", 1) < 1:
                out |= self.points_inputs()
        if w.get("relationships"):
            out.add("social")
        return out

    # -- formula-defined systems (scorecards, services, honour lists) ------------

    def formula_names(self, source: str | None) -> set[str]:
        """Field names a formula reads (none if it does not parse: validation reports that)."""
        from socialcredit.errors import ScenarioError
        from socialcredit.scenario.expressions import parse

        if not source:
            return set()
        try:
            return set(parse(source).names)
        except ScenarioError:
            return set()

    def name_inputs(self, name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        """Contexts whose data reach a formula through field ``name``."""
        for prefix in ("friends_", "parent_"):
            if name.startswith(prefix):
                return {"social" if prefix == "friends_" else "family"} | self.name_inputs(name[len(prefix):], seen)
        for prefix in ("seen_", "total_"):
            if name.startswith(prefix):
                return {self.contexts.get(name[len(prefix):], "unknown")}
        if name in {"listed", "listed_ever"}:
            return self.court_inputs()
        if name == "points":
            return self.points_inputs()
        if name in {"income", "income0", "wealth", "debt"}:
            return {"credit"}
        if name in {"critical_post", "speech_penalised"}:
            return {"speech"}
        systems = {n: t for n, t in self.scores} | {n: t for n, t in self.tables("records")
                                                   if t.get("kind") == "honour-list"}
        if name in systems and name not in seen:
            return self.system_inputs(name, systems[name], seen | {name})
        if name in {"rating", "shamed", "region_shame"}:
            return {"social"} if name == "rating" else {"public_order"}
        return {"personal"} if name in PERSONAL else set()

    def system_inputs(self, name: str, table: dict[str, Any], seen: frozenset[str] = frozenset()) -> set[str]:
        """Contexts of the data a scorecard or honour list is computed from."""
        out: set[str] = set()
        for formula in self.system_formulas(table):
            for field in self.formula_names(formula):
                out |= self.name_inputs(field, seen | {name})
        return out

    @staticmethod
    def system_formulas(table: dict[str, Any]) -> list[str]:
        if table.get("kind") in SCORECARDS:
            return [d.get("value", "") for d in table.get("dimensions", {}).values()
                    if isinstance(d, dict) and d.get("weight", 0) > 0]
        if table.get("kind") == "honour-list":
            return [table.get("rule", "")]
        return []

    # -- the checks ----------------------------------------------------------

    def run(self) -> list[Finding]:
        self.cross_context()
        self.disproportionate()
        self.association_and_speech()
        self.safeguards()
        return self.findings

    def _cross(self, key: str, what: str, own: str, inputs: set[str]) -> None:
        foreign = sorted(inputs - {own})
        if foreign:
            self.add("cross-context", f"{what} uses data from other contexts", key,
                     f"treatment in the {own} context is driven by data from: {', '.join(foreign)}", ART_I)

    def cross_context(self) -> None:
        for name, t in self.tables("consequences"):
            key = f"consequences.{name}"
            kind = t.get("kind")
            if kind == "travel-ban":
                self._cross(key, "travel ban", "travel", self.court_inputs())
            elif kind == "loan-gate":
                inputs = self.court_inputs()
                for _, st in self.scores:
                    inputs |= self.score_inputs(st)
                self._cross(key, "loan decision", "credit", inputs)
            elif kind == "unfriend" and t.get("probability", 0) > 0:
                self._cross(key, "social exclusion of listed citizens", "social", self.court_inputs())
            elif kind == "service":
                rule = "deny" if t.get("deny") else "allow"
                inputs: set[str] = set()
                for field in self.formula_names(t.get(rule)):
                    inputs |= self.name_inputs(field)
                what = f"{'refusal' if rule == 'deny' else 'granting'} of {t.get('label') or name}"
                self._cross(f"{key}.{rule}", what, t.get("context", "unknown"), inputs - {"personal"})
        for name, t in self.scores:
            if t.get("kind") in SCORECARDS:
                self._cross(f"scoring.{name}.dimensions", f"score {name!r} ({t.get('context', 'credit')})",
                            t.get("context", "credit"), self.score_inputs(t) - {"personal"})
        channel_contexts = self.channel_contexts()
        for name, t in self.tables("records"):
            if t.get("kind") != "data-sharing":
                continue
            for i, flow in enumerate(t.get("flows", [])):
                if not isinstance(flow, dict) or flow.get("consent", True):
                    continue
                src = sorted(channel_contexts.get(flow.get("source"), set()))
                self.add("cross-context", "data shared without consent", f"records.{name}.flows[{i}]",
                         f"observations of {flow.get('source')} ({', '.join(src) or 'unknown'}) reach "
                         f"{', '.join(flow.get('to', []))} without the citizen's consent", ART_I)
        if self.points is not None and self.points[1].get("listing_delta"):
            self._cross(f"records.{self.points[0]}.listing_delta", "municipal points deduction for a court listing",
                        "public_order", self.court_inputs())
        for name, t in self.scores:
            w = t.get("weights", {})
            if t.get("kind") not in SCORECARDS and w.get("characteristics") and t.get("low_points_value", 1) < 1:
                self._cross(f"scoring.{name}.low_points_value", "platform score lowered by municipal points",
                            "credit", self.points_inputs())

    def disproportionate(self) -> None:
        court = self.court_inputs()
        sanctions = [t for _, t in self.tables("consequences")  # joint punishment: bans outside the debt's context
                     if t.get("kind") in {"travel-ban", "unfriend"}
                     or (t.get("kind") == "service" and t.get("deny") and t.get("context") not in court
                         and "listed" in self.formula_names(t.get("deny")))]
        for name, t in self.tables("consequences"):
            if t.get("kind") == "service" and t.get("deny") and t.get("income_factor", 1) < 1:
                self.add("disproportionate", f"refused {t.get('label') or name} cuts income",
                         f"consequences.{name}.income_factor",
                         f"every refusal multiplies income by {t['income_factor']}: the penalty compounds with "
                         "each request and reaches far beyond the original act", ART_II)
            if t.get("kind") == "travel-ban" and t.get("income_factor", 1) < 1:
                self.add("disproportionate", "denied trips cut income", f"consequences.{name}.income_factor",
                         f"every refused trip multiplies income by {t['income_factor']}: the penalty compounds "
                         "with each attempt and outlasts the debt", ART_II)
        if self.points is not None:
            pname, t = self.points
            deltas = [abs(v) for v in t.get("deltas", {}).values() if v]
            listing = abs(t.get("listing_delta", 0))
            if listing and deltas and listing > 10 * max(deltas):
                self.add("disproportionate", "one listing outweighs every other record",
                         f"records.{pname}.listing_delta",
                         f"a court listing costs {listing} points, {listing / max(deltas):.0f}× the largest "
                         "deduction for any act", ART_II)
        if self.court is not None and sanctions:
            cname, t = self.court
            if t.get("term_days", 0) > 365:
                self.add("disproportionate", "long listing for a civil debt", f"records.{cname}.term_days",
                         f"a single defaulted judgment lists a citizen for {t['term_days']} days, with bans "
                         "across agencies", ART_II)

    def association_and_speech(self) -> None:
        for section, name, t in self.formula_systems():
            for formula_key, formula in self.formula_items(t):
                names = self.formula_names(formula)
                key = f"{section}.{name}.{formula_key}"
                friends = sorted(n for n in names if n.startswith("friends_"))
                family = sorted(n for n in names if n.startswith("parent_"))
                if friends:
                    self.add("guilt-by-association", "outcome depends on friends' records", key,
                             f"reads {', '.join(friends)}: the mean over one's friends", ART_I)
                if family:
                    self.add("guilt-by-association", "outcome depends on a parent's record", key,
                             f"reads {', '.join(family)}: children answer for their parents", ART_I)
                speech = sorted(n for n in names if n.startswith(("seen_", "total_"))
                                and self.contexts.get(n.split("_", 1)[1]) == "speech")
                if speech:
                    self.add("speech-penalty", "expression lowers the outcome", key,
                             f"reads {', '.join(speech)}: observed speech counts against the citizen", ART_II)
        for name, t in self.scores:
            if t.get("weights", {}).get("relationships"):
                self.add("guilt-by-association", "score depends on friends' scores",
                         f"scoring.{name}.weights.relationships",
                         f"weight {t['weights']['relationships']} on the mean score of one's friends", ART_I)
            if t.get("weights", {}).get("behaviour") and t.get("speech_weight") and \
                    self.contexts.get(t.get("speech_event"), "") == "speech":
                self.add("speech-penalty", "critical posts lower the platform score",
                         f"scoring.{name}.speech_weight",
                         f"observed {t['speech_event']} events cost up to {t['speech_weight']} of the behaviour "
                         "dimension", ART_II)
        if self.points is not None:
            pname, t = self.points
            for kind, v in t.get("deltas", {}).items():
                if v < 0 and self.contexts.get(kind) == "speech":
                    self.add("speech-penalty", "speech costs municipal points", f"records.{pname}.deltas.{kind}",
                             f"each observed {kind} costs {-v} points", ART_II)

    def formula_systems(self) -> list[tuple[str, str, dict[str, Any]]]:
        """(section, name, table) of every system defined by formulas."""
        out = [("scoring", n, t) for n, t in self.scores if t.get("kind") in SCORECARDS]
        out += [("consequences", n, t) for n, t in self.tables("consequences") if t.get("kind") == "service"]
        out += [("records", n, t) for n, t in self.tables("records") if t.get("kind") == "honour-list"]
        return out

    @staticmethod
    def formula_items(table: dict[str, Any]) -> list[tuple[str, str]]:
        """(key path below the table, formula) of a system's rules."""
        if table.get("kind") in SCORECARDS:
            return [(f"dimensions.{d}.value", v.get("value", "")) for d, v in table.get("dimensions", {}).items()
                    if isinstance(v, dict) and v.get("weight", 0) > 0]
        if table.get("kind") == "service":
            return [(k, table[k]) for k in ("deny", "allow") if table.get(k)]
        return [("rule", table.get("rule", ""))]

    def channel_contexts(self) -> dict[str, set[str]]:
        """Contexts of the events each observation channel sees."""
        return {n: {self.contexts.get(e, "unknown") for e in t.get("events", [])}
                for n, t in self.tables("observation")}

    def safeguards(self) -> None:
        systems = []
        for section in ("records", "scoring", "consequences"):
            for name, t in self.tables(section):
                if "safeguards" in t or t.get("kind") in SANCTIONING:
                    systems.append((f"{section}.{name}", t))
        for key, t in systems:
            sg = t.get("safeguards", {})
            if not sg.get("notice"):
                self.add("no-notice", "no notice to the citizen", f"{key}.safeguards.notice",
                         "records, scores or sanctions change without telling the citizen", ECOA)
            if not sg.get("explanation"):
                self.add("no-explanation", "no reasons given", f"{key}.safeguards.explanation",
                         "the citizen cannot learn the principal reasons for an adverse outcome", ECOA)
            if not sg.get("appeal"):
                self.add("no-appeal", "no appeal", f"{key}.safeguards.appeal",
                         "the citizen cannot contest a record or have it corrected", ECOA)
        if self.points is not None and any(v < 0 for v in self.points[1].get("deltas", {}).values()):
            self.add("no-expiry", "point deductions never expire", f"records.{self.points[0]}.deltas",
                     "the ledger has no expiry: a deduction counts for the rest of the citizen's life", ART_II)
        appeal = bool(self.points and self.points[1].get("safeguards", {}).get("appeal"))
        for name, t in self.tables("observation"):
            if t.get("kind") == "camera" and t.get("false_match", 0) > 0 and not appeal:
                self.add("innocents-without-remedy", "misattributed penalties cannot be contested",
                         f"observation.{name}.false_match",
                         f"{t['false_match']:.2%} of detections are matched to another citizen, who is penalised "
                         "and shown on the shame board with no appeal", ART_II)


def disparate_impact(run_dir: str | Path) -> list[dict[str, Any]]:
    """Favourable-outcome rates by group and four-fifths ratios, from a run's citizens table."""
    from socialcredit.analysis.runs import open_run

    run = open_run(run_dir)
    query = """
        with c as (
            select *, ntile(5) over (order by income0) as quintile from citizens
        ), g as (
            select 'minority' as grouping, case when minority then 'minority' else 'majority' end as grp, * from c
            union all select 'hukou', case when urban then 'urban' else 'rural' end, * from c
            union all select 'income quintile', 'Q' || quintile, * from c
            union all select 'region', 'region ' || region, * from c
        )
        select grouping, grp as "group", count(*) as citizens,
               avg(case when listed_ever then 0 else 1 end) as never_listed,
               avg(case when score >= 600 then 1 else 0 end) as score_ge_600,
               avg(case when points >= 960 then 1 else 0 end) as points_ge_960
        from g group by 1, 2 order by 1, 2
    """
    try:
        frame = run.sql(query)
    except UserError:
        raise
    rows = frame.to_dicts()
    out = []
    for outcome in ("never_listed", "score_ge_600", "points_ge_960"):
        for grouping in sorted({r["grouping"] for r in rows}):
            groups = [r for r in rows if r["grouping"] == grouping]
            best = max(r[outcome] for r in groups)
            for r in groups:
                ratio = r[outcome] / best if best > 0 else None
                out.append({
                    "outcome": outcome, "grouping": grouping, "group": r["group"], "citizens": r["citizens"],
                    "rate": r[outcome], "ratio_to_highest": ratio,
                    "adverse_impact": ratio is not None and ratio < FOUR_FIFTHS,
                })
    return out
