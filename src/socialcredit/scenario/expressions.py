"""The safe expression language of scenario formulas.

Rules that need a formula (behaviour rates, perk eligibility, custom scorecard
dimensions, service gates) are written in a small subset of Python expression
syntax over named citizen fields and constants::

    0.004 * (0.5 + risk) * (1 - 0.5 * chill)
    sesame >= 650 and not listed
    clip((log(income) - 9.5) / 2.5, 0, 1)
    0.7 if points < 960 else 1
    exp(-seen_missed_payment) * member + 0.6 * (1 - member)

The text is parsed with :func:`ast.parse` and the tree is checked against a
strict whitelist, then compiled once into a small tree of evaluator nodes
(constant subtrees folded).  Nothing in user text is ever passed to ``eval``,
``exec`` or ``compile``, and no attribute, subscript or builtin is reachable.

Allowed:

* numbers (``int``/``float`` literals, finite) and ``True``/``False``;
* names of fields, matching ``^[a-z][a-z0-9_]*$``;
* ``+ - * / ** %``, unary ``-`` ``+`` ``not``;
* comparisons ``< <= > >= == !=``, chained (``0 < x <= 1``);
* ``and``/``or``, ``a if c else b``;
* calls of ``min``/``max`` (2 or more arguments, elementwise), ``clip(x, lo, hi)``,
  ``exp``, ``log``, ``sqrt``, ``abs``, ``floor``, ``ceil``, ``where(c, a, b)``.

Semantics (numpy, elementwise, always evaluating every operand):

* arithmetic is float64; booleans count as 0/1;
* comparisons, ``and``, ``or`` and ``not`` give booleans (``and``/``or`` are
  logical, not Python's "return an operand"); a number is true when non-zero
  (NaN is true);
* ``a if c else b`` and ``where(c, a, b)`` are ``np.where``;
* ``min``/``max``/``clip`` propagate NaN; ``clip(x, lo, hi)`` is
  ``min(max(x, lo), hi)``;
* floating-point errors are silent: ``x / 0`` is ``±inf`` or ``nan``,
  ``log(0)`` is ``-inf``, ``sqrt(-1)`` and ``log(-1)`` are ``nan``, ``exp(1000)``
  is ``inf``.  **Callers are responsible for clipping or checking results**
  (e.g. wrap a probability in ``clip(..., 0, 1)``).

Errors are :class:`~socialcredit.errors.ScenarioError` on one line naming
where the formula comes from, the problem and its 1-based column.
"""

from __future__ import annotations

import ast
import bisect
import difflib
import math
import re
import warnings
from collections.abc import Callable, Iterable, Mapping
from functools import lru_cache
from typing import Annotated, Any

import numpy as np
from pydantic import AfterValidator

from socialcredit.errors import ScenarioError, one_line

__all__ = [
    "FUNCTIONS",
    "MAX_DEPTH",
    "MAX_NODES",
    "MAX_SOURCE_LENGTH",
    "Expression",
    "Formula",
    "check_syntax",
    "parse",
]

MAX_SOURCE_LENGTH = 2000
"""Longest accepted formula, in characters."""
MAX_DEPTH = 50
"""Deepest accepted nesting of the syntax tree."""
MAX_NODES = 500
"""Most syntax-tree nodes in one formula."""

_NAME_RE = re.compile(r"[a-z][a-z0-9_]*\Z")
_NEWLINE_RE = re.compile(r"\r\n|\r|\n")
_F8 = np.dtype(np.float64)
_CMP_SIGNATURE = (np.float64, np.float64, np.bool_)
_MAX_LISTED = 20

Value = np.ndarray | float | bool

# ---------------------------------------------------------------------------
# Source positions


