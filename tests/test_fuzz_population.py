"""Fuzzing the Parquet population (socialcredit.population.parquet).

Four surfaces; the counts are the hypothesis examples tried per run (the
module constants below, checked by ``test_example_counts_are_documented``):

* random schemas — 600 cases: a valid population whose columns are dropped,
  renamed (to random text, other schema names, personal-data names in any
  case), added (any name, any type) or retyped (strings, binary, large and
  unsigned integers up to 2**64-1, floats for ints, ints for bools, float16,
  decimals, timestamps, lists, structs, nulls, dictionary encoding).
* random values — 800 cases: the valid schema holding nulls, NaN, ±inf,
  out-of-range values, float32 underflow and overflow, duplicate ids,
  invalid or self parents, and values exactly on the bounds.
* garbled bytes — 800 cases: a valid file (random compression, row groups,
  dictionary encoding, written with page checksums) truncated (with or
  without a new footer magic), bit-flipped, overwritten, spliced or extended.
* engine placement — 150 cases: valid files through the plugin's
  ``region_counts`` and ``fill``.

On the first three, every case either loads — and then the loaded arrays
equal the written ones (in the engine's storage dtypes) — or raises a
one-line ScenarioError naming the file; never another exception. On the first
two, an independent oracle decides which of the two must happen. On the last,
citizens land at their rank in (region, citizen) order, with the file id in
``source_id`` and parents translated to engine ids.
"""

from __future__ import annotations

import math
import string
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from socialcredit.errors import ScenarioError
from socialcredit.population import Blocks, Citizens
from socialcredit.population.parquet import ParquetPopulation, ParquetPopulationConfig, read_synthetic

SCHEMA_EXAMPLES = 600
VALUE_EXAMPLES = 800
BYTES_EXAMPLES = 800
PLACEMENT_EXAMPLES = 150

FUZZ = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow, HealthCheck.function_scoped_fixture]}

# The documented schema, written out again independently of the module: kind, required, range.
BOOLS = ("urban", "minority", "member", "female", "hukou_urban", "messaging", "consent")
UNIT = ("risk", "voice", "sociability", "conscientiousness")
INT_RANGE = {"region": (0, 254), "age": (0, 120), "education": (0, 3)}  # citizen, parent: depend on n
REQUIRED = ("citizen", "region", "urban", "minority", "member", "income", "risk", "voice")
OPTIONAL = ("age", "female", "hukou_urban", "messaging", "consent", "education", "wealth", "debt", "sociability",
            "conscientiousness", "parent")
ALL = REQUIRED + OPTIONAL
PERSONAL = ("name", "id_number", "phone", "address", "face", "photo", "email")
INTS = {pa.int8(), pa.int16(), pa.int32(), pa.int64(), pa.uint8(), pa.uint16(), pa.uint32(), pa.uint64()}
FLOATS = {pa.float16(), pa.float32(), pa.float64()}
STORAGE = {"citizen": np.int64, "region": np.uint8, "age": np.uint8, "education": np.uint8, "parent": np.int64,
           **{b: np.bool_ for b in BOOLS}, **{f: np.float32 for f in ("income", "wealth", "debt", *UNIT)}}


def _kind(name: str) -> str:
    if name in BOOLS:
        return "bool"
    if name in ("citizen", "parent", *INT_RANGE):
        return "int"
    return "float"


def _type_ok(name: str, t: pa.DataType) -> bool:
    if pa.types.is_dictionary(t):
        t = t.value_type
    kind = _kind(name)
    return t == pa.bool_() if kind == "bool" else t in INTS if kind == "int" else t in INTS | FLOATS


def _value_ok(name: str, v: object, n: int) -> bool:
    kind = _kind(name)
    if kind == "bool":
        return isinstance(v, bool)
    if kind == "int":
        lo, hi = {"citizen": (0, n - 1), "parent": (-1, n - 1)}.get(name, INT_RANGE.get(name, (0, 0)))
        return lo <= v <= hi
    x = float(v)
    if not math.isfinite(x):
        return False
    if name == "income":
        return x <= 1e12 and np.float32(x) > 0
    return 0 <= x <= (1 if name in UNIT else 3.4e38)


def oracle(table: pa.Table) -> bool:
    """Whether ``table`` holds a valid population, by the documented rules."""
    names = table.column_names
    if any(p in name.lower() for name in names for p in PERSONAL):
        return False
    if len(set(names)) != len(names) or not set(names) <= set(ALL) or not set(REQUIRED) <= set(names):
        return False
    n = table.num_rows
    if n == 0 or not all(_type_ok(name, table.schema.field(name).type) for name in names):
        return False
    values = {name: table.column(name).to_pylist() for name in names}
    if any(v is None or not _value_ok(name, v, n) for name, col in values.items() for v in col):
        return False
    if sorted(values["citizen"]) != list(range(n)):
        return False
    return not any(p == c for p, c in zip(values.get("parent", []), values["citizen"], strict=False))


PROBLEMS = ("personal data", "more than once", "unknown column", "missing required", "wrong type", "null", "NaN",
            "out of range", "duplicate", "own parent", "no rows", "empty file", "not a Parquet", "corrupt Parquet",
            "corrupt data", "corrupt file", "rows but")


def _written(table: pa.Table, name: str) -> np.ndarray:
    """What the file holds in column ``name``, in the storage dtype."""
    values = table.column(name).to_pylist()
    if STORAGE[name] is np.float32:
        return np.array([float(v) for v in values], np.float64).astype(np.float32)
    return np.array(values, dtype=object).astype(STORAGE[name])


def _check(path: Path, table: pa.Table | None, valid: bool | None) -> bool:
    """Read ``path``: a one-line ScenarioError naming the file, or arrays equal to ``table``'s columns."""
    try:
        got = read_synthetic(path)
    except ScenarioError as exc:
        message = str(exc)
        event("refused: " + next((k for k in PROBLEMS if k in message), "other"))
        assert "\n" not in message and "\r" not in message and message.startswith(f"{path}: "), message
        assert valid is not True, f"a valid file was refused: {message}"
        return False
    assert valid is not False, "an invalid file was accepted"
    event("loaded")
    if table is not None:
        assert got.rows == table.num_rows
        assert sorted(got.columns) == sorted(table.column_names)
        for name, arr in got.columns.items():
            assert arr.dtype == STORAGE[name], name
            np.testing.assert_array_equal(arr, _written(table, name), err_msg=name)
    return True


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz-population")


# -- valid populations --------------------------------------------------------------------------------------


@st.composite
def populations(draw, max_n: int = 24) -> dict[str, list]:
    """A valid population as plain lists (rows in random order; a random set of optional columns)."""
    n = draw(st.integers(1, max_n))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    regions = draw(st.sampled_from([1, 2, 3, 31, 255]))
    cols: dict[str, list] = {
        "citizen": rng.permutation(n).tolist(),
        "region": rng.integers(0, regions, n).tolist(),
        "urban": (rng.random(n) < 0.6).tolist(), "minority": (rng.random(n) < 0.1).tolist(),
        "member": (rng.random(n) < 0.8).tolist(),
        "income": np.exp(rng.normal(10, 1, n)).tolist(), "risk": rng.random(n).tolist(),
        "voice": rng.random(n).tolist(),
    }
    for name in draw(st.lists(st.sampled_from(OPTIONAL), unique=True)):
        if name in BOOLS:
            cols[name] = (rng.random(n) < 0.5).tolist()
        elif name == "age":
            cols[name] = rng.integers(0, 121, n).tolist()
        elif name == "education":
            cols[name] = rng.integers(0, 4, n).tolist()
        elif name == "parent":
            parent = rng.integers(-1, n, n)
            cols[name] = np.where(parent == np.array(cols["citizen"]), -1, parent).tolist()
        elif name in ("wealth", "debt"):
            cols[name] = (rng.random(n) * 10.0 ** rng.integers(0, 12, n)).tolist()
        else:
            cols[name] = rng.random(n).tolist()
    return cols


