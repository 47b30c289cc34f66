"""Coverage-guided fuzzing (atheris/libFuzzer) of the formula language and the scenario loader.

    pip install atheris            # or: pip install -e '.[fuzz]'
    python benchmarks/fuzz_atheris.py --target expressions --runs 200000 --seconds 60
    python benchmarks/fuzz_atheris.py --target scenario --runs 200000 --seconds 60

Targets:

``expressions``
    ``parse(source, where)`` must succeed or raise ``ScenarioError`` with a one-line
    message (and ``check_syntax`` must agree); a parsed formula evaluated on a
    small environment of float arrays (values drawn by the fuzzer, NaN and ±inf
    included) named after its ``.names``, whole and in chunks, must raise
    nothing but ``ScenarioError`` and give a scalar or an array of the
    environment's length; its normalised text (``to_text``) must parse again to
    the same names and values. While user text is parsed or evaluated the
    builtins ``__import__``, ``open``, ``eval`` and ``exec`` raise, and
    ``compile`` is allowed only to build an AST: any such call is a crash.
    Sources are raw text, or formulas assembled from the language's tokens (and
    forbidden ones) so that the fuzzer reaches the compiler, not only the tokenizer.

``scenario``
    ``Scenario.load`` of a temporary TOML file (raw text, a shipped scenario
    mutated key by key, or a small file extending a shipped one) must succeed or
    raise ``ScenarioError``/``UserError`` with a one-line message; a loaded
    scenario then goes through ``preflight`` (a 64-citizen dry run resolving the
    cross-references), one random ``with_sets`` override (mostly a random value for
    a key it has) and a short run (``--days`` days, default 3, of ``--citizens``
    citizens, default 200, metrics included), with the same contract.

Any other exception is a crash: it is counted, its input saved under
``--crash-dir`` and the fuzzing goes on (``--stop-on-crash`` re-raises it, so
that libFuzzer stops and writes its own reproducer). The counts of cases and
outcomes are printed at the end. atheris is optional (the ``fuzz`` extra); the
test suite does not need it.
"""

from __future__ import annotations

import argparse
import atexit
import builtins
import collections
import hashlib
import math
import os
import shutil
import sys
import tempfile
import time
import traceback
from importlib import resources
from pathlib import Path

try:
    import atheris
except ImportError:  # pragma: no cover - optional
    sys.exit("atheris is not installed: pip install atheris (or the 'fuzz' extra)")

# Idle OpenMP threads of the engine's kernels sleep instead of spinning (much faster on a
# loaded machine; results do not depend on it). Set before numba loads its thread pool.
os.environ.setdefault("OMP_WAIT_POLICY", "passive")

import numpy as np

# Coverage feedback from the pure-Python modules under test only: atheris rewrites the
# bytecode it instruments, which numba cannot compile (the engine's kernels).
with atheris.instrument_imports(include=["socialcredit.scenario", "socialcredit.errors", "socialcredit.registry"]):
    from socialcredit.errors import ScenarioError, UserError
    from socialcredit.scenario import Scenario
    from socialcredit.scenario.expressions import MAX_SOURCE_LENGTH, check_syntax, parse
    from socialcredit.scenario.loader import shipped

import ast

from socialcredit.engine.simulation import Simulation, preflight

OUTCOMES: collections.Counter[str] = collections.Counter()
CRASHES: list[str] = []
ARGS = argparse.Namespace(step="")
T0 = time.perf_counter()

# -- forbidden builtins --------------------------------------------------------------------


class ForbiddenCall(BaseException):
    """A forbidden builtin was called while handling user text (a BaseException, so that no
    ``except Exception`` in the code under test can swallow it)."""


_REAL = {name: getattr(builtins, name) for name in ("__import__", "open", "eval", "exec", "compile")}


def _forbidden(name: str):
    def call(*args, **kwargs):
        raise ForbiddenCall(f"builtins.{name} called with {args[:1]!r:.200}")

    return call


def _guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
    # CPython's own parser imports unicodedata (C PyImport_Import, which goes through
    # builtins.__import__) to NFKC-normalise a non-ASCII identifier: the module name is
    # fixed, not chosen by the text. Allowed, and counted.
    if name == "unicodedata" and level == 0 and ARGS.step == "parse":
        OUTCOMES["parser imported unicodedata (NFKC)"] += 1
        return _REAL["__import__"](name, globals, locals, fromlist, level)
    raise ForbiddenCall(f"builtins.__import__ called with {name!r}")


