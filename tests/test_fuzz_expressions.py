"""Fuzzing the formula language (socialcredit.scenario.expressions).

Three surfaces; the counts are the hypothesis examples tried per run (the
module constants below, checked by ``test_example_counts_are_documented``):

* random text — 1500 cases: printable ASCII, arbitrary unicode and a
  formula-like alphabet, up to 200 characters.  ``parse`` either raises a
  one-line ScenarioError or succeeds, and then evaluating it on arrays raises
  nothing but ScenarioError.
* dangerous tokens — 1500 cases: strings assembled from ``__import__``,
  ``os``, ``.``, brackets, quotes, ``lambda``, ``exec``/``eval``/``open``,
  ``globals``, ``__class__``, ``getattr``, ``:``, ``=``, numbers, names and
  operators.  Whatever contains attribute access, a subscript, a string,
  ``lambda``, a dunder or a call of a non-whitelisted name never parses, and
  ``__import__``/``open``/``eval``/``exec`` are never reached.
* well-formed expressions — 1000 cases: random trees over the whole grammar
  always parse and evaluate to arrays of the environment's length equal to a
  plain numpy reference evaluation (also chunk by chunk and after a round
  trip through ``to_text``).
"""

from __future__ import annotations

import ast
import builtins
import functools
import itertools
import string
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from socialcredit.errors import ScenarioError
from socialcredit.scenario.expressions import parse

RANDOM_TEXT_EXAMPLES = 1500
DANGEROUS_TOKEN_EXAMPLES = 1500
WELL_FORMED_EXAMPLES = 1000

FUZZ = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}

N = 23
_rng = np.random.default_rng(2024)
ENV: dict[str, np.ndarray] = {
    "x": np.concatenate([[0.0, -0.0, 1.0, -1.0, 0.5, 1e6, -1e-6], _rng.normal(0, 3, N - 7)]),
    "y": _rng.uniform(-2, 2, N).astype(np.float32),
    "k": _rng.integers(0, 256, N).astype(np.uint8),
    "n": _rng.integers(-1000, 1000, N).astype(np.int64),
    "b": _rng.random(N) < 0.5,
    "risk": _rng.random(N),
}
ENV["x"][-1] = np.nan
ENV_F8 = {name: value.astype(np.float64) for name, value in ENV.items()}
NAMES = sorted(ENV)


def _one_line_error(exc: ScenarioError) -> None:
    message = str(exc)
    assert message and "\n" not in message and "\r" not in message, repr(message)


def _env_for(names) -> dict[str, np.ndarray]:
    """Arrays (of several dtypes) for any set of names."""
    return {name: ENV[NAMES[sum(map(ord, name)) % len(NAMES)]] for name in names}


# -- (a) random text -------------------------------------------------------------------------

FORMULA_ALPHABET = "xyzkb_0123456789.+-*/%()<>=!, \n" + "abcdefghijklmnopqrstuvwxyz"
# fmt: off
FORMULA_PIECES = [
    "x", "1", "2.5", "+", "-", "*", "/", "**", "%", "(", ")", "<", "==", ",", "True", "min(", "exp(", "clip(",
    " and ", " not ", " if ", " else ",
]
# fmt: on
random_text = st.one_of(
    st.text(alphabet=st.one_of(st.sampled_from(string.printable), st.characters()), max_size=200),
    st.text(alphabet=FORMULA_ALPHABET, max_size=200),
    st.lists(st.sampled_from(FORMULA_PIECES), max_size=40).map("".join),
)


@settings(max_examples=RANDOM_TEXT_EXAMPLES, **FUZZ)
@given(text=random_text)
def test_random_text(text: str) -> None:
    try:
        expr = parse(text, "fuzz.toml: rule")
    except ScenarioError as exc:
        _one_line_error(exc)
        assert str(exc).startswith("fuzz.toml: rule: ")
        return
    try:
        out = expr.evaluate(_env_for(expr.names))
    except ScenarioError as exc:  # pragma: no cover - evaluation of a valid formula on arrays should not fail
        _one_line_error(exc)
        return
    if expr.names:
        assert isinstance(out, np.ndarray) and out.shape == (N,)
    else:
        assert isinstance(out, float | bool)


# -- (b) dangerous tokens --------------------------------------------------------------------

# fmt: off
DANGEROUS = [
    "__import__", "os", ".", "(", ")", "[", "]", "lambda", "exec", "eval", "open", "'", '"', ":", ",", "=",
    "globals", "__class__", "getattr", "system", "x", "min", "exp", "1", "0", "2.5", "1e3",
    "+", "-", "*", "/", "**", "<", "==", "and", "not", "if", "else",
]
# fmt: on
ALWAYS_FORBIDDEN = {".", "[", "]", "'", '"', "lambda", ":", "=", "__import__", "__class__"}
NOT_CALLABLE = {"os", "exec", "eval", "open", "globals", "getattr", "system", "x", "__import__", "__class__"}
FORBIDDEN_NODES = (
    *(ast.Attribute, ast.Subscript, ast.Lambda, ast.JoinedStr, ast.Starred, ast.NamedExpr),
    *(ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp, ast.List, ast.Tuple, ast.Dict, ast.Set),
)
dangerous_tokens = st.lists(st.sampled_from(DANGEROUS), min_size=1, max_size=30)


