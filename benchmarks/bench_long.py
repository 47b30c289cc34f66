"""Memory over a long run: RSS sampled while simulating many years.

    python benchmarks/bench_long.py --citizens 1e6 --years 20
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import psutil


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--citizens", type=float, default=1e6)
    parser.add_argument("--years", type=int, default=20)
    parser.add_argument("--every", type=int, default=365, help="report every this many days")
    args = parser.parse_args()

    import socialcredit as sc

    proc = psutil.Process()
    days = 365 * args.years
    peak = [0]
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.05)

    threading.Thread(target=sample, daemon=True).start()
    t0 = time.perf_counter()
    print(f"{'day':>6} {'seconds':>8} {'RSS MiB':>8} {'peak MiB':>9}")

    def on_day(day: int) -> None:
        if day % args.every == 0 or day == days:
            rss = proc.memory_info().rss
            print(f"{day:>6} {time.perf_counter() - t0:>8.1f} {rss / 2**20:>8.0f} {peak[0] / 2**20:>9.0f}", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        run = sc.run("ref", citizens=int(args.citizens), days=days, seed=1, out=Path(tmp) / "run", on_day=on_day)
        stop.set()
        print(f"finished: {run.metrics['citizen_days_per_s']:.3g} citizen-days/s, peak RSS "
              f"{peak[0] / 2**20:.0f} MiB ({peak[0] / int(args.citizens):.0f} B/citizen), "
              f"events.parquet {(run.path / 'events.parquet').stat().st_size / 2**20:.0f} MiB")


if __name__ == "__main__":
    main()
