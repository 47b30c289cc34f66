"""A population read from a Parquet file with the documented synthetic schema.

SPEC section 1: "A population may be loaded from a Parquet file, but only with
the documented synthetic schema." This module is that door, and it is narrow
on purpose: every column must be one of the synthetic attributes below, with
the type and range given; anything else (a column that looks like personal
data above all: ``name``, ``id_number``, ``phone``, ``address``, ``face``,
``photo``, ``email``, matched case-insensitively anywhere in the column name)
is refused. The table is also in ``docs/population-parquet.md``.

Scenario table::

    [population]
    kind = "parquet"
    path = "population.parquet"

``path`` is resolved against the directory of the scenario file when the
scenario loader passes its source as validation context
(``model_validate(..., context={"source": ...})``), otherwise against the
current directory.

Schema (one row per citizen; columns in any order; no nulls anywhere)

=================== ======== ======== ===========================================
column              type     needed   values
=================== ======== ======== ===========================================
citizen             int      required 0..n-1, each exactly once, any row order
region              int      required 0..254
urban               bool     required resident in a town
minority            bool     required ethnic-minority flag
member              bool     required payment-platform member
income              float    required 0 < income <= 1e12, finite (CNY/yr)
risk                float    required [0, 1] risk propensity
voice               float    required [0, 1] outspokenness
age                 int      optional 0..120
female              bool     optional
hukou_urban         bool     optional urban household registration
messaging           bool     optional messaging-app member
consent             bool     optional consents to data sharing
education           int      optional 0..3 (primary or less .. tertiary)
wealth              float    optional 0 <= wealth <= 3.4e38, finite (CNY)
debt                float    optional 0 <= debt <= 3.4e38, finite (CNY)
sociability         float    optional [0, 1]
conscientiousness   float    optional [0, 1]
parent              int      optional -1 (none) or another row's ``citizen``
=================== ======== ======== ===========================================

``int`` is any Arrow integer type (int8..int64, uint8..uint64), ``float`` any
Arrow floating type or an integer type, ``bool`` the Arrow boolean type;
dictionary-encoded columns of those types are accepted. Values are stored in
the engine's dtypes (``socialcredit.dtypes``): floats as float32, so a float
is checked after that conversion too (an income that rounds to 0 is refused).
n is the number of rows, which must equal ``--citizens``.

Engine ids. The engine numbers citizens region by region (see
``population/blocks.py``), so the file's ``citizen`` ids are not the engine's:
the engine id of a citizen is its rank in the order (region, citizen). The
file's id is kept in ``citizens.extra["source_id"]`` (and so in
``citizens.parquet`` of the run), and ``parent`` is translated to engine ids.
``region_counts`` returns the file's counts per region; the seed is unused
(nothing is drawn).

Errors. Every problem (missing file, empty file, not Parquet, corrupt file,
unknown or personal-data column, missing required column, wrong type, nulls,
NaN or infinity, out-of-range values, duplicate or missing ids, row count not
equal to ``--citizens``) is a ``ScenarioError``: one line naming the file,
the column and the problem, which the CLI prints as ``error: ...`` with exit
code 2. pyarrow reads the file column by column, after the types were checked
on the file's schema.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from pydantic import Field, ValidationInfo, field_validator

from socialcredit import dtypes as dt
from socialcredit.engine.plugin import Plugin
from socialcredit.errors import ScenarioError
from socialcredit.population.blocks import Blocks
from socialcredit.population.citizens import Citizens
from socialcredit.registry import register
from socialcredit.scenario.schema import Strict

if TYPE_CHECKING:  # pyarrow is imported where a file is read, not by every run
    import pyarrow as pa
    import pyarrow.parquet as pq

MAX_ROWS = 2_000_000_000  # the engine's largest population (simulation.MAX_CITIZENS)
MAX_REGION = 254  # regions are uint8 and at most 255 of them
MAX_INCOME = 1e12
MAX_AMOUNT = 3.4e38  # wealth, debt: must stay finite as float32
PERSONAL_DATA = ("name", "id_number", "phone", "address", "face", "photo", "email")
DOCS = "docs/population-parquet.md"
MAGIC = b"PAR1"


@dataclass(frozen=True)
class Column:
    """One column of the synthetic schema."""

    kind: str  # "int", "bool" or "float"
    required: bool
    dtype: Any  # storage dtype of the validated array
    lo: float | None = None  # inclusive lower bound (None: no bound)
    hi: float | None = None  # inclusive upper bound
    positive: bool = False  # strictly > 0 (checked on the stored value)


SCHEMA: dict[str, Column] = {
    "citizen": Column("int", True, np.int64, 0, None),  # upper bound: n - 1
    "region": Column("int", True, dt.REGION, 0, MAX_REGION),
    "urban": Column("bool", True, np.bool_),
    "minority": Column("bool", True, np.bool_),
    "member": Column("bool", True, np.bool_),
    "income": Column("float", True, dt.MONEY, None, MAX_INCOME, positive=True),
    "risk": Column("float", True, dt.TRAIT, 0.0, 1.0),
    "voice": Column("float", True, dt.TRAIT, 0.0, 1.0),
    "age": Column("int", False, np.uint8, 0, 120),
    "female": Column("bool", False, np.bool_),
    "hukou_urban": Column("bool", False, np.bool_),
    "messaging": Column("bool", False, np.bool_),
    "consent": Column("bool", False, np.bool_),
    "education": Column("int", False, np.uint8, 0, 3),
    "wealth": Column("float", False, dt.MONEY, 0.0, MAX_AMOUNT),
    "debt": Column("float", False, dt.MONEY, 0.0, MAX_AMOUNT),
    "sociability": Column("float", False, dt.TRAIT, 0.0, 1.0),
    "conscientiousness": Column("float", False, dt.TRAIT, 0.0, 1.0),
    "parent": Column("int", False, np.int64, -1, None),  # upper bound: n - 1, and not the row itself
}
REQUIRED = tuple(name for name, col in SCHEMA.items() if col.required)
FLAG_BITS = {"urban": dt.FLAG_URBAN, "minority": dt.FLAG_MINORITY, "member": dt.FLAG_MEMBER}
EXTRA_DTYPES = {"age": np.uint8, "female": np.uint8, "hukou_urban": np.uint8, "messaging": np.uint8,
                "consent": np.uint8, "education": np.uint8, "wealth": dt.MONEY, "debt": dt.MONEY,
                "sociability": dt.TRAIT, "conscientiousness": dt.TRAIT}  # as the china population stores them


def _show(name: str) -> str:
    """A column name as quoted in messages (shortened; control characters escaped by UserError)."""
    return repr(name if len(name) <= 60 else name[:57] + "...")


@dataclass(frozen=True)
class SyntheticTable:
    """A validated file: one array per column present, in file row order, in storage dtypes."""

    path: Path
    rows: int
    columns: dict[str, np.ndarray]


class _Reader:
    """Validation of one file; every failure is a one-line ScenarioError naming the file."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, problem: str, column: str | None = None) -> ScenarioError:
        where = f"column {_show(column)}: " if column is not None else ""
        return ScenarioError(f"{self.path}: {where}{problem}")

    # -- the file --------------------------------------------------------------

    def open(self) -> pq.ParquetFile:
        path = self.path
        try:
            if not path.exists():
                raise self.fail("no such file (a Parquet population file)")
            if not path.is_file():
                raise self.fail("not a regular file (a Parquet population is one .parquet file)")
            size = path.stat().st_size
            if size == 0:
                raise self.fail("empty file (0 bytes), not a Parquet file")
            with path.open("rb") as fh:
                head = fh.read(4)
                fh.seek(max(size - 4, 0))
                tail = fh.read(4)
        except (OSError, ValueError) as exc:  # ValueError: a path the OS cannot take (NUL bytes)
            raise self.fail(f"cannot read: {getattr(exc, 'strerror', None) or exc}") from None
        if size < 12 or head != MAGIC or tail != MAGIC:
            raise self.fail("not a Parquet file (no PAR1 header and footer; encrypted files are not supported)")
        import pyarrow.parquet as pq

        try:
            pf = pq.ParquetFile(path, page_checksum_verification=True, arrow_extensions_enabled=False)
            pf.schema_arrow  # noqa: B018  (decodes the schema: fails here on a corrupt footer)
        except Exception as exc:  # pyarrow's errors on corrupt footers are many (ArrowInvalid, OSError, ...)
            raise self.fail(f"unreadable or corrupt Parquet file ({_first_line(exc)})") from None
        return pf

    # -- the schema ------------------------------------------------------------

    def check_schema(self, schema: pa.Schema) -> dict[str, pa.DataType]:
        """Column types by name, after refusing personal data, unknown, duplicate and missing columns."""
        import pyarrow as pa

        names = list(schema.names)
        for name in names:
            low = name.lower()
            hit = next((p for p in PERSONAL_DATA if p in low), None)
            if hit is not None:
                raise self.fail(f"looks like personal data (contains {hit!r}); socialcredit only accepts the "
                                f"documented synthetic schema and never ingests data about real people "
                                f"(see {DOCS})", name)
        for name in names:
            if names.count(name) > 1:
                raise self.fail("appears more than once", name)
        for name in names:
            if name not in SCHEMA:
                hint = " (written from a pandas index: write with index=False)" if name.startswith("__index") else ""
                raise self.fail(f"unknown column{hint}; socialcredit only accepts the documented synthetic schema "
                                f"({', '.join(SCHEMA)}; see {DOCS})", name)
        for name in REQUIRED:
            if name not in names:
                raise self.fail(f"missing required column (required: {', '.join(REQUIRED)}; see {DOCS})", name)
        types = {}
        for name in SCHEMA:
            if name not in names:
                continue
            arrow_type = schema.field(name).type
            value_type = arrow_type.value_type if pa.types.is_dictionary(arrow_type) else arrow_type
            if not _accepts(SCHEMA[name].kind, value_type):
                raise self.fail(f"wrong type {arrow_type} (expected {_expected(SCHEMA[name].kind)})", name)
            types[name] = value_type
        return types

    # -- the values ------------------------------------------------------------

    def read_column(self, pf: pq.ParquetFile, name: str, value_type: pa.DataType, rows: int) -> np.ndarray:
        import pyarrow as pa

        try:
            table = pf.read(columns=[name], use_threads=True, use_pandas_metadata=False)
            if table.num_columns != 1:
                raise ValueError(f"read {table.num_columns} columns for one")
            chunked = table.column(0)
            if pa.types.is_dictionary(chunked.type):
                chunked = chunked.cast(value_type)
        except Exception as exc:  # corrupt pages, bad encodings, checksum failures, truncated data
            raise self.fail(f"unreadable or corrupt data ({_first_line(exc)})", name) from None
        if chunked.type != value_type:
            raise self.fail(f"wrong type {chunked.type} in the data (expected {_expected(SCHEMA[name].kind)})", name)
        if len(chunked) != rows:
            raise self.fail(f"corrupt file: {len(chunked):,} values for {rows:,} rows", name)
        if chunked.null_count:
            first = int(np.argmax(chunked.is_null().to_numpy(zero_copy_only=False)))
            raise self.fail(f"{chunked.null_count:,} null values (first at row {first}); nulls are not allowed",
                            name)
        values = chunked.to_numpy()
        del chunked, table
        return self.check_values(name, values, rows)

    def check_values(self, name: str, values: np.ndarray, rows: int) -> np.ndarray:
        col = SCHEMA[name]
        if col.kind == "bool":
            return values.astype(np.bool_, copy=False)
        hi = rows - 1 if name in ("citizen", "parent") else col.hi
        if col.kind == "int":
            lo_v, hi_v = int(values.min()), int(values.max())
            if lo_v < col.lo or hi_v > hi:
                bad = lo_v if lo_v < col.lo else hi_v
                raise self.fail(f"value {bad} at row {_row(values, bad)} out of range (expected "
                                f"{col.lo}..{hi})", name)
            return values.astype(col.dtype)
        if values.dtype.kind != "f":
            values = values.astype(np.float64)
        finite = np.isfinite(values)
        if not finite.all():
            row = int(np.argmin(finite))
            raise self.fail(f"{float(values[row])} at row {row}: NaN and infinite values are not allowed", name)
        del finite
        lo_v, hi_v = float(values.min()), float(values.max())
        in_range = (col.lo is None or lo_v >= col.lo) and (col.hi is None or hi_v <= col.hi)
        stored = values.astype(col.dtype) if in_range else None  # in range: the cast cannot overflow
        if stored is None or (col.positive and not (stored > 0).all()):
            bad_row = _first_bad(values, col)
            bound = f"0 < {name} <= {col.hi:g}" if col.positive else f"{col.lo:g} <= {name} <= {col.hi:g}"
            raise self.fail(f"value {float(values[bad_row])!r} at row {bad_row} out of range (expected {bound}, "
                            f"stored as float32)", name)
        return stored

    def check_ids(self, columns: dict[str, np.ndarray], rows: int) -> None:
        ids = columns["citizen"]
        seen = np.zeros(rows, np.bool_)
        seen[ids] = True
        if not seen.all():
            missing = int(np.argmin(seen))
            dup = int(np.argmax(np.bincount(ids, minlength=rows) > 1))
            raise self.fail(f"duplicate and missing ids (e.g. {dup} appears twice, {missing} is missing; "
                            f"expected each of 0..{rows - 1} exactly once)", "citizen")
        parent = columns.get("parent")
        if parent is not None:
            own = parent == ids
            if own.any():
                row = int(np.argmax(own))
                raise self.fail(f"citizen {int(ids[row])} at row {row} is its own parent", "parent")

    def read(self, expected_rows: int | None = None) -> SyntheticTable:
        pf = self.open()
        types = self.check_schema(pf.schema_arrow)
        rows = int(pf.metadata.num_rows)
        if rows <= 0:
            raise self.fail("no rows: the population is empty" if rows == 0 else "corrupt file: negative row count")
        if rows > MAX_ROWS:
            raise self.fail(f"{rows:,} rows: more than the {MAX_ROWS:,} citizens the engine can run")
        if expected_rows is not None and rows != expected_rows:
            raise self.fail(f"{rows:,} rows but --citizens is {expected_rows:,} (a Parquet population runs with "
                            "exactly one citizen per row)")
        columns = {name: self.read_column(pf, name, value_type, rows) for name, value_type in types.items()}
        self.check_ids(columns, rows)
        return SyntheticTable(self.path, rows, columns)


