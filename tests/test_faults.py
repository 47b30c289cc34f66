"""Faults: a full disk ends in one line and exit 2, with nothing half-written."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


@pytest.fixture
def tiny_disk(tmp_path) -> Path:
    """A 256 KiB tmpfs (needs root and permission to mount; skipped otherwise)."""
    mount = tmp_path / "tiny"
    mount.mkdir()
    res = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if res.returncode != 0:
        pytest.skip("cannot mount a tmpfs here")
    yield mount
    subprocess.run(["umount", str(mount)], check=False)


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "socialcredit", *args], capture_output=True, text=True, timeout=600)


def test_full_disk_run_directory(tiny_disk):
    res = _run("run", "ref", "-n", "20000", "-d", "30", "-o", str(tiny_disk / "run"), "-q")
    assert res.returncode == 2, res.stderr
    assert "No space left on device" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert list(tiny_disk.iterdir()) == []


def test_full_disk_checkpoint(tiny_disk):
    res = _run("run", "ref", "-n", "20000", "-d", "60", "-o", str(tiny_disk / "run"), "-q", "--checkpoint-every", "30")
    assert res.returncode == 2, res.stderr
    assert "checkpoint" in res.stderr and "Traceback" not in res.stderr
    assert len(res.stderr.strip().splitlines()) == 1
    assert list(tiny_disk.iterdir()) == []


def test_full_disk_spool(tiny_disk):
    env_tmp = {"TMPDIR": str(tiny_disk)}
    import os

    res = subprocess.run([sys.executable, "-c",
                          "from socialcredit.cli import main; from socialcredit.engine import spool; "
                          "spool.Spool.__init__.__defaults__ = (64,); "
                          "main(['run', 'ref', '-n', '20000', '-d', '200', '-q', '-o', '" + str(tiny_disk.parent / "o")
                          + "'])"], capture_output=True, text=True, timeout=600, env={**os.environ, **env_tmp})
    assert res.returncode == 2, res.stderr
    assert "spooling" in res.stderr and "TMPDIR" in res.stderr and "Traceback" not in res.stderr
    assert not (tiny_disk.parent / "o").exists()
