"""Parameter sweeps: every grid point × seed run in parallel processes, summary metrics kept.

Writes ``DIR/sweep.parquet`` (one tidy row per grid point and seed: one column
per swept key, ``seed``, then every summary metric) and ``DIR/sweep.html``
(each metric against each swept parameter: mean over seeds with the min–max
range), atomically.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import tempfile
from collections.abc import Callable
from concurrent.futures import FIRST_EXCEPTION, ProcessPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from socialcredit.errors import UserError
from socialcredit.scenario import Scenario
from socialcredit.scenario.loader import parse_value

#: Metrics left out of the charts (they measure the machine, not the model); kept in sweep.parquet.
NOT_PLOTTED = ("citizen_days_per_s",)
#: With more combinations of the other swept keys than this, a chart averages over them.
MAX_LINES = 6


@dataclass(frozen=True)
class Job:
    """One run of a sweep: a grid point and a seed."""

    index: int
    point: tuple[tuple[str, Any], ...]
    seed: int


def parse_grid(specs: list[str]) -> dict[str, list[Any]]:
    """``["key.path=v1,v2", ...]`` to ``{"key.path": [v1, v2]}``, values parsed as TOML like ``--set``.

    Commas inside brackets, braces or quotes do not split, so ``a=[1,2],[3,4]`` has two values.

    >>> parse_grid(["observation.camera.false_match=0.0,0.5"])
    {'observation.camera.false_match': [0.0, 0.5]}
    """
    if not specs:
        raise UserError("--grid: give at least one key.path=v1,v2,...")
    grid: dict[str, list[Any]] = {}
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserError(f"--grid {spec!r}: expected key.path=v1,v2,...")
        if key in grid:
            raise UserError(f"--grid {key}: given twice")
        items = _split(text)
        if not items or any(not item.strip() for item in items):
            raise UserError(f"--grid {spec!r}: empty value (expected key.path=v1,v2,...)")
        parsed = [parse_value(item.strip()) for item in items]
        if len({json.dumps(v, sort_keys=True, default=str) for v in parsed}) != len(parsed):
            raise UserError(f"--grid {key}: repeated value")
        grid[key] = parsed
    return grid


def _split(text: str) -> list[str]:
    """Split on commas outside brackets, braces and quotes."""
    items, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
        elif ch == "," and depth == 0:
            items.append(text[start:i])
            start = i + 1
    items.append(text[start:])
    return items if text.strip() else []


def grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of the grid's values, the first key varying slowest."""
    keys = list(grid)
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*grid.values())]


def validate(scenario: str | Path, points: list[dict[str, Any]]) -> None:
    """Check every grid point against the scenario (keys, types, ranges, bands) before anything runs."""
    from socialcredit.engine.simulation import preflight

    base = Scenario.load(scenario)
    for point in points:
        try:
            preflight(base.override(**point))
        except UserError as exc:
            where = ", ".join(f"{k}={_show(v)}" for k, v in point.items())
            raise UserError(f"--grid point {where}: {exc}") from None


def sweep(
    scenario: str | Path,
    grid: dict[str, list[Any]],
    *,
    seeds: int = 1,
    citizens: int = 100_000,
    days: int = 365,
    out: str | Path,
    workers: int | None = None,
    force: bool = False,
    on_start: Callable[[int], None] | None = None,
    on_done: Callable[[Job], None] | None = None,
) -> Path:
    """Run every grid point × seed (seeds 1..``seeds``) and write ``out``; return ``out``.

    Everything is validated before the first run; ``on_start(total)`` and
    ``on_done(job)`` report progress. Runs happen in ``workers`` processes
    (default: one per CPU), each in a temporary directory of which only the
    summary metrics are kept.
    """
    from socialcredit.engine.simulation import check_size
    from socialcredit.io.rundir import atomic_dir, check_target

    target = Path(out)
    if seeds < 1:
        raise UserError(f"--seeds must be at least 1 (got {seeds})")
    check_size(citizens, days, seeds)
    workers = (os.cpu_count() or 1) if workers is None else workers
    if workers < 1:
        raise UserError(f"--workers must be at least 1 (got {workers})")
    check_target(target, force)
    source = _scenario_ref(scenario)
    points = grid_points(grid)
    validate(source, points)
    jobs = [Job(i, tuple(point.items()), seed) for i, (point, seed) in
            enumerate(itertools.product(points, range(1, seeds + 1)))]
    if on_start is not None:
        on_start(len(jobs))
    metrics = _run_all(source, jobs, citizens, days, min(workers, len(jobs)), on_done)
    frame = tidy(grid, jobs, metrics)
    with atomic_dir(target, force=force) as tmp:
        frame.write_parquet(tmp / "sweep.parquet")
        (tmp / "sweep.html").write_text(render_html(frame, grid, scenario=Scenario.load(source).name,
                                                    seeds=seeds, citizens=citizens, days=days),
                                        encoding="utf-8")
    return target


