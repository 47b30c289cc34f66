"""The CLI: commands work, bad input gets one line and exit code 2, nothing half-written."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cli_call import call


def cli(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "socialcredit", *args], capture_output=True, text=True,
                          timeout=600)
    return proc.returncode, proc.stdout, proc.stderr


def test_run_writes_directory_and_prints_where(tmp_path, capsys):
    out = tmp_path / "r"
    code, stdout, _ = call(capsys, "run", "ref", "-n", "2000", "-d", "40", "-o", str(out))
    assert code == 0
    assert str(out) in " ".join(stdout.split())
    assert json.loads((out / "summary.json").read_text())["citizens"] == 2000
    assert "mean platform score" in stdout


def test_quiet_prints_only_the_path(tmp_path, capsys):
    out = tmp_path / "q"
    code, stdout, stderr = call(capsys, "run", "ref", "-n", "500", "-d", "30", "-o", str(out), "--quiet")
    assert code == 0 and stdout.strip() == str(out) and stderr == ""


def test_set_override_lands_in_manifest(tmp_path, capsys):
    out = tmp_path / "s"
    code, _, _ = call(capsys, "run", "ref", "-n", "500", "-d", "30", "-o", str(out), "-q",
                      "--set", "observation.camera.false_match=0.5", "--set", "output.panel=10")
    assert code == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["scenario"]["observation"]["camera"]["false_match"] == 0.5
    assert manifest["panel_citizens"] == 10


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["run", "nosuch"], "unknown scenario 'nosuch'"),
        (["run", "ref", "-n", "0"], "--citizens must be between 1"),
        (["run", "ref", "-n", "-3"], "--citizens must be between 1"),
        (["run", "ref", "-d", "0"], "--days must be between 1"),
        (["run", "ref", "-d", "-1"], "--days must be between 1"),
        (["run", "ref", "-n", "ten"], "--citizens"),
        (["run", "ref", "--set", "observation.camera.false_match=2"], "observation.camera.false_match"),
        (["run", "ref", "--set", "observation.camera.bogus=1"], "observation.camera.bogus: unknown key"),
        (["run", "ref", "--set", "nokey"], "expected key.path=value"),
        (["run", "ref", "--set", "scoring.platform.weights.history=0.5"], "weights must sum to 1"),
        (["run", "/no/such/file.toml"], "no such scenario file"),
        (["run", "ref", "--threads", "0"], "--threads"),
        (["run", "ref", "--no-such-option"], "No such option"),
        (["validate", "/no/such.toml"], "no such scenario file"),
        (["run", "ref", "-d", "10", "--checkpoint-every", "0"], "--checkpoint-every must be between 1 and --days"),
        (["run", "ref", "-d", "10", "--checkpoint-every", "11"], "--checkpoint-every must be between 1 and --days"),
        (["run", "ref", "--backend", "ray", "--workers", "0"], "--workers must be between 1 and 4096"),
        (["run", "ref", "--workers", "2"], "--workers needs --backend ray"),
        (["run", "ref", "--backend", "dask"], "--backend must be single or ray"),
    ],
)
def test_bad_input_one_line_exit_2(capsys, args, needle):
    code, stdout, stderr = call(capsys, *args)
    assert code == 2
    assert needle in stderr
    assert len(stderr.strip().splitlines()) == 1 and stderr.startswith("error: ")
    assert "Traceback" not in stderr + stdout


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("name = 'x'\n[population\n", "malformed TOML"),
        ("name = 'x'\nbogus = 1\n", "bogus: unknown key"),
        ("extends = 'ref'\n[observation.camera]\ndetect_urban = 1.5\n", "observation.camera.detect_urban"),
        ("extends = 'ref'\n[records.points]\ngrades = [{name='A', min=0, max=1100}, {name='B', min=0, max=99}]\n",
         "grades"),
        ("extends = 'ref'\n[behaviour.jaywalk]\nrate_urban = 0.9\n", "daily probability can reach"),
        ("extends = 'ref'\n[observation.camera]\nevents = ['nosuch']\n", "unknown event kind 'nosuch'"),
        ("extends = 'ref'\n[scoring.platform]\nkind = 'nosuch'\n", "unknown scoring kind 'nosuch'"),
    ],
)
def test_bad_scenario_files(tmp_path, capsys, text, needle):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    for command in (["validate", str(path)], ["run", str(path), "-n", "100", "-d", "2", "-o", str(tmp_path / "o")]):
        code, _, stderr = call(capsys, *command)
        assert code == 2, stderr
        assert needle in stderr and str(path) in stderr
        assert len(stderr.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_existing_out_refused_unless_force(tmp_path, capsys):
    out = tmp_path / "o"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    code, _, stderr = call(capsys, "run", "ref", "-n", "300", "-d", "5", "-o", str(out))
    assert code == 2 and "not empty" in stderr and "--force" in stderr
    assert (out / "keep.txt").read_text() == "mine"
    code, _, _ = call(capsys, "run", "ref", "-n", "300", "-d", "5", "-o", str(out), "--force", "-q")
    assert code == 0 and not (out / "keep.txt").exists() and (out / "summary.json").exists()


def test_unwritable_out(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("x")
    code, _, stderr = call(capsys, "run", "ref", "-n", "100", "-d", "2", "-o", str(target / "sub"))
    assert code == 2 and "error: --out" in stderr
    code, _, stderr = call(capsys, "run", "ref", "-n", "100", "-d", "2", "-o", str(target))
    assert code == 2 and "not a directory" in stderr


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to drop privileges")
def test_permission_denied_out(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    os.chmod(tmp_path, 0o755)
    # import everything as root (the interpreter may live in root's home), then drop privileges
    script = ("import os, socialcredit.api, socialcredit.cli, socialcredit.engine.simulation, socialcredit.registry; "
              "socialcredit.registry._load_builtins(); "
              "os.setuid(65534); "
              f"socialcredit.cli.main(['run', 'ref', '-n', '100', '-d', '2', '-o', '{locked}/x', '-q'])")
    cache = tmp_path / "numba-cache"
    cache.mkdir(mode=0o777)
    os.chmod(cache, 0o777)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(cache)}
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env)
    if "Traceback" in proc.stderr and ("ModuleNotFoundError" in proc.stderr or "PermissionError" in proc.stderr):
        pytest.skip("the interpreter's files are not readable by an unprivileged user here")
    assert proc.returncode == 2 and "cannot write" in proc.stderr
    assert list(locked.iterdir()) == []


def test_ctrl_c_leaves_nothing(tmp_path):
    out = tmp_path / "big"
    proc = subprocess.Popen([sys.executable, "-m", "socialcredit", "run", "ref", "-n", "1000000", "-d", "30000",
                             "-o", str(out), "-q"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            # a shell's background jobs ignore SIGINT; restore it so Python handles it
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 130, stderr
    assert "interrupted" in stderr and "Traceback" not in stderr
    assert not out.exists()
    assert list(tmp_path.iterdir()) == []


def test_scenarios_validate_plan(capsys):
    code, stdout, _ = call(capsys, "scenarios")
    assert code == 0 and "ref" in stdout
    code, stdout, _ = call(capsys, "validate", "ref")
    assert code == 0 and "ok" in stdout
    code, stdout, _ = call(capsys, "plan", "ref")
    stages = [line.split()[0] for line in stdout.strip().splitlines()]
    assert stages == ["behaviour", "observation", "records", "records", "records", "records",
                      "consequences", "consequences", "scoring", "network", "network", "metrics"]


def test_version_and_help():
    code, stdout, _ = cli("--version")
    assert code == 0 and stdout.startswith("socialcredit ")
    code, stdout, _ = cli("run", "--help")
    assert code == 0 and "--citizens" in stdout and "--set" in stdout


def test_defaults_documented_in_help():
    _, stdout, _ = cli("run", "--help")
    text = " ".join(stdout.split())
    assert "1000000" in text.replace(",", "") and "365" in text


def test_bare_command_path_relative(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "socialcredit", "run", "ref", "-n", "200", "-d", "3", "-q"],
                          capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert proc.returncode == 0, proc.stderr
    runs = list((tmp_path / "runs").iterdir())
    assert len(runs) == 1 and runs[0].name.startswith("ref-") and (runs[0] / "summary.json").exists()
    assert proc.stdout.strip().endswith(runs[0].name)
