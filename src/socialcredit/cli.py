"""Command-line interface: a thin Typer layer over the Python API."""

from __future__ import annotations

import datetime as dt
import signal
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, ProgressColumn, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from socialcredit.errors import UserError

app = typer.Typer(
    name="socialcredit",
    help="Simulate social credit systems on synthetic populations, and audit what they do.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
err = Console(stderr=True)
out = Console()
_INTERRUPT_REPORTED = False

HEADLINE = (
    ("p_mean", "mean platform score", "{:.1f}"),
    ("p_share_below_550", "share with score below 550", "{:.1%}"),
    ("listed_now_share", "on the court list at the end", "{:.2%}"),
    ("listed_ever_share", "ever listed", "{:.2%}"),
    ("denied_trips_per_1000", "trips denied per 1000 citizens", "{:.1f}"),
    ("misattributed_per_1000", "penalties given to innocents per 1000", "{:.2f}"),
    ("chilling_reduction", "fall in critical posts, first vs last month", "{:.1%}"),
    ("di_listed_ever_minority", "listed-ever rate, minority / majority", "{:.2f}"),
    ("citizen_days_per_s", "citizen-days per second", "{:,.0f}"),
)


class _Throughput(ProgressColumn):
    """Citizen-days per second so far."""

    def __init__(self, citizens: int) -> None:
        super().__init__()
        self.citizens = citizens

    def render(self, task: Any) -> Text:
        speed = task.speed or 0.0
        return Text(f"{speed * self.citizens:,.0f} citizen-days/s", style="cyan")


def _version(value: bool) -> None:
    if value:
        from socialcredit import __version__

        out.print(f"socialcredit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """socialcredit: synthetic citizens only; no real personal data, no identification."""


@app.command("run")
def run_command(
    scenario: Annotated[str, typer.Argument(help="Shipped scenario name or path to a .toml file.")] = "china",
    citizens: Annotated[int, typer.Option("--citizens", "-n", help="Number of synthetic citizens.")] = 1_000_000,
    days: Annotated[int, typer.Option("--days", "-d", help="Days to simulate.")] = 365,
    seed: Annotated[int, typer.Option("--seed", "-s", help="Random seed.")] = 1,
    out_dir: Annotated[Path | None, typer.Option("--out", "-o", help="Run directory to write "
                                                 "[default: runs/<scenario>-<time>].")] = None,
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override a scenario value: key.path=value "
                                                   "(repeatable).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing non-empty --out.")] = False,
    checkpoint_every: Annotated[int | None, typer.Option("--checkpoint-every", help="Save the state every this "
                                                         "many days to <out>.checkpoint/ (see `resume`).")] = None,
    threads: Annotated[int | None, typer.Option("--threads", help="Worker threads (results do not depend "
                                                "on it).")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
    backend: Annotated[str, typer.Option("--backend", help="single (one process) or ray (partitions by region "
                                         "on Ray actors; needs socialcredit[distributed]); results are the "
                                         "same.")] = "single",
    workers: Annotated[int | None, typer.Option("--workers", help="Partitions (Ray actors) with --backend ray "
                                                "[default: 2].")] = None,
    address: Annotated[str | None, typer.Option("--address", help="Address of an existing Ray cluster "
                                                "(default: start a local Ray instance).")] = None,
) -> None:
    """Run a scenario and write a run directory (Parquet tables, summary.json, manifest.json)."""
    from socialcredit import api
    from socialcredit.engine import checkpoint
    from socialcredit.engine.simulation import check_size, preflight
    from socialcredit.io.rundir import check_target
    from socialcredit.scenario import Scenario

    scn = Scenario.load(scenario).with_sets(sets or [])
    check_size(citizens, days, seed)
    if backend not in ("single", "ray"):
        raise UserError(f"--backend must be single or ray (got {backend!r})")
    if backend == "single" and (address is not None or workers is not None):
        raise UserError(f"{'--address' if address is not None else '--workers'} needs --backend ray")
    checkpoint.check_every(checkpoint_every, days)
    if backend == "ray":
        from socialcredit.distributed.partition import check_supported, check_workers

        check_supported(scn)
        if workers is not None:
            check_workers(workers)
    preflight(scn, citizens)
    if out_dir is None:
        stamp = dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        out_dir = Path("runs") / f"{scn.name}-{stamp}"
    check_target(out_dir, force)
    if threads is not None:
        _set_threads(threads)
    if backend == "ray":
        from socialcredit.distributed.ray_backend import run_ray

        def go(on_setup: Any, on_day: Any) -> Any:
            on_setup(_NotStarted())
            return run_ray(scn, citizens=citizens, days=days, seed=seed, workers=2 if workers is None else workers,
                           address=address, out=out_dir, force=force, threads=threads,
                           checkpoint_every=checkpoint_every, on_day=on_day)

        _with_progress(scn.name, citizens, days, out_dir, quiet, go)
        return
    _with_progress(scn.name, citizens, days, out_dir, quiet, lambda on_setup, on_day: api.run(
        scn, citizens=citizens, days=days, seed=seed, out=out_dir, force=force,
        checkpoint_every=checkpoint_every, on_setup=on_setup, on_day=on_day))


class _NotStarted:
    """What the progress bar reads of a simulation run elsewhere (Ray) before its first day."""

    def __init__(self, day: int = 0) -> None:
        self.day = day


@app.command("resume")
def resume_command(
    out_dir: Annotated[Path, typer.Argument(help="The --out of an interrupted run started with "
                                            "--checkpoint-every.")],
    threads: Annotated[int | None, typer.Option("--threads", help="Worker threads.")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar or summary.")] = False,
) -> None:
    """Finish an interrupted run from its last checkpoint (same result as an uninterrupted run)."""
    from socialcredit import api
    from socialcredit.engine import checkpoint

    doc = checkpoint.read_meta(checkpoint.find(out_dir))
    if threads is not None:
        _set_threads(threads)
    if not quiet:
        err.print(f"[dim]resuming from day {doc['day']} of {doc['days']}[/dim]")
    def go(on_setup: Any, on_day: Any) -> Any:
        if doc.get("backend") == "ray":  # partitions restore in their actors
            on_setup(_NotStarted(int(doc["day"])))
            return api.resume(out_dir, on_day=on_day)
        return api.resume(out_dir, on_setup=on_setup, on_day=on_day)

    _with_progress(str(doc["scenario"].get("name", "run")), int(doc["citizens"]), int(doc["days"]), out_dir, quiet,
                   go)


def _with_progress(name: str, citizens: int, days: int, out_dir: Path, quiet: bool, go: Any) -> None:
    """Run ``go(on_setup, on_day)`` under a progress bar; print the headline and where results are."""
    progress = None if quiet else Progress(
        TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("days"),
        _Throughput(citizens), TimeElapsedColumn(), console=err, transient=False,
    )
    task: dict[str, Any] = {}

    def on_setup(sim: Any) -> None:
        if progress is not None:
            task["id"] = progress.add_task(name, total=days, completed=sim.day)

    def on_day(day: int) -> None:
        if progress is not None:
            progress.update(task["id"], completed=day)

    t0 = time.perf_counter()
    if progress is not None:
        progress.start()
        err.print(f"[dim]building {citizens:,} citizens and their social graph...[/dim]")
    try:
        result = go(on_setup, on_day)
    except KeyboardInterrupt:
        global _INTERRUPT_REPORTED
        _INTERRUPT_REPORTED = True
        if progress is not None:
            progress.stop()
        if (out_dir / "summary.json").is_file() and not (out_dir.with_name(out_dir.name + ".checkpoint")).exists():
            err.print(f"interrupted after {out_dir} was complete", markup=False, highlight=False)
        else:
            err.print(f"interrupted: nothing was written to {out_dir}", markup=False, highlight=False)
        raise typer.Exit(130) from None
    finally:
        if progress is not None:
            progress.stop()
    if quiet:
        out.print(str(result.path))
        return
    _headline(result.metrics)
    out.print(f"Results in [bold]{result.path}[/bold] ({time.perf_counter() - t0:.1f} s): "
              "summary.json, manifest.json, citizens/daily/scores_monthly/events/lists.parquet")


def _set_threads(threads: int) -> None:
    import numba

    if not 1 <= threads <= numba.config.NUMBA_NUM_THREADS:
        raise UserError(f"--threads must be between 1 and {numba.config.NUMBA_NUM_THREADS} (got {threads})")
    numba.set_num_threads(threads)


def _headline(metrics: dict[str, float | None]) -> None:
    table = Table(title="Headline results", show_header=False, box=None, padding=(0, 2))
    for key, label, fmt in HEADLINE:
        value = metrics.get(key)
        if key in metrics:
            table.add_row(label, "n/a" if value is None else fmt.format(value), f"[dim]{key}[/dim]")
    out.print(table)


@app.command("scenarios")
def scenarios_command() -> None:
    """List the scenarios shipped with the package."""
    from socialcredit.scenario import shipped

    table = Table("name", "description", box=None)
    for name, description in shipped().items():
        table.add_row(name, description)
    out.print(table)


@app.command("validate")
def validate_command(
    scenario: Annotated[str, typer.Argument(help="Scenario name or .toml path.")],
    sets: Annotated[list[str] | None, typer.Option("--set", help="Override key.path=value (repeatable).")] = None,
) -> None:
    """Check a scenario file: TOML syntax, keys, types, ranges, bands, event kinds."""
    from socialcredit.engine.simulation import preflight
    from socialcredit.scenario import Scenario

    scn = Scenario.load(scenario).with_sets(sets or [])
    preflight(scn)
    out.print(f"{scn.source}: ok ({scn.name})")


@app.command("plan")
def plan_command(
    scenario: Annotated[str, typer.Argument(help="Scenario name or .toml path.")] = "china",
) -> None:
    """Print the day plan of a scenario: its stages and steps in order."""
    from socialcredit.engine.simulation import dry_run
    from socialcredit.scenario import Scenario

    sim = dry_run(Scenario.load(scenario), citizens=100)
    out.print(str(sim.plan))


from socialcredit.analysis.commands import register as _register_analysis  # noqa: E402, I001
_register_analysis(app)


def _is(exc: BaseException, name: str) -> bool:
    """Whether ``exc`` is click's (or Typer's vendored click's) exception ``name``."""
    return any(cls.__name__ == name for cls in type(exc).__mro__)


def main(argv: list[str] | None = None) -> None:
    """Entry point: user errors are one line on stderr and exit code 2."""
    try:
        code = app(args=argv, prog_name="socialcredit", standalone_mode=False)
    except UserError as exc:
        _fail(str(exc))
    except KeyboardInterrupt:
        err.print("interrupted: nothing was written", markup=False)
        sys.exit(130)
    except Exception as exc:
        if _is(exc, "UsageError"):
            _fail(exc.format_message())  # type: ignore[attr-defined]
        if _is(exc, "Abort"):
            err.print("interrupted: nothing was written", markup=False)
            sys.exit(130)
        raise
    code = code if isinstance(code, int) else 0
    if code == 130 and not _INTERRUPT_REPORTED:  # Ctrl-C before any output was started
        err.print("interrupted: nothing was written", markup=False)
    _exit(code)


def _exit(code: int) -> None:
    """Exit; the work is done (or cleanly refused), so a late Ctrl-C cannot change the outcome."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    sys.exit(code)


def _fail(message: str) -> None:
    err.print(f"error: {' '.join(message.split())}", markup=False, highlight=False, soft_wrap=True)
    _exit(2)


if __name__ == "__main__":
    main()
