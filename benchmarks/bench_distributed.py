"""Benchmark the Ray backend: weak scaling and memory per worker and on the driver.

Every configuration runs in a fresh driver process with its own local Ray
instance (``num_cpus`` = workers), `ref`, one numba thread per worker. The
figures come from the run's manifest: simulation and set-up seconds, the
driver's peak RSS, and each worker's peak RSS (``worker_peak_rss_bytes``).

    python benchmarks/bench_distributed.py --per-worker 1e6 --workers 1 2          # weak scaling
    python benchmarks/bench_distributed.py --citizens 4e6 --workers 1 2 4          # memory per worker
    python benchmarks/bench_distributed.py ... --write benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from results_file import write_section

SECTIONS = {"weak": "## Ray backend: weak scaling", "memory": "## Ray backend: memory per worker"}

_ONE = """
import json, resource, sys, time
import ray
from socialcredit.distributed.ray_backend import run_ray
citizens, days, workers, out = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
ray.init(num_cpus=workers, include_dashboard=False, log_to_driver=False, configure_logging=False)
t = time.perf_counter()
run = run_ray("ref", citizens=citizens, days=days, seed=1, workers=workers, out=out, threads=1)
wall = time.perf_counter() - t
m = run.manifest
print(json.dumps({"citizens": citizens, "days": days, "workers": workers, "wall": wall,
                  "timings": m["timings_seconds"],
                  "driver_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "worker_peaks": m["worker_peak_rss_bytes"]}))
"""

_SINGLE = """
import json, resource, sys
import numba
numba.set_num_threads(1)
import socialcredit as sc
citizens, days, out = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
run = sc.run("ref", citizens=citizens, days=days, seed=1, out=out)
print(json.dumps({"citizens": citizens, "days": days, "workers": 0, "wall": run.manifest["wall_seconds"],
                  "timings": run.manifest["timings_seconds"],
                  "driver_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "worker_peaks": []}))
"""


def measure(citizens: int, days: int, workers: int) -> dict:
    """One run in a fresh process (``workers`` = 0: the single-process engine on one thread)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "run")
        if workers:
            cmd = [sys.executable, "-c", _ONE, str(citizens), str(days), str(workers), out]
        else:
            cmd = [sys.executable, "-c", _SINGLE, str(citizens), str(days), out]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def rows(results: list[dict]) -> list[str]:
    lines = ["| workers K | citizens | simulation s | set-up s | wall s | citizen-days/s | driver peak RSS "
             "| largest worker peak RSS | worker bytes per own citizen |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        t = r["timings"]
        worker = max(r["worker_peaks"]) if r["worker_peaks"] else None
        per = f"{worker / (r['citizens'] / r['workers']):.0f}" if worker else "—"
        label = str(r["workers"]) if r["workers"] else "single process, 1 thread"
        lines.append(
            f"| {label} | {r['citizens']:,} | {t['simulation_seconds']:.2f} | {t['setup_seconds']:.2f} "
            f"| {r['wall']:.1f} | {r['citizens'] * r['days'] / t['simulation_seconds']:.2g} "
            f"| {r['driver_peak'] / 2**20:,.0f} MiB | {f'{worker / 2**20:,.0f} MiB' if worker else '—'} | {per} |")
    return lines


def section(kind: str, results: list[dict]) -> str:
    head = [SECTIONS[kind], "", "Produced by `python benchmarks/bench_distributed.py " + " ".join(sys.argv[1:])
            + f"` ({platform.processor() or platform.machine()}, {os.cpu_count()} cores; a local Ray instance "
            "per run, one numba thread per worker; wall time includes Ray's start-up).", ""]
    return "\n".join(head + rows(results)) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    size = parser.add_mutually_exclusive_group(required=True)
    size.add_argument("--per-worker", type=float, help="citizens per worker (weak scaling)")
    size.add_argument("--citizens", type=float, help="citizens in all (memory per worker as K grows)")
    parser.add_argument("--workers", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--days", type=int, default=180)
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of a Markdown results file")
    args = parser.parse_args()
    measure(20_000, 31, 1)  # compile (or load) every kernel before timing
    results = []
    if args.per_worker:
        results.append(measure(int(args.per_worker), args.days, 0))
    for k in args.workers:
        n = int(args.per_worker * k) if args.per_worker else int(args.citizens)
        r = measure(n, args.days, k)
        results.append(r)
        print(f"K={k}: {n:,} citizens, simulation {r['timings']['simulation_seconds']:.2f} s, driver peak "
              f"{r['driver_peak'] / 2**20:,.0f} MiB, worker peaks "
              f"{', '.join(f'{p / 2**20:,.0f}' for p in r['worker_peaks'])} MiB", flush=True)
    kind = "weak" if args.per_worker else "memory"
    text = section(kind, results)
    print(text)
    if args.write:
        write_section(args.write, SECTIONS[kind], text)


if __name__ == "__main__":
    main()
