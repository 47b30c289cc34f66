"""Run directories written atomically: to a temporary sibling, renamed on success."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from socialcredit.errors import UserError


def check_target(out: Path, force: bool) -> None:
    """Refuse an output directory that cannot be (re)written, before any work is done."""
    if out.exists() and not out.is_dir():
        raise UserError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise UserError(f"--out {out}: directory exists and is not empty (use --force to replace it)")
    parent = _existing_ancestor(out.parent)
    try:  # a real probe: permission bits do not tell for root or special file systems
        os.rmdir(tempfile.mkdtemp(prefix=".socialcredit-probe-", dir=parent))
    except OSError as exc:
        raise UserError(f"--out {out}: cannot write in {parent}: {exc.strerror or exc}") from None


def _existing_ancestor(path: Path) -> Path:
    path = path.absolute()
    while not path.exists():
        path = path.parent
    if not path.is_dir():
        raise UserError(f"--out: {path} is not a directory")
    return path


def replace_directory(new: Path, target: Path) -> None:
    """Put directory ``new`` at ``target`` by renames, removing what was there."""
    if target.exists():
        old = target.with_name(f".{target.name}.old-{os.getpid()}")
        target.rename(old)
        new.rename(target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        new.rename(target)


def temp_sibling(target: Path, what: str) -> Path:
    """A new hidden temporary directory next to ``target`` (created with its parents)."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
    except OSError as exc:
        raise UserError(f"{what} {target}: cannot create: {exc.strerror or exc}") from None


@contextlib.contextmanager
def atomic_replace(target: Path, what: str) -> Iterator[Path]:
    """Yield a new temporary directory next to ``target``; on success it replaces ``target``.

    On any error or interruption the temporary directory is removed and ``target`` is
    left as it was; an ``OSError`` becomes a one-line ``UserError`` naming ``what``.
    """
    tmp = temp_sibling(target, what)
    try:
        yield tmp
        replace_directory(tmp, target)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        raise UserError(f"{what} {target}: writing failed: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_dir(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary directory next to ``out``; on success it becomes ``out``.

    On any error or interruption the temporary directory is removed and ``out``
    is left as it was.
    """
    check_target(out, force)
    with atomic_replace(out, "--out") as tmp:
        yield tmp
        tmp.chmod(0o755)
