"""The safe expression language (socialcredit.scenario.expressions), with hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pydantic
import pytest

from socialcredit.errors import ScenarioError
from socialcredit.scenario.expressions import (
    MAX_DEPTH,
    MAX_NODES,
    MAX_SOURCE_LENGTH,
    Expression,
    Formula,
    check_syntax,
    parse,
)

WHERE = "scenarios/test.toml: perks.rail.eligible"


def ev(source: str, **env):
    return parse(source, WHERE).evaluate(env)


def close(actual, expected) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=float), np.asarray(expected, dtype=float), rtol=1e-12)


def error(source: str, where: str = WHERE) -> str:
    with pytest.raises(ScenarioError) as info:
        parse(source, where)
    message = str(info.value)
    assert "\n" not in message and "\r" not in message, message
    assert message.startswith(f"{where}: "), message
    return message


X = np.array([1.0, 2.0, 4.0])
Y = np.array([0.5, -1.0, 3.0])


# -- each allowed construct ------------------------------------------------------------------


def test_constants():
    assert ev("42") == 42.0 and isinstance(ev("42"), float)
    assert ev("2.5e-1") == 0.25
    assert ev("1_000") == 1000.0
    assert ev("True") is True
    assert ev("False") is False
    assert ev("True + True") == 2.0


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x + y", [1.5, 1.0, 7.0]),
        ("x - y", [0.5, 3.0, 1.0]),
        ("x * y", [0.5, -2.0, 12.0]),
        ("x / y", [2.0, -2.0, 4.0 / 3.0]),
        ("x ** 2", [1.0, 4.0, 16.0]),
        ("x ** y", [1.0, 0.5, 64.0]),
        ("2 ** x", [2.0, 4.0, 16.0]),
        ("x % 3", [1.0, 2.0, 1.0]),
        ("y % 2", [0.5, 1.0, 1.0]),  # Python/numpy floor modulo: -1 % 2 == 1
        ("-x", [-1.0, -2.0, -4.0]),
        ("+y", [0.5, -1.0, 3.0]),
        ("-x ** 2", [-1.0, -4.0, -16.0]),
        ("(-x) ** 2", [1.0, 4.0, 16.0]),
        ("1 + 2 * x - y / 2", [2.75, 5.5, 7.5]),
        ("0.004 * (0.5 + x) * (1 - 0.5 * y)", [0.004 * 1.5 * 0.75, 0.004 * 2.5 * 1.5, 0.004 * 4.5 * -0.5]),
    ],
)
def test_arithmetic(source, expected):
    out = ev(source, x=X, y=Y)
    assert isinstance(out, np.ndarray) and out.dtype == np.float64 and out.shape == (3,)
    close(out, expected)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("x < 2", [True, False, False]),
        ("x <= 2", [True, True, False]),
        ("x > 2", [False, False, True]),
        ("x >= 2", [False, True, True]),
        ("x == 2", [False, True, False]),
        ("x != 2", [True, False, True]),
        ("y < x", [True, True, True]),
        ("1 < x < 4", [False, True, False]),
        ("1 <= x <= 4", [True, True, True]),
        ("0 < y < x <= 2", [True, False, False]),
        ("x > 1 and y > 0", [False, False, True]),
        ("x > 1 or y > 0", [True, True, True]),
        ("x > 1 and y > 0 and x < 3", [False, False, False]),
        ("x < 2 or y < 0 or x > 3", [True, True, True]),
        ("not x > 1", [True, False, False]),
        ("not y", [False, False, False]),
        ("not (x - 2)", [False, True, False]),
    ],
)
def test_comparisons_and_logic(source, expected):
    out = ev(source, x=X, y=Y)
    assert out.dtype == np.bool_
    assert out.tolist() == expected


def test_if_expression_and_where():
    close(ev("0.7 if x < 2 else 1", x=X), [0.7, 1.0, 1.0])
    close(ev("x if y > 0 else -x", x=X, y=Y), [1.0, -2.0, 4.0])
    close(ev("where(y > 0, x, 10)", x=X, y=Y), [1.0, 10.0, 4.0])
    close(ev("where(x - 2, 1, 0)", x=X), [1.0, 0.0, 1.0])  # a non-zero number is true
    nested = ev("1 if x < 2 else 2 if x < 3 else 3", x=X)
    close(nested, [1.0, 2.0, 3.0])
    both_bool = ev("x > 1 if y > 0 else x < 3", x=X, y=Y)
    assert both_bool.dtype == np.bool_ and both_bool.tolist() == [False, True, True]


def test_where_keeps_special_values_exactly():
    c = np.array([True, False, True, False, True])
    a = np.array([np.nan, 1.0, -0.0, np.inf, 5e-324])
    b = np.array([2.0, -np.inf, 3.0, np.nan, 7.0])
    out = ev("where(c, a, b)", c=c, a=a, b=b)
    assert out.view(np.uint64).tolist() == np.where(c, a, b).view(np.uint64).tolist()
    out = ev("-0.0 if c else b", c=c, b=b)
    assert math.copysign(1.0, out[0]) == -1.0 and np.isnan(out[3])


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("clip(x, 1.5, 3)", [1.5, 2.0, 3.0]),
        ("clip((x - 1) / 2, 0, 1)", [0.0, 0.5, 1.0]),
        ("min(x, 3)", [1.0, 2.0, 3.0]),
        ("max(x, 3)", [3.0, 3.0, 4.0]),
        ("min(x, y, 1.5)", [0.5, -1.0, 1.5]),
        ("max(x, y, 2.5)", [2.5, 2.5, 4.0]),
        ("min(3, x, 5, y)", [0.5, -1.0, 3.0]),
        ("exp(y)", [math.exp(0.5), math.exp(-1.0), math.exp(3.0)]),
        ("log(x)", [0.0, math.log(2.0), math.log(4.0)]),
        ("sqrt(x)", [1.0, math.sqrt(2.0), 2.0]),
        ("abs(y)", [0.5, 1.0, 3.0]),
        ("floor(y * 1.5)", [0.0, -2.0, 4.0]),
        ("ceil(y * 1.5)", [1.0, -1.0, 5.0]),
        ("exp(-x) * (y > 0) + 0.6 * (1 - (y > 0))", [math.exp(-1.0), 0.6, math.exp(-4.0)]),
    ],
)
def test_functions(source, expected):
    out = ev(source, x=X, y=Y)
    assert out.dtype == np.float64
    close(out, expected)


def test_brief_examples():
    risk = np.array([0.0, 0.5, 1.0])
    chill = np.array([0, 1, 0], dtype=np.uint8)
    close(ev("0.004 * (0.5 + risk) * (1 - 0.5 * chill)", risk=risk, chill=chill), [0.002, 0.002, 0.006])
    sesame = np.array([600, 650, 700], dtype=np.int32)
    listed = np.array([False, False, True])
    assert ev("sesame >= 650 and not listed", sesame=sesame, listed=listed).tolist() == [False, True, False]
    income = np.array([math.exp(9.5), math.exp(10.75), math.exp(13)], dtype=np.float64)
    close(ev("clip((log(income) - 9.5) / 2.5, 0, 1)", income=income), [0.0, 0.5, 1.0])
    points = np.array([900, 960, 1000], dtype=np.int16)
    close(ev("0.7 if points < 960 else 1", points=points), [0.7, 1.0, 1.0])
    seen = np.array([0, 1, 2], dtype=np.uint8)
    member = np.array([True, False, True])
    close(
        ev("exp(-seen_missed_payment) * member + 0.6 * (1 - member)", seen_missed_payment=seen, member=member),
        [1.0, 0.6, math.exp(-2.0)],
    )


# -- input types, scalars, chunks ------------------------------------------------------------


def test_bool_inputs_count_as_zero_one():
    b = np.array([True, False, True])
    close(ev("b + b", b=b), [2.0, 0.0, 2.0])
    close(ev("-b", b=b), [-1.0, 0.0, -1.0])
    close(ev("+b", b=b), [1.0, 0.0, 1.0])
    close(ev("b * 0.5 + (1 - b)", b=b), [0.5, 1.0, 0.5])
    assert ev("b == 1", b=b).tolist() == [True, False, True]
    assert ev("b and not b", b=b).tolist() == [False, False, False]
    out = ev("b", b=b)
    assert out.dtype == np.bool_ and out.tolist() == [True, False, True]


def test_narrow_dtypes_compute_in_float64():
    f32 = np.array([0.1, 0.5], dtype=np.float32)
    u8 = np.array([200, 255], dtype=np.uint8)
    assert ev("f + 0", f=f32).dtype == np.float64
    close(ev("f * 1", f=f32), f32.astype(np.float64))
    close(ev("u + u", u=u8), [400.0, 510.0])  # no uint8 wrap-around
    close(ev("u * 1000", u=u8), [200000.0, 255000.0])
    close(ev("-u", u=u8), [-200.0, -255.0])
    assert ev("u < 650", u=u8).tolist() == [True, True]
    # float32(0.1) is slightly above 0.1: compared as float64, not rounded to float32.
    assert ev("f <= 0.1", f=f32).tolist() == [False, False]
    big = np.array([2**40, 3], dtype=np.int64)
    close(ev("big / 2", big=big), [2.0**39, 1.5])
    out = ev("u", u=u8)
    assert out.dtype == np.float64 and out.tolist() == [200.0, 255.0]


def test_scalars_broadcast():
    close(ev("x * k", x=X, k=2), [2.0, 4.0, 8.0])
    close(ev("x * k", x=X, k=np.float32(0.5)), [0.5, 1.0, 2.0])
    close(ev("x + flag", x=X, flag=True), [2.0, 3.0, 5.0])
    close(ev("x + z", x=X, z=np.array(1.5)), [2.5, 3.5, 5.5])  # 0-d array
    assert ev("k * 2 + 1", k=3) == 7.0 and isinstance(ev("k * 2 + 1", k=3), float)
    assert ev("k > 2", k=3) is True
    assert ev("flag", flag=np.bool_(False)) is False
    close(ev("where(x > 1, k, 0)", x=X, k=9), [0.0, 9.0, 9.0])


def test_chunked_evaluation_equals_full_evaluation():
    rng = np.random.default_rng(7)
    n = 1000
    env = {
        "risk": rng.random(n),
        "chill": rng.random(n).astype(np.float32),
        "k": rng.integers(0, 255, n).astype(np.uint8),
        "member": rng.random(n) < 0.5,
        "rate": 0.25,
    }
    expr = parse("clip(rate * risk / (1 + chill), 0, 1) * member + (k > 100) if risk < 0.9 else max(k, chill, 3)")
    full = expr.evaluate(env)
    assert full.shape == (n,)
    for lo, hi in [(0, 100), (100, 357), (357, 1000), (990, None), (0, None), (500, 500)]:
        chunk = expr.evaluate(env, lo, hi)
        np.testing.assert_array_equal(chunk, full[lo:hi])
    pieces = [expr.evaluate(env, lo, lo + 128) for lo in range(0, n, 128)]
    np.testing.assert_array_equal(np.concatenate(pieces), full)


def test_result_never_aliases_env():
    x = X.copy()
    for source in ("x", "+x", "x if True else x", "max(x, x)"):
        out = ev(source, x=x)
        out[:] = -7.0
        np.testing.assert_array_equal(x, X)
    b = np.array([True, False])
    out = ev("b", b=b)
    out[:] = False
    assert b.tolist() == [True, False]


def test_floating_point_errors_are_silent():
    z = np.array([0.0, 1.0, -1.0])
    with np.errstate(all="raise"):
        out = ev("1 / z", z=z)
        assert out[0] == np.inf and out[1] == 1.0 and out[2] == -1.0
        assert np.isnan(ev("z / z", z=z)[0])
        assert ev("log(z)", z=z)[0] == -np.inf and np.isnan(ev("log(z)", z=z)[2])
        assert np.isnan(ev("sqrt(z)", z=z)[2])
        assert ev("exp(1000 * (z + 1))", z=z)[1] == np.inf
        assert np.isnan(ev("z % 0", z=z)).all()
        assert ev("1 / 0") == math.inf


def test_nan_propagates_through_min_max_clip_and_is_true():
    n = np.array([np.nan, 1.0])
    assert np.isnan(ev("min(n, 0)", n=n)[0]) and np.isnan(ev("max(n, 0)", n=n)[0])
    assert np.isnan(ev("clip(n, 0, 1)", n=n)[0])
    assert ev("n and True", n=n).tolist() == [True, True]
    assert ev("not n", n=n).tolist() == [False, False]


# -- metadata --------------------------------------------------------------------------------


def test_names_and_functions():
    e = parse("clip((log(income) - 9.5) / 2.5, 0, 1) + min(a, b, 2) * where(c, d, exp(e_2))")
    assert e.names == frozenset({"income", "a", "b", "c", "d", "e_2"})
    assert e.functions == frozenset({"clip", "log", "min", "where", "exp"})
    assert parse("1 + 2").names == frozenset() and parse("1 + 2").functions == frozenset()
    assert isinstance(e, Expression)


def test_constant_folding_and_text():
    e = parse("2 * 3 + 1")
    assert e.is_constant and e.constant_value == 7.0
    assert parse("exp(0) > 0.5").constant_value is True
    assert parse("1 if False else 2").constant_value == 2.0
    assert not parse("x * 2 * 3").is_constant and parse("x * 2 * 3").constant_value is None
    e = parse("0.004*(0.5+risk)*( 1-0.5*chill )")
    assert e.to_text() == str(e) == "0.004 * (0.5 + risk) * (1 - 0.5 * chill)"
    assert e.source == "0.004*(0.5+risk)*( 1-0.5*chill )"
    assert parse(e.to_text()) == e and hash(parse(e.to_text())) == hash(e)
    assert parse("(x # comment\n + 1)").to_text() == "x + 1"
    assert repr(parse("x+1")) == "Expression('x + 1')"


def test_whitespace_and_multiline_sources():
    close(ev("  x + 1  ", x=X), [2.0, 3.0, 5.0])
    close(ev("\n  (x +\n   1)\n", x=X), [2.0, 3.0, 5.0])
    close(ev("x + \\\n 1", x=X), [2.0, 3.0, 5.0])


# -- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "problem", "column"),
    [
        ("income.real", "attribute access is not allowed", 7),
        ("x.__class__.__bases__", "attribute access is not allowed", 2),
        ("x.y()", "attribute access is not allowed", 2),
        ("1 + (x).imag", "attribute access is not allowed", 8),
        ("x[0]", "indexing is not allowed", 2),
        ("x[0][1]", "indexing is not allowed", 2),
        ("'a' + x", "strings are not allowed", 1),
        ("x == 'a'", "strings are not allowed", 6),
        ("b'a'", "bytes are not allowed", 1),
        ("f'{x}'", "f-strings are not allowed", 1),
        ("lambda: 1", "lambda is not allowed", 1),
        ("x + (lambda y: y)(1)", "only named functions can be called", 5),
        ("[i for i in x]", "comprehensions are not allowed", 1),
        ("min(i for i in x)", "comprehensions are not allowed", 4),
        ("(y := 2)", "assignment (':=') is not allowed", 2),
        ("[1, 2]", "lists are not allowed", 1),
        ("(1, 2)", "tuples are not allowed", 1),
        ("{1: 2}", "dicts are not allowed", 1),
        ("{1}", "sets are not allowed", 1),
        ("x // 2", "'//' is not allowed", 3),
        ("x | y", "'|' is not allowed", 3),
        ("x & y", "'&' is not allowed", 3),
        ("x ^ y", "'^' is not allowed", 3),
        ("x << 1", "'<<' is not allowed", 3),
        ("x >> 1", "'>>' is not allowed", 3),
        ("x @ y", "'@' is not allowed", 3),
        ("~x", "'~' is not allowed", 1),
        ("x is y", "'is' is not allowed", 3),
        ("x is not y", "'is not' is not allowed", 3),
        ("x in y", "'in' is not allowed", 3),
        ("x not in y", "'not in' is not allowed", 3),
        ("1 < x in y", "'in' is not allowed", 7),
        ("open('f')", "unknown function 'open'", 1),
        ("x + getattr(x, y)", "unknown function 'getattr'", 5),
        ("eval(x)", "unknown function 'eval'", 1),
        ("__import__('os')", "names starting with '_' are not allowed", 1),
        ("x + _y", "names starting with '_' are not allowed", 5),
        ("X + 1", "invalid name 'X'", 1),
        ("x + é", "character 'é' (U+00E9) is not allowed (formulas are ASCII)", 5),
        ("ﬁ + 1", "character 'ﬁ' (U+FB01) is not allowed", 1),  # NFKC would turn it into 'fi'
        ("1 + exp", "'exp' is a function", 5),
        ("f(x)(y)", "only named functions can be called", 1),
        ("min(x, key=y)", "keyword arguments are not allowed", 8),
        ("max(**x)", "'**' arguments are not allowed", 5),
        ("max(*x)", "starred arguments are not allowed", 5),
        ("min(x)", "min() takes at least 2 arguments (got 1)", 1),
        ("1 + clip(x, 1)", "clip() takes 3 arguments (got 2)", 5),
        ("exp(x, y)", "exp() takes 1 argument (got 2)", 1),
        ("where()", "where() takes 3 arguments (got 0)", 1),
        ("None", "None is not allowed", 1),
        ("...", "'...' is not allowed", 1),
        ("2 * 1j", "complex numbers are not allowed", 5),
        ("1e999", "number too large", 1),
        ("x * " + "9" * 400, "number too large", 5),
        ("1 +", "syntax error", 4),
        ("x y", "syntax error", 3),
        ("x if y", "syntax error", 1),
        ("x = 1", "syntax error", 3),
        ("min(x, 1", "syntax error", 4),
        ("", "empty expression", 1),
        ("   ", "empty expression", 1),
        ("1\x002", "character \\x00 (U+0000) is not allowed", 2),
        ("x +\x0c1", "(U+000C) is not allowed", 4),
        ("'é' is x", "character 'é'", 2),  # the language is ASCII, refused before parsing
        ("'é€' // 2", "character 'é'", 2),
    ],
)
def test_forbidden_constructs(source, problem, column):
    message = error(source)
    assert problem in message, message
    assert f"at column {column}" in message, message


def test_unknown_function_lists_allowed_ones():
    message = error("open('/etc/passwd')")
    assert message == (
        f"{WHERE}: unknown function 'open' at column 1 "
        "(allowed: abs, ceil, clip, exp, floor, log, max, min, sqrt, where)"
    )


def test_error_positions_in_multiline_sources():
    assert "at line 2, column 4" in error("(x +\n  y.z)")
    assert "at line 3, column 4" in error("\n\n  x.y")
    assert "at line 2, column 4" in error("(1 +\r\n  x[0])")
    assert "at line 2, column 5" in error("(1 +\n 2 +)")


def test_where_is_used_verbatim():
    where = "scenarios/china.toml: scoring.sesame.dimensions.history.value"
    assert error("x.y", where) == f"{where}: attribute access is not allowed at column 2"
    with pytest.raises(ScenarioError, match=r"^expression: "):
        parse("x.y")


def test_non_string_source():
    with pytest.raises(ScenarioError, match="expected a formula string, got int"):
        parse(3, WHERE)  # type: ignore[arg-type]


def test_check_names():
    e = parse("a + sesame * where(listed, 1, bogus) + other")
    e.check_names(["a", "sesame", "listed", "bogus", "other", "unused"], WHERE)
    with pytest.raises(ScenarioError) as info:
        e.check_names(["a", "sesame", "listed", "other"], "file.toml: x.y")
    message = str(info.value)
    assert message == "file.toml: x.y: unknown name 'bogus' at column 31 (known: a, listed, other, sesame)"
    with pytest.raises(ScenarioError, match=r"unknown name 'sesam' at column 1 .*did you mean 'sesame'\?"):
        parse("sesam + 1").check_names(["sesame", "points"], WHERE)


def test_check_names_truncates_long_lists():
    known = [f"field_{i:03d}" for i in range(200)]
    with pytest.raises(ScenarioError) as info:
        parse("zzz").check_names(known, WHERE)
    message = str(info.value)
    assert "field_000" in message and "field_019" in message and "field_020" not in message
    assert "(180 more)" in message and len(message) < 500


def test_evaluate_errors_are_scenario_errors():
    e = parse("x + missing", WHERE)
    with pytest.raises(ScenarioError, match=r"unknown name 'missing' at column 5 \(known: x\)"):
        e.evaluate({"x": X})
    with pytest.raises(ScenarioError, match="not numeric"):
        parse("s + 1", WHERE).evaluate({"s": np.array(["a", "b"])})
    with pytest.raises(ScenarioError, match="not a number or array"):
        parse("s + 1", WHERE).evaluate({"s": "7"})
    with pytest.raises(ScenarioError, match="not a number or array"):
        parse("s + 1", WHERE).evaluate({"s": [1.0, 2.0]})
    with pytest.raises(ScenarioError, match="too large"):
        parse("s + 1", WHERE).evaluate({"s": 10**400})
    with pytest.raises(ScenarioError, match="^" + WHERE + ": cannot evaluate"):
        parse("x + y", WHERE).evaluate({"x": X, "y": np.ones(4)})


# -- limits ----------------------------------------------------------------------------------


def test_long_source():
    ok = "min(" + ",".join(["abcdefghij"] * 181) + ")" + " " * 5000  # spaces do not count
    assert len(ok.replace(" ", "")) <= MAX_SOURCE_LENGTH < len(ok)
    parse(ok)
    message = error("1" * (MAX_SOURCE_LENGTH + 1))
    assert f"expression too long ({MAX_SOURCE_LENGTH + 1} characters besides spaces, at most {MAX_SOURCE_LENGTH})" \
        in message
    assert "at column 2001" in message
    assert "too long" in error("x + " * 100_000 + "1")


def test_deep_nesting_never_raises_recursion_error():
    assert "too long" in error("(" * 10_000 + "x" + ")" * 10_000)
    assert "too long" in error("-" * 100_000 + "1")
    assert "too long" in error("not " * 100_000 + "x")
    assert "too long" in error("exp(" * 10_000 + "x" + ")" * 10_000)
    # Within the length limit, the parser's own limits and ours still give one-line errors.
    assert "too many nested parentheses" in error("(" * 300 + "x" + ")" * 300)
    assert f"more than {MAX_DEPTH} levels" in error("-" * 1999 + "1")
    assert f"more than {MAX_DEPTH} levels" in error("not " * 499 + "x")
    assert f"more than {MAX_DEPTH} levels" in error("exp(" * 200 + "x" + ")" * 200)
    assert f"more than {MAX_DEPTH} levels" in error("+".join(["x"] * 60))
    assert f"more than {MAX_DEPTH} levels" in error("[" * 150 + "]" * 150)
    # Parentheses alone do not nest the tree.
    assert parse("(" * 150 + "x" + ")" * 150).names == frozenset({"x"})


def test_depth_and_node_limits_are_exact():
    assert ev("-" * (MAX_DEPTH - 1) + "x", x=X).tolist() == [-1.0, -2.0, -4.0]
    assert f"more than {MAX_DEPTH} levels" in error("-" * MAX_DEPTH + "x")
    # min(...) with k arguments has k + 2 nodes: the call, its name and the arguments.
    parse("min(" + ", ".join(["x"] * (MAX_NODES - 2)) + ")")
    assert f"more than {MAX_NODES} parts" in error("min(" + ",".join(["x"] * (MAX_NODES - 1)) + ")")


def test_null_bytes_and_control_characters():
    assert "U+0000" in error("\x00")
    assert "U+0000" in error("x + 1\x00")
    assert "U+001B" in error("x\x1b[31m")
    assert "U+2028" in error("x\u2028+ 1")
    assert "\\ud800" in error("x + \ud800")  # a lone surrogate cannot even be encoded


# -- pydantic --------------------------------------------------------------------------------


class Perk(pydantic.BaseModel):
    eligible: Formula
    rate: Formula = "0.5"


def test_formula_field():
    assert Perk(eligible="sesame >= 650 and not listed").eligible == "sesame >= 650 and not listed"
    with pytest.raises(pydantic.ValidationError) as info:
        Perk(eligible="__import__('os')")
    assert isinstance(info.value, ValueError)
    text = str(info.value)
    assert "eligible" in text and "names starting with '_' are not allowed" in text
    with pytest.raises(ValueError, match="unknown function 'open' at column 1"):
        Perk(eligible="1", rate="open('x')")


def test_check_syntax():
    assert check_syntax("x + 1") == "x + 1"
    with pytest.raises(ValueError, match=r"^attribute access is not allowed at column 2$"):
        check_syntax("x.y")
    with pytest.raises(ValueError) as info:
        check_syntax("(x +\n y.z)")
    assert "\n" not in str(info.value)
