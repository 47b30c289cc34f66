"""CLI commands of the analysis package: ``sql``, ``compare``, ``sweep``, ``report``, ``explain``, ``audit``,
``calibrate``.

Thin layers over the modules of this package; heavy imports happen inside the
commands so that ``socialcredit --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:
    import polars as pl

    from socialcredit.analysis.compare import Comparison

out = Console()
err = Console(stderr=True)
TABLE_ROWS = 100


def register(app: typer.Typer) -> None:
    """Add the analysis commands to the CLI app."""
    app.command("sql")(sql_command)
    app.command("compare")(compare_command)
    app.command("sweep")(sweep_command)
    app.command("report")(report_command)
    app.command("explain")(explain_command)
    app.command("audit")(audit_command)
    app.command("calibrate")(calibrate_command)
    from socialcredit.web.commands import register as _register_web
    _register_web(app)


# -- sql ---------------------------------------------------------------------


def sql_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
    query: Annotated[str, typer.Argument(metavar="SQL", help="One SELECT statement. Views: citizens, daily, "
                                         "scores_monthly, events, lists.")],
    csv: Annotated[bool, typer.Option("--csv", help="Print CSV instead of a table.")] = False,
    limit: Annotated[int | None, typer.Option("--limit", help=f"Print at most this many rows [default: "
                                              f"{TABLE_ROWS} for the table, all for --csv].")] = None,
) -> None:
    """Query a run's Parquet tables with DuckDB (read-only), e.g. "select grade, count(*) from citizens group by 1"."""
    from socialcredit.analysis.sql import query as run_query

    cap = limit if limit is not None else (None if csv else TABLE_ROWS)
    frame = run_query(run_dir, query, limit=None if cap is None else cap + 1)
    more = cap is not None and frame.height > cap
    if more:
        frame = frame.head(cap)
    if csv:
        sys.stdout.write(frame.write_csv())
        sys.stdout.flush()
    else:
        out.print(_frame_table(frame))
    if more:
        err.print(f"[dim]first {cap} rows shown (--limit)[/dim]")
    elif not csv:
        err.print(f"[dim]{frame.height} row{'s' if frame.height != 1 else ''}[/dim]")


def _frame_table(frame: pl.DataFrame) -> Table:
    table = Table(box=None, header_style="bold", padding=(0, 1))
    for name, dtype in frame.schema.items():
        table.add_column(name, justify="right" if dtype.is_numeric() else "left")
    for row in frame.iter_rows():
        table.add_row(*[_cell(v) for v in row])
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "[dim]null[/dim]"
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value).replace("[", r"\[")


# -- compare -----------------------------------------------------------------


def compare_command(
    run_a: Annotated[Path, typer.Argument(metavar="RUN_A", help="The baseline run directory.")],
    run_b: Annotated[Path, typer.Argument(metavar="RUN_B", help="The run compared with it.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of tables.")] = False,
) -> None:
    """Compare two runs: every summary metric (A, B, B − A, change) and, for the same population, per-citizen changes.

    Per-citizen changes need the same seed, citizen count and population settings.
    """
    from socialcredit.analysis.compare import compare

    result = compare(run_a, run_b)
    if as_json:
        sys.stdout.write(json.dumps(result.to_dict(), indent=2, allow_nan=False) + "\n")
        return
    _print_comparison(result)


