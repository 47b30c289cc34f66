"""Kill runs at random moments (SIGKILL or SIGINT), finish them, compare with an uninterrupted run.

    python benchmarks/fault_injection.py --trials 20
    python benchmarks/fault_injection.py --trials 10 --scenario china --citizens 200000 --days 120
    python benchmarks/fault_injection.py --trials 10 --backend ray --workers 2 --citizens 1000000 --days 240

A trial starts `socialcredit run ... --checkpoint-every K`, sends a signal after
a random delay (with `--backend ray`, SIGKILL goes to the whole process group:
the driver and the local Ray instance it started, as in a crash of the machine),
checks that no run directory is half-written, then finishes
the run (`socialcredit resume` when a checkpoint exists, else a fresh run)
and compares every Parquet file byte for byte, and summary metrics, with the
uninterrupted run.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TABLES = ("citizens", "daily", "scores_monthly", "events", "lists")


def _cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "socialcredit", *args]


def _same(a: Path, b: Path) -> bool:
    if any((a / f"{t}.parquet").read_bytes() != (b / f"{t}.parquet").read_bytes() for t in TABLES):
        return False
    ma, mb = (json.loads((d / "summary.json").read_text())["metrics"] for d in (a, b))
    ma.pop("citizen_days_per_s")
    mb.pop("citizen_days_per_s")
    return ma == mb


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trials", type=int, default=20)
    parser.add_argument("--citizens", default="300000")
    parser.add_argument("--days", default="400")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--scenario", default="ref")
    parser.add_argument("--backend", default="single", choices=["single", "ray"])
    parser.add_argument("--workers", default="2", help="with --backend ray")
    parser.add_argument("--every", default="40", help="--checkpoint-every")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    base = [args.scenario, "-n", args.citizens, "-d", args.days, "--seed", "5", "-q"]
    if args.backend == "ray":
        base += ["--backend", "ray", "--workers", args.workers]
    outcomes: collections.Counter[str] = collections.Counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        subprocess.run(_cmd("run", *base, "-o", str(root / "straight")), check=True, capture_output=True)
        span = time.perf_counter() - t0
        for trial in range(args.trials):
            out = root / f"t{trial}"
            sig = rng.choice([signal.SIGKILL, signal.SIGINT])
            delay = rng.uniform(0.1, span * 1.1)
            proc = subprocess.Popen(_cmd("run", *base, "-o", str(out), "--checkpoint-every", args.every),
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    start_new_session=True,
                                    preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
            time.sleep(delay)
            if sig == signal.SIGKILL and args.backend == "ray":
                os.killpg(proc.pid, sig)
            else:
                proc.send_signal(sig)
            _, err = proc.communicate()
            finished = proc.returncode == 0
            half_written = out.exists() and not (out / "summary.json").exists()
            if half_written:
                outcomes["HALF-WRITTEN"] += 1
            if sig == signal.SIGINT and not finished and (proc.returncode != 130 or "interrupted" not in err):
                outcomes["bad SIGINT message"] += 1
                print(f"  exit {proc.returncode}: {err.strip()[-300:]}", flush=True)
            if finished:
                how = "finished before the signal"
            elif (out.with_name(out.name + ".checkpoint") / "checkpoint.json").exists():
                res = subprocess.run(_cmd("resume", str(out), "-q"), capture_output=True, text=True)
                if res.returncode != 0:
                    outcomes["RESUME FAILED"] += 1
                    print(f"  resume: exit {res.returncode}: {res.stderr.strip()[-400:]}", flush=True)
                    continue
                how = "resumed from checkpoint"
            else:
                subprocess.run(_cmd("run", *base, "-o", str(out), "--force"), check=True, capture_output=True)
                how = "rerun (killed before the first checkpoint)"
            same = _same(out, root / "straight")
            outcomes[f"{sig.name}: {how}: {'identical' if same else 'DIFFERENT'}"] += 1
            print(f"trial {trial:2d}: {sig.name} after {delay:5.2f} s -> {how}, "
                  f"{'identical' if same else 'DIFFERENT'}", flush=True)
    print(f"\n{args.trials} faults injected into {args.citizens} citizens x {args.days} days runs "
          f"({args.backend} backend):")
    for what, n in sorted(outcomes.items()):
        print(f"  {n:3d}  {what}")


if __name__ == "__main__":
    main()
