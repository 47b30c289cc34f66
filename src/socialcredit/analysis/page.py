"""Self-contained HTML pages: jinja2 templates shipped with the package, plotly.js inline."""

from __future__ import annotations

import datetime as dt
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from socialcredit.analysis.theme import figure_json
from socialcredit.errors import UserError


@dataclass
class Chart:
    """One card of a page: a title, a one-sentence caption, a figure (or a note why it was skipped)."""

    id: str
    title: str
    caption: str
    figure: Any = None
    note: str = ""
    wide: bool = False
    height: int = 360
    table: dict[str, Any] | None = None
    figure_json: str = field(default="", init=False)

    def __post_init__(self) -> None:
        if self.figure is not None:
            self.figure_json = figure_json(self.figure)

    @property
    def skipped(self) -> bool:
        """Whether the chart could not be drawn from this run's tables."""
        return self.figure is None


def render(template: str, **context: Any) -> str:
    """Render a shipped template with plotly.js inlined (no CDN, works offline)."""
    import jinja2
    from plotly.offline import get_plotlyjs

    from socialcredit import __version__

    env = jinja2.Environment(
        loader=jinja2.PackageLoader("socialcredit.analysis", "templates"),
        autoescape=jinja2.select_autoescape(["html", "j2"]),
        trim_blocks=True,
        lstrip_blocks=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters["num"] = format_number
    plotlyjs = get_plotlyjs().replace("</script", "<\\/script")
    generated = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    return env.get_template(template).render(plotlyjs=plotlyjs, version=__version__, generated=generated,
                                             **context)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` through a temporary sibling renamed on success."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"--out {path}: is a directory")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise UserError(f"--out {path}: cannot write: {exc.strerror or exc}") from None
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise UserError(f"--out {path}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def format_number(value: Any, kind: str = "") -> str:
    """A metric for people: percentages for shares, thousands separators, 'n/a' for missing."""
    if value is None:
        return "n/a"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if kind == "pct":
        return f"{value:.1%}" if abs(value) >= 0.1 else f"{value:.2%}"
    if kind == "int" or (isinstance(value, int)):
        return f"{value:,.0f}"
    if kind == "ratio":
        return f"{value:.2f}"
    magnitude = abs(value)
    if magnitude >= 10_000:
        return f"{value:,.0f}"
    if magnitude >= 100:
        return f"{value:,.1f}"
    if magnitude >= 1:
        return f"{value:.2f}"
    return f"{value:.4g}"
