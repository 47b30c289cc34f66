"""One look for every chart: fonts, colours, axes; and plotly figures as plain JSON."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

FONT = ('-apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Helvetica Neue", Arial, '
        '"Noto Sans", "Liberation Sans", sans-serif')
INK = "#1f2933"
MUTED = "#616e7c"
GRID = "#e9ecf1"
LINE = "#cbd2d9"

BLUE = "#2f6fb0"
RED = "#c8493a"
TEAL = "#1f9e89"
AMBER = "#e39b2b"
PURPLE = "#7a5aa6"
GREY = "#8d99a6"
#: Colour order for series without a meaning of their own.
COLORWAY = [BLUE, RED, TEAL, AMBER, PURPLE, GREY]
#: Categorical colours for many series (services, systems): distinct, colour-blind-aware order.
PALETTE = [BLUE, RED, TEAL, AMBER, PURPLE, "#4c9be8", "#8c564b", "#e377c2", "#6b8e23", "#17becf", "#b8860b",
           "#5b5f97", GREY, "#d62728", "#2ca02c"]
#: Grades from best to worst.
GRADE_COLOURS = ["#1a7f4b", "#5aae61", "#a6d96a", "#f2c14e", "#ef8a47", "#b2182b"]


def rgba(colour: str, alpha: float) -> str:
    """``#rrggbb`` with transparency, as a CSS ``rgba()`` string."""
    r, g, b = (int(colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"


def grade_colours(n: int) -> list[str]:
    """``n`` colours from best (green) to worst (red) grade."""
    if n <= len(GRADE_COLOURS):
        picks = np.linspace(0, len(GRADE_COLOURS) - 1, n).round().astype(int) if n > 1 else [0]
        return [GRADE_COLOURS[i] for i in picks]
    return [GRADE_COLOURS[min(i * len(GRADE_COLOURS) // n, len(GRADE_COLOURS) - 1)] for i in range(n)]


def palette(n: int) -> list[str]:
    """``n`` categorical colours (the palette repeats beyond its length)."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def layout(top: int = 44, **extra: Any) -> dict[str, Any]:
    """The shared plotly layout, updated with ``extra``; ``top`` is the margin above the plot area
    (room for the legend, and subplot titles if any)."""
    axis = {"gridcolor": GRID, "linecolor": LINE, "zeroline": False, "ticks": "outside", "tickcolor": LINE,
            "ticklen": 4, "title": {"font": {"size": 12, "color": MUTED}, "standoff": 10}, "automargin": True}
    base: dict[str, Any] = {
        "template": None,
        "font": {"family": FONT, "size": 12, "color": INK},
        "colorway": COLORWAY,
        "paper_bgcolor": "#ffffff",
        "plot_bgcolor": "#ffffff",
        "margin": {"l": 56, "r": 24, "t": top, "b": 48},
        "legend": {"orientation": "h", "yref": "container", "y": 1, "yanchor": "top", "xanchor": "left", "x": 0,
                   "font": {"size": 11}, "bgcolor": "rgba(0,0,0,0)", "itemwidth": 30},
        "hoverlabel": {"font": {"family": FONT}},
        "xaxis": dict(axis),
        "yaxis": dict(axis),
        "bargap": 0.15,
    }
    base.update(extra)
    return base


def style_axes(fig: Any) -> None:
    """Apply the shared axis style to every axis of a (sub)plot figure."""
    axis = layout()["xaxis"]
    fig.update_xaxes(**axis)
    fig.update_yaxes(**axis)
    fig.update_annotations(font={"size": 12, "color": MUTED})


def values(data: Any) -> list[Any]:
    """A plain list for plotly (numbers, strings, None for missing); never base64-packed arrays."""
    if hasattr(data, "to_list"):
        data = data.to_list()
    elif isinstance(data, np.ndarray):
        data = data.tolist()
    return [_plain(v) for v in data]


def figure_json(fig: Any) -> str:
    """A figure's data and layout as JSON safe to embed in a ``<script>`` element."""
    spec = fig.to_dict()
    spec["layout"].pop("template", None)
    text = json.dumps(_plain(spec), allow_nan=False, separators=(",", ":"))
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        if set(value) == {"dtype", "bdata"} or set(value) == {"dtype", "bdata", "shape"}:
            return _unpack(value)
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.ndarray):
        return [_plain(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _unpack(packed: dict[str, Any]) -> list[Any]:
    import base64

    array = np.frombuffer(base64.b64decode(packed["bdata"]), dtype=np.dtype(packed["dtype"]))
    if "shape" in packed:
        array = array.reshape([int(s) for s in str(packed["shape"]).split(",")])
    return _plain(array)