def _default_type(name: str) -> pa.DataType:
    return {"bool": pa.bool_(), "int": pa.int64(), "float": pa.float64()}[_kind(name)]


def _table(cols: dict[str, list], types: dict[str, pa.DataType] | None = None) -> pa.Table:
    types = types or {}
    return pa.table({name: pa.array(v, types.get(name, _default_type(name))) for name, v in cols.items()})


# -- (a) random schemas -------------------------------------------------------------------------------------

RETYPES = ("string", "binary", "large_int", "uint64_huge", "float_for_int", "int_for_bool", "bool_for_float",
           "float16", "float32", "int8", "uint8", "decimal", "timestamp", "list", "struct", "null", "dictionary",
           "dictionary_string", "large_string")


def _retype(col: list, how: str, n: int) -> pa.Array:
    """``col`` rewritten as another Arrow type (values converted where that makes sense)."""
    if how in ("string", "large_string"):
        return pa.array([str(v) for v in col], pa.string() if how == "string" else pa.large_string())
    if how == "binary":
        return pa.array([str(v).encode() for v in col], pa.binary())
    if how == "large_int":
        return pa.array([2**40 + i for i in range(n)], pa.int64())
    if how == "uint64_huge":
        return pa.array([2**64 - 1 - i for i in range(n)], pa.uint64())
    if how == "float_for_int":
        return pa.array([float(v) for v in col], pa.float64())
    if how in ("int_for_bool", "int8", "uint8"):
        t = pa.uint8() if how == "uint8" else pa.int8()
        return pa.array([max(min(int(v), 127), 0 if how == "uint8" else -128) for v in col], t)
    if how == "bool_for_float":
        return pa.array([bool(v) for v in col], pa.bool_())
    if how in ("float16", "float32"):
        with np.errstate(over="ignore"):  # large values become inf, which must be refused
            return pa.array(np.array([float(v) for v in col], np.float16 if how == "float16" else np.float32))
    if how == "decimal":
        return pa.array([int(v) for v in col], pa.decimal128(20, 0))
    if how == "timestamp":
        return pa.array([int(v) for v in col], pa.timestamp("s"))
    if how == "list":
        return pa.array([[v] for v in col])
    if how == "struct":
        return pa.array([{"v": v} for v in col])
    if how == "null":
        return pa.nulls(n)
    if how == "dictionary":
        return pa.array(col).dictionary_encode()
    return pa.array([str(v) for v in col]).dictionary_encode()


names = st.one_of(
    st.sampled_from(ALL),
    st.sampled_from(ALL).map(str.upper),
    st.tuples(st.text(string.ascii_letters + "_", max_size=5), st.sampled_from(PERSONAL),
              st.text(string.ascii_letters + "_", max_size=5), st.booleans()).map(
        lambda t: (t[0] + (t[1].upper() if t[3] else t[1]) + t[2])),
    st.text(max_size=30),
    st.just("__index_level_0__"),
)
mutations = st.lists(st.one_of(
    st.tuples(st.just("drop"), st.integers(0, 99)),
    st.tuples(st.just("rename"), st.integers(0, 99), names),
    st.tuples(st.just("add"), names, st.sampled_from(RETYPES)),
    st.tuples(st.just("retype"), st.integers(0, 99), st.sampled_from(RETYPES)),
), max_size=4)


