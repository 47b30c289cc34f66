"""Regressions found by the atheris harness (benchmarks/fuzz_atheris.py), kept as plain tests.

atheris is not needed here: each test replays a minimised input.
"""

from __future__ import annotations

import builtins

from socialcredit.errors import ScenarioError
from socialcredit.scenario.expressions import MAX_SOURCE_LENGTH, parse


def test_normalised_text_parses_again_near_the_length_limit():
    # to_text (ast.unparse) adds spaces; spaces do not count towards MAX_SOURCE_LENGTH
    # found by --target expressions (round trip); minimised: 181 names in one min() call
    source = "min(" + ",".join(["abcdefghij"] * 181) + ")"
    assert len(source) <= MAX_SOURCE_LENGTH
    expr = parse(source, "fuzz")
    again = parse(expr.to_text(), "fuzz.roundtrip")
    assert again.names == expr.names


def test_non_ascii_text_is_refused_before_python_parses_it():
    # found by --target expressions (forbidden builtins): CPython's parser imports unicodedata
    # (through builtins.__import__) to NFKC-normalise a non-ASCII identifier; the formula
    # language is ASCII, so such text is refused before it reaches the parser: nothing is imported.
    real = builtins.__import__
    imported = []

    def spy(name, *args, **kwargs):
        imported.append(name)
        return real(name, *args, **kwargs)

    builtins.__import__ = spy
    try:
        parse("é + 20240917", "fuzz")  # a text no other test parses (parse caches by text)
    except ScenarioError as exc:
        error = exc
    else:
        error = None
    finally:
        builtins.__import__ = real
    assert error is not None and "not allowed (formulas are ASCII)" in str(error) and "column 1" in str(error)
    assert "\n" not in str(error)
    assert imported == []
