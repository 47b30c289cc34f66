"""Partitioned runs (``--backend ray``): bit-identical to one process for any number of workers."""

from __future__ import annotations

import importlib.util
import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from socialcredit import api
from socialcredit.cli import main
from socialcredit.distributed.driver import LocalWorkers, run_partitions
from socialcredit.distributed.partition import split_regions
from socialcredit.engine.simulation import Simulation
from socialcredit.errors import UserError
from socialcredit.io.tables import citizen_columns
from socialcredit.scenario import Scenario

TABLES = ("citizens", "daily", "scores_monthly", "events", "lists")


def _metrics(path: Path) -> dict:
    doc = json.loads((path / "summary.json").read_text())
    doc["metrics"].pop("citizen_days_per_s")  # a speed, not a result
    return doc


def test_core_does_not_import_ray():
    code = "import sys, socialcredit, socialcredit.api, socialcredit.cli; print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_split_regions_is_contiguous_and_balanced():
    counts = np.array([10, 30, 5, 5, 50, 0, 20])
    for k in range(1, 9):
        ranges = split_regions(counts, k)
        assert ranges[0][0] == 0 and ranges[-1][1] == len(counts)
        assert all(a[1] == b[0] and a[0] < a[1] for a, b in itertools.pairwise(ranges))
        assert len(ranges) == min(k, len(counts))


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_in_process_partitions_match_one_process(k):
    """The partition logic without Ray: every array, row and metric equal."""
    n, days = 12_000, 60
    scn = Scenario.load("ref").override(**{"consequences.unfriend.probability": 0.5})
    sim = Simulation(scn, citizens=n, days=days, seed=4)
    ref = sim.run()
    ranges = split_regions(scn.plugins("population")["population"].region_counts(n, 4), k)
    res = run_partitions(LocalWorkers(scn, n, days, 4, ranges), scn, n, days, 4)
    got = res.sim
    for lo in range(0, n, 5_000):  # citizens.parquet's rows, served by the partitions in pieces
        want, have = citizen_columns(sim, lo, min(n, lo + 5_000), lo), got.citizen_rows(lo, min(n, lo + 5_000))
        assert want.keys() == have.keys()
        for name in want:
            assert np.array_equal(want[name], have[name]), name
    for part in got.workers.parts:  # each partition's rows of the graph, in global ids, cut edges included
        g = part.graph
        rows = g.neighbours[g.offsets[part.lo]:g.offsets[part.hi]].astype(np.int64)
        glob = np.where(rows >= 0, part.gid[np.maximum(rows, 0)], ~part.gid[np.maximum(~rows, 0)])
        o = sim.graph.offsets
        assert np.array_equal(glob, sim.graph.neighbours[o[part.g0]:o[part.g1]])
    assert got.graph.edges == sim.graph.edges
    assert len(got.panel) == len(sim.panel)
    assert sim.graph.active_edges() < sim.graph.edges  # unfriending happened
    assert sim.daily_rows == got.daily_rows
    drop = {"citizen_days_per_s"}
    assert {k: v for k, v in ref.metrics.items() if k not in drop} == \
        {k: v for k, v in res.metrics.items() if k not in drop}
    for spool in ("panel_scores", "panel_events"):
        a, b = getattr(sim, spool).concat(), getattr(got, spool).concat()
        assert all(np.array_equal(a[c], b[c]) for c in a), spool
    court = sim.find("records", "court-list")
    assert court.table(days).equals(got.find("records", "court-list").table(days))


@pytest.mark.parametrize(("n", "k"), [(1, 1), (5, 2), (20, 3), (40, 31), (100, 7)])
def test_tiny_populations_and_as_many_partitions_as_regions(n, k):
    """Partitions with a handful of citizens, or none, still add up to the one-process run."""
    scn = Scenario.load("ref")
    sim = Simulation(scn, citizens=n, days=40, seed=3)
    ref = sim.run()
    ranges = split_regions(scn.plugins("population")["population"].region_counts(n, 3), k)
    assert len(ranges) == k
    res = run_partitions(LocalWorkers(scn, n, 40, 3, ranges), scn, n, 40, 3)
    want, have = citizen_columns(sim, 0, n, 0), res.sim.citizen_rows(0, n)
    assert all(np.array_equal(want[c], have[c]) for c in want)
    assert sim.daily_rows == res.sim.daily_rows
    drop = {"citizen_days_per_s"}
    assert {a: b for a, b in ref.metrics.items() if a not in drop} == \
        {a: b for a, b in res.metrics.items() if a not in drop}


