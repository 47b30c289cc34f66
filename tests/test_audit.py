"""audit: the policy analyzer flags each kind of problem in `ref`, nothing in a fair variant."""

from __future__ import annotations

import copy
import json

import pytest

import socialcredit as sc
from socialcredit.analysis.audit import audit_scenario, disparate_impact
from socialcredit.cli import main
from socialcredit.scenario import Scenario

CODES = {"cross-context", "disproportionate", "guilt-by-association", "speech-penalty", "no-notice",
         "no-explanation", "no-appeal", "no-expiry", "innocents-without-remedy"}


def fair_variant() -> dict:
    """`ref` reduced to credit behaviour, used only for credit, with notice, reasons and appeal."""
    data = copy.deepcopy(Scenario.load("ref").data)
    data["name"] = "fair-variant"
    for name in ("travel", "unfriend"):
        del data["consequences"][name]
    del data["records"]["points"]
    data["records"]["court_list"]["term_days"] = 365
    score = data["scoring"]["platform"]
    score["weights"] = {"history": 0.6, "behaviour": 0.0, "capacity": 0.4, "characteristics": 0.0,
                        "relationships": 0.0}
    score["speech_weight"] = 0.0
    score["gaming_weight"] = 0.0
    score["listed_value"] = 1.0
    score["low_points_value"] = 1.0
    safe = {"notice": True, "explanation": True, "appeal": True}
    for key in (("records", "court_list"), ("scoring", "platform"), ("consequences", "loans")):
        data[key[0]][key[1]]["safeguards"] = safe
    del data["observation"]["camera"]
    return data


def test_ref_is_flagged_on_every_kind():
    findings = audit_scenario("ref")
    assert {f.code for f in findings} == CODES
    by_code = {}
    for f in findings:
        by_code.setdefault(f.code, []).append(f.key_path)
    assert "consequences.travel" in by_code["cross-context"]
    assert "consequences.loans" in by_code["cross-context"]
    assert "scoring.platform.weights.relationships" in by_code["guilt-by-association"]
    assert "records.points.deltas.critical_post" in by_code["speech-penalty"]
    assert "observation.camera.false_match" in by_code["innocents-without-remedy"]
    assert "consequences.travel.income_factor" in by_code["disproportionate"]
    # every key path exists in the scenario
    data = Scenario.load("ref").data
    for f in findings:
        node = data
        for part in f.key_path.split("."):
            if part == "safeguards" and part not in node:
                break
            node = node[part]


def test_fair_variant_is_clean():
    data = fair_variant()
    Scenario(data, "fair-variant")  # still a valid scenario
    assert audit_scenario(data) == []


def test_each_fix_removes_its_finding():
    data = Scenario.load("ref").data
    for path, value, code in (
        ("scoring.platform.weights", {"history": 0.4, "behaviour": 0.25, "capacity": 0.2, "characteristics": 0.15,
                                      "relationships": 0.0}, "guilt-by-association"),
        ("observation.camera.false_match", 0.0, "innocents-without-remedy"),
    ):
        fixed = Scenario.load("ref").override(**{path: value}).data
        before = [f for f in audit_scenario(data) if f.code == code]
        after = [f for f in audit_scenario(fixed) if f.code == code]
        assert before and not after


def test_disparate_impact_four_fifths(tmp_path):
    run = sc.run("ref", citizens=8_000, days=120, seed=3, out=tmp_path / "r")
    rows = disparate_impact(run.path)
    outcomes = {r["outcome"] for r in rows}
    assert outcomes == {"never_listed", "score_ge_600", "points_ge_960"}
    for outcome in outcomes:
        for grouping in ("minority", "hukou", "income quintile", "region"):
            group = [r for r in rows if r["outcome"] == outcome and r["grouping"] == grouping]
            assert max(r["ratio_to_highest"] for r in group) == pytest.approx(1.0)
            for r in group:
                assert r["adverse_impact"] == (r["ratio_to_highest"] < 0.8)
    q = {r["group"]: r for r in rows if r["outcome"] == "score_ge_600" and r["grouping"] == "income quintile"}
    assert q["Q1"]["rate"] < q["Q5"]["rate"]  # capacity (income) enters the score
    assert sum(r["citizens"] for r in rows if r["outcome"] == "never_listed" and r["grouping"] == "hukou") == 8_000


def test_cli_exit_codes(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["audit", "ref", "--json"])
    assert exc.value.code == 1
    assert {f["code"] for f in json.loads(capsys.readouterr().out)["findings"]} == CODES
    path = tmp_path / "fair.toml"
    path.write_text(_toml(fair_variant()))
    with pytest.raises(SystemExit) as exc:
        main(["audit", str(path)])
    assert exc.value.code == 0 and "no findings" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exc:
        main(["audit", "nosuch"])
    assert exc.value.code == 2


def _toml(data: dict, prefix: str = "") -> str:
    """Minimal TOML writer for nested tables of scalars, lists and inline tables."""
    scalars = {k: v for k, v in data.items() if not isinstance(v, dict) or not _is_table(v)}
    tables = {k: v for k, v in data.items() if k not in scalars}
    lines = [f"[{prefix}]"] if prefix and scalars else []
    lines += [f"{k} = {_value(v)}" for k, v in scalars.items()]
    for k, v in tables.items():
        lines.append(_toml(v, f"{prefix}.{k}" if prefix else k))
    return "\n".join(lines) + "\n"


def _is_table(v: dict) -> bool:
    return any(isinstance(x, dict) for x in v.values()) or "kind" in v or not v


def _value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(_value(x) for x in v) + "]"
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k} = {_value(x)}" for k, x in v.items()) + "}"
    return repr(v)


def test_shipped_fair_credit_is_clean_and_runs(tmp_path):
    assert audit_scenario("fair-credit") == []
    run = sc.run("fair-credit", citizens=5_000, days=90, seed=2, out=tmp_path / "fc")
    m = run.metrics
    assert m["denied_trips_per_1000"] == 0 and m["misattributed_per_1000"] == 0
    assert m["m_mean"] is None and m["unfriended_edge_share"] is None  # no points ledger, no unfriending
    assert set(sc.run("ref", citizens=500, days=30).metrics) == set(m)  # same metric names everywhere
    assert run.events.filter(~run.events["kind"].cast(str).is_in(["missed_payment"]))["observed"].sum() == 0