@settings(max_examples=SCHEMA_EXAMPLES, **FUZZ)
@given(cols=populations(max_n=12), changes=mutations)
def test_random_schemas(workdir, cols, changes):
    n = len(cols["citizen"])
    fields = [(name, pa.array(v, _default_type(name)), v) for name, v in cols.items()]  # name, array, source
    for change in changes:
        if change[0] == "add":
            fields.append((change[1], _retype(list(range(n)), change[2], n), list(range(n))))
        elif fields:
            i = change[1] % len(fields)
            name, arr, source = fields[i]
            if change[0] == "drop":
                del fields[i]
            elif change[0] == "rename":
                fields[i] = (change[2], arr, source)
            else:
                fields[i] = (name, _retype(source, change[2], n), source)
    table = pa.Table.from_arrays([a for _, a, _ in fields], names=[f for f, _, _ in fields])
    path = workdir / "schema.parquet"
    pq.write_table(table, path)
    valid = oracle(table)
    _check(path, table if valid else None, valid)
    if not changes:
        assert valid


# -- (b) random values --------------------------------------------------------------------------------------

FAULTS = ("null", "nan", "inf", "-inf", "low", "high", "bound_lo", "bound_hi", "tiny", "huge", "dup_id",
          "self_parent")


def _fault(cols: dict[str, list], name: str, row: int, fault: str) -> None:
    n = len(cols["citizen"])
    col = cols[name]
    kind = _kind(name)
    lo, hi = {"citizen": (0, n - 1), "parent": (-1, n - 1), "income": (0.0, 1e12), "wealth": (0.0, 3.4e38),
              "debt": (0.0, 3.4e38)}.get(name, INT_RANGE.get(name, (0.0, 1.0)))
    if fault == "dup_id":
        cols["citizen"][row] = cols["citizen"][(row + 1) % n]
    elif fault == "self_parent":
        if "parent" in cols:
            cols["parent"][row] = cols["citizen"][row]
    elif fault == "null":
        col[row] = None
    elif kind == "bool":
        return
    elif fault in ("nan", "inf", "-inf") and kind == "float":
        col[row] = float(fault)
    elif fault == "low":
        col[row] = lo - (1 if kind == "int" else 1e-3)
    elif fault == "high":
        col[row] = hi + (1 if kind == "int" else max(1e-3, hi * 1e-3))
    elif fault == "bound_lo":
        col[row] = lo
    elif fault == "bound_hi":
        col[row] = hi
    elif fault == "tiny" and kind == "float":
        col[row] = 1e-300
    elif fault == "huge":
        col[row] = 2**62 if kind == "int" else 1e300


@settings(max_examples=VALUE_EXAMPLES, **FUZZ)
@given(cols=populations(), faults=st.lists(st.one_of(
    st.tuples(st.sampled_from(ALL), st.integers(0, 99), st.sampled_from(FAULTS)),
    st.tuples(st.sampled_from(REQUIRED), st.integers(0, 99), st.sampled_from(("dup_id", "self_parent"))),
), max_size=3),
       narrow=st.booleans())
def test_random_values(workdir, cols, faults, narrow):
    n = len(cols["citizen"])
    for name, row, fault in faults:
        if name in cols:
            _fault(cols, name, row % n, fault)
    types = {}
    if narrow:  # the smallest types that hold the values (wraps nothing: the range is checked)
        for name in cols:
            if _kind(name) == "int" and all(v is not None and -1 <= v <= 254 for v in cols[name]):
                types[name] = pa.uint8() if all(v >= 0 for v in cols[name]) else pa.int16()
            elif _kind(name) == "float" and name in UNIT:
                types[name] = pa.float32()
    table = _table(cols, types)
    path = workdir / "values.parquet"
    pq.write_table(table, path)
    valid = oracle(table)
    loaded = _check(path, table, valid)
    if not faults:
        assert loaded


# -- (c) garbled bytes --------------------------------------------------------------------------------------

position = st.integers(0, 2**20)  # taken modulo the file's length
garbles = st.lists(st.one_of(
    st.tuples(st.just("truncate"), position, st.booleans()),
    st.tuples(st.just("flip"), position, st.integers(0, 7)),
    st.tuples(st.just("flip"), position, st.integers(0, 7)),
    st.tuples(st.just("overwrite"), position, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("overwrite"), position, st.binary(min_size=1, max_size=16)),
    st.tuples(st.just("splice"), position, st.integers(1, 64)),
    st.tuples(st.just("append"), st.binary(max_size=16), st.booleans()),
), min_size=1, max_size=4)


