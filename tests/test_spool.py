"""engine.spool: rows survive flushes; blocks do not depend on when flushes happened."""

from __future__ import annotations

import numpy as np

from socialcredit.engine.spool import Spool


def _fill(tmp_path, flush_rows: int) -> Spool:
    spool = Spool(tmp_path, f"t{flush_rows}", {"a": np.int32, "b": np.bool_}, flush_rows=flush_rows)
    start = 0
    for n in (3, 0, 7, 1, 12, 5):
        spool.append(a=np.arange(start, start + n), b=np.arange(start, start + n) % 3 == 0)
        start += n
    return spool


def test_rows_and_blocks_independent_of_flushing(tmp_path):
    spools = [_fill(tmp_path, k) for k in (1, 4, 10, 1000)]
    for spool in spools:
        assert len(spool) == 28
        assert spool.concat()["a"].tolist() == list(range(28))
        blocks = list(spool.blocks(5))
        assert [len(b["a"]) for b in blocks] == [5, 5, 5, 5, 5, 3]
        assert np.concatenate([b["b"] for b in blocks]).tolist() == [i % 3 == 0 for i in range(28)]
    assert len(list(tmp_path.glob("t1.*.npy"))) > len(list(tmp_path.glob("t4.*.npy")))


def test_replace_and_empty(tmp_path):
    spool = _fill(tmp_path, 4)
    spool.replace({"a": np.array([7, 8], np.int32), "b": np.array([True, False])})
    assert len(spool) == 2 and spool.concat()["a"].tolist() == [7, 8]
    assert len(list(tmp_path.glob("t4.*.npy"))) == 2  # one chunk, two columns
    empty = Spool(tmp_path, "e", {"a": np.int32})
    assert list(empty.blocks(3)) == [] and empty.concat()["a"].dtype == np.int32
