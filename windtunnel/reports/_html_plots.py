"""The HTML report's charts, drawn with Bokeh from frames already aggregated.

Each function takes a small frame (one row per config, bin, cell or edge — never
one per run) and returns a Bokeh layout. Strings reach Bokeh as data, and Bokeh
escapes them in tooltips and draws them on a canvas: none is written as HTML here.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import pandas as pd
from bokeh.layouts import gridplot
from bokeh.models import (
    BasicTicker,
    CategoricalAxis,
    ColumnDataSource,
    FactorRange,
    HoverTool,
    LinearColorMapper,
    Range1d,
)

# The annotations from where they are defined: bokeh.models' own stubs do not list them.
from bokeh.models.annotations.arrows import TeeHead
from bokeh.models.annotations.geometry import Whisker
from bokeh.models.annotations.labels import LabelSet, Title
from bokeh.models.annotations.legends import ColorBar
from bokeh.models.layouts import LayoutDOM
from bokeh.palettes import Category10_10, RdYlGn11
from bokeh.plotting import figure

__all__ = [
    "TOOLS",
    "calibration_plots",
    "confusion_plots",
    "cost_accuracy_plot",
    "fault_kind_plot",
    "pass_matrix_plot",
    "source_of",
]

TOOLS = "pan,wheel_zoom,box_zoom,reset,save"
_RED_TO_GREEN = list(reversed(RdYlGn11))  # Bokeh lists RdYlGn from green; a share of 0 is red


def source_of(frame: pd.DataFrame) -> ColumnDataSource:
    # Columns as arrays: handed a frame, Bokeh calls the deprecated reset_index(inplace=True).
    return ColumnDataSource(data={str(name): frame[name].to_numpy() for name in frame.columns})


def _colors(names: Sequence[str]) -> dict[str, str]:
    return {name: Category10_10[i % len(Category10_10)] for i, name in enumerate(names)}


def _whiskers(fig: Any, source: ColumnDataSource, *, base: str, low: str, high: str, vertical: bool) -> None:
    whisker = Whisker(
        source=source,
        base=base,
        lower=low,
        upper=high,
        dimension="height" if vertical else "width",
        lower_head=TeeHead(size=6),
        upper_head=TeeHead(size=6),
    )
    fig.add_layout(whisker)


def _tiles(
    fig: Any,
    source: ColumnDataSource,
    *,
    x: str,
    y: str,
    fill: str,
    mapper: LinearColorMapper,
    font_size: str,
) -> None:
    """A heat map's tiles on ``fig``: one square per row of ``source``, coloured by ``fill``
    through ``mapper``, with the row's ``text`` in its middle."""
    fig.rect(x, y, 1, 1, source=source, fill_color={"field": fill, "transform": mapper}, line_color="white")
    fig.text(
        x,
        y,
        text="text",
        source=source,
        text_align="center",
        text_baseline="middle",
        text_font_size=font_size,
    )