def _print_comparison(result: Comparison) -> None:
    table = Table(title=f"A = {result.a}\nB = {result.b}", title_justify="left", box=None, header_style="bold",
                  padding=(0, 1))
    for name, justify in (("metric", "left"), ("A", "right"), ("B", "right"), ("B − A", "right"),
                          ("change", "right")):
        table.add_column(name, justify=justify)  # type: ignore[arg-type]
    for row in result.metrics.iter_rows(named=True):
        rel = row["rel"]
        change = "n/a" if rel is None else f"{rel:+.1%}"
        if rel is not None and abs(rel) >= 0.05:  # no colour: whether a change is good depends on the metric
            change = f"[bold]{change}[/bold]"
        table.add_row(row["metric"], _num(row["a"]), _num(row["b"]), _num(row["diff"], signed=True), change)
    out.print(table)
    if result.citizens is None:
        out.print(f"\n[dim]No per-citizen comparison: {result.reason}.[/dim]")
        return
    c = result.citizens
    out.print(f"\n[bold]Per-citizen changes[/bold] (same population: {c['citizens']:,} citizens matched by id)")
    flags = Table(box=None, header_style="bold", padding=(0, 1))
    for name in ("", "changed", "A only", "B only", "in A", "in B"):
        flags.add_column(name, justify="left" if not name else "right")
    for flag, f in c.items():
        if isinstance(f, dict) and "only_in_a" in f:
            flags.add_row(flag, f"{f['changed']:,}", f"{f['only_in_a']:,}", f"{f['only_in_b']:,}", f"{f['a']:,}",
                          f"{f['b']:,}")
    out.print(flags)
    changes = [(k.removesuffix("_change"), v) for k, v in c.items()
               if k.endswith("_change") and isinstance(v, dict) and v.get("mean") is not None]
    if changes:
        quantiles = [q for q in changes[0][1]["quantiles"] if q not in ("p1", "p99")]  # all of them in --json
        table = Table(box=None, header_style="bold", padding=(0, 1))
        for name in ("B − A", "changed", "mean", "sd", *quantiles):
            table.add_column(name, justify="left" if name == "B − A" else "right")
        for value, d in changes:
            table.add_row(value, f"{d['changed']:,}", f"{d['mean']:+.2f}", f"{d['sd']:.2f}",
                          *[f"{d['quantiles'][q]:+.2f}" for q in quantiles])
        out.print()
        out.print(table)
    transitions = c.get("grade_transitions")
    if transitions and transitions["grades"]:
        grades = transitions["grades"]
        matrix = Table(box=None, header_style="bold", padding=(0, 1))
        matrix.add_column("A \\ B")
        for g in grades:
            matrix.add_column(g, justify="right")
        for i, (g, counts) in enumerate(zip(grades, transitions["counts"], strict=True)):
            matrix.add_row(g, *[f"[bold]{n:,}[/bold]" if j == i else (f"{n:,}" if n else "[dim]·[/dim]")
                                for j, n in enumerate(counts)])
        out.print("\n[bold]Grade transitions[/bold] (rows: grade in A, columns: grade in B)")
        out.print(matrix)


