"""Append-only tables spooled to disk, so a long run keeps no history in memory.

The per-citizen logs of a run (the panel's events and score snapshots) grow
with its length. A ``Spool`` buffers appended rows and writes them as ``.npy``
chunks once ``flush_rows`` have gathered; readers get them back memory-mapped,
re-chunked to any row count (so the Parquet written from them does not depend
on when flushes happened, e.g. before and after a resume).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from socialcredit.errors import UserError


class Spool:
    """Rows of fixed columns, appended in batches, kept in ``directory``."""

    def __init__(self, directory: Path, name: str, columns: dict[str, type], flush_rows: int = 1 << 20) -> None:
        self.directory = directory
        self.name = name
        self.columns = {k: np.dtype(v) for k, v in columns.items()}
        self.flush_rows = flush_rows
        self._files: list[dict[str, Path]] = []
        self._buffer: list[dict[str, np.ndarray]] = []
        self._buffered = 0
        self._rows = 0

    def __len__(self) -> int:
        return self._rows

    def append(self, **cols: np.ndarray) -> None:
        """Add rows (one array per column, equal lengths)."""
        n = len(next(iter(cols.values())))
        if n == 0:
            return
        self._buffer.append({k: np.asarray(cols[k], dtype=t) for k, t in self.columns.items()})
        self._buffered += n
        self._rows += n
        if self._buffered >= self.flush_rows:
            self.flush()

    def flush(self) -> None:
        """Write the buffered rows as one chunk."""
        if not self._buffer:
            return
        k = len(self._files)
        files = {}
        try:
            for col in self.columns:
                path = self.directory / f"{self.name}.{k}.{col}.npy"
                np.save(path, np.concatenate([b[col] for b in self._buffer]), allow_pickle=False)
                files[col] = path
        except OSError as exc:
            raise UserError(f"spooling the run's {self.name} to {self.directory} failed: "
                            f"{exc.strerror or exc} (set TMPDIR to a disk with room)") from None
        self._files.append(files)
        self._buffer, self._buffered = [], 0

    def empty(self) -> dict[str, np.ndarray]:
        """Zero rows of every column."""
        return {k: np.empty(0, t) for k, t in self.columns.items()}

    def chunks(self) -> Iterator[dict[str, np.ndarray]]:
        """The rows in order, in stored chunks (memory-mapped from disk)."""
        for files in self._files:
            yield {col: np.load(path, mmap_mode="r", allow_pickle=False) for col, path in files.items()}
        yield from self._buffer

    def blocks(self, rows: int) -> Iterator[dict[str, np.ndarray]]:
        """The rows in order, in blocks of exactly ``rows`` (the last may be shorter)."""
        pending: list[dict[str, np.ndarray]] = []
        have = 0
        for chunk in self.chunks():
            start, n = 0, len(next(iter(chunk.values())))
            while start < n:
                take = min(rows - have, n - start)
                pending.append({k: v[start:start + take] for k, v in chunk.items()})
                have += take
                start += take
                if have == rows:
                    yield {k: np.concatenate([p[k] for p in pending]) for k in self.columns}
                    pending, have = [], 0
        if pending:
            yield {k: np.concatenate([p[k] for p in pending]) for k in self.columns}

    def concat(self) -> dict[str, np.ndarray]:
        """All rows in memory (checkpoints, tests)."""
        parts = list(self.chunks())
        if not parts:
            return self.empty()
        return {k: np.concatenate([p[k] for p in parts]) for k in self.columns}

    def replace(self, cols: dict[str, np.ndarray]) -> None:
        """Discard every row and hold ``cols`` instead (restoring a checkpoint)."""
        for files in self._files:
            for path in files.values():
                path.unlink(missing_ok=True)
        self._files, self._buffer, self._buffered, self._rows = [], [], 0, 0
        self.append(**cols)
        self.flush()