def cost_accuracy_plot(points: pd.DataFrame, *, title: str, label: str = "config") -> LayoutDOM:
    """Cost per run against accuracy, one point per row of ``points`` with both
    intervals, the Pareto frontier (rows whose ``pareto`` is True) drawn through."""
    data = points.assign(label=points[label].astype(str))
    source = source_of(data)
    fig = figure(
        title=title,
        width=760,
        height=420,
        tools=TOOLS,
        # Bokeh's automatic ranges ignore whiskers: span the intervals, with room for the labels.
        x_range=_range(_span(data, "cost_per_run", right=0.35)),
        y_range=_range(_span(data, "accuracy", right=0.08)),
        x_axis_label="cost per run (USD)",
        y_axis_label="accuracy",
    )
    frontier = data[data["pareto"]].sort_values("cost_per_run")
    fig.line(
        frontier["cost_per_run"].tolist(),
        frontier["accuracy"].tolist(),
        line_dash="dashed",
        line_width=2,
        color="#555555",
        legend_label="Pareto frontier",
    )
    _whiskers(fig, source, base="cost_per_run", low="accuracy_low", high="accuracy_high", vertical=True)
    _whiskers(fig, source, base="accuracy", low="cost_per_run_low", high="cost_per_run_high", vertical=False)
    dots = fig.scatter("cost_per_run", "accuracy", source=source, size=11, color="#1f77b4")
    fig.add_layout(
        LabelSet(
            x="cost_per_run",
            y="accuracy",
            text="label",
            source=source,
            x_offset=8,
            y_offset=6,
            text_font_size="10px",
        )
    )
    fig.add_tools(
        HoverTool(
            renderers=[dots],
            tooltips=[
                ("", "@label"),
                ("accuracy", "@accuracy{0.000} [@accuracy_low{0.000}, @accuracy_high{0.000}]"),
                (
                    "cost per run",
                    "$@cost_per_run{0.00000} [@cost_per_run_low{0.00000}, @cost_per_run_high{0.00000}]",
                ),
            ],
        )
    )
    fig.legend.location = "bottom_right"
    return fig


def _range(span: tuple[float, float]) -> Range1d:
    return Range1d(start=span[0], end=span[1])


def _span(data: pd.DataFrame, key: str, *, right: float) -> tuple[float, float]:
    values = pd.concat([data[key], data[f"{key}_low"], data[f"{key}_high"]]).astype(float).dropna()
    low, high = (float(values.min()), float(values.max())) if len(values) else (0.0, 1.0)
    pad = (high - low) or abs(high) or 1.0
    return low - 0.08 * pad, high + right * pad


def confusion_plots(table: pd.DataFrame) -> LayoutDOM:
    """One 2x2 escalation confusion matrix per config (rows of ``escalation()``)."""
    figures = []
    for row in table.to_dict("records"):
        cells = pd.DataFrame(
            {
                "truth": ["needs a human", "needs a human", "no human needed", "no human needed"],
                "run": ["escalated", "not escalated", "escalated", "not escalated"],
                "count": [row["tp"], row["fn"], row["fp"], row["tn"]],
                "name": ["true positive", "false negative", "false positive", "true negative"],
            }
        )
        total = max(int(cells["count"].sum()), 1)
        cells = cells.assign(share=cells["count"] / total, text=[f"{c}" for c in cells["count"]])
        source = source_of(cells)
        fig = figure(
            title=Title(text=str(row["config"]), text_font_size="10px"),
            x_range=FactorRange(factors=["escalated", "not escalated"]),
            y_range=FactorRange(factors=["no human needed", "needs a human"]),
            width=270,
            height=230,
            tools="hover,save",
            tooltips=[("", "@name"), ("runs", "@count")],
            toolbar_location=None,
        )
        mapper = LinearColorMapper(palette="Blues256", low=1, high=0)
        _tiles(fig, source, x="run", y="truth", fill="share", mapper=mapper, font_size="16px")
        fig.grid.visible = False
        figures.append(fig)
    return gridplot(figures, ncols=4)  # type: ignore[arg-type]  # a flat list of figures is accepted


def calibration_plots(frame: pd.DataFrame, configs: Sequence[str]) -> LayoutDOM:
    """Per config, binned stated confidence against observed accuracy (with Wilson
    intervals), the diagonal of perfect calibration behind; point area ∝ runs."""
    figures = []
    top = max(int(frame["runs"].max()), 1) if len(frame) else 1  # no config with a measured run: none
    for config in configs:
        mine = frame[frame["config"] == config]
        mine = mine.assign(size=6 + 14 * (mine["runs"] / top) ** 0.5)
        source = source_of(mine)
        fig = figure(
            title=config if len(mine) else f"{config}: no measured run",
            width=280,
            height=280,
            x_range=Range1d(start=0, end=1),
            y_range=Range1d(start=-0.05, end=1.05),
            tools=TOOLS,
            x_axis_label="stated confidence",
            y_axis_label="observed accuracy",
        )
        fig.line([0, 1], [0, 1], line_dash="dotted", color="#999999")
        _whiskers(fig, source, base="confidence", low="accuracy_low", high="accuracy_high", vertical=True)
        dots = fig.scatter("confidence", "accuracy", size="size", source=source, alpha=0.8)
        fig.add_tools(
            HoverTool(
                renderers=[dots],
                tooltips=[
                    ("stated", "@confidence{0.00}"),
                    ("observed", "@accuracy{0.00} [@accuracy_low{0.00}, @accuracy_high{0.00}]"),
                    ("runs", "@runs"),
                ],
            )
        )
        figures.append(fig)
    return gridplot(figures, ncols=4)  # type: ignore[arg-type]


def pass_matrix_plot(frame: pd.DataFrame, configs: Sequence[str]) -> LayoutDOM:
    """Scenarios x configs, each cell coloured by its pass share and labelled c/n."""
    scenarios = sorted(frame["scenario"].astype(str).unique(), reverse=True)
    data = frame.assign(
        scenario=frame["scenario"].astype(str),
        text=[f"{c}/{n}" for c, n in zip(frame["correct"], frame["runs"], strict=True)],
    )
    source = source_of(data)
    fig = figure(
        title="Pass share per scenario and config",
        x_range=FactorRange(factors=list(configs)),
        y_range=FactorRange(factors=scenarios),
        width=max(420, 170 + 130 * len(configs)),
        height=min(120 + 18 * len(scenarios), 30000),
        tools="hover,save",
        tooltips=[("scenario", "@scenario"), ("config", "@config"), ("passed", "@correct of @runs")],
        x_axis_location="above",
    )
    mapper = LinearColorMapper(palette=_RED_TO_GREEN, low=0, high=1)
    _tiles(fig, source, x="config", y="scenario", fill="accuracy", mapper=mapper, font_size="10px")
    fig.add_layout(ColorBar(color_mapper=mapper, ticker=BasicTicker(desired_num_ticks=5), width=10), "right")
    fig.grid.visible = False
    fig.xaxis.major_label_orientation = math.pi / 8
    return fig


def fault_kind_plot(frame: pd.DataFrame, configs: Sequence[str]) -> LayoutDOM:
    """Decision accuracy by fault kind that fired, one bar per config, with intervals."""
    kinds = sorted(frame["fault_kind"].astype(str).unique())
    data = frame.assign(
        fault_kind=frame["fault_kind"].astype(str),
        y=pd.Series(
            list(zip(frame["fault_kind"].astype(str), frame["config"].astype(str), strict=True)),
            index=frame.index,
            dtype=object,
        ),
    )
    colors = _colors(configs)
    data = data.assign(color=[colors[str(c)] for c in data["config"]])
    source = source_of(data)
    factors = [(kind, config) for kind in kinds for config in configs]
    fig = figure(
        title="Decision accuracy by fault kind fired",
        y_range=FactorRange(factors=factors),
        x_range=Range1d(start=0, end=1.05),
        width=900,
        height=80 + 14 * len(factors),
        tools="hover,save",
        tooltips=[
            ("", "@fault_kind, @config"),
            ("accuracy", "@accuracy{0.00} [@accuracy_low{0.00}, @accuracy_high{0.00}]"),
            ("runs", "@runs"),
        ],
        x_axis_label="share of runs correct",
    )
    fig.hbar(y="y", right="accuracy", height=0.8, source=source, color="color", legend_field="config")
    _whiskers(fig, source, base="y", low="accuracy_low", high="accuracy_high", vertical=False)
    fig.ygrid.visible = False
    # The legend names the configs; the axis keeps only the fault kinds, written level.
    axis = fig.yaxis[0]
    assert isinstance(axis, CategoricalAxis)  # nested factors make it one
    axis.major_label_text_font_size = "0px"
    axis.group_label_orientation = "horizontal"
    fig.add_layout(fig.legend[0], "right")
    return fig