def _num(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "n/a"
    text = f"{value:+.6g}" if signed else f"{value:.6g}"
    return text


# -- sweep -------------------------------------------------------------------


def sweep_command(
    scenario: Annotated[str, typer.Argument(help="Shipped scenario name or path to a .toml file.")],
    grid: Annotated[list[str], typer.Option("--grid", help="key.path=v1,v2,... (repeatable; values read as "
                                            "TOML like --set; every combination is run).")],
    seeds: Annotated[int, typer.Option("--seeds", help="Seeds per grid point (1..K).")] = 3,
    citizens: Annotated[int, typer.Option("--citizens", "-n", help="Citizens per run.")] = 100_000,
    days: Annotated[int, typer.Option("--days", "-d", help="Days per run.")] = 365,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Directory to write (sweep.parquet, "
                                                 "sweep.html) [default: sweeps/<scenario>-<time>].")] = None,
    workers: Annotated[int | None, typer.Option("--workers", "-w", help="Parallel processes [default: one per "
                                                "CPU].")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing non-empty --out.")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar; print only the directory.")] = False,
) -> None:
    """Run a scenario over a parameter grid × seeds in parallel; write a tidy table and charts."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from socialcredit.analysis.sweep import parse_grid, sweep

    values = parse_grid(grid)
    if out_dir is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = Path("sweeps") / f"{Path(scenario).stem}-{stamp}"
    progress = None if quiet else Progress(
        TextColumn("[bold]sweep"), BarColumn(), MofNCompleteColumn(), TextColumn("runs"), TimeElapsedColumn(),
        console=err)
    task: dict[str, Any] = {}

    def on_start(total: int) -> None:
        if progress is not None:
            progress.start()
            task["id"] = progress.add_task("sweep", total=total)

    def stop() -> None:
        if progress is not None and "id" in task:  # stopping a bar never started prints a blank line
            progress.stop()

    def on_done(_job: Any) -> None:
        if progress is not None:
            progress.advance(task["id"])

    try:
        target = sweep(scenario, values, seeds=seeds, citizens=citizens, days=days, out=out_dir, workers=workers,
                       force=force, on_start=on_start, on_done=on_done)
    except KeyboardInterrupt:
        stop()
        err.print(f"interrupted: nothing was written to {out_dir}", markup=False, highlight=False)
        raise typer.Exit(130) from None
    finally:
        stop()
    if quiet:
        out.print(str(target), markup=False, highlight=False)
    else:
        out.print(f"Results in [bold]{target}[/bold]: sweep.parquet, sweep.html")


# -- report ------------------------------------------------------------------


def report_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
    out_file: Annotated[Path | None, typer.Option("--out", "-o", help="HTML file to write "
                                                  "[default: RUN/report.html].")] = None,
) -> None:
    """Write a self-contained HTML report of a run (charts work offline)."""
    from socialcredit.analysis.report import write_report

    path = write_report(run_dir, out_file)
    out.print(str(path), markup=False, highlight=False)


# -- explain -----------------------------------------------------------------


def explain_command(
    run_dir: Annotated[Path, typer.Argument(metavar="RUN", help="A run directory.")],
    citizen: Annotated[int, typer.Option("--citizen", "-c", help="Synthetic citizen id to explain.")],
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    counterfactual: Annotated[bool, typer.Option("--counterfactual/--no-counterfactual",
                                                 help="Also replay without misattributed penalties.")] = True,
) -> None:
    """Explain one citizen's outcome: events, score decomposition, sanctions, reasons, counterfactual."""
    from socialcredit.analysis.explain import explain

    ex = explain(run_dir, citizen, counterfactual=counterfactual)
    if as_json:
        sys.stdout.write(json.dumps(ex.to_dict(), indent=2, default=str) + "\n")
        return
    _print_explanation(ex)


def _print_explanation(ex: Any) -> None:
    from socialcredit.analysis.explain import print_explanation

    print_explanation(ex, out)


# -- audit -------------------------------------------------------------------


