"""The HTML report's charts of how runs moved: the workflow's transition graph and a
failing run's timeline, drawn with Bokeh from aggregated edges and one run's events."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from bokeh.models import FactorRange, HoverTool, Range1d
from bokeh.models.annotations.arrows import Arrow, NormalHead
from bokeh.models.annotations.labels import LabelSet
from bokeh.models.layouts import LayoutDOM
from bokeh.plotting import figure

from ._html_plots import TOOLS, source_of

__all__ = ["timeline_plot", "transition_plot"]


def transition_plot(edges: pd.DataFrame, start: str | None) -> LayoutDOM:
    """The workflow's states laid out in layers (breadth-first from ``start``), each
    transition taken an arrow as wide as its count allows, labelled with the count."""
    states = sorted(set(edges["source"]) | set(edges["target"]) | ({start} if start else set()))
    layer = _layers(edges, start, states)
    rows: dict[int, list[str]] = {}
    for state in sorted(states, key=lambda s: (layer[s], s)):
        rows.setdefault(layer[state], []).append(state)
    where = {
        s: (float(d), -float(i) + (len(rows[d]) - 1) / 2)
        for d, group in rows.items()
        for i, s in enumerate(group)
    }
    widest = max(map(len, rows.values()))
    fig = figure(
        title="Transitions taken (counts over all runs)",
        width=900,
        height=140 + 90 * widest,
        tools=TOOLS,
        x_range=Range1d(start=-0.5, end=max(rows) + 0.7),
        y_range=Range1d(start=-(widest - 1) / 2 - 0.5, end=(widest - 1) / 2 + 0.7),
    )
    fig.axis.visible = False
    fig.grid.visible = False
    top = max(int(edges["count"].max()), 1) if len(edges) else 1
    loops: dict[str, int] = {}
    labels = []
    for source, target, count in edges[["source", "target", "count"]].itertuples(index=False):
        if source == target:
            loops[str(source)] = int(count)
            continue
        (x0, y0), (x1, y1) = where[str(source)], where[str(target)]
        # Shift each arrow sideways by its direction, so a->b and b->a stay apart.
        side = 0.07 if (x0, y0) < (x1, y1) else -0.07
        length = math.hypot(x1 - x0, y1 - y0) or 1.0
        dx, dy = (y1 - y0) / length * side, -(x1 - x0) / length * side
        shrink = 0.16 / length  # stop short of the node's marker
        width = 1 + 6 * count / top
        fig.add_layout(
            Arrow(
                end=NormalHead(size=8 + width, fill_color="#4a6fa5", line_color="#4a6fa5"),
                x_start=x0 + (x1 - x0) * shrink + dx,
                y_start=y0 + (y1 - y0) * shrink + dy,
                x_end=x1 - (x1 - x0) * shrink + dx,
                y_end=y1 - (y1 - y0) * shrink + dy,
                line_width=width,  # type: ignore[call-arg]  # the stubs say body_line_*; Bokeh 3.9 does not
                line_alpha=0.6,
                line_color="#4a6fa5",
            )
        )
        labels.append({"x": (x0 + x1) / 2 + 2 * dx, "y": (y0 + y1) / 2 + 2 * dy, "text": str(int(count))})
    nodes = pd.DataFrame(
        {
            "state": states,
            "x": [where[s][0] for s in states],
            "y": [where[s][1] for s in states],
            "text": [s + (f"  (↻ {loops[s]})" if s in loops else "") for s in states],
        }
    )
    node_source = source_of(nodes)
    dots = fig.scatter("x", "y", source=node_source, size=26, color="#f2a541", line_color="#333333")
    fig.add_layout(
        LabelSet(
            x="x",
            y="y",
            text="text",
            source=node_source,
            y_offset=16,
            text_align="center",
            text_font_size="12px",
            text_font_style="bold",
        )
    )
    fig.text(
        "x",
        "y",
        text="text",
        source=source_of(pd.DataFrame(labels, columns=["x", "y", "text"])),
        text_align="center",
        text_baseline="middle",
        text_font_size="11px",
        text_color="#1d3557",
    )
    fig.add_tools(HoverTool(renderers=[dots], tooltips=[("state", "@state")]))
    return fig


def _layers(edges: pd.DataFrame, start: str | None, states: list[str]) -> dict[str, int]:
    """Breadth-first depth from ``start``; states it never reaches go one layer past the rest."""
    nexts: dict[str, list[str]] = {}
    for source, target in edges[["source", "target"]].itertuples(index=False):
        nexts.setdefault(str(source), []).append(str(target))
    depth = {start: 0} if start else {}
    queue = [start] if start else []
    while queue:
        state = queue.pop(0)
        for target in nexts.get(state, []):
            if target not in depth:
                depth[target] = depth[state] + 1
                queue.append(target)
    beyond = max(depth.values(), default=-1) + 1
    return {state: depth.get(state, beyond) for state in states}


_MARKERS = {
    "state_entered": ("square", "#888888"),
    "transition": ("triangle", "#2a9d8f"),
    "tool_called": ("circle", "#1f77b4"),
    "tool_rejected": ("x", "#d62728"),
    "tool_timeout": ("x", "#ff7f0e"),
    "fault_injected": ("diamond", "#d62728"),
    "escalated": ("star", "#9467bd"),
    "action_applied": ("hex", "#2ca02c"),
    "action_verified": ("circle_cross", "#2ca02c"),
    "verification_failed": ("circle_x", "#d62728"),
    "action_compensated": ("inverted_triangle", "#8c564b"),
    "approval_requested": ("plus", "#9467bd"),
    "approval_decided": ("plus", "#17becf"),
    "run_finished": ("square_pin", "#000000"),
}


def timeline_plot(steps: list[dict[str, Any]], states: Sequence[str]) -> LayoutDOM:
    """One run over simulated time: a row per state, a marker per notable event
    (hover for its detail), the legend naming each kind."""
    frame = pd.DataFrame(steps, columns=["t", "state", "kind", "detail"])
    looks = [_MARKERS.get(str(kind), ("dot", "#7f7f7f")) for kind in frame["kind"]]
    frame = frame.assign(
        marker=[marker for marker, _ in looks],
        color=[color for _, color in looks],
        label=frame["kind"].astype(str).str.replace("_", " "),
    )
    fig = figure(
        width=900,
        height=150 + 28 * len(states),
        y_range=FactorRange(factors=list(reversed(states))),
        tools=TOOLS,
        x_axis_label="simulated seconds from the run's start",
        tooltips=[("t", "@t{0.0} s"), ("", "@kind: @detail")],
    )
    # One renderer for every kind: a figure per failing run must stay a handful of models.
    fig.scatter(
        "t",
        "state",
        source=source_of(frame),
        marker="marker",
        size=11,
        color="color",
        legend_field="label",
        alpha=0.85,
    )
    fig.legend.orientation = "horizontal"
    fig.legend.label_text_font_size = "9px"
    fig.add_layout(fig.legend[0], "below")
    return fig