def _scenario_ref(scenario: str | Path) -> str:
    """A shipped name stays a name; a file becomes an absolute path (workers may resolve it elsewhere)."""
    path = Path(scenario)
    return str(path.resolve()) if path.is_file() else str(scenario)


def _run_all(source: str, jobs: list[Job], citizens: int, days: int, workers: int,
             on_done: Callable[[Job], None] | None) -> dict[int, dict[str, float | None]]:
    import multiprocessing

    results: dict[int, dict[str, float | None]] = {}
    threads = max(1, (os.cpu_count() or 1) // workers)
    context = multiprocessing.get_context("spawn")  # safe whatever threads the parent started
    with ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=_init_worker,
                             initargs=(threads,)) as pool:
        futures = {pool.submit(run_one, source, dict(job.point), citizens, days, job.seed): job for job in jobs}
        try:
            pending = set(futures)
            while pending:
                done, pending = wait(pending, return_when=FIRST_EXCEPTION)
                for future in done:
                    job = futures[future]
                    results[job.index] = future.result()
                    if on_done is not None:
                        on_done(job)
        except BaseException:
            for future in futures:
                future.cancel()
            raise
    return results


def _init_worker(threads: int) -> None:
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def run_one(scenario: str, point: dict[str, Any], citizens: int, days: int, seed: int) -> dict[str, float | None]:
    """One run in a temporary directory; its summary metrics."""
    from socialcredit import api

    with tempfile.TemporaryDirectory(prefix="socialcredit-sweep-") as tmp:
        run = api.run(scenario, citizens=citizens, days=days, seed=seed, out=Path(tmp) / "run", overrides=point)
        return dict(run.metrics)


def tidy(grid: dict[str, list[Any]], jobs: list[Job], metrics: dict[int, dict[str, float | None]]) -> pl.DataFrame:
    """One row per job: swept keys (typed), seed, then every metric (Float64, null where undefined)."""
    names: list[str] = []
    for job in jobs:
        names += [m for m in metrics[job.index] if m not in names]
    columns: dict[str, pl.Series] = {}
    for key, vals in grid.items():
        columns[key] = _typed(key, [dict(job.point)[key] for job in jobs], vals)
    columns["seed"] = pl.Series("seed", [job.seed for job in jobs], dtype=pl.Int64)
    for name in names:
        columns[name] = pl.Series(name, [_float(metrics[job.index].get(name)) for job in jobs], dtype=pl.Float64)
    return pl.DataFrame(list(columns.values()))


def _typed(key: str, column: list[Any], grid_values: list[Any]) -> pl.Series:
    kinds = {type(v) for v in grid_values}
    if kinds == {bool}:
        return pl.Series(key, column, dtype=pl.Boolean)
    if kinds == {int}:
        return pl.Series(key, column, dtype=pl.Int64)
    if kinds <= {int, float}:
        return pl.Series(key, [float(v) for v in column], dtype=pl.Float64)
    if kinds == {str}:
        return pl.Series(key, column, dtype=pl.String)
    return pl.Series(key, [json.dumps(v, default=str) for v in column], dtype=pl.String)


def _float(value: Any) -> float | None:
    if value is None or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def _show(value: Any) -> str:
    return json.dumps(value, default=str) if not isinstance(value, str) else value


# -- the HTML page -----------------------------------------------------------


def render_html(frame: pl.DataFrame, grid: dict[str, list[Any]], *, scenario: str, seeds: int, citizens: int,
                days: int) -> str:
    """The sweep's page: one chart per metric and swept parameter."""
    from socialcredit.analysis.page import render

    keys = list(grid)
    metrics = [c for c in frame.columns if c not in keys and c != "seed" and c not in NOT_PLOTTED]
    groups = []
    for key in keys:
        charts = [metric_chart(frame, metric, key, keys) for metric in metrics]
        groups.append({"title": f"Against {key}", "lede": "", "charts": charts})
    facts = {"scenario": scenario, "points": len(grid_points(grid)), "seeds": seeds, "citizens": citizens,
             "days": days, "runs": frame.height, "swept": keys,
             "grid": {k: [_show(v) for v in vals] for k, vals in grid.items()}}
    return render("sweep.html.j2", title=f"socialcredit sweep: {scenario}", sweep=facts, groups=groups)


def metric_chart(frame: pl.DataFrame, metric: str, key: str, keys: list[str]) -> Any:
    """A chart of ``metric`` against ``key``: mean over seeds, with the min–max range over seeds."""
    import plotly.graph_objects as go

    from socialcredit.analysis import theme as th
    from socialcredit.analysis.page import Chart

    others = [k for k in keys if k != key]
    combos = frame.select(others).unique(maintain_order=True).height if others else 1
    by = [key, *others] if others and combos <= MAX_LINES else [key]
    stats = (frame.group_by(by, maintain_order=True)
             .agg(pl.col(metric).mean().alias("mean"), pl.col(metric).min().alias("min"),
                  pl.col(metric).max().alias("max"))
             .sort(by))
    numeric = frame.schema[key].is_numeric()
    fig = go.Figure()
    lines = stats.partition_by(by[1:], maintain_order=True, as_dict=False) if len(by) > 1 else [stats]
    for i, line in enumerate(lines):
        colour = th.COLORWAY[i % len(th.COLORWAY)]
        label = ", ".join(f"{k}={_show(line[k][0])}" for k in by[1:]) or "mean over seeds"
        x = th.values(line[key]) if numeric else [_show(v) for v in line[key].to_list()]
        mean, lo, hi = th.values(line["mean"]), th.values(line["min"]), th.values(line["max"])
        if numeric:
            fig.add_trace(go.Scatter(x=x, y=hi, mode="lines", line={"width": 0}, showlegend=False,
                                     hoverinfo="skip", legendgroup=label))
            fig.add_trace(go.Scatter(x=x, y=lo, mode="lines", line={"width": 0}, fill="tonexty",
                                     fillcolor=th.rgba(colour, 0.15), showlegend=False, hoverinfo="skip",
                                     legendgroup=label))
            fig.add_trace(go.Scatter(x=x, y=mean, mode="lines+markers", name=label, legendgroup=label,
                                     line={"color": colour, "width": 2}, marker={"size": 6},
                                     customdata=list(zip(lo, hi, strict=True)),
                                     hovertemplate="mean %{y:.4g} (min %{customdata[0]:.4g}, max "
                                                   "%{customdata[1]:.4g})<extra></extra>"))
        else:
            fig.add_trace(go.Scatter(
                x=x, y=mean, mode="markers", name=label, marker={"color": colour, "size": 9},
                error_y={"type": "data", "symmetric": False, "color": colour, "thickness": 1.2,
                         "array": [None if m is None or h is None else h - m for m, h in zip(mean, hi, strict=True)],
                         "arrayminus": [None if m is None or v is None else m - v
                                        for m, v in zip(mean, lo, strict=True)]}))
    fig.update_layout(**th.layout(top=44 if len(lines) > 1 else 20, showlegend=len(lines) > 1, hovermode="x unified"))
    th.style_axes(fig)
    fig.update_xaxes(title_text=key)
    fig.update_yaxes(title_text=metric)
    spread = "the shaded band spans" if numeric else "the error bars span"
    averaged = f", averaged over {', '.join(others)}" if others and len(by) == 1 else ""
    return Chart(id=f"{metric}--{key}".replace(".", "-"), title=metric,
                 caption=f"Mean of {metric} over seeds at each value of {key}{averaged}; "
                         f"{spread} the lowest to highest seed.", figure=fig, height=300)