def audit_command(
    scenario: Annotated[str, typer.Argument(help="Scenario name or .toml path.")],
    run_dir: Annotated[Path | None, typer.Option("--run", help="Also measure disparate impact in this run.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Audit a scenario's rules (EU AI Act Art. 5(1)(c), notice, appeal, ...); exit 1 if anything is found."""
    from socialcredit.analysis.audit import audit_scenario, disparate_impact

    findings = audit_scenario(scenario)
    impact = disparate_impact(run_dir) if run_dir is not None else []
    adverse = [r for r in impact if r["adverse_impact"]]
    if as_json:
        sys.stdout.write(json.dumps({"findings": [f.to_dict() for f in findings], "disparate_impact": impact},
                                    indent=2) + "\n")
    else:
        if findings:
            table = Table(title=f"{len(findings)} finding(s) in {scenario}", box=None, show_lines=True)
            for col in ("finding", "rule (scenario key)", "detail", "standard"):
                table.add_column(col)
            rows: dict[str, list[Any]] = {}
            for f in findings:  # a missing safeguard on several systems: one row listing them
                key = f.code if f.code.startswith("no-") else f"{f.code} {f.key_path}"
                rows.setdefault(key, [f, []])[1].append(f.key_path)
            for f, keys in rows.values():
                table.add_row(f.title, "\n".join(keys), f.detail, f.law)
            out.print(table)
        else:
            out.print(f"{scenario}: no findings")
        if impact:
            table = Table(title="Disparate impact: favourable rate ÷ highest group's rate (four-fifths rule)",
                          box=None)
            for col in ("outcome", "grouping", "group", "rate", "ratio", ""):
                table.add_column(col)
            for r in impact:
                if r["grouping"] == "region" and not r["adverse_impact"]:
                    continue
                table.add_row(r["outcome"], r["grouping"], r["group"], f"{r['rate']:.3f}",
                              "n/a" if r["ratio_to_highest"] is None else f"{r['ratio_to_highest']:.3f}",
                              "[red]below 0.8[/red]" if r["adverse_impact"] else "")
            out.print(table)
    if findings or adverse:
        raise typer.Exit(1)


# -- calibrate ---------------------------------------------------------------


def calibrate_command(
    scenario: Annotated[str | None, typer.Argument(help="Scenario name or .toml path to run [default: china].")] = None,
    citizens: Annotated[int | None, typer.Option("--citizens", "-n", help="Citizens to simulate "
                                                 "[default: 200000].")] = None,
    days: Annotated[int | None, typer.Option("--days", "-d", help="Days to simulate [default: 365].")] = None,
    seed: Annotated[int | None, typer.Option("--seed", "-s", help="Random seed [default: 1].")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override a scenario value: key.path=value "
                                                   "(repeatable).")] = None,
    run_dir: Annotated[Path | None, typer.Option("--run", help="Measure this run directory instead of "
                                                 "running a scenario.")] = None,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Keep the simulated run in this directory.")
                       ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Compare a run with the published figures of calibration.md; exit 1 if a measured row is out of tolerance.

    Rows the run does not simulate (no such attribute or system) are shown as "not simulated" and do not fail.
    """
    from socialcredit.analysis.calibrate import calibrate, load_scenario, passed, to_json
    from socialcredit.errors import UserError

    scn = None
    n = 200_000 if citizens is None else citizens
    d = 365 if days is None else days
    s = 1 if seed is None else seed
    if run_dir is not None:
        given = [name for name, v in (("SCENARIO", scenario), ("--citizens", citizens), ("--days", days),
                                      ("--seed", seed), ("--set", sets), ("--out", out_dir)) if v is not None]
        if given:
            raise UserError(f"--run measures an existing run: {', '.join(given)} cannot be used with it")
    else:
        if out_dir is not None:
            from socialcredit.io.rundir import check_target

            check_target(out_dir, False)
        scn = load_scenario(scenario, sets, n, d, s)
        if not as_json:
            err.print(f"[dim]running {scn.name}: {n:,} citizens × {d} days...[/dim]")
    run, rows = calibrate(scn, run_dir=run_dir, citizens=n, days=d, seed=s, out=out_dir)
    if as_json:
        sys.stdout.write(to_json(run, rows) + "\n")
    else:
        _print_calibration(run, rows)
    if not passed(rows):
        raise typer.Exit(1)


def _print_calibration(run: Any, rows: list[Any]) -> None:
    from socialcredit.analysis.calibrate import fmt_error, fmt_tolerance, fmt_value

    s = run.summary
    table = Table(title=f"Calibration of {s['scenario']} ({s['citizens']:,} citizens × {s['days']} days, "
                  f"seed {s['seed']}) against calibration.md", title_justify="left", box=None,
                  header_style="bold", padding=(0, 1))
    for name, justify in (("quantity", "left"), ("simulated", "right"), ("target", "right"), ("error", "right"),
                          ("tolerance", "right"), ("ok", "left"), ("mark", "left")):
        table.add_column(name, justify=justify, no_wrap=name != "quantity")  # type: ignore[arg-type]
    styles = {"ok": "[green]ok[/green]", "FAIL": "[bold red]FAIL[/bold red]",
              "informative": "[dim]informative[/dim]", "not simulated": "[dim]not simulated[/dim]"}
    for r in rows:
        t = r.target
        table.add_row(t.label.replace("[", r"\["), fmt_value(r.value, t.unit), fmt_value(t.target, t.unit),
                      fmt_error(r), fmt_tolerance(t), styles[r.status], t.mark)
    out.print(table)
    failed = [r.target.key for r in rows if r.status == "FAIL"]
    measured = sum(r.ok is not None for r in rows)
    verdict = f"[bold red]{len(failed)} of {measured} measured rows out of tolerance[/bold red]: {', '.join(failed)}" \
        if failed else f"[green]all {measured} measured rows within tolerance[/green]"
    out.print(verdict)