def _ast_only_compile(source, filename, mode, flags=0, *args, **kwargs):
    if not flags & ast.PyCF_ONLY_AST:
        raise ForbiddenCall(f"builtins.compile called to make code (mode {mode!r}, flags {flags})")
    return _REAL["compile"](source, filename, mode, flags, *args, **kwargs)


class Guard:
    """While active, ``__import__``/``open``/``eval``/``exec`` raise and ``compile`` only parses."""

    def __enter__(self) -> Guard:
        for name in ("open", "eval", "exec"):
            setattr(builtins, name, _forbidden(name))
        builtins.__import__ = _guarded_import
        builtins.compile = _ast_only_compile
        return self

    def __exit__(self, *exc) -> None:
        for name, real in _REAL.items():
            setattr(builtins, name, real)


# -- bookkeeping ---------------------------------------------------------------------------


def one_line(exc: BaseException) -> None:
    message = str(exc)
    if not message or "\n" in message or "\r" in message or not message.isprintable():
        raise AssertionError(f"error message is not one printable line: {message!r}")


def crash(kind: str, data: bytes, exc: BaseException) -> None:
    OUTCOMES["crashes"] += 1
    digest = hashlib.sha1(data).hexdigest()[:12]
    text = "".join(traceback.format_exception(exc))
    if len(CRASHES) < 20:
        CRASHES.append(f"[{kind}] {type(exc).__name__}: {str(exc)[:300]} (input {digest})")
    out = Path(ARGS.crash_dir)  # the guard is off here (and Path.write_* use io.open)
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{ARGS.target}-{digest}.bin").write_bytes(data)
    (out / f"{ARGS.target}-{digest}.txt").write_text(text)
    if ARGS.stop_on_crash:
        raise exc


def report() -> None:
    if OUTCOMES["reported"]:
        return
    OUTCOMES["reported"] = 1
    seconds = time.perf_counter() - T0
    total = OUTCOMES["cases"]
    print(f"\n== fuzz_atheris target={ARGS.target}: {total} cases in {seconds:.1f} s "
          f"({total / max(seconds, 1e-9):,.0f}/s)", flush=True)
    for name, count in sorted(OUTCOMES.items()):
        if name not in ("cases", "reported"):
            print(f"   {name:<28} {count}", flush=True)
    for line in CRASHES:
        print(f"   crash: {line}", flush=True)
    if OUTCOMES["crashes"]:
        print(f"   inputs and tracebacks in {ARGS.crash_dir}", flush=True)


# -- expressions ---------------------------------------------------------------------------

# fmt: off
TOKENS = [
    "x", "y", "risk", "income", "listed", "sesame", "a1", "b_2", "seen_missed_payment", "friends_sesame",
    "0", "1", "2", "0.5", "1e308", "1e309", "2e-320", "007", "1_000", "0x1f", "1j", "3.", ".5", "True", "False",
    "None", "+", "-", "*", "/", "**", "%", "//", "@", "<<", "|", "&", "^", "~", "<", "<=", ">", ">=", "==", "!=",
    " and ", " or ", " not ", "not ", " if ", " else ", " in ", " is ", "(", ")", "[", "]", "{", "}", ",", ":",
    ".", "=", ":=", " ", "\n", "\t", "min(", "max(", "clip(", "exp(", "log(", "sqrt(", "abs(", "floor(", "ceil(",
    "where(", "__import__(", "open(", "eval(", "exec(", "compile(", "getattr(", "globals()", "lambda ",
    "'os'", '"x"', "b'x'", "f'{x}'", "__class__", "_x", "X", "é", "\u00a0", "\x00", "*x", "**x", "x=1",
    " for x in y", "yield ", "await ", "...", "#", "\\", ";", "`", "$",
]
# fmt: on


def _source(fdp: atheris.FuzzedDataProvider) -> str:
    mode = fdp.ConsumeIntInRange(0, 3)
    if mode == 0:  # raw unicode
        return fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 300))
    if mode == 1:  # ascii bytes
        return fdp.ConsumeBytes(fdp.ConsumeIntInRange(0, 300)).decode("latin-1")
    count = fdp.ConsumeIntInRange(1, 60 if mode == 2 else 400)  # token soup; mode 3: long ones (limits)
    return "".join(TOKENS[fdp.ConsumeIntInRange(0, len(TOKENS) - 1)] for _ in range(count))


def _same(a, b) -> bool:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


def guarded(step: str, fn, *args):
    """``fn(*args)`` with the forbidden builtins armed (only the library's code runs under it)."""
    ARGS.step = step
    with Guard():
        return fn(*args)