def _python_sees_danger(text: str) -> bool | None:
    """Whether Python's own parser finds a forbidden construct (None: it does not parse)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(text.strip(), mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, FORBIDDEN_NODES):
            return True
        if isinstance(node, ast.Constant) and isinstance(node.value, str | bytes):
            return True
        if isinstance(node, ast.Name) and node.id.startswith("_"):
            return True
        if isinstance(node, ast.Call) and not (isinstance(node.func, ast.Name) and node.func.id in {"min", "exp"}):
            return True
    return False


def _tripwire(name: str, calls: list[str]) -> Callable:
    def tripped(*args, **kwargs):
        calls.append(name)
        raise AssertionError(f"builtins.{name} reached from a formula")

    return tripped


@settings(max_examples=DANGEROUS_TOKEN_EXAMPLES, **FUZZ)
@given(tokens=dangerous_tokens, glue=st.sampled_from([" ", ""]))
def test_dangerous_tokens(tokens: list[str], glue: str) -> None:
    text = glue.join(tokens)
    danger = _python_sees_danger(text)
    if glue == " ":
        # Tokens kept apart: each one is a Python token of its own.
        called = any(a in NOT_CALLABLE and b == "(" for a, b in itertools.pairwise(tokens))
        if ALWAYS_FORBIDDEN.intersection(tokens) or called:
            assert danger is not False, text
    calls: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        for name in ("open", "eval", "exec", "__import__"):  # __import__ last: setattr itself imports
            mp.setattr(builtins, name, _tripwire(name, calls))
        try:
            expr = parse(text, "fuzz.toml: rule")
            out = expr.evaluate(_env_for(expr.names))
        except ScenarioError as exc:
            expr = out = None
            message = str(exc)
    assert not calls, calls
    if expr is None:
        assert "\n" not in message
    else:
        assert danger is False, f"{text!r} parsed although Python sees a forbidden construct"
        assert isinstance(out, np.ndarray | float | bool)


# -- (c) well-formed expressions against a reference -----------------------------------------


@dataclass(frozen=True)
class Gen:
    """A generated expression: fully parenthesised text and a reference evaluator."""

    text: str
    ref: Callable[[dict[str, np.ndarray]], object]
    names: frozenset[str]
    functions: frozenset[str]


def _truth(v):
    return np.not_equal(v, 0)


def _f(v):
    return np.asarray(v, dtype=np.float64)


def _combine(text: str, ref, parts, functions=()) -> Gen:
    return Gen(
        text,
        ref,
        frozenset().union(*(p.names for p in parts)),
        frozenset(functions).union(*(p.functions for p in parts)),
    )


def _number(v) -> Gen:
    text = repr(v)
    return Gen(f"({text})" if text.startswith("-") else text, lambda env: float(v), frozenset(), frozenset())


leaves = st.one_of(
    st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, allow_subnormal=False).map(_number),
    st.integers(0, 1000).map(_number),
    st.sampled_from([0, 1, 2, 0.5, -1]).map(_number),
    st.booleans().map(lambda v: Gen(repr(v), lambda env: float(v), frozenset(), frozenset())),
    st.sampled_from(NAMES).map(lambda n: Gen(n, lambda env: env[n], frozenset({n}), frozenset())),
)

# fmt: off
BINOPS = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "**": np.power, "%": np.mod}
COMPARES = {
    "<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal, "==": np.equal, "!=": np.not_equal,
}
# fmt: on
UNARY_FUNCS = {"exp": np.exp, "log": np.log, "sqrt": np.sqrt, "abs": np.abs, "floor": np.floor, "ceil": np.ceil}


def _binop(a: Gen, op: str, b: Gen) -> Gen:
    return _combine(f"({a.text} {op} {b.text})", lambda env: BINOPS[op](_f(a.ref(env)), _f(b.ref(env))), [a, b])


def _unary(op: str, a: Gen) -> Gen:
    if op == "not":
        return _combine(f"(not {a.text})", lambda env: _f(np.logical_not(_truth(a.ref(env)))), [a])
    sign = -1.0 if op == "-" else 1.0
    return _combine(f"({op}{a.text})", lambda env: sign * _f(a.ref(env)), [a])


def _compare(first: Gen, rest: list[tuple[str, Gen]]) -> Gen:
    parts = [first] + [g for _, g in rest]
    text = "(" + first.text + "".join(f" {op} {g.text}" for op, g in rest) + ")"

    def ref(env):
        values = [_f(p.ref(env)) for p in parts]
        ok = np.ones(N, dtype=bool)
        for (op, _), left, right in zip(rest, values[:-1], values[1:], strict=True):
            ok = ok & COMPARES[op](left, right)
        return _f(ok)

    return _combine(text, ref, parts)


def _boolop(op: str, parts: list[Gen]) -> Gen:
    def ref(env):
        truths = [_truth(p.ref(env)) for p in parts]
        combined = functools.reduce(np.logical_and if op == "and" else np.logical_or, truths)
        return _f(combined)

    return _combine("(" + f" {op} ".join(p.text for p in parts) + ")", ref, parts)


def _ifexp(a: Gen, c: Gen, b: Gen) -> Gen:
    return _combine(
        f"({a.text} if {c.text} else {b.text})",
        lambda env: np.where(_truth(c.ref(env)), _f(a.ref(env)), _f(b.ref(env))),
        [a, c, b],
    )


def _call(name: str, args: list[Gen]) -> Gen:
    text = f"{name}(" + ", ".join(a.text for a in args) + ")"
    if name in UNARY_FUNCS:

        def ref(env):
            return UNARY_FUNCS[name](_f(args[0].ref(env)))
    elif name in ("min", "max"):

        def ref(env):
            stacked = np.stack([np.broadcast_to(_f(a.ref(env)), (N,)) for a in args])
            return stacked.min(axis=0) if name == "min" else stacked.max(axis=0)
    elif name == "clip":

        def ref(env):
            return np.clip(*(_f(a.ref(env)) for a in args))
    else:  # where

        def ref(env):
            return np.where(_truth(args[0].ref(env)), _f(args[1].ref(env)), _f(args[2].ref(env)))

    return _combine(text, ref, args, [name])


KINDS = ["binop", "unary", "compare", "boolop", "ifexp", "func", "minmax", "clip", "where"]


@st.composite
def _extend(draw, children):
    """One inner node over ``children`` (drawn once per layer, to keep the strategy's repr small)."""
    kind = draw(st.sampled_from(KINDS))
    if kind == "binop":
        return _binop(draw(children), draw(st.sampled_from(sorted(BINOPS))), draw(children))
    if kind == "unary":
        return _unary(draw(st.sampled_from(["-", "+", "not"])), draw(children))
    if kind == "compare":
        rest = [(draw(st.sampled_from(sorted(COMPARES))), draw(children)) for _ in range(draw(st.integers(1, 3)))]
        return _compare(draw(children), rest)
    if kind == "boolop":
        return _boolop(draw(st.sampled_from(["and", "or"])), [draw(children) for _ in range(draw(st.integers(2, 3)))])
    if kind == "ifexp":
        return _ifexp(draw(children), draw(children), draw(children))
    if kind == "func":
        return _call(draw(st.sampled_from(sorted(UNARY_FUNCS))), [draw(children)])
    if kind == "minmax":
        return _call(draw(st.sampled_from(["min", "max"])), [draw(children) for _ in range(draw(st.integers(2, 4)))])
    return _call(kind, [draw(children) for _ in range(3)])


well_formed = st.recursive(leaves, _extend, max_leaves=24)


def _as_float(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


@settings(max_examples=WELL_FORMED_EXAMPLES, **FUZZ)
@given(gen=well_formed)
def test_well_formed_expressions_match_reference(gen: Gen) -> None:
    expr = parse(gen.text, "fuzz.toml: rule")
    assert expr.names == gen.names
    assert expr.functions == gen.functions
    with np.errstate(all="ignore"):
        expected = _as_float(gen.ref(ENV_F8))
    out = expr.evaluate(ENV)
    if gen.names:
        assert isinstance(out, np.ndarray) and out.shape == (N,), (gen.text, out)
        assert out.dtype in (np.float64, np.bool_)
        expected = np.broadcast_to(expected, (N,))
    else:
        assert isinstance(out, float | bool) and expr.is_constant
    np.testing.assert_allclose(_as_float(out), expected, rtol=1e-9, atol=0, equal_nan=True, err_msg=gen.text)
    if gen.names:
        chunks = [expr.evaluate(ENV, lo, lo + 7) for lo in range(0, N, 7)]
        np.testing.assert_array_equal(np.concatenate(chunks), out)
    again = parse(expr.to_text())
    assert again.to_text() == expr.to_text()
    np.testing.assert_array_equal(_as_float(again.evaluate(ENV)), _as_float(out))


# -- bookkeeping -----------------------------------------------------------------------------


def test_example_counts_are_documented() -> None:
    doc = __doc__ or ""
    for surface, count, test in [
        ("random text", RANDOM_TEXT_EXAMPLES, test_random_text),
        ("dangerous tokens", DANGEROUS_TOKEN_EXAMPLES, test_dangerous_tokens),
        ("well-formed expressions", WELL_FORMED_EXAMPLES, test_well_formed_expressions_match_reference),
    ]:
        assert f"{surface} — {count} cases" in doc
        assert test._hypothesis_internal_use_settings.max_examples == count