def _garble(data: bytes, ops: list[tuple]) -> bytes:
    b = bytearray(data)
    for op in ops:
        at = op[1] % len(b) if op[0] != "append" and b else 0
        if op[0] == "truncate":  # optionally keeping a footer magic, so the footer itself is read
            b[at:] = b"PAR1" if op[2] else b""
        elif op[0] == "flip" and at < len(b):
            b[at] ^= 1 << op[2]
        elif op[0] == "overwrite":
            b[at:at + len(op[2])] = op[2]
        elif op[0] == "splice":
            del b[at:at + op[2]]
        elif op[0] == "append":
            b += op[1] + (b"PAR1" if op[2] else b"")
    return bytes(b)


@settings(max_examples=BYTES_EXAMPLES, **FUZZ)
@given(cols=populations(max_n=16), ops=garbles, compression=st.sampled_from(["none", "snappy", "zstd", "gzip"]),
       row_group=st.integers(1, 20), dictionary=st.booleans())
def test_garbled_bytes(workdir, cols, ops, compression, row_group, dictionary):
    table = _table(cols)
    path = workdir / "bytes.parquet"
    pq.write_table(table, path, compression=compression, row_group_size=row_group, use_dictionary=dictionary,
                   write_page_checksum=True)
    path.write_bytes(_garble(path.read_bytes(), ops))
    _check(path, table, None)


# -- (d) engine placement -----------------------------------------------------------------------------------


@settings(max_examples=PLACEMENT_EXAMPLES, **FUZZ)
@given(cols=populations(max_n=40))
def test_engine_placement(workdir, cols):
    path = workdir / "placement.parquet"
    pq.write_table(_table(cols), path)
    n = len(cols["citizen"])
    plugin = ParquetPopulation("population", ParquetPopulationConfig(path=str(path)))
    counts = plugin.region_counts(n, 0)
    assert counts.sum() == n and counts.tolist() == np.bincount(cols["region"]).tolist()
    blocks = Blocks.from_region_counts(counts, block_size=4)  # small blocks: several per region
    cz = Citizens.empty(blocks.region_of())
    plugin.fill(cz, blocks, 0)
    order = sorted(range(n), key=lambda r: (cols["region"][r], cols["citizen"][r]))  # file rows, engine order
    engine_of = {cols["citizen"][r]: i for i, r in enumerate(order)}
    assert cz.extra["source_id"].tolist() == [cols["citizen"][r] for r in order]
    assert cz.region.tolist() == [cols["region"][r] for r in order]
    np.testing.assert_array_equal(cz.income, np.array([cols["income"][r] for r in order], np.float32))
    np.testing.assert_array_equal(cz.risk, np.array([cols["risk"][r] for r in order], np.float32))
    assert cz.flag(4).tolist() == [cols["member"][r] for r in order]
    for name in set(cols) - {"citizen", "region", "urban", "minority", "member", "income", "risk", "voice",
                             "parent"}:
        np.testing.assert_array_equal(cz.extra[name], np.array([cols[name][r] for r in order]).astype(
            cz.extra[name].dtype), err_msg=name)
    if "parent" in cols:
        assert cz.extra["parent"].tolist() == [
            -1 if cols["parent"][r] == -1 else engine_of[cols["parent"][r]] for r in order]


# -- bookkeeping --------------------------------------------------------------------------------------------


def test_example_counts_are_documented() -> None:
    doc = __doc__ or ""
    for surface, count, test in [
        ("random schemas", SCHEMA_EXAMPLES, test_random_schemas),
        ("random values", VALUE_EXAMPLES, test_random_values),
        ("garbled bytes", BYTES_EXAMPLES, test_garbled_bytes),
        ("engine placement", PLACEMENT_EXAMPLES, test_engine_placement),
    ]:
        assert f"{surface} — {count} cases" in doc
        assert test._hypothesis_internal_use_settings.max_examples == count