def fuzz_expression(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    source = _source(fdp)
    length = fdp.ConsumeIntInRange(1, 9)
    specials = [0.0, -0.0, 1.0, -1.0, 0.5, 1e308, -1e308, 5e-324, math.inf, -math.inf, math.nan]
    OUTCOMES["cases"] += 1
    step = "parse"
    try:
        try:
            expr = guarded("parse", parse, source, "fuzz.formula")
        except ScenarioError as exc:
            one_line(exc)
            try:
                guarded("parse", check_syntax, source)
            except ValueError:
                OUTCOMES["rejected"] += 1
                return
            raise AssertionError("parse rejected what check_syntax accepted") from None
        OUTCOMES["parsed"] += 1
        guarded("parse", check_syntax, source)
        step = "evaluate"
        env = {}
        for name in sorted(expr.names):
            values = [specials[fdp.ConsumeIntInRange(0, len(specials) - 1)] if fdp.ConsumeBool()
                      else fdp.ConsumeRegularFloat() for _ in range(length)]
            env[name] = np.array(values, np.float64)
        try:
            whole = guarded(step, expr.evaluate, env)
        except ScenarioError as exc:
            one_line(exc)
            OUTCOMES["evaluate: ScenarioError"] += 1
            return
        if isinstance(whole, np.ndarray):
            if whole.shape != (length,) or whole.dtype not in (np.float64, np.bool_):
                raise AssertionError(f"result of shape {whole.shape} and dtype {whole.dtype}")
            cut = fdp.ConsumeIntInRange(0, length)
            parts = [guarded(step, expr.evaluate, env, 0, cut), guarded(step, expr.evaluate, env, cut, length)]
            chunked = np.concatenate([np.broadcast_to(p, (n,)) for p, n in zip(parts, (cut, length - cut),
                                                                                strict=True)])
            if not _same(chunked, whole):
                raise AssertionError("chunked evaluation differs from the whole")
            OUTCOMES["evaluated: array"] += 1
        elif isinstance(whole, bool | float):
            if env:
                raise AssertionError(f"a formula reading arrays gave the scalar {whole!r}")
            OUTCOMES["evaluated: scalar"] += 1
        else:
            raise AssertionError(f"result of type {type(whole).__name__}")
        step = "round trip"
        text = expr.to_text()
        if len(text) > MAX_SOURCE_LENGTH and not ARGS.strict_round_trip:
            # known: ast.unparse adds spaces, so a formula near the limit can normalise past it
            # (tests/test_fuzz_regressions.py); counted, not a crash, unless --strict-round-trip
            OUTCOMES["round trip: to_text over the length limit"] += 1
            return
        again = guarded(step, parse, text, "fuzz.roundtrip")
        if again.names != expr.names:
            raise AssertionError(f"to_text {text!r} reads {sorted(again.names)}")
        if not _same(np.broadcast_to(guarded(step, again.evaluate, env), np.shape(whole)), whole):
            raise AssertionError(f"to_text {text!r} evaluates differently")
    except Exception as exc:  # anything but ScenarioError is a finding
        exc.add_note(f"step: {step}; source: {source!r}")
        crash(step, data, exc)
    except ForbiddenCall as exc:
        exc.add_note(f"step: {step}; source: {source!r}")
        crash(f"forbidden builtin in {step}", data, exc)


# -- scenarios -----------------------------------------------------------------------------

SHIPPED: dict[str, str] = {}
TMP = Path(tempfile.mkdtemp(prefix="socialcredit-fuzz-"))


def _toml_value(fdp: atheris.FuzzedDataProvider) -> str:
    choice = fdp.ConsumeIntInRange(0, 11)
    if choice == 0:
        return str(fdp.ConsumeInt(8))
    if choice == 1:
        return repr(fdp.ConsumeRegularFloat())
    if choice == 2:
        return fdp.PickValueInList(["0", "1", "-1", "0.5", "1.5", "2", "30", "365", "1e9", "-1e9", "inf", "nan"])
    if choice == 3:
        return fdp.PickValueInList(["true", "false"])
    if choice == 4:  # a formula
        return '"' + fdp.ConsumeUnicodeNoSurrogates(40).replace("\\", "").replace('"', "") + '"'
    if choice == 5:
        return fdp.PickValueInList(['"listed"', '"sesame >= 650"', '"0.01 * risk"', '"x +"', '"__import__(1)"',
                                    '"jaywalk"', '"missed_payment"', '"china"', '"ref"', '"nope"', '""'])
    if choice == 6:
        return "[" + ", ".join(_toml_value(fdp) for _ in range(fdp.ConsumeIntInRange(0, 3))) + "]"
    if choice == 7:
        return "{ " + ", ".join(f"{_key(fdp)} = {_toml_value(fdp)}" for _ in range(fdp.ConsumeIntInRange(0, 3))) + " }"
    if choice == 8:
        return fdp.PickValueInList(["1979-05-27", "07:32:00", "1979-05-27T07:32:00Z", "0x10", "0o7", "0b1"])
    if choice == 9:
        return '"' + fdp.PickValueInList(["A+++", "camera", "service", "points", "court-list", "formula",
                                          "peer-rating", "sesame", "homophilous", "china", "reference"]) + '"'
    if choice == 10:
        return fdp.PickValueInList(['[{ source = "police", to = ["sesame"], consent = false }]',
                                    '[{ name = "A", min = 0, max = 1200 }]', '{ notice = true }'])
    return fdp.ConsumeUnicodeNoSurrogates(12)


# fmt: off
KEYS = [
    "kind", "name", "extends", "description", "rate", "rate_urban", "rate_rural", "events", "detect", "detect_urban",
    "false_match", "match_multiplier", "every_days", "low", "high", "initial", "weight", "value", "deny", "allow",
    "attempt", "income_factor", "term_days", "initial_share", "default_scale", "base", "min", "max", "deltas",
    "grades", "rule", "flows", "sources", "primary", "holders", "interaction", "quality", "probability",
    "speech_event", "judgment_event", "context", "panel", "regions", "draws", "safeguards", "refresh_days",
    "listing_delta", "event", "dimensions", "raw_offset", "raw_scale", "conformity", "memory", "unknown_key",
]
SECTIONS = ["population", "graph", "behaviour", "observation", "records", "scoring", "consequences", "output"]
TABLES = ["jaywalk", "camera", "court_list", "points", "sesame", "tencent", "rating", "flight", "loan", "unfriend",
          "chill", "red_list", "sharing", "missed_payment", "platform", "shame_board", "x"]
# fmt: on


def _key(fdp: atheris.FuzzedDataProvider) -> str:
    return fdp.PickValueInList(KEYS) if fdp.ConsumeBool() else fdp.ConsumeUnicodeNoSurrogates(8) or "k"


def _mutated(fdp: atheris.FuzzedDataProvider) -> str:
    """A shipped scenario with a few lines replaced, dropped, duplicated or added."""
    lines = SHIPPED[fdp.PickValueInList(sorted(SHIPPED))].splitlines()
    for _ in range(fdp.ConsumeIntInRange(1, 6)):
        i = fdp.ConsumeIntInRange(0, len(lines) - 1)
        op = fdp.ConsumeIntInRange(0, 5)
        line = lines[i]
        if op == 0 and "=" in line and not line.lstrip().startswith("#"):  # change a value
            lines[i] = line.split("=", 1)[0] + "= " + _toml_value(fdp)
        elif op == 1:
            del lines[i]
        elif op == 2:
            lines.insert(i, f"{_key(fdp)} = {_toml_value(fdp)}")
        elif op == 3:
            lines.insert(i, f"[{fdp.PickValueInList(SECTIONS)}.{fdp.PickValueInList(TABLES)}]")
        elif op == 4:
            lines.insert(i, lines[fdp.ConsumeIntInRange(0, len(lines) - 1)])
        else:
            lines[i] = line[: fdp.ConsumeIntInRange(0, len(line))] + fdp.ConsumeUnicodeNoSurrogates(4)
        if not lines:
            lines = [""]
    return "\n".join(lines) + "\n"


def _extending(fdp: atheris.FuzzedDataProvider) -> str:
    """A small file extending a shipped scenario (or itself, or a missing one) with a few tables."""
    parent = fdp.PickValueInList([*sorted(SHIPPED), "case.toml", "missing", "/nonexistent.toml", "../case.toml"])
    out = [f'extends = "{parent}"'] if fdp.ConsumeProbability() < 0.9 else []
    for _ in range(fdp.ConsumeIntInRange(0, 4)):
        out.append(f"[{fdp.PickValueInList(SECTIONS)}.{fdp.PickValueInList(TABLES)}]")
        out += [f"{_key(fdp)} = {_toml_value(fdp)}" for _ in range(fdp.ConsumeIntInRange(0, 4))]
    if fdp.ConsumeBool():
        out.insert(1 if out else 0, f"{fdp.PickValueInList(SECTIONS)} = {_toml_value(fdp)}")
    return "\n".join(out) + "\n"


def _leaves(data: dict, prefix: str = "") -> list[str]:
    """Dotted paths of the values (not tables) in a scenario's data."""
    out = []
    for key, value in data.items():
        path = f"{prefix}{key}"
        out += _leaves(value, f"{path}.") if isinstance(value, dict) else [path]
    return sorted(out)


def fuzz_scenario(data: bytes) -> None:
    fdp = atheris.FuzzedDataProvider(data)
    mode = fdp.ConsumeIntInRange(0, 2)
    text = (fdp.ConsumeUnicodeNoSurrogates(fdp.ConsumeIntInRange(0, 2000)) if mode == 0
            else _mutated(fdp) if mode == 1 else _extending(fdp))
    path = TMP / "case.toml"
    OUTCOMES["cases"] += 1
    step = "load"
    try:
        path.write_text(text, encoding="utf-8")
        try:
            scenario = Scenario.load(path)
        except UserError as exc:  # ScenarioError is a UserError
            one_line(exc)
            OUTCOMES["rejected by load"] += 1
            return
        OUTCOMES["loaded"] += 1
        step = "preflight"
        try:
            preflight(scenario)
        except UserError as exc:
            one_line(exc)
            OUTCOMES["rejected by preflight"] += 1
            return
        OUTCOMES["preflight ok"] += 1
        step = "with_sets"
        leaves = _leaves(scenario.data)
        if leaves and fdp.ConsumeProbability() < 0.8:  # an existing key, a random value
            assignment = f"{fdp.PickValueInList(leaves)}={_toml_value(fdp)}"
        elif fdp.ConsumeBool():
            assignment = f"{fdp.PickValueInList(SECTIONS)}.{fdp.PickValueInList(TABLES)}.{_key(fdp)}={_toml_value(fdp)}"
        else:
            assignment = fdp.ConsumeUnicodeNoSurrogates(30)
        try:
            changed = scenario.with_sets([assignment])
            OUTCOMES["with_sets ok"] += 1
        except UserError as exc:
            one_line(exc)
            OUTCOMES["with_sets rejected"] += 1
            changed = scenario
        if ARGS.days > 0:
            step = "run"
            try:
                Simulation(changed, citizens=ARGS.citizens, days=ARGS.days, seed=fdp.ConsumeIntInRange(0, 2**31)).run()
                OUTCOMES["ran"] += 1
            except UserError as exc:
                one_line(exc)
                OUTCOMES["rejected by run"] += 1
    except Exception as exc:  # anything but UserError is a finding
        exc.add_note(f"step: {step}; text:\n{text}")
        crash(step, data, exc)


# -- main ----------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", choices=("expressions", "scenario"), required=True)
    parser.add_argument("--runs", type=int, default=200_000, help="stop after this many inputs")
    parser.add_argument("--seconds", type=int, default=60, help="or after this many seconds")
    parser.add_argument("--seed", type=int, default=1, help="libFuzzer -seed")
    parser.add_argument("--crash-dir", default="fuzz-crashes", help="where crashing inputs and tracebacks go")
    parser.add_argument("--days", type=int, default=3,
                        help="scenario target: run each loaded scenario this many days (0: load and preflight only)")
    parser.add_argument("--citizens", type=int, default=200, help="scenario target: citizens of those runs")
    parser.add_argument("--strict-round-trip", action="store_true",
                        help="count a to_text longer than the length limit as a crash")
    parser.add_argument("--stop-on-crash", action="store_true", help="re-raise the first crash (libFuzzer stops)")
    args, rest = parser.parse_known_args()
    ARGS.__dict__.update(vars(args))
    for name in sorted(shipped()):
        SHIPPED[name] = resources.files("socialcredit.scenarios").joinpath(f"{name}.toml").read_text(encoding="utf-8")
    fuzz = fuzz_expression if args.target == "expressions" else fuzz_scenario

    def target(data: bytes) -> None:
        fuzz(data)
        # libFuzzer ends the process with C exit(): stop here, after the report, instead
        if OUTCOMES["cases"] >= args.runs or time.perf_counter() - T0 >= args.seconds:
            report()
            sys.stdout.flush()
            shutil.rmtree(TMP, ignore_errors=True)
            os._exit(1 if OUTCOMES["crashes"] else 0)

    atexit.register(report)  # Ctrl-C
    libfuzzer = [sys.argv[0], f"-seed={args.seed}", "-len_control=0", "-timeout=30", "-rss_limit_mb=4096", *rest]
    if args.target == "expressions":
        libfuzzer.append("-max_len=2048")
    else:
        libfuzzer.append("-max_len=8192")
    atheris.Setup(libfuzzer, target)
    global T0
    T0 = time.perf_counter()
    atheris.Fuzz()


if __name__ == "__main__":
    main()
