"""io.tables: the run directory's Parquet tables, written row group by row group."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest

from socialcredit import dtypes as dt
from socialcredit.engine.simulation import Simulation
from socialcredit.io import tables
from socialcredit.io.tables import citizen_columns, write_citizens
from socialcredit.metrics.summary import Results
from socialcredit.scenario import Scenario


@pytest.fixture(scope="module")
def finished():
    sim = Simulation(Scenario.load("ref"), citizens=5_000, days=90, seed=2)
    return sim, sim.run()


def test_citizens_table_holds_the_final_state(finished, tmp_path, monkeypatch):
    sim, res = finished
    monkeypatch.setattr(tables, "ROW_GROUP", 2_048)
    path = tmp_path / "citizens.parquet"
    write_citizens(res, path)
    f = pq.ParquetFile(path)
    assert [f.metadata.row_group(g).num_rows for g in range(f.num_row_groups)] == [2_048, 2_048, 904]
    t = f.read()
    cz = sim.citizens
    assert t["citizen"].to_numpy().tolist() == list(range(sim.n))
    assert np.array_equal(t["score"].to_numpy(), cz.score)
    assert np.array_equal(t["points"].to_numpy(), cz.points)
    listed = cz.list_start >= 0
    assert listed.any()
    since = t["listed_since"].to_numpy(zero_copy_only=False)
    assert np.array_equal(since[listed], cz.list_start[listed]) and t["listed_since"].null_count == (~listed).sum()
    assert np.array_equal(t["degree"].to_numpy(), np.diff(sim.graph.offsets))
    assert np.array_equal(t["minority"].to_numpy(), cz.flag(dt.FLAG_MINORITY))
    grades = sim.find("records", "points").grade_names()
    assert set(t["grade"].to_pylist()) <= set(grades)


def test_dictionary_encoding_only_for_repeating_columns(finished, tmp_path):
    _, res = finished
    path = tmp_path / "citizens.parquet"
    write_citizens(res, path)
    meta = pq.ParquetFile(path).metadata
    row_group = meta.row_group(0)
    encodings = {row_group.column(c).path_in_schema: row_group.column(c).encodings for c in range(meta.num_columns)}
    for name in ("score", "income", "risk", "chill"):
        assert "RLE_DICTIONARY" not in encodings[name] and "PLAIN_DICTIONARY" not in encodings[name], name
    for name in ("region", "points", "degree"):
        assert {"RLE_DICTIONARY", "PLAIN_DICTIONARY"} & set(encodings[name]), name


def test_rows_of_any_range_match_the_whole(finished):
    sim, _ = finished
    whole = citizen_columns(sim, 0, sim.n, 0)
    part = citizen_columns(sim, 1_000, 1_500, 1_000)
    for name, values in whole.items():
        assert np.array_equal(values[1_000:1_500], part[name]), name


def test_results_metrics_are_the_summary(finished):
    sim, res = finished
    assert isinstance(res, Results) and res.sim is sim
    assert res.metrics["listed_ever_share"] == pytest.approx(sim.citizens.flag(dt.FLAG_LISTED_EVER).mean())