def test_unsupported_plugins_are_refused(capsys):
    from socialcredit.distributed import check_supported

    with pytest.raises(UserError, match="the ray backend supports"):
        check_supported(Scenario.load("china"))
    with pytest.raises(SystemExit) as exc:
        main(["run", "china", "-n", "1000", "-d", "5", "--backend", "ray", "-o", "/nonexistent/x"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "the ray backend supports" in err and len(err.strip().splitlines()) == 1


needs_ray = pytest.mark.skipif(importlib.util.find_spec("ray") is None, reason="ray is not installed")


@pytest.fixture(scope="module")
def local_ray():
    import ray

    ray.init(address="local", num_cpus=4, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def single(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("single") / "run"
    api.run("ref", citizens=100_000, days=60, seed=1, out=out)
    return out


@needs_ray
@pytest.mark.parametrize("k", [1, 2, 3])
def test_ray_run_is_bit_identical(local_ray, single, tmp_path, k):
    from socialcredit.distributed.ray_backend import run_ray

    out = tmp_path / f"ray{k}"
    run_ray("ref", citizens=100_000, days=60, seed=1, workers=k, out=out)
    for table in TABLES:
        assert (out / f"{table}.parquet").read_bytes() == (single / f"{table}.parquet").read_bytes(), table
    assert _metrics(out) == _metrics(single)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["backend"] == "ray" and manifest["workers"] == k


@needs_ray
def test_cli_backend_ray(local_ray, tmp_path, capsys):
    single, par = tmp_path / "s", tmp_path / "r"
    assert main_code(capsys, "run", "ref", "-n", "5000", "-d", "30", "-q", "-o", str(single)) == 0
    assert main_code(capsys, "run", "ref", "-n", "5000", "-d", "30", "-q", "-o", str(par),
                     "--backend", "ray", "--workers", "5") == 0  # more workers than the instance's 4 CPUs
    for table in TABLES:
        assert (par / f"{table}.parquet").read_bytes() == (single / f"{table}.parquet").read_bytes(), table


def main_code(capsys, *args: str) -> int:
    with pytest.raises(SystemExit) as exc:
        main(list(args))
    capsys.readouterr()
    return exc.value.code


@needs_ray
def test_a_worker_killed_mid_run_writes_nothing_and_a_rerun_is_identical(local_ray, single, tmp_path, monkeypatch):
    import ray

    from socialcredit.distributed import ray_backend

    pools = []

    class Recorded(ray_backend.RayWorkers):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            pools.append(self)

    def kill_on_day_20(day: int) -> None:
        if day == 20:
            ray.kill(pools[-1].actors[1])  # the second partition's actor dies mid-run

    monkeypatch.setattr(ray_backend, "RayWorkers", Recorded)
    out = tmp_path / "killed"
    with pytest.raises(UserError, match=r"a Ray worker failed during the run .*nothing was written") as err:
        ray_backend.run_ray("ref", citizens=100_000, days=60, seed=1, workers=2, out=out, on_day=kill_on_day_20)
    assert "\n" not in str(err.value)
    assert not out.exists() and not list(tmp_path.glob("*killed*"))  # nothing half-written
    ray_backend.run_ray("ref", citizens=100_000, days=60, seed=1, workers=2, out=out)  # run again
    for table in TABLES:
        assert (out / f"{table}.parquet").read_bytes() == (single / f"{table}.parquet").read_bytes(), table
    assert _metrics(out) == _metrics(single)


@needs_ray
@pytest.mark.parametrize("address", ["127.0.0.1:1", "no-such-host.invalid:6379"])
def test_an_unreachable_cluster_is_one_line_and_nothing_written(tmp_path, address):
    out = tmp_path / "run"  # a fresh process: this module's tests keep a local Ray instance running
    res = subprocess.run([sys.executable, "-m", "socialcredit", "run", "ref", "-n", "1000", "-d", "5", "-q",
                          "--backend", "ray", "--address", address, "-o", str(out)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 2
    err = res.stderr.strip()
    assert err.startswith(f"error: cannot reach the Ray cluster at {address}") and "\n" not in err
    assert not out.exists()


@needs_ray
def test_api_run_with_the_ray_backend(local_ray, single, tmp_path):
    run = api.run("ref", citizens=100_000, days=60, seed=1, out=tmp_path / "r", backend="ray", workers=2)
    assert run.manifest["backend"] == "ray" and len(run.manifest["worker_peak_rss_bytes"]) == 2
    for table in TABLES:
        assert (run.path / f"{table}.parquet").read_bytes() == (single / f"{table}.parquet").read_bytes(), table
    with pytest.raises(UserError, match="on_setup is not available with backend='ray'"):
        api.run("ref", citizens=1000, days=10, backend="ray", on_setup=print, out=tmp_path / "c")
    with pytest.raises(UserError, match="backend must be"):
        api.run("ref", citizens=1000, days=10, backend="dask")
    with pytest.raises(UserError, match="address needs backend='ray'"):
        api.run("ref", citizens=1000, days=10, address="127.0.0.1:1")


def _interrupted(out: Path, at: int, **kwargs) -> None:
    """A run of the ray backend interrupted (Ctrl-C) once ``at`` days are done."""

    def interrupt(day: int) -> None:
        if day == at:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        api.run("ref", out=out, backend="ray", on_day=interrupt, **kwargs)


@needs_ray
def test_an_interrupted_ray_run_resumes_to_the_same_results(local_ray, single, tmp_path):
    out = tmp_path / "run"
    _interrupted(out, 45, citizens=100_000, days=60, seed=1, workers=3, checkpoint_every=20)
    assert not out.exists()
    saved = out.with_name("run.checkpoint")
    doc = json.loads((saved / "checkpoint.json").read_text())
    assert doc["day"] == 40 and doc["backend"] == "ray" and doc["workers"] == 3
    assert sorted(p.name for p in saved.iterdir()) == ["checkpoint.json", "part-000", "part-001", "part-002"]
    with pytest.raises(UserError, match="an interrupted run left a checkpoint"):
        api.run("ref", citizens=100_000, days=60, seed=1, out=out, backend="ray", workers=3)
    api.resume(out)
    for table in TABLES:
        assert (out / f"{table}.parquet").read_bytes() == (single / f"{table}.parquet").read_bytes(), table
    assert _metrics(out) == _metrics(single)
    assert not saved.exists()  # removed once the run is written


@needs_ray
def test_a_corrupt_partition_checkpoint_is_one_line(local_ray, tmp_path):
    out = tmp_path / "run"
    _interrupted(out, 12, citizens=20_000, days=30, seed=2, workers=2, checkpoint_every=10)
    state = out.with_name("run.checkpoint") / "part-001" / "state.npz"
    data = bytearray(state.read_bytes())
    data[len(data) // 2] ^= 0xFF
    state.write_bytes(bytes(data))
    with pytest.raises(UserError, match=r"part-001.*corrupt checkpoint") as err:
        api.resume(out)
    assert "\n" not in str(err.value) and not out.exists()
    shutil.rmtree(out.with_name("run.checkpoint") / "part-001")
    with pytest.raises(UserError, match=r"corrupt checkpoint \(no part-001/checkpoint.json\)"):
        api.resume(out)


@needs_ray
def test_a_ray_run_killed_with_sigkill_resumes_to_the_same_results(local_ray, single, tmp_path):
    """The driver and its whole local Ray instance die (SIGKILL to the process group) after a checkpoint."""
    out = tmp_path / "run"
    saved = out.with_name("run.checkpoint")
    proc = subprocess.Popen([sys.executable, "-m", "socialcredit", "run", "ref", "-n", "100000", "-d", "60", "-q",
                             "--backend", "ray", "--workers", "2", "--checkpoint-every", "15", "-o", str(out)],
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (saved / "checkpoint.json").is_file() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    if out.exists():  # finished before the kill (a very fast machine): nothing to resume
        pytest.skip("the run finished before it could be killed")
    assert (saved / "checkpoint.json").is_file()
    api.resume(out)
    for table in TABLES:
        assert (out / f"{table}.parquet").read_bytes() == (single / f"{table}.parquet").read_bytes(), table
    assert _metrics(out) == _metrics(single)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@needs_ray
def test_a_run_on_a_cluster_started_by_ray_start(tmp_path):
    """--address: a separate cluster (`ray start --head`), not an instance the driver starts."""
    ray_cli = Path(sys.executable).with_name("ray")
    if not ray_cli.exists():
        ray_cli = Path(shutil.which("ray") or "ray")
    port = _free_port()
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}  # no token to distribute on one machine
    head = subprocess.Popen([str(ray_cli), "start", "--head", "--block", "--port", str(port), "--num-cpus", "2",
                             "--include-dashboard", "false", "--disable-usage-stats"],
                            start_new_session=True, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True)
    try:
        deadline = time.monotonic() + 120
        for line in head.stdout:  # wait until the head says it is up
            if "Ray runtime started" in line or time.monotonic() > deadline:
                break
        out, single = tmp_path / "cluster", tmp_path / "single"
        res = subprocess.run([sys.executable, "-m", "socialcredit", "run", "ref", "-n", "20000", "-d", "30", "-q",
                              "--backend", "ray", "--workers", "3", "--address", f"127.0.0.1:{port}", "-o", str(out)],
                             env=env, capture_output=True, text=True, timeout=300)
        assert res.returncode == 0, res.stderr
    finally:
        os.killpg(head.pid, signal.SIGKILL)
        head.wait()
        current = Path(tempfile.gettempdir()) / "ray" / "ray_current_cluster"  # left by the killed head
        if current.is_file() and current.read_text().strip().endswith(f":{port}"):
            current.unlink()
    api.run("ref", citizens=20_000, days=30, seed=1, out=single)
    for table in TABLES:
        assert (out / f"{table}.parquet").read_bytes() == (single / f"{table}.parquet").read_bytes(), table
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["workers"] == 3 and len(manifest["worker_peak_rss_bytes"]) == 3