def _accepts(kind: str, t: pa.DataType) -> bool:
    import pyarrow as pa

    if kind == "bool":
        return pa.types.is_boolean(t)
    if kind == "int":
        return pa.types.is_integer(t)
    return pa.types.is_floating(t) or pa.types.is_integer(t)


def _expected(kind: str) -> str:
    return {"bool": "bool", "int": "an integer type", "float": "a floating-point or integer type"}[kind]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    first = text[0] if text else type(exc).__name__
    return first if len(first) <= 200 else first[:197] + "..."


def _row(values: np.ndarray, value: int) -> int:
    return int(np.argmax(values == value))


def _first_bad(values: np.ndarray, col: Column) -> int:
    """Row of the first value outside the column's range (or not positive once stored)."""
    bad = np.zeros(len(values), np.bool_)
    if col.lo is not None:
        bad |= values < col.lo
    if col.hi is not None:
        bad |= values > col.hi
    if col.positive:
        with np.errstate(over="ignore", under="ignore"):
            bad |= ~(values.astype(col.dtype) > 0)
    return int(np.argmax(bad))


def read_synthetic(path: str | Path, expected_rows: int | None = None) -> SyntheticTable:
    """Read and validate a population file (see the module docstring); ``ScenarioError`` if invalid."""
    return _Reader(Path(path)).read(expected_rows)


