"""Explain one citizen's outcome: timeline, score decomposition, sanctions, counterfactual.

The run is replayed from its manifest (same scenario, seed and size, so the
same world), tracing one citizen; a second replay spares that citizen every
camera misattribution (a correct camera blames the real actor instead), and
the two trajectories are compared. Reason codes follow the style of adverse-
action notices (US Regulation B, 12 CFR 1002.9): the principal factors,
at most four, that lowered the score, largest first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialcredit.analysis.runs import open_run
from socialcredit.errors import UserError

MAX_REASONS = 4


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

    def to_dict(self) -> dict[str, Any]:
        """Plain data for ``--json``."""
        return dict(self.__dict__)


def explain(run_dir: str | Path, citizen: int, counterfactual: bool = True) -> Explanation:
    """Replay the run at ``run_dir`` and explain what happened to ``citizen``."""
    from socialcredit.engine.simulation import Simulation
    from socialcredit.scenario import Scenario

    run = open_run(run_dir)
    m = run.manifest
    n, days, seed = int(m["citizens"]), int(m["days"]), int(m["seed"])
    if not 0 <= citizen < n:
        raise UserError(f"--citizen {citizen}: out of range (this run has citizens 0..{n - 1})")
    scenario = Scenario(m["scenario"], m.get("scenario_source", str(run.path)))
    factual = Simulation(scenario, n, days, seed, trace=(citizen,))
    factual.run()
    world = _Trace(factual, citizen)
    notes = []
    stored = run.sql(f"select score, points, listed from citizens where citizen = {citizen}").row(0)
    if abs(stored[0] - world.final["score"]) > 1e-3 or stored[1] != world.final["points"]:
        notes.append("the replay does not reproduce the stored run exactly (another package version?)")
    cf = None
    if counterfactual:
        spared = Simulation(scenario, n, days, seed, trace=(citizen,), spare=(citizen,))
        spared.run()
        other = _Trace(spared, citizen)
        cf = {
            "misattributed_penalties_received": world.count(lambda e: e["misattributed"]
                                                            and e["attributed_to"] == citizen),
            "factual": world.final,
            "without_misattribution": other.final,
            "difference": {k: _diff(other.final[k], world.final[k]) for k in world.final},
        }
    return Explanation(
        citizen=citizen, run=str(run.path), scenario=run.scenario, profile=world.profile,
        events=world.timeline(), scores=world.scores, listings=world.listings(), sanctions=world.sanctions(),
        reasons=world.reasons(), final=world.final, counterfactual=cf, notes=notes,
    )


def _diff(a: Any, b: Any) -> Any:
    if isinstance(a, bool) or isinstance(b, bool):
        return None if a == b else f"{b} → {a}"
    return a - b


class _Trace:
    """One traced trajectory, organised."""

    def __init__(self, sim: Any, citizen: int) -> None:
        self.sim = sim
        self.citizen = citizen
        self.events = [r for r in sim.trace if r["what"] == "event"]
        self.states = [r for r in sim.trace if r["what"] == "state"]
        self.scores = [r for r in sim.trace if r["what"] == "score"]
        cz = sim.citizens
        from socialcredit import dtypes as dt

        flags = int(cz.flags[citizen])
        self.profile = {
            "region": int(cz.region[citizen]), "urban": bool(flags & dt.FLAG_URBAN),
            "minority": bool(flags & dt.FLAG_MINORITY), "member": bool(flags & dt.FLAG_MEMBER),
            "income0": float(cz.income0[citizen]), "risk": float(cz.risk[citizen]),
            "voice": float(cz.voice[citizen]), "friends": int(sim.graph.offsets[citizen + 1]
                                                              - sim.graph.offsets[citizen]),
        }
        last = self.states[-1]
        self.final = {
            "score": last["score"], "points": last["points"], "listed": last["listed"],
            "listed_ever": bool(flags & dt.FLAG_LISTED_EVER), "income": last["income"],
            "active_friends": last["active_friends"], "chill": last["chill"],
            "trips_denied": self.count(lambda e: e["kind"] == "trip" and e["denied"] and e["actor"] == citizen),
            "loans_denied": self.count(lambda e: e["kind"] == "loan_application" and e["denied"]
                                       and e["actor"] == citizen),
        }

    def count(self, pred: Any) -> int:
        return sum(1 for e in self.events if pred(e))

    def timeline(self) -> list[dict[str, Any]]:
        """Events with who did them and whom they were blamed on, from this citizen's side."""
        out = []
        for e in self.events:
            mine = e["actor"] == self.citizen
            if e["misattributed"]:
                role = (f"blamed on citizen {e['attributed_to']} by a camera (this citizen did it)" if mine
                        else f"done by citizen {e['actor']}, blamed on this citizen by a camera")
            elif e["observed"]:
                role = "observed"
            else:
                role = "not observed"
            out.append({**e, "role": role})
        return out

    def listings(self) -> list[dict[str, Any]]:
        """Court-list intervals from the daily state."""
        spans, start = [], None
        for s in self.states:
            if s["listed"] and start is None:
                start = s["day"]
            elif not s["listed"] and start is not None:
                spans.append({"start_day": start, "end_day": s["day"]})
                start = None
        if start is not None:
            spans.append({"start_day": start, "end_day": None})
        return spans

    def sanctions(self) -> list[dict[str, Any]]:
        """Every sanction with the rule (scenario key path) behind it."""
        sc = self.sim.scenario.data
        rules = _rule_paths(sc)
        out = []
        deltas = rules.get("points_deltas", {})
        for e in self.events:
            who = e["attributed_to"] if e["observed"] else e["actor"]
            if e["kind"] == "trip" and e["denied"] and e["actor"] == self.citizen:
                out.append({"day": e["day"], "sanction": "trip denied (flight / high-speed rail ban), income cut",
                            "rule": rules.get("trip", "consequences")})
            elif e["kind"] == "loan_application" and e["denied"] and e["actor"] == self.citizen:
                out.append({"day": e["day"], "sanction": "loan refused", "rule": rules.get("loan", "consequences")})
            elif e["defaulted"] and e["actor"] == self.citizen:
                out.append({"day": e["day"], "sanction": "listed on the court list after a defaulted judgment",
                            "rule": rules.get("court", "records")})
            elif e["observed"] and who == self.citizen and e["kind"] in deltas and deltas[e["kind"]][1] != 0:
                path, delta = deltas[e["kind"]]
                wrong = " (misattributed: someone else's act)" if e["misattributed"] else ""
                out.append({"day": e["day"], "sanction": f"municipal points {delta:+d} for {e['kind']}{wrong}",
                            "rule": path})
        friends = [s["active_friends"] for s in self.states]
        for prev, cur, s in zip(friends, friends[1:], self.states[1:], strict=False):
            if cur < prev:
                out.append({"day": s["day"], "sanction": f"unfriended by {prev - cur} friend(s)",
                            "rule": rules.get("unfriend", "consequences")})
        return sorted(out, key=lambda r: r["day"])

    def reasons(self) -> list[dict[str, Any]]:
        """Principal reasons the latest score is below the maximum, largest first."""
        if not self.scores:
            return []
        s = self.scores[-1]
        cfg = self.sim.scenario.data["scoring"][s["system"]]
        gain = cfg["span"] / cfg["raw_scale"]
        texts = _reason_texts(s, cfg, self.profile, self.states[-1])
        lost = []
        for dim, x in s["components"].items():
            points = s["weights"][dim] * (1.0 - x) * gain
            if points > 0.05:
                lost.append({"dimension": dim, "points_lost": round(points, 1), "value": round(x, 3),
                             "reason": texts[dim]})
        return sorted(lost, key=lambda r: -r["points_lost"])[:MAX_REASONS]


