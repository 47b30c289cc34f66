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
        if self.points is not None and self.points[1].get("listing_delta"):
            self._cross(f"records.{self.points[0]}.listing_delta", "municipal points deduction for a court listing",
                        "public_order", self.court_inputs())
        for name, t in self.scores:
            w = t.get("weights", {})
            if w.get("characteristics") and t.get("low_points_value", 1) < 1:
                self._cross(f"scoring.{name}.low_points_value", "platform score lowered by municipal points",
                            "credit", self.points_inputs())

    def disproportionate(self) -> None:
        sanctions = [t for _, t in self.tables("consequences") if t.get("kind") in {"travel-ban", "unfriend"}]
        for name, t in self.tables("consequences"):
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

    def safeguards(self) -> None:
        systems = []
        for section in ("records", "scoring", "consequences"):
            for name, t in self.tables(section):
                if "safeguards" in t or t.get("kind") in {"court-list", "points", "reference-score", "travel-ban",
                                                          "loan-gate"}:
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