def file_rows(path: str | Path) -> int:
    """Row count of a Parquet population file, from its footer (the file is not validated)."""
    reader = _Reader(Path(path))
    return int(reader.open().metadata.num_rows)


# -- the plugin ------------------------------------------------------------------


class ParquetPopulationConfig(Strict):
    """A population read from a Parquet file with the documented synthetic schema (docs/population-parquet.md)."""

    path: str = Field(min_length=1, max_length=4096, description="Parquet file; a relative path is resolved "
                      "against the scenario file's directory when known, else the current directory")

    @field_validator("path")
    @classmethod
    def _resolve(cls, value: str, info: ValidationInfo) -> str:
        if "\x00" in value:
            raise ValueError("a path cannot contain NUL characters")
        source = (info.context or {}).get("source") if isinstance(info.context, dict) else None
        if source and not Path(value).is_absolute() and Path(str(source)).is_file():
            return str(Path(str(source)).parent / value)
        return value


@register("population", "parquet")
class ParquetPopulation(Plugin):
    """Citizens read from a Parquet file (synthetic schema only); see the module docstring."""

    Config = ParquetPopulationConfig

    def __init__(self, name: str, config: ParquetPopulationConfig) -> None:
        super().__init__(name, config)
        self._table: SyntheticTable | None = None
        self._order: np.ndarray | None = None  # file rows in engine order: by (region, citizen)
        self._pick: np.ndarray | None = None  # dry runs only: engine citizen -> position in engine order

    def __deepcopy__(self, memo: dict[int, Any]) -> ParquetPopulation:
        return ParquetPopulation(self.name, self.config)  # the loaded arrays are per-run working state

    @property
    def path(self) -> Path:
        """The file, as configured (relative paths against the current directory)."""
        return Path(self.config.path)

    def fixed_citizens(self) -> int:
        """The population size this plugin can run: the file's row count (read from its footer)."""
        return file_rows(self.path)

    def region_counts(self, n: int, seed: int) -> np.ndarray:
        """Citizens per region in the file (``n`` must equal its row count); the seed is unused."""
        dry_run = _in_preflight()
        table = read_synthetic(self.path, None if dry_run else n)
        ids, region = table.columns["citizen"], table.columns["region"]
        row_of_id = np.empty(table.rows, np.int64)
        row_of_id[ids] = np.arange(table.rows, dtype=np.int64)
        # ids in ascending order, stably sorted by region: (region, citizen) order
        order = row_of_id[np.argsort(region[row_of_id], kind="stable")]
        del row_of_id
        pick = None if n == table.rows else np.arange(n, dtype=np.int64) * table.rows // n
        self._table, self._order, self._pick = table, order, pick
        sorted_region = region[order if pick is None else order[pick]]
        return np.bincount(sorted_region, minlength=int(region.max()) + 1).astype(np.int64)

    def fill(self, citizens: Citizens, blocks: Blocks, seed: int) -> None:
        """Write every attribute at its engine id; ``source_id`` keeps the file's id."""
        if self._table is None or self._order is None:
            self.region_counts(citizens.n, seed)
        table, order, pick = self._table, self._order, self._pick
        assert table is not None and order is not None
        self._table = self._order = self._pick = None
        cols = table.columns
        rows = order if pick is None else order[pick]  # file row of each engine citizen
        if not np.array_equal(cols["region"][rows], citizens.region):
            raise ScenarioError(f"{table.path}: regions do not match the blocks built from region_counts")
        citizens.income[:] = cols["income"][rows]
        citizens.income0[:] = citizens.income
        citizens.risk[:] = cols["risk"][rows]
        citizens.voice[:] = cols["voice"][rows]
        flags = np.zeros(citizens.n, dt.FLAGS)
        for name, bit in FLAG_BITS.items():
            flags |= cols[name][rows].astype(dt.FLAGS) * bit
        citizens.flags[:] = flags
        ex = citizens.extra
        ex["source_id"] = cols["citizen"][rows].astype(dt.CITIZEN_ID)
        for name, dtype in EXTRA_DTYPES.items():
            if name in cols:
                ex[name] = cols[name][rows].astype(dtype)
        if "parent" in cols:
            ex["parent"] = self._parents(cols["parent"][rows], cols["citizen"][order], pick)

    @staticmethod
    def _parents(parent: np.ndarray, sorted_ids: np.ndarray, pick: np.ndarray | None) -> np.ndarray:
        """File parent ids translated to engine ids (-1 stays -1); ``sorted_ids``: file ids in engine order."""
        rows = len(sorted_ids)
        position = np.empty(rows, np.int64)  # position of each file id in engine order
        position[sorted_ids] = np.arange(rows, dtype=np.int64)
        has = parent >= 0
        target = position[np.where(has, parent, 0)]
        if pick is not None:  # dry run: the first engine citizen standing for that position, or none
            first = np.full(rows, -1, np.int64)
            first[pick[::-1]] = np.arange(len(pick), dtype=np.int64)[::-1]
            target = first[target]
        return np.where(has, target, -1).astype(dt.CITIZEN_ID)


def _in_preflight() -> bool:
    """Whether this is a dry run (``engine.simulation.dry_run``): the file is validated in
    full, then its citizens are tiled or thinned to the tiny size asked for."""
    from socialcredit.engine.simulation import DRY_RUN

    return DRY_RUN.get()
