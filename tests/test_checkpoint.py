"""Checkpoint and resume: a killed run, resumed, equals an uninterrupted one bit for bit."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import socialcredit as sc
from socialcredit.cli import main
from socialcredit.io.tables import TABLES

ARGS = ["ref", "-n", "200000", "-d", "400", "--seed", "4", "-q"]


def _cli(*args: str, **kw) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "socialcredit", *args], capture_output=True, text=True,
                          timeout=600, **kw)


def _same_outputs(a: Path, b: Path) -> None:
    for t in TABLES:
        assert (a / f"{t}.parquet").read_bytes() == (b / f"{t}.parquet").read_bytes(), t
    ma = json.loads((a / "summary.json").read_text())
    mb = json.loads((b / "summary.json").read_text())
    for m in (ma, mb):
        m["metrics"].pop("citizen_days_per_s")
    assert ma == mb


@pytest.fixture(scope="module")
def straight(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("straight") / "run"
    assert _cli("run", *ARGS, "-o", str(out)).returncode == 0
    return out


def test_sigkill_then_resume_is_bit_identical(tmp_path, straight):
    out = tmp_path / "run"
    proc = subprocess.Popen([sys.executable, "-m", "socialcredit", "run", *ARGS, "-o", str(out),
                             "--checkpoint-every", "50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    marker = tmp_path / "run.checkpoint" / "checkpoint.json"
    deadline = time.time() + 300
    while not marker.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists(), "killed before the end: no run directory"
    day = json.loads(marker.read_text())["day"]
    assert 50 <= day < 400 and day % 50 == 0
    res = _cli("resume", str(out))
    assert res.returncode == 0, res.stderr
    assert not (tmp_path / "run.checkpoint").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["run"]
    _same_outputs(out, straight)


def _checkpoint_after(out: Path, days_done: int, citizens: int, days: int, seed: int, every: int) -> None:
    """Write the checkpoint a run to ``out`` would have left after ``days_done`` days (a crash after it)."""
    from socialcredit.engine import checkpoint
    from socialcredit.engine.simulation import Simulation
    from socialcredit.scenario import Scenario

    scn = Scenario.load("ref")
    sim = Simulation(scn, citizens=citizens, days=days, seed=seed)
    for _ in range(days_done):
        sim.step()
    meta = {"scenario": scn.to_dict(), "scenario_source": scn.source, "citizens": citizens, "days": days,
            "seed": seed, "checkpoint_every": every, "force": False, "started": "2026-01-01T00:00:00+00:00"}
    checkpoint.save(sim, out.with_name(out.name + ".checkpoint"), meta)


def test_resume_in_process_equals_straight(tmp_path):
    kwargs = dict(citizens=5_000, days=100, seed=9)
    a = sc.run("ref", out=tmp_path / "a", **kwargs)
    _checkpoint_after(tmp_path / "b", 60, every=30, **kwargs)  # a crash after day 60, checkpoints every 30
    b = sc.resume(tmp_path / "b")
    _same_outputs(a.path, b.path)
    assert b.manifest["days"] == 100


def test_resume_after_the_run_was_written_removes_the_stale_checkpoint(tmp_path):
    """Stopped between writing the run directory and removing its checkpoint: resume has nothing to do."""
    done = sc.run("ref", citizens=3_000, days=40, seed=2, out=tmp_path / "run")
    before = {t: (done.path / f"{t}.parquet").read_bytes() for t in TABLES}
    _checkpoint_after(tmp_path / "run", 20, citizens=3_000, days=40, seed=2, every=20)
    again = sc.resume(tmp_path / "run")
    assert again.path == done.path and not (tmp_path / "run.checkpoint").exists()
    assert {t: (again.path / f"{t}.parquet").read_bytes() for t in TABLES} == before


@pytest.fixture
def broken(tmp_path) -> Path:
    """An interrupted run's checkpoint, to be damaged by the tests."""
    _checkpoint_after(tmp_path / "run", 30, citizens=3_000, days=90, seed=2, every=30)
    return tmp_path / "run"


def _resume_fails(capsys, out: Path, needle: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main(["resume", str(out), "-q"])
    err = capsys.readouterr().err
    assert exc.value.code == 2, err
    assert needle in err and len(err.strip().splitlines()) == 1
    assert not out.exists()


def test_truncated_state(broken, capsys):
    npz = broken.with_name("run.checkpoint") / "state.npz"
    npz.write_bytes(npz.read_bytes()[: npz.stat().st_size // 2])
    _resume_fails(capsys, broken, "corrupt checkpoint")


def test_tampered_array(broken, capsys):
    directory = broken.with_name("run.checkpoint")
    with np.load(directory / "state.npz") as npz:
        arrays = {k: npz[k] for k in npz.files}
    arrays["citizens.points"][0] += 1
    np.savez(directory / "state.npz", **arrays)
    _resume_fails(capsys, broken, "fails its check")


def test_garbage_json(broken, capsys):
    (broken.with_name("run.checkpoint") / "checkpoint.json").write_text("{not json")
    _resume_fails(capsys, broken, "corrupt checkpoint")


def test_changed_scenario_is_mismatched(broken, capsys):
    path = broken.with_name("run.checkpoint") / "checkpoint.json"
    doc = json.loads(path.read_text())
    doc["scenario"]["observation"]["camera"]["false_match"] = 0.5
    path.write_text(json.dumps(doc))
    _resume_fails(capsys, broken, "mismatched checkpoint")


def test_changed_seed_is_mismatched(broken, capsys):
    path = broken.with_name("run.checkpoint") / "checkpoint.json"
    doc = json.loads(path.read_text())
    doc["seed"] = 3
    path.write_text(json.dumps(doc))
    _resume_fails(capsys, broken, "mismatched checkpoint")


def test_no_checkpoint(tmp_path, capsys):
    _resume_fails(capsys, tmp_path / "nothing", "no checkpoint here")


def test_new_run_refuses_to_clobber_a_checkpoint(broken, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "ref", "-n", "100", "-d", "2", "-o", str(broken), "-q"])
    assert exc.value.code == 2 and "socialcredit resume" in capsys.readouterr().err
    assert broken.with_name("run.checkpoint").exists()


def test_checkpoint_every_validated(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["run", "ref", "-n", "100", "-d", "20", "-o", str(tmp_path / "x"), "--checkpoint-every", "0"])
    assert exc.value.code == 2 and "--checkpoint-every" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []
