"""The Parquet population: the documented synthetic schema only, exact placement at engine ids,
runs via the CLI and the API, and one-line errors (exit code 2, nothing written) for bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import socialcredit as sc
from cli_call import call as _call
from socialcredit.errors import ScenarioError, UserError
from socialcredit.population import Blocks, Citizens
from socialcredit.population.parquet import SCHEMA, ParquetPopulationConfig, read_synthetic
from socialcredit.scenario import Scenario

# A hand-built population of 10 citizens in 3 regions; rows in no particular order.
CITIZEN = [7, 3, 0, 9, 1, 5, 2, 8, 4, 6]
REGION = [2, 0, 1, 2, 0, 0, 1, 2, 1, 0]
COLUMNS = {
    "citizen": pa.array(CITIZEN, pa.int64()),
    "region": pa.array(REGION, pa.int16()),
    "urban": pa.array([True, False, True, False, True, False, True, True, True, False]),
    "minority": pa.array([False, False, False, False, False, False, False, False, False, True]),
    "member": pa.array([True, True, False, True, True, True, True, False, True, True]),
    "income": pa.array([12000.0, 3500.5, 88000.0, 1.0, 45000.25, 27000.0, 9000.0, 1e12, 150000.0, 6000.0]),
    "risk": pa.array([0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.0], pa.float32()),
    "voice": pa.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.0]),
    "age": pa.array([40, 10, 70, 5, 30, 45, 33, 60, 2, 90], pa.uint8()),
    "female": pa.array([True, False, False, True, True, False, True, False, True, False]),
    "education": pa.array([3, 0, 1, 0, 2, 2, 3, 1, 0, 0], pa.int8()),
    "wealth": pa.array([1e5, 0.0, 2e6, 0.0, 3e5, 4e5, 5e4, 1e9, 0.0, 7e4]),
    "debt": pa.array([0, 0, 10, 0, 500, 0, 0, 20000, 0, 0], pa.int32()),  # integers are accepted for floats
    "sociability": pa.array([0.5] * 10),
    "parent": pa.array([-1, 5, -1, 7, -1, -1, -1, -1, 2, -1], pa.int32()),
}
# Engine order is (region, citizen): region 0 holds ids 1 3 5 6, region 1 ids 0 2 4, region 2 ids 7 8 9.
ENGINE_SOURCE = [1, 3, 5, 6, 0, 2, 4, 7, 8, 9]
ENGINE_PARENT = [-1, 2, -1, -1, -1, -1, 5, -1, -1, 7]  # id 3 -> 5 (engine 2), 4 -> 2 (5), 9 -> 7 (7)
COUNTS = [4, 3, 3]
DAYS = "31"


def _write(path: Path, columns: dict[str, pa.Array] | None = None, **kwargs) -> Path:
    pq.write_table(pa.table(COLUMNS if columns is None else columns), path, **kwargs)
    return path


def _scenario(tmp_path: Path, population: str | Path, name: str = "scenario.toml") -> Path:
    toml = tmp_path / name
    toml.write_text(f'extends = "ref"\nname = "ref-parquet"\n\n[population]\nkind = "parquet"\n'
                    f"path = {json.dumps(str(population))}\n", encoding="utf-8")
    return toml


def _filled(toml: Path, n: int = 10) -> Citizens:
    plugin = Scenario.load(toml).plugins("population")["population"]
    counts = plugin.region_counts(n, 1)
    blocks = Blocks.from_region_counts(counts)
    citizens = Citizens.empty(blocks.region_of())
    plugin.fill(citizens, blocks, 1)
    return citizens


def _by_id(name: str) -> np.ndarray:
    """Column ``name`` of COLUMNS rearranged into engine order (the expected placement)."""
    row = {cid: r for r, cid in enumerate(CITIZEN)}
    values = COLUMNS[name].to_numpy(zero_copy_only=False)
    return values[[row[cid] for cid in ENGINE_SOURCE]]


# -- loading ----------------------------------------------------------------------------------------------


def test_hand_built_file_round_trips_exactly(tmp_path):
    toml = _scenario(tmp_path, _write(tmp_path / "pop.parquet"))
    plugin = Scenario.load(toml).plugins("population")["population"]
    assert plugin.fixed_citizens() == 10
    counts = plugin.region_counts(10, 123)
    assert counts.tolist() == COUNTS
    cz = _filled(toml)
    assert cz.region.tolist() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert cz.extra["source_id"].tolist() == ENGINE_SOURCE
    assert cz.extra["parent"].tolist() == ENGINE_PARENT
    assert cz.extra["parent"].dtype == np.int32
    for name in ("urban", "minority", "member"):
        assert cz.flag({"urban": 1, "minority": 2, "member": 4}[name]).tolist() == _by_id(name).tolist()
    np.testing.assert_array_equal(cz.income, _by_id("income").astype(np.float32))
    np.testing.assert_array_equal(cz.income0, cz.income)
    np.testing.assert_array_equal(cz.risk, _by_id("risk"))
    np.testing.assert_array_equal(cz.voice, _by_id("voice").astype(np.float32))
    for name in ("age", "female", "education", "wealth", "debt", "sociability"):
        np.testing.assert_array_equal(cz.extra[name], _by_id(name).astype(cz.extra[name].dtype), err_msg=name)
    assert set(cz.extra) == {"source_id", "age", "female", "education", "wealth", "debt", "sociability", "parent"}
    # every engine parent is the engine id of the file's parent
    src = cz.extra["source_id"]
    for i, p in enumerate(cz.extra["parent"]):
        file_parent = dict(zip(CITIZEN, COLUMNS["parent"].to_pylist(), strict=True))[int(src[i])]
        assert (p == -1) if file_parent == -1 else (src[p] == file_parent)


def test_seed_does_not_matter_and_state_is_untouched(tmp_path):
    toml = _scenario(tmp_path, _write(tmp_path / "pop.parquet"))
    a, b = _filled(toml), _filled(toml)
    for name, arr in a.arrays().items():
        np.testing.assert_array_equal(arr, b.arrays()[name])
    assert (a.list_start == -1).all() and (a.chill == 0).all()


def test_required_columns_alone_are_enough(tmp_path):
    cols = {k: v for k, v in COLUMNS.items() if SCHEMA[k].required}
    cz = _filled(_scenario(tmp_path, _write(tmp_path / "pop.parquet", cols)))
    assert set(cz.extra) == {"source_id"}


def test_dictionary_encoded_and_multi_row_group_files_load(tmp_path):
    cols = dict(COLUMNS, region=COLUMNS["region"].dictionary_encode())
    path = _write(tmp_path / "pop.parquet", cols, row_group_size=3)
    table = read_synthetic(path)
    assert table.columns["region"].tolist() == REGION and table.columns["citizen"].tolist() == CITIZEN


def test_relative_path_uses_the_scenario_directory_when_the_loader_says_it(tmp_path):
    toml = tmp_path / "s.toml"
    toml.write_text("")
    config = ParquetPopulationConfig.model_validate({"path": "pop.parquet"}, context={"source": str(toml)})
    assert config.path == str(tmp_path / "pop.parquet")
    assert ParquetPopulationConfig.model_validate({"path": "pop.parquet"}).path == "pop.parquet"
    assert ParquetPopulationConfig.model_validate({"path": "/a/b.parquet"},
                                                  context={"source": str(toml)}).path == "/a/b.parquet"


@pytest.mark.parametrize("n", [1, 3, 64, 100])
def test_preflight_dry_run_takes_files_of_any_size(tmp_path, n):
    """Preflight checks a scenario on 64 citizens: the file is validated in full, then tiled or thinned."""
    from socialcredit.engine.simulation import Simulation, preflight

    rng = np.random.default_rng(n)
    ids = rng.permutation(n)
    cols = {"citizen": ids, "region": rng.integers(0, 4, n), "urban": rng.random(n) < 0.5,
            "minority": rng.random(n) < 0.5, "member": rng.random(n) < 0.5, "income": rng.random(n) + 1,
            "risk": rng.random(n), "voice": rng.random(n), "parent": np.where(ids == 0, -1, 0)}
    toml = _scenario(tmp_path, _write(tmp_path / "pop.parquet", {k: pa.array(v) for k, v in cols.items()}))
    scenario = Scenario.load(toml)
    preflight(scenario)
    sim = Simulation(scenario, citizens=n, days=1, seed=0)  # outside preflight: exactly the file
    assert sorted(sim.citizens.extra["source_id"].tolist()) == list(range(n))
    with pytest.raises(ScenarioError, match=f"{n} rows but --citizens is {n + 1}"):
        Simulation(scenario, citizens=n + 1, days=1, seed=0)


# -- running -------------------------------------------------------------------------------------------------


def test_run_via_cli(tmp_path, capsys):
    toml = _scenario(tmp_path, _write(tmp_path / "pop.parquet"))
    out = tmp_path / "run"
    code, _, stderr = _call(capsys, "run", str(toml), "--citizens", "10", "--days", DAYS, "-o", str(out))
    assert code == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["citizens"] == 10 and summary["metrics"]["p_mean"] > 0
    table = pl.read_parquet(out / "citizens.parquet")
    assert table["source_id"].to_list() == ENGINE_SOURCE
    assert table["parent"].to_list() == ENGINE_PARENT
    assert table["region"].to_list() == [0, 0, 0, 0, 1, 1, 1, 2, 2, 2]
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario"]["population"] == {"kind": "parquet", "path": str(tmp_path / "pop.parquet")}


def test_run_via_api_with_a_path_relative_to_the_current_directory(tmp_path, monkeypatch):
    _write(tmp_path / "pop.parquet")
    toml = _scenario(tmp_path, "pop.parquet")
    monkeypatch.chdir(tmp_path)
    run = sc.run(str(toml), citizens=10, days=int(DAYS), seed=5)
    assert run.summary["citizens"] == 10
    assert run.citizens["source_id"].to_list() == ENGINE_SOURCE
    np.testing.assert_array_equal(run.citizens["income0"].to_numpy(), _by_id("income").astype(np.float32))
    with pytest.raises(UserError, match=r"pop\.parquet: 10 rows but --citizens is 11"):
        sc.run(str(toml), citizens=11, days=int(DAYS), seed=5)


# -- errors ------------------------------------------------------------------------------------------------


def _replace(**cols: pa.Array) -> dict[str, pa.Array]:
    return {**COLUMNS, **cols}


def _without(*names: str) -> dict[str, pa.Array]:
    return {k: v for k, v in COLUMNS.items() if k not in names}


def _garbled_footer(path: Path) -> None:
    _write(path)
    data = bytearray(path.read_bytes())
    data[-60:-8] = b"\xa7" * 52
    path.write_bytes(bytes(data))


def _garbled_page(path: Path) -> None:
    _write(path, write_page_checksum=True, compression="none")
    data = bytearray(path.read_bytes())
    at = data.find(np.array(CITIZEN, np.int64).tobytes())  # the citizen column's values
    assert at > 0
    data[at + 3] ^= 0xFF
    path.write_bytes(bytes(data))


def _bytes(payload: bytes):
    return lambda path: path.write_bytes(payload)


def _table(columns: dict[str, pa.Array], **kwargs):
    return lambda path: _write(path, columns, **kwargs)


def _duplicate_names(path: Path) -> None:
    table = pa.table(COLUMNS)
    pq.write_table(table.append_column("risk", COLUMNS["risk"]), path)


def _directory(path: Path) -> None:
    path.mkdir()


ERRORS = {
    # (file builder, column named in the message or None, needle)
    "wrong type: string": (_table(_replace(income=pa.array([str(i) for i in range(10)]))), "income",
                           "wrong type string"),
    "wrong type: int for bool": (_table(_replace(urban=pa.array([1] * 10, pa.int8()))), "urban",
                                 "wrong type int8 (expected bool)"),
    "wrong type: float for int": (_table(_replace(region=pa.array([0.0] * 10))), "region", "wrong type double"),
    "wrong type: timestamp": (_table(_replace(age=pa.array([0] * 10, pa.timestamp("s")))), "age", "wrong type"),
    "nulls": (_table(_replace(risk=pa.array([0.1] * 9 + [None]))), "risk", "1 null values (first at row 9)"),
    "NaN": (_table(_replace(voice=pa.array([0.1] * 4 + [float("nan")] + [0.1] * 5))), "voice",
            "nan at row 4: NaN and infinite"),
    "inf": (_table(_replace(income=pa.array([1.0] * 9 + [float("inf")]))), "income", "inf at row 9"),
    "-inf": (_table(_replace(wealth=pa.array([-float("inf")] + [1.0] * 9))), "wealth", "-inf at row 0"),
    "out of range: region": (_table(_replace(region=pa.array([255, *REGION[1:]], pa.int64()))), "region",
                             "value 255 at row 0 out of range (expected 0..254)"),
    "out of range: risk": (_table(_replace(risk=pa.array([0.5] * 9 + [1.5]))), "risk", "value 1.5 at row 9"),
    "out of range: income 0": (_table(_replace(income=pa.array([1.0] * 9 + [0.0]))), "income",
                               "expected 0 < income <= 1e+12"),
    "out of range: income underflows float32": (_table(_replace(income=pa.array([1.0] * 9 + [1e-50]))), "income",
                                                "1e-50 at row 9 out of range"),
    "out of range: income 2e12": (_table(_replace(income=pa.array([2e12] * 10))), "income", "out of range"),
    "out of range: negative debt": (_table(_replace(debt=pa.array([-1] + [0] * 9, pa.int64()))), "debt",
                                    "value -1.0 at row 0"),
    "out of range: wealth overflows float32": (_table(_replace(wealth=pa.array([1e39] * 10))), "wealth",
                                               "out of range"),
    "out of range: age": (_table(_replace(age=pa.array([121] * 10, pa.uint8()))), "age", "value 121"),
    "out of range: education": (_table(_replace(education=pa.array([4] * 10, pa.uint64()))), "education",
                                "expected 0..3"),
    "out of range: huge uint64 id": (_table(_replace(citizen=pa.array([2**64 - 1, *CITIZEN[1:]], pa.uint64()))),
                                     "citizen", "value 18446744073709551615 at row 0 out of range (expected 0..9)"),
    "out of range: id n": (_table(_replace(citizen=pa.array([10, *CITIZEN[1:]]))), "citizen", "expected 0..9"),
    "parent: not an id": (_table(_replace(parent=pa.array([-2] + [-1] * 9))), "parent", "value -2"),
    "parent: self": (_table(_replace(parent=pa.array([7] + [-1] * 9))), "parent", "its own parent"),
    "duplicate ids": (_table(_replace(citizen=pa.array([7, 3, 0, 9, 1, 5, 2, 8, 4, 4]))), "citizen",
                      "4 appears twice, 6 is missing"),
    "missing required column": (_table(_without("voice")), "voice", "missing required column"),
    "unknown column": (_table(_replace(favourite_colour=pa.array([1] * 10))), "favourite_colour",
                       "unknown column; socialcredit only accepts the documented synthetic schema"),
    "case matters": (_table({**_without("income"), "Income": COLUMNS["income"]}), "Income", "unknown column"),
    "pandas index": (_table(_replace(__index_level_0__=pa.array(range(10)))), "__index_level_0__", "index=False"),
    "personal data: name": (_table(_replace(Full_Name=pa.array(["x"] * 10))), "Full_Name",
                            "looks like personal data (contains 'name')"),
    "personal data: id_number": (_table(_replace(ID_NUMBER=pa.array([1] * 10))), "ID_NUMBER", "personal data"),
    "personal data: phone": (_table(_replace(mobilePhone=pa.array([1] * 10))), "mobilePhone", "'phone'"),
    "personal data: address": (_table(_replace(home_address=pa.array(["x"] * 10))), "home_address", "'address'"),
    "personal data: face": (_table(_replace(face_vec=pa.array([0.1] * 10))), "face_vec", "'face'"),
    "personal data: photo": (_table(_replace(PhotoURL=pa.array(["x"] * 10))), "PhotoURL", "'photo'"),
    "personal data: email": (_table(_replace(e_Mail=pa.array(["x"] * 10), email=pa.array(["x"] * 10))), "email",
                             "only accepts the documented synthetic schema"),
    "duplicate column": (_duplicate_names, "risk", "appears more than once"),
    "empty population": (_table({k: v[:0] for k, v in COLUMNS.items()}), None, "no rows"),
    "empty file": (_bytes(b""), None, "empty file (0 bytes)"),
    "not Parquet: CSV": (_bytes(b"citizen,region\n0,1\n"), None, "not a Parquet file"),
    "not Parquet: truncated": (lambda p: (_write(p), p.write_bytes(p.read_bytes()[:-9])), None,
                               "not a Parquet file"),
    "corrupt footer": (_garbled_footer, None, "unreadable or corrupt Parquet file"),
    "corrupt page": (_garbled_page, "citizen", "unreadable or corrupt data"),
    "no such file": (lambda p: None, None, "no such file"),
    "a directory": (_directory, None, "not a regular file"),
}


@pytest.mark.parametrize("case", list(ERRORS))
def test_bad_file_is_one_line_exit_2_and_writes_nothing(tmp_path, capsys, case):
    build, column, needle = ERRORS[case]
    data = tmp_path / "data"
    data.mkdir()
    pop = data / "pop.parquet"
    build(pop)
    toml = _scenario(data, pop)
    out = tmp_path / "out"
    code, stdout, stderr = _call(capsys, "run", str(toml), "--citizens", "10", "--days", DAYS, "-o", str(out))
    assert code == 2, (stdout, stderr)
    lines = stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    assert needle in lines[0], lines[0]
    assert str(pop) in lines[0]
    if column is not None:
        assert f"column {column!r}: " in lines[0], lines[0]
    assert "Traceback" not in stdout + stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"], "a run directory was left behind"
    with pytest.raises(UserError) as exc:  # the API raises the same one-line error
        sc.run(str(toml), citizens=10, days=int(DAYS), seed=1)
    assert needle in str(exc.value) and "\n" not in str(exc.value)


def test_row_count_not_citizens_is_one_line_exit_2(tmp_path, capsys):
    toml = _scenario(tmp_path, _write(tmp_path / "pop.parquet"))
    out = tmp_path / "out"
    code, _, stderr = _call(capsys, "run", str(toml), "--citizens", "12", "--days", DAYS, "-o", str(out), "-q")
    assert code == 2
    assert stderr.splitlines() == [f"error: {tmp_path / 'pop.parquet'}: 10 rows but --citizens is 12 (a Parquet "
                                   "population runs with exactly one citizen per row)"]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pop.parquet", "scenario.toml"]


def test_validate_checks_the_file(tmp_path, capsys):
    good = _scenario(tmp_path, _write(tmp_path / "pop.parquet"))
    code, stdout, _ = _call(capsys, "validate", str(good))
    assert code == 0 and "ok" in stdout
    bad = _scenario(tmp_path, _write(tmp_path / "bad.parquet", _without("risk")), name="bad.toml")
    code, _, stderr = _call(capsys, "validate", str(bad))
    assert code == 2 and "column 'risk': missing required column" in stderr
