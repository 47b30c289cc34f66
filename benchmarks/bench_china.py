"""Benchmark the default `china` scenario against `ref` on the same machine.

Every system of SPEC section 5 runs in `china`, on a calibrated population
with a heavy-tailed graph, so it does more work per citizen-day than `ref`;
the target is at least a third of `ref`'s throughput at 10M citizens × 365
days. Each run is a fresh process (peak RSS per run); numba's cache is warm.

    python benchmarks/bench_china.py                       # 10M citizens × 365 days
    python benchmarks/bench_china.py --sizes 1e6 1e7 --write benchmarks/RESULTS.md
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
from pathlib import Path

from results_file import write_section

HERE = Path(__file__).parent
SECTION = "## china against ref"


def measure(scenario: str, size: float, days: int, seed: int) -> dict:
    """One run of ``scenario`` in a fresh process (bench_ref.py --one)."""
    res = subprocess.run([sys.executable, str(HERE / "bench_ref.py"), "--one", str(size), "--days", str(days),
                          "--seed", str(seed), "--scenario", scenario], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])


def table(pairs: list[tuple[dict, dict]]) -> str:
    """Markdown section: throughput of both, their ratio, and china's time per stage."""
    lines = [SECTION, "", "Produced by `python benchmarks/bench_china.py " + " ".join(sys.argv[1:]) + "`, both "
             f"scenarios on the same machine ({platform.processor() or platform.machine()}, {os.cpu_count()} cores; "
             "throughput varies by about ±10 % between runs and hosts, so compare rows, not files).", "",
             "| citizens | days | ref citizen-days/s | china citizen-days/s | china / ref | china graph s "
             "| china set-up s | china writing s | china peak RSS |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for ref, china in pairs:
        lines.append(
            f"| {china['citizens']:,} | {china['days']} | {ref['citizen_days_per_s']:.3g} "
            f"| {china['citizen_days_per_s']:.3g} | {china['citizen_days_per_s'] / ref['citizen_days_per_s']:.2f} "
            f"| {china['graph_seconds']:.2f} | {china['setup_seconds']:.2f} | {china['write_and_rest_seconds']:.2f} "
            f"| {china['peak_rss_bytes'] / 2**20:,.0f} MiB |")
    stages = list(pairs[0][1]["stages"]) if pairs else []
    lines += ["", "`china`: seconds per stage of the day loop:", "",
              "| citizens | " + " | ".join(stages) + " |", "|---:|" + "---:|" * len(stages)]
    for _, china in pairs:
        lines.append(f"| {china['citizens']:,} | " + " | ".join(f"{china['stages'][s]:.2f}" for s in stages) + " |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", nargs="+", type=float, default=[1e7])
    parser.add_argument("--days", type=int, default=365)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--write", type=Path, help="replace this benchmark's section of a Markdown results file")
    args = parser.parse_args()
    measure("china", 1e4, 31, args.seed)  # compile (or load) every kernel before timing
    pairs = []
    for size in args.sizes:
        ref = measure("ref", size, args.days, args.seed)
        china = measure("china", size, args.days, args.seed)
        pairs.append((ref, china))
        print(f"{int(size):>12,} citizens × {args.days} days: ref {ref['citizen_days_per_s']:.3g}, "
              f"china {china['citizen_days_per_s']:.3g} citizen-days/s "
              f"(ratio {china['citizen_days_per_s'] / ref['citizen_days_per_s']:.2f})", flush=True)
    text = table(pairs)
    print(text)
    if args.write:
        write_section(args.write, SECTION, text)


if __name__ == "__main__":
    main()