def _rule_paths(scenario: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {"points_deltas": {}}
    for section in ("records", "consequences"):
        for name, table in scenario.get(section, {}).items():
            kind = table.get("kind")
            if kind == "travel-ban":
                out["trip"] = f"{section}.{name} (travel-ban: listed citizens are denied; income × "
                f"{table['income_factor']})"
            elif kind == "loan-gate":
                out["loan"] = f"{section}.{name} (loan-gate: approved iff score ≥ {table['min_score']} and not listed)"
            elif kind == "court-list":
                out["court"] = f"{section}.{name} (court-list: a judgment after debt stress ≥ " \
                    f"{table['stress_threshold']}; listed for {table['term_days']} days)"
            elif kind == "unfriend":
                out["unfriend"] = f"{section}.{name} (unfriend: each tie to a listed citizen cut with p = " \
                    f"{table['probability']} per month)"
            elif kind == "points":
                out["points_deltas"] = {k: (f"{section}.{name}.deltas.{k}", v) for k, v in table["deltas"].items()}
    return out


def _reason_texts(s: dict[str, Any], cfg: dict[str, Any], profile: dict[str, Any], state: dict[str, Any]) -> dict:
    member = profile["member"]
    income_lo = math.exp(cfg["income_log_offset"])
    income_hi = math.exp(cfg["income_log_offset"] + cfg["income_log_scale"])
    behaviour = []
    if s["observed_gaming_days"]:
        behaviour.append(f"{s['observed_gaming_days']} gaming day(s) seen by the platform this month")
    if s["observed_critical_posts"]:
        behaviour.append(f"{s['observed_critical_posts']} critical post(s) seen this month")
    if not member:
        behaviour.append("not a platform member: behaviour scored as unknown")
    return {
        "history": ("missed payments seen by the payment platform" if member
                    else "not a platform member: credit history unknown"),
        "behaviour": "; ".join(behaviour) or "behaviour",
        "capacity": f"income ¥{state['income']:,.0f} a year (capacity counts from ¥{income_lo:,.0f} "
                    f"to ¥{income_hi:,.0f})",
        "characteristics": ("on the court list of dishonest persons" if state["listed"]
                            else f"municipal points {state['points']} below {cfg['low_points_below']}"),
        "relationships": "friends' average score is low, or few friends remain",
    }