class _FormulaError(Exception):
    """A parse problem: message and formatted position (without ``where``)."""

    def __init__(self, message: str, position: str, detail: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.position = position
        self.detail = detail

    def text(self) -> str:
        return f"{self.message} at {self.position}{self.detail}"


class _Text:
    """Maps parser positions (of the stripped text) back to the user's source."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.multiline = bool(_NEWLINE_RE.search(source))
        self.text = source.lstrip()
        prefix = source[: len(source) - len(self.text)]
        breaks = list(_NEWLINE_RE.finditer(prefix))
        self.line_shift = len(breaks)
        self.col_shift = len(prefix) - (breaks[-1].end() if breaks else 0)
        self.starts = [0] + [m.end() for m in _NEWLINE_RE.finditer(self.text)]
        self.lines = _NEWLINE_RE.split(self.text)

    def index(self, lineno: int | None, byte_col: int | None) -> int:
        """Character index in ``self.text`` of an AST position (byte column)."""
        line_no = min(max(lineno or 1, 1), len(self.lines))
        line = self.lines[line_no - 1]
        col = max(byte_col or 0, 0)
        if not line.isascii():
            col = len(line.encode("utf-8")[:col].decode("utf-8", "replace"))
        return self.starts[line_no - 1] + min(col, len(line))

    def node_start(self, node: ast.AST) -> int:
        return self.index(getattr(node, "lineno", 1), getattr(node, "col_offset", 0))

    def node_end(self, node: ast.AST) -> int:
        return self.index(getattr(node, "end_lineno", 1), getattr(node, "end_col_offset", 0))

    def at(self, index: int) -> str:
        """``column C`` (or ``line L, column C``) of a character index in ``self.text``."""
        index = min(max(index, 0), len(self.text))
        line_no = bisect.bisect_right(self.starts, index)
        col = index - self.starts[line_no - 1] + 1
        if line_no == 1:
            col += self.col_shift
        line_no += self.line_shift
        return f"line {line_no}, column {col}" if self.multiline else f"column {col}"

    def at_raw(self, index: int) -> str:
        """Position of a character index in the *original* source."""
        before = self.source[:index]
        breaks = list(_NEWLINE_RE.finditer(before))
        col = index - (breaks[-1].end() if breaks else 0) + 1
        return f"line {len(breaks) + 1}, column {col}" if self.multiline else f"column {col}"

    def problem(self, message: str, node: ast.AST) -> _FormulaError:
        return _FormulaError(message, self.at(self.node_start(node)))

    def token_problem(self, message: str, token: str, after: ast.AST, before: ast.AST) -> _FormulaError:
        """A problem located at ``token`` found between the end of ``after`` and the start of ``before``."""
        lo = self.node_end(after)
        found = self.text.find(token, lo, max(self.node_start(before), lo))
        return _FormulaError(message, self.at(found if found >= 0 else self.node_start(after)))


# ---------------------------------------------------------------------------
# Evaluator nodes


def _scalar(value: Any) -> float | bool:
    """A numpy/Python scalar (or 0-d array) as a Python ``bool`` or ``float``."""
    if isinstance(value, np.ndarray):
        value = value[()]
    if isinstance(value, bool | np.bool_):
        return bool(value)
    return float(value)


def _is_boolish(x: Any) -> bool:
    return (x.dtype == np.bool_) if type(x) is np.ndarray else isinstance(x, bool | np.bool_)


def _num(x: Any) -> Any:
    """``x`` as float64 (array or scalar); may return ``x`` itself."""
    if type(x) is np.ndarray:
        return x if x.dtype == _F8 else x.astype(_F8)
    if isinstance(x, bool | np.bool_):
        return float(x)
    return x


def _reusable(x: Any, other: Any) -> bool:
    return type(x) is np.ndarray and x.dtype == _F8 and (type(other) is not np.ndarray or other.shape == x.shape)


def _apply2(f: np.ufunc, a: Any, b: Any, a_fresh: bool, b_fresh: bool) -> Any:
    """``f(a, b)`` in float64, writing into a temporary operand when there is one."""
    if a_fresh and _reusable(a, b):
        return f(a, b, out=a)
    if b_fresh and _reusable(b, a):
        return f(a, b, out=b)
    return f(a, b, dtype=_F8)


def _apply1(f: np.ufunc, a: Any, a_fresh: bool) -> Any:
    if a_fresh and type(a) is np.ndarray and a.dtype == _F8:
        return f(a, out=a)
    return f(a, dtype=_F8)


def _bits(x: Any) -> Any:
    """The IEEE bits of a float64 array or scalar, as uint64."""
    return x.view(np.uint64) if type(x) is np.ndarray else np.float64(x).view(np.uint64)


def _where(c: Any, a: Any, b: Any) -> Any:
    """``np.where(c, a, b)``; float64 unless both branches are boolean."""
    if _is_boolish(a) and _is_boolish(b):
        out = np.where(c, a, b)
        return out[()] if out.ndim == 0 else out
    a, b = _num(a), _num(b)
    if (
        type(c) is np.ndarray
        and c.dtype == np.bool_
        and (type(a) is not np.ndarray or a.shape == c.shape)
        and (type(b) is not np.ndarray or b.shape == c.shape)
    ):
        # Branch-free select, b ^ ((a ^ b) & mask): np.where mispredicts on
        # unsorted conditions and is several times slower.
        out = np.empty(c.shape, _F8)
        mask = out.view(np.uint64)
        np.negative(c.view(np.uint8), out=mask.view(np.int64), dtype=np.int64)  # 0 or all ones
        a_bits, b_bits = _bits(a), _bits(b)
        np.bitwise_and(mask, np.bitwise_xor(a_bits, b_bits), out=mask)
        np.bitwise_xor(mask, b_bits, out=mask)
        return out
    out = np.where(c, a, b)
    return out[()] if out.ndim == 0 else out


class _Node:
    """An evaluator node: ``ev(vals)`` with ``vals`` the resolved name values."""

    __slots__ = ()
    #: ev() returns either a scalar or an array that nothing else references
    #: (so a parent may overwrite it).
    fresh = True

    def ev(self, vals: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError


class _Const(_Node):
    __slots__ = ("value",)

    def __init__(self, value: float | bool) -> None:
        self.value = value

    def ev(self, vals: dict[str, Any]) -> Any:
        return self.value


class _Name(_Node):
    __slots__ = ("id",)
    fresh = False

    def __init__(self, name: str) -> None:
        self.id = name

    def ev(self, vals: dict[str, Any]) -> Any:
        return vals[self.id]


class _Binary(_Node):
    __slots__ = ("f", "left", "right")

    def __init__(self, f: np.ufunc, left: _Node, right: _Node) -> None:
        self.f, self.left, self.right = f, left, right

    def ev(self, vals: dict[str, Any]) -> Any:
        return _apply2(self.f, self.left.ev(vals), self.right.ev(vals), self.left.fresh, self.right.fresh)


class _Unary(_Node):
    __slots__ = ("f", "operand")

    def __init__(self, f: np.ufunc, operand: _Node) -> None:
        self.f, self.operand = f, operand

    def ev(self, vals: dict[str, Any]) -> Any:
        return _apply1(self.f, self.operand.ev(vals), self.operand.fresh)


class _Pos(_Node):
    __slots__ = ("fresh", "operand")

    def __init__(self, operand: _Node) -> None:
        self.operand = operand
        self.fresh = operand.fresh

    def ev(self, vals: dict[str, Any]) -> Any:
        return _num(self.operand.ev(vals))


class _Not(_Node):
    __slots__ = ("operand",)

    def __init__(self, operand: _Node) -> None:
        self.operand = operand

    def ev(self, vals: dict[str, Any]) -> Any:
        return np.logical_not(self.operand.ev(vals))


class _Compare(_Node):
    __slots__ = ("first", "rest")

    def __init__(self, first: _Node, rest: list[tuple[np.ufunc, _Node]]) -> None:
        self.first, self.rest = first, rest

    def ev(self, vals: dict[str, Any]) -> Any:
        a = self.first.ev(vals)
        result = None
        for f, node in self.rest:
            b = node.ev(vals)
            r = f(a, b, signature=_CMP_SIGNATURE)
            result = r if result is None else np.logical_and(result, r)
            a = b
        return result


class _BoolOp(_Node):
    __slots__ = ("f", "values")

    def __init__(self, f: np.ufunc, values: list[_Node]) -> None:
        self.f, self.values = f, values

    def ev(self, vals: dict[str, Any]) -> Any:
        result = self.f(self.values[0].ev(vals), self.values[1].ev(vals))
        for node in self.values[2:]:
            value = node.ev(vals)
            if type(result) is np.ndarray and (type(value) is not np.ndarray or value.shape == result.shape):
                self.f(result, value, out=result)
            else:
                result = self.f(result, value)
        return result


class _Where(_Node):
    __slots__ = ("a", "b", "cond")

    def __init__(self, cond: _Node, a: _Node, b: _Node) -> None:
        self.cond, self.a, self.b = cond, a, b

    def ev(self, vals: dict[str, Any]) -> Any:
        return _where(self.cond.ev(vals), self.a.ev(vals), self.b.ev(vals))


class _Reduce(_Node):
    """``min``/``max`` of two or more arguments, elementwise."""

    __slots__ = ("args", "f")

    def __init__(self, f: np.ufunc, args: list[_Node]) -> None:
        self.f, self.args = f, args

    def ev(self, vals: dict[str, Any]) -> Any:
        first = self.args[0]
        result, fresh = first.ev(vals), first.fresh
        for node in self.args[1:]:
            result = _apply2(self.f, result, node.ev(vals), fresh, node.fresh)
            fresh = True
        return result


class _Clip(_Node):
    __slots__ = ("hi", "lo", "x")

    def __init__(self, x: _Node, lo: _Node, hi: _Node) -> None:
        self.x, self.lo, self.hi = x, lo, hi

    def ev(self, vals: dict[str, Any]) -> Any:
        r = _apply2(np.maximum, self.x.ev(vals), self.lo.ev(vals), self.x.fresh, self.lo.fresh)
        return _apply2(np.minimum, r, self.hi.ev(vals), True, self.hi.fresh)


class _Square(_Node):
    __slots__ = ("operand",)

    def __init__(self, operand: _Node) -> None:
        self.operand = operand

    def ev(self, vals: dict[str, Any]) -> Any:
        return _apply1(np.square, self.operand.ev(vals), self.operand.fresh)


def _call_unary(f: np.ufunc) -> Callable[[list[_Node]], _Node]:
    return lambda args: _Unary(f, args[0])


FUNCTIONS: dict[str, tuple[int, int | None, Callable[[list[_Node]], _Node]]] = {
    # name: (min args, max args or None, builder)
    "abs": (1, 1, _call_unary(np.absolute)),
    "ceil": (1, 1, _call_unary(np.ceil)),
    "clip": (3, 3, lambda args: _Clip(*args)),
    "exp": (1, 1, _call_unary(np.exp)),
    "floor": (1, 1, _call_unary(np.floor)),
    "log": (1, 1, _call_unary(np.log)),
    "max": (2, None, lambda args: _Reduce(np.maximum, args)),
    "min": (2, None, lambda args: _Reduce(np.minimum, args)),
    "sqrt": (1, 1, _call_unary(np.sqrt)),
    "where": (3, 3, lambda args: _Where(*args)),
}
"""The callable functions: name -> (min args, max args, evaluator builder)."""

_ALLOWED = ", ".join(sorted(FUNCTIONS))

_BINOPS: dict[type, np.ufunc] = {
    ast.Add: np.add,
    ast.Sub: np.subtract,
    ast.Mult: np.multiply,
    ast.Div: np.true_divide,
    ast.Pow: np.power,
    ast.Mod: np.remainder,
}
_BAD_BINOPS: dict[type, tuple[str, str]] = {
    ast.FloorDiv: ("//", "'//' is not allowed (use floor(a / b))"),
    ast.MatMult: ("@", "'@' is not allowed"),
    ast.LShift: ("<<", "bitwise operator '<<' is not allowed"),
    ast.RShift: (">>", "bitwise operator '>>' is not allowed"),
    ast.BitOr: ("|", "bitwise operator '|' is not allowed (use 'or')"),
    ast.BitAnd: ("&", "bitwise operator '&' is not allowed (use 'and')"),
    ast.BitXor: ("^", "bitwise operator '^' is not allowed (use '**' for powers)"),
}
_COMPARES: dict[type, np.ufunc] = {
    ast.Lt: np.less,
    ast.LtE: np.less_equal,
    ast.Gt: np.greater,
    ast.GtE: np.greater_equal,
    ast.Eq: np.equal,
    ast.NotEq: np.not_equal,
}
_BAD_COMPARES: dict[type, tuple[str, str]] = {
    ast.Is: ("is", "'is' is not allowed (use '==')"),
    ast.IsNot: ("is", "'is not' is not allowed (use '!=')"),
    ast.In: ("in", "'in' is not allowed"),
    ast.NotIn: ("not", "'not in' is not allowed"),
}
_FORBIDDEN: dict[type, str] = {
    ast.Attribute: "attribute access is not allowed",
    ast.Subscript: "indexing is not allowed",
    ast.Slice: "slices are not allowed",
    ast.JoinedStr: "f-strings are not allowed",
    ast.FormattedValue: "f-strings are not allowed",
    ast.Lambda: "lambda is not allowed",
    ast.ListComp: "comprehensions are not allowed",
    ast.SetComp: "comprehensions are not allowed",
    ast.DictComp: "comprehensions are not allowed",
    ast.GeneratorExp: "comprehensions are not allowed",
    ast.NamedExpr: "assignment (':=') is not allowed",
    ast.List: "lists are not allowed",
    ast.Tuple: "tuples are not allowed",
    ast.Set: "sets are not allowed",
    ast.Dict: "dicts are not allowed",
    ast.Starred: "starred expressions are not allowed",
    ast.Await: "'await' is not allowed",
    ast.Yield: "'yield' is not allowed",
    ast.YieldFrom: "'yield' is not allowed",
}
_HANDLERS: dict[type, str] = {
    t: "c_" + t.__name__.lower()
    for t in (ast.Constant, ast.Name, ast.BinOp, ast.UnaryOp, ast.Compare, ast.BoolOp, ast.IfExp, ast.Call)
}
_UNCOUNTED = (ast.expr_context, ast.operator, ast.unaryop, ast.cmpop, ast.boolop)


# ---------------------------------------------------------------------------
# Compilation


def _fold(node: _Node, children: Iterable[_Node]) -> _Node:
    """``node`` evaluated now when all its children are constants."""
    if all(type(c) is _Const for c in children):
        with np.errstate(all="ignore"):
            return _Const(_scalar(node.ev({})))
    return node


class _Compiler:
    def __init__(self, text: _Text) -> None:
        self.t = text
        self.names: dict[str, str] = {}  # name -> position of first use, in source order
        self.functions: set[str] = set()

    def compile(self, node: ast.AST) -> _Node:
        method = getattr(self, _HANDLERS.get(type(node), ""), None)
        if method is not None:
            return method(node)
        message = _FORBIDDEN.get(type(node), f"{type(node).__name__} is not allowed")
        if isinstance(node, ast.Attribute):
            while isinstance(node.value, ast.Attribute):  # report the first dot of a chain
                node = node.value
            raise self._attr(node, message)
        if isinstance(node, ast.Subscript):
            while isinstance(node.value, ast.Subscript):
                node = node.value
            raise self.t.token_problem(message, "[", node.value, node.slice)
        raise self.t.problem(message, node)

    def _attr(self, node: ast.Attribute, message: str) -> _FormulaError:
        lo = self.t.node_end(node.value)
        found = self.t.text.find(".", lo, max(self.t.node_end(node), lo))
        return _FormulaError(message, self.t.at(found if found >= 0 else self.t.node_start(node)))

    def c_constant(self, node: ast.Constant) -> _Node:
        v = node.value
        if isinstance(v, bool):
            return _Const(v)
        if isinstance(v, int | float):
            try:
                f = float(v)
            except OverflowError:
                f = math.inf
            if not math.isfinite(f):
                raise self.t.problem("number too large (not a finite float64)", node)
            return _Const(f)
        kind = {str: "strings", bytes: "bytes", complex: "complex numbers"}.get(type(v))
        if kind is not None:
            raise self.t.problem(f"{kind} are not allowed", node)
        raise self.t.problem("'...' is not allowed" if v is Ellipsis else f"{v!r} is not allowed", node)

    def _name(self, node: ast.Name) -> str:
        name = node.id
        spelled = self.t.text[self.t.node_start(node) : self.t.node_end(node)]
        if spelled != name or not _NAME_RE.match(name):
            if name.startswith("_"):
                raise self.t.problem(f"names starting with '_' are not allowed ({spelled!r})", node)
            raise self.t.problem(
                f"invalid name {spelled!r} (names are lower-case letters, digits and '_', starting with a letter)",
                node,
            )
        return name

    def c_name(self, node: ast.Name) -> _Node:
        name = self._name(node)
        if name in FUNCTIONS:
            raise self.t.problem(f"{name!r} is a function; call it as {name}(...)", node)
        self.names.setdefault(name, self.t.at(self.t.node_start(node)))
        return _Name(name)

    def c_binop(self, node: ast.BinOp) -> _Node:
        op = type(node.op)
        if op in _BAD_BINOPS:
            token, message = _BAD_BINOPS[op]
            raise self.t.token_problem(message, token, node.left, node.right)
        left = self.compile(node.left)
        right = self.compile(node.right)
        if op is ast.Pow and type(right) is _Const and right.value == 2.0:
            return _fold(_Square(left), [left])
        return _fold(_Binary(_BINOPS[op], left, right), [left, right])

    def c_unaryop(self, node: ast.UnaryOp) -> _Node:
        op = type(node.op)
        if op is ast.Invert:
            raise self.t.problem("'~' is not allowed (use 'not')", node)
        operand = self.compile(node.operand)
        if op is ast.USub:
            return _fold(_Unary(np.negative, operand), [operand])
        if op is ast.UAdd:
            return _fold(_Pos(operand), [operand])
        return _fold(_Not(operand), [operand])

    def c_compare(self, node: ast.Compare) -> _Node:
        prev: ast.AST = node.left
        for op, right in zip(node.ops, node.comparators, strict=True):
            if type(op) in _BAD_COMPARES:
                token, message = _BAD_COMPARES[type(op)]
                raise self.t.token_problem(message, token, prev, right)
            prev = right
        first = self.compile(node.left)
        rest = [(_COMPARES[type(op)], self.compile(c)) for op, c in zip(node.ops, node.comparators, strict=True)]
        return _fold(_Compare(first, rest), [first, *(n for _, n in rest)])

    def c_boolop(self, node: ast.BoolOp) -> _Node:
        values = [self.compile(v) for v in node.values]
        f = np.logical_and if isinstance(node.op, ast.And) else np.logical_or
        return _fold(_BoolOp(f, values), values)

    def c_ifexp(self, node: ast.IfExp) -> _Node:
        a = self.compile(node.body)
        cond = self.compile(node.test)
        b = self.compile(node.orelse)
        return _fold(_Where(cond, a, b), [cond, a, b])

    def c_call(self, node: ast.Call) -> _Node:
        func = node.func
        if not isinstance(func, ast.Name):
            if isinstance(func, ast.Attribute):
                raise self._attr(func, _FORBIDDEN[ast.Attribute])
            raise self.t.problem("only named functions can be called", node)
        name = self._name(func)
        if name not in FUNCTIONS:
            position = self.t.at(self.t.node_start(func))
            raise _FormulaError(f"unknown function {name!r}", position, f" (allowed: {_ALLOWED})")
        for kw in node.keywords:
            what = "keyword arguments" if kw.arg is not None else "'**' arguments"
            raise self.t.problem(f"{what} are not allowed", kw)
        for arg in node.args:
            if isinstance(arg, ast.Starred):
                raise self.t.problem("starred arguments are not allowed", arg)
        self.functions.add(name)
        args = [self.compile(a) for a in node.args]
        lo, hi, build = FUNCTIONS[name]
        if len(args) < lo or (hi is not None and len(args) > hi):
            want = f"{lo}" if lo == hi else f"at least {lo}"
            raise self.t.problem(f"{name}() takes {want} argument{'s' if lo != 1 else ''} (got {len(args)})", node)
        return _fold(build(args), args)


def _check_limits(tree: ast.Expression, t: _Text) -> None:
    """Depth and size limits, checked without recursion."""
    stack: list[tuple[ast.AST, int]] = [(tree.body, 1)]
    count = 0
    last: ast.AST = tree.body
    while stack:
        node, depth = stack.pop()
        if isinstance(node, _UNCOUNTED):
            continue
        if hasattr(node, "lineno"):
            last = node
        count += 1
        if count > MAX_NODES:
            raise t.problem(f"expression too large (more than {MAX_NODES} parts)", last)
        if depth > MAX_DEPTH:
            raise t.problem(f"expression nested too deeply (more than {MAX_DEPTH} levels)", last)
        stack.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


class _Compiled:
    __slots__ = ("functions", "names", "positions", "root", "source", "text")

    def __init__(self, source: str, root: _Node, positions: dict[str, str], functions: set[str], text: str) -> None:
        self.source = source
        self.root = root
        self.positions = positions
        self.names = frozenset(positions)
        self.functions = frozenset(functions)
        self.text = text


@lru_cache(maxsize=4096)
def _compile(source: str) -> _Compiled | _FormulaError:
    try:
        return _compile_uncached(source)
    except _FormulaError as problem:
        return problem.with_traceback(None)  # cached: keep no frames alive


def _length(source: str) -> int:
    """Characters of a formula, spaces and line breaks not counted."""
    return len(source) - sum(source.count(c) for c in " \t\r\n")


def _compile_uncached(source: str) -> _Compiled:
    if _length(source) > MAX_SOURCE_LENGTH:  # spaces do not count: normalised text parses again
        raise _FormulaError(
            f"expression too long ({_length(source)} characters besides spaces, at most {MAX_SOURCE_LENGTH})",
            "line 1, column 1" if "\n" in source[:MAX_SOURCE_LENGTH] else f"column {MAX_SOURCE_LENGTH + 1}",
        )
    t = _Text(source)
    for i, c in enumerate(source):
        if not c.isprintable() and c not in " \t\r\n":
            raise _FormulaError(f"character {ascii(c)[1:-1]!s} (U+{ord(c):04X}) is not allowed", t.at_raw(i))
        if not c.isascii():  # the language is ASCII; refusing here keeps Python's parser from normalising names
            raise _FormulaError(f"character {c!r} (U+{ord(c):04X}) is not allowed (formulas are ASCII)", t.at_raw(i))
    if not t.text:
        raise _FormulaError("empty expression", "column 1")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tree = ast.parse(t.text, mode="eval")
    except SyntaxError as exc:
        lineno = min(max(exc.lineno or 1, 1), len(t.lines))
        line = t.lines[lineno - 1]
        offset = exc.offset if exc.offset and 1 <= exc.offset <= len(line) else len(line) + 1
        detail = "" if exc.msg in ("invalid syntax", "") else f" ({exc.msg})"
        raise _FormulaError(f"syntax error{detail}", t.at(t.starts[lineno - 1] + offset - 1)) from None
    except (RecursionError, MemoryError):
        raise _FormulaError("expression too complex for the parser", "column 1") from None
    except (ValueError, OverflowError, UnicodeError) as exc:
        raise _FormulaError(f"cannot parse ({type(exc).__name__})", "column 1") from None
    _check_limits(tree, t)
    compiler = _Compiler(t)
    try:
        root = compiler.compile(tree.body)
        text = ast.unparse(tree.body)
    except RecursionError:  # pragma: no cover - prevented by _check_limits
        raise _FormulaError("expression too complex", "column 1") from None
    return _Compiled(source, root, compiler.names, compiler.functions, text)


def _listing(names: Iterable[str]) -> str:
    names = sorted(names)
    if not names:
        return "none"
    shown = ", ".join(names[:_MAX_LISTED])
    return shown if len(names) <= _MAX_LISTED else f"{shown}, ... ({len(names) - _MAX_LISTED} more)"


# ---------------------------------------------------------------------------
# Public API


class Expression:
    """A parsed, checked and compiled formula (immutable; safe to share between threads).

    Made by :func:`parse`; ``where`` (the origin given to it) prefixes the
    messages of errors raised while evaluating.

    >>> e = parse("clip(2 * x, 0, 1)")
    >>> sorted(e.names), sorted(e.functions)
    (['x'], ['clip'])
    >>> e.evaluate({"x": np.array([-1.0, 0.25, 3.0])}).tolist()
    [0.0, 0.5, 1.0]
    """

    __slots__ = ("_c", "where")

    def __init__(self, compiled: _Compiled, where: str) -> None:
        self._c = compiled
        self.where = where

    @property
    def source(self) -> str:
        """The text as written."""
        return self._c.source

    @property
    def names(self) -> frozenset[str]:
        """The free variables (field names) the formula reads."""
        return self._c.names

    @property
    def functions(self) -> frozenset[str]:
        """The functions the formula calls."""
        return self._c.functions

    @property
    def is_constant(self) -> bool:
        """Whether the formula folded to a constant (it reads no names)."""
        return type(self._c.root) is _Const

    @property
    def constant_value(self) -> float | bool | None:
        """The value of a constant formula (``float`` or ``bool``), else ``None``."""
        root = self._c.root
        return root.value if type(root) is _Const else None

    def to_text(self) -> str:
        """The normalised source (``ast.unparse``: canonical spacing and parentheses)."""
        return self._c.text

    def __str__(self) -> str:
        return self._c.text

    def __repr__(self) -> str:
        return f"Expression({self._c.text!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Expression) and other._c.text == self._c.text

    def __hash__(self) -> int:
        return hash(self._c.text)

    def _error(self, message: str, where: str | None = None) -> ScenarioError:
        return ScenarioError(f"{self.where if where is None else where}: {message}")

    def check_names(self, known: Iterable[str], where: str) -> None:
        """Raise :class:`ScenarioError` if the formula reads a name not in ``known``.

        The message names the first unknown name (in source order), its column,
        a close match if there is one, and the known names (a long list is cut).
        """
        known = set(known)
        for name, position in self._c.positions.items():
            if name not in known:
                close = difflib.get_close_matches(name, sorted(known), n=1)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                raise self._error(f"unknown name {name!r} at {position} (known: {_listing(known)}{hint})", where)

    def _resolve(self, env: Mapping[str, Any], lo: int, hi: int | None) -> dict[str, Any]:
        vals: dict[str, Any] = {}
        for name, position in self._c.positions.items():
            try:
                v = env[name]
            except KeyError:
                raise self._error(f"unknown name {name!r} at {position} (known: {_listing(env.keys())})") from None
            if type(v) is np.ndarray:
                if v.dtype.kind not in "biuf":
                    raise self._error(f"field {name!r} at {position} is not numeric (dtype {v.dtype})")
                vals[name] = v[lo:hi] if v.ndim else _scalar(v)
            elif type(v) is float or type(v) is bool:
                vals[name] = v
            elif isinstance(v, bool | np.bool_ | int | float | np.integer | np.floating):
                try:
                    vals[name] = _scalar(v)
                except OverflowError:
                    raise self._error(f"value of {name!r} at {position} is too large") from None
            else:
                raise self._error(f"value of {name!r} at {position} is not a number or array ({type(v).__name__})")
        return vals

    def evaluate(self, env: Mapping[str, Value], lo: int = 0, hi: int | None = None) -> np.ndarray | float | bool:
        """Evaluate over ``env``, rows ``lo:hi`` of every array (scalars broadcast).

        Numeric results are float64, boolean ones (comparisons, ``and``/``or``/
        ``not``) are ``bool``.  The result is an array when any name read is an
        array, else a Python ``float``/``bool``; it never shares memory with
        ``env``.  Floating-point errors are silent (``inf``/``nan``): callers
        clip or check.  A missing or non-numeric name, or arrays of different
        lengths, raise :class:`ScenarioError`.
        """
        vals = self._resolve(env, lo, hi)
        try:
            with np.errstate(all="ignore"):
                r = self._c.root.ev(vals)
        except (ValueError, TypeError) as exc:
            raise self._error(f"cannot evaluate {self._c.text!r}: {one_line(str(exc))}") from None
        if type(r) is np.ndarray:
            if r.dtype != _F8 and r.dtype != np.bool_:
                return r.astype(_F8)
            return r if r.flags.owndata else r.copy()
        return _scalar(r)


def parse(source: str, where: str = "expression") -> Expression:
    """Parse, check and compile a formula.

    ``where`` names its origin (e.g. ``"scenarios/china.toml: perks.rail.eligible"``)
    and prefixes every error message.  Raises :class:`ScenarioError` (one line:
    where, problem, 1-based column) for anything outside the language or its
    limits (:data:`MAX_SOURCE_LENGTH`, :data:`MAX_DEPTH`, :data:`MAX_NODES`).
    """
    if not isinstance(source, str):
        raise ScenarioError(f"{where}: expected a formula string, got {type(source).__name__} at column 1")
    result = _compile(source)
    if isinstance(result, _FormulaError):
        raise ScenarioError(f"{where}: {result.text()}")
    return Expression(result, where)


def check_syntax(source: str) -> str:
    """Pydantic ``AfterValidator``: return ``source`` if it parses, else raise ``ValueError`` (one line)."""
    if not isinstance(source, str):
        raise ValueError(f"expected a formula string, got {type(source).__name__}")
    result = _compile(source)
    if isinstance(result, _FormulaError):
        raise ValueError(one_line(result.text()))
    return source


Formula = Annotated[str, AfterValidator(check_syntax)]
"""A scenario field holding a formula (a ``str`` checked by :func:`check_syntax`)."""
