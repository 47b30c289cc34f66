"""Fuzzing the scenario surface: any TOML, any --set, any extreme value ends in a
clean ScenarioError/UserError (one line) or a correct run — never another exception."""

from __future__ import annotations

import math
import tomllib

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit.engine.simulation import Simulation
from socialcredit.errors import UserError
from socialcredit.scenario import Scenario
from socialcredit.scenario.loader import parse_value

REF = Scenario.load("ref")


def _leaves(data, prefix=""):
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            yield from _leaves(value, path)
        else:
            yield path, value


NUMERIC_PATHS = [p for p, v in _leaves(REF.data) if isinstance(v, int | float) and not isinstance(v, bool)]
ALL_PATHS = [p for p, _ in _leaves(REF.data)]

extreme = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.sampled_from([0, -1, 1, 1e-300, 1e300, -1e-300, 0.5, 2, 255, 256, 65536, 2**31, 2**63]),
    st.text(max_size=20),
    st.booleans(),
    st.lists(st.floats(allow_nan=False), max_size=3),
)


def _run_or_clean_error(scenario_factory) -> None:
    try:
        scn = scenario_factory()
        sim = Simulation(scn, citizens=200, days=31, seed=1)
        res = sim.run()
    except UserError as exc:
        msg = str(exc)
        assert msg and "\n" not in msg, msg
        return
    cz = sim.citizens
    score = scn.data["scoring"]["platform"]
    assert np.all((cz.score >= np.float32(score["low"])) & (cz.score <= np.float32(score["low"] + score["span"])))
    points = scn.data["records"]["points"]
    assert np.all((cz.points >= points["min"]) & (cz.points <= points["max"]))
    for name, value in res.metrics.items():
        assert value is None or math.isfinite(value), (name, value)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(path=st.sampled_from(NUMERIC_PATHS), value=extreme)
def test_extreme_values(path, value):
    _run_or_clean_error(lambda: REF.override(**{path: value}))


@settings(max_examples=100, deadline=None)
@given(path=st.sampled_from(ALL_PATHS), text=st.text(max_size=40))
def test_set_strings(path, text):
    _run_or_clean_error(lambda: REF.with_sets([f"{path}={text}"]))


@settings(max_examples=100, deadline=None)
@given(key=st.text(min_size=0, max_size=30), text=st.text(max_size=30))
def test_set_unknown_keys(key, text):
    _run_or_clean_error(lambda: REF.with_sets([f"{key}={text}"]))


toml_scalars = st.one_of(st.integers(), st.floats(allow_nan=False), st.text(max_size=10), st.booleans())
toml_values = st.recursive(toml_scalars, lambda c: st.lists(c, max_size=3) | st.dictionaries(
    st.text(min_size=1, max_size=8), c, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None)
@given(data=st.dictionaries(st.sampled_from(["name", "extends", "population", "graph", "behaviour",
                                             "observation", "records", "scoring", "consequences", "output",
                                             "junk"]), toml_values, max_size=6))
def test_random_structure(tmp_path_factory, data):
    path = tmp_path_factory.mktemp("fz") / "s.toml"
    lines = [f"{k} = {_toml_value(v)}" for k, v in data.items()]
    path.write_text("\n".join(lines), encoding="utf-8")
    _run_or_clean_error(lambda: Scenario.load(path))


@settings(max_examples=100, deadline=None)
@given(text=st.text(max_size=300))
def test_random_text(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("fz") / "s.toml"
    path.write_text(text, encoding="utf-8")
    _run_or_clean_error(lambda: Scenario.load(path))


def test_deep_nesting_and_huge_numbers(tmp_path):
    deep = tmp_path / "deep.toml"
    deep.write_text("name = 'x'\n" + "a = " + "[" * 2000 + "]" * 2000 + "\n")
    _run_or_clean_error(lambda: Scenario.load(deep))
    huge = tmp_path / "huge.toml"
    huge.write_text("extends = 'ref'\n[graph]\ndraws = 99999999999999999999999999999999\n")
    _run_or_clean_error(lambda: Scenario.load(huge))
    assert parse_value("1e999") == math.inf or isinstance(parse_value("1e999"), str)


def _toml_value(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ("inf" if v > 0 else "-inf")
    if isinstance(v, str):
        return '"' + v.encode("unicode_escape").decode("ascii").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return "{" + ", ".join(f'"{k.encode("unicode_escape").decode("ascii")}" = {_toml_value(x)}'
                           for k, x in v.items()) + "}"


def test_toml_writer_roundtrips():
    assert tomllib.loads("v = " + _toml_value({"a\n": [1, 2.5, "x\"y"]}))["v"] == {"a\n": [1, 2.5, 'x"y']}
