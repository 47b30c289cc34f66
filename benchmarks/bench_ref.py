"""Benchmark the reference model: throughput, graph build, JIT compile, peak memory.

Each size runs in a fresh process so peak RSS belongs to that run alone.

    python benchmarks/bench_ref.py                      # 1M and 10M citizens × 365 days
    python benchmarks/bench_ref.py --sizes 1e5 1e6 1e7 --write benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from results_file import write_top


def one(citizens: int, days: int, seed: int, scenario: str = "ref") -> dict:
    """Run once in this process and return its figures."""
    import socialcredit as sc

    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        run = sc.run(scenario, citizens=citizens, days=days, seed=seed, out=Path(tmp) / "run")
        wall = time.perf_counter() - t0
        timings = run.manifest["timings_seconds"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    sim = timings["simulation_seconds"]
    return {
        "scenario": scenario,
        "citizens": citizens,
        "days": days,
        "citizen_days_per_s": citizens * days / sim,
        "simulation_seconds": sim,
        "graph_seconds": timings["graph_seconds"],
        "setup_seconds": timings["setup_seconds"],
        "write_and_rest_seconds": wall - sim - timings["setup_seconds"],
        "wall_seconds": wall,
        "peak_rss_bytes": peak,
        "peak_rss_bytes_per_citizen": peak / citizens,
        "stages": {k[6:-8]: v for k, v in timings.items() if k.startswith("stage_")},
        "threads": run.manifest["threads"],
    }


def compile_time() -> dict:
    """JIT compile time (empty numba cache) and cached start-up time, tiny run each."""
    code = ("import time, socialcredit as sc; t=time.perf_counter(); "
            "sc.run('ref', citizens=2000, days=31, seed=1); print(time.perf_counter()-t)")
    out = {}
    with tempfile.TemporaryDirectory() as cache:
        for label in ("cold_seconds", "cached_seconds"):
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
            out[label] = float(res.stdout.strip().splitlines()[-1])
    return out


def table(rows: list[dict], jit: dict) -> str:
    """Markdown table of the figures."""
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}; threads {rows[0]['threads'] if rows else '?'}.",
        "",
        f"JIT compile (empty cache, tiny run): {jit['cold_seconds']:.1f} s; with the cache: "
        f"{jit['cached_seconds']:.2f} s.",
        "",
        "| citizens | days | citizen-days/s | simulation s | graph s | set-up s | writing s | peak RSS "
        "| bytes/citizen |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['citizens']:,} | {r['days']} | {r['citizen_days_per_s']:.3g} | {r['simulation_seconds']:.2f} "
            f"| {r['graph_seconds']:.2f} | {r['setup_seconds']:.2f} | {r['write_and_rest_seconds']:.2f} "
            f"| {r['peak_rss_bytes'] / 2**20:,.0f} MiB | {r['peak_rss_bytes_per_citizen']:.0f} |"
        )
    stages = sorted({s for r in rows for s in r["stages"]}, key=list(rows[0]["stages"]).index) if rows else []
    lines += ["", "Seconds per stage of the day loop:", "",
              "| citizens | " + " | ".join(stages) + " |", "|---:|" + "---:|" * len(stages)]
    for r in rows:
        lines.append(f"| {r['citizens']:,} | " + " | ".join(f"{r['stages'][s]:.2f}" for s in stages) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e6, 1e7])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path, help="replace this benchmark's part (the top) of a Markdown results file")
    parser.add_argument("--one", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--scenario", default="ref", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(int(args.one), args.days, args.seed, args.scenario)))
        return
    jit = compile_time()
    print(f"JIT compile: {jit['cold_seconds']:.1f} s cold, {jit['cached_seconds']:.2f} s cached", flush=True)
    rows = []
    for size in args.sizes:
        res = subprocess.run([sys.executable, __file__, "--one", str(size), "--days", str(args.days),
                              "--seed", str(args.seed)], capture_output=True, text=True, check=True)
        row = json.loads(res.stdout.strip().splitlines()[-1])
        rows.append(row)
        print(f"{row['citizens']:>12,} citizens × {row['days']} days: {row['citizen_days_per_s']:.3g} citizen-days/s, "
              f"simulation {row['simulation_seconds']:.1f} s, graph {row['graph_seconds']:.2f} s, "
              f"peak RSS {row['peak_rss_bytes_per_citizen']:.0f} B/citizen", flush=True)
    text = table(rows, jit)
    print(text)
    if args.write:
        write_top(args.write, "Produced by `python benchmarks/bench_ref.py " + " ".join(sys.argv[1:]) + "`.\n\n" + text)


if __name__ == "__main__":
    main()
