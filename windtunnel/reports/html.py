"""The HTML report: one self-contained file rendered from a results directory.

:func:`write_report` reads ``runs.parquet``, the few events it shows and
``manifest.json`` — it never re-runs anything — aggregates them with the metrics of
``windtunnel.evals`` and draws them with Bokeh, whose JavaScript is inlined so the
file opens offline (a CI artifact, an e-mail attachment). Every string from the
results is escaped by the template.

Example:
    >>> from windtunnel.reports import write_report
    >>> write_report("results/")  # doctest: +SKIP
    PosixPath('results/report.html')
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd
from bokeh.document import Document
from bokeh.embed import components
from bokeh.resources import Resources
from markupsafe import Markup

from windtunnel.evals import escalation, fault_impact, inconclusive_warnings, pareto, read_runs, sweep_points
from windtunnel.orchestrator import InvalidArgument

from . import _html_flow as flow
from . import _html_plots as plots
from ._html_data import METRICS, calibration, config_table, fault_kinds, pass_matrix, transitions
from ._html_runs import failing_runs, read_events_of, timeline

__all__ = ["write_report"]

_TEMPLATE = Path(__file__).with_name("templates") / "report.html.j2"


def write_report(
    results_dir: str | Path,
    out_file: str | Path | None = None,
    *,
    timelines: int = 10,
    listed: int = 200,
    k: int = 3,
) -> Path:
    """Render the report of ``results_dir`` into ``out_file`` (by default
    ``results_dir/report.html``) and return its path.

    Args:
        results_dir: a results directory written by ``run_experiment``.
        out_file: where to write the HTML.
        timelines: how many failing runs get their timeline drawn (the first, in
            the order they ran); the page says how many more failed.
        listed: how many failing runs are listed with their replay command.
        k: the k of the pass^k shown (fewer when a scenario has fewer tries).

    Raises:
        InvalidArgument: ``results_dir`` holds no runs or no manifest.
    """
    results = Path(results_dir)
    if not (results / "manifest.json").is_file() or not (results / "runs.parquet").exists():
        raise InvalidArgument(
            f"{str(results)!r} is not a results directory: no manifest.json or runs.parquet"
        )
    manifest: dict[str, Any] = json.loads((results / "manifest.json").read_text())
    runs = read_runs(results)
    if runs.empty:
        raise InvalidArgument(f"{str(results)!r} holds no runs")
    out = results / "report.html" if out_file is None else Path(out_file)
    out.write_text(
        _render(results, manifest, runs, timelines=timelines, listed=listed, k=k), encoding="utf-8"
    )
    return out


def _render(
    results: Path, manifest: dict[str, Any], runs: pd.DataFrame, *, timelines: int, listed: int, k: int
) -> str:
    configs = [str(c) for c in pd.unique(runs["config"].astype(str))]
    table = config_table(runs, k=k)
    # Pooled over configs; its pass^k would count different configs as tries of one, so it is not shown.
    headline = config_table(runs.assign(config="all runs"), k=1).iloc[0]
    charts: dict[str, Any] = {
        "cost": plots.cost_accuracy_plot(pareto(table), title="Cost per run and accuracy, by config"),
        "confusion": plots.confusion_plots(escalation(runs)),
        "calibration": plots.calibration_plots(calibration(runs), configs),
        "matrix": plots.pass_matrix_plot(pass_matrix(runs), configs),
        "faults": plots.fault_kind_plot(fault_kinds(runs), configs),
    }
    sweep = None
    if runs["config"].astype(str).str.startswith("ladder:").any():
        sweep = sweep_points(runs)
        charts["sweep"] = plots.cost_accuracy_plot(sweep, title="Ladder sweep: each ladder's thresholds")
    edges, start, unmatched = transitions(results)
    if len(edges):
        charts["graph"] = flow.transition_plot(edges, start)
    failing, failing_total = failing_runs(runs, manifest, cwd=Path.cwd(), limit=max(listed, timelines))
    drawn = failing[:timelines]
    events = read_events_of(results, [run.cell for run in drawn])
    for index, run in enumerate(drawn):
        run.steps.extend(timeline(events[events["cell"] == run.cell]))
        if run.steps:
            states = list(dict.fromkeys(step["state"] for step in run.steps))
            charts[f"timeline{index}"] = flow.timeline_plot(run.steps, states)
    document = Document()
    # One freeze for all roots: Bokeh re-walks the whole document after each add_root otherwise.
    with document.models.freeze():
        for chart in charts.values():
            document.add_root(chart)
    script, divs = components(charts)
    errors = runs[runs["harness_error"].fillna("").astype(str) != ""]
    impact = None
    if (runs["fault_plan"].fillna("").astype(str) != "").any():
        impact = fault_impact(runs)
    page = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined).from_string(
        _TEMPLATE.read_text(encoding="utf-8")
    )
    return page.render(
        bokeh_js=Markup(Resources(mode="inline", components=["bokeh"]).render_js()),
        bokeh_script=Markup(script),
        plot={name: Markup(div) for name, div in divs.items()},
        manifest=manifest,
        experiment=manifest.get("experiment", {}),
        runs=len(runs),
        configs=configs,
        scenarios=int(runs["scenario"].nunique()),
        metrics=METRICS,
        table=table.to_dict("records"),
        headline=headline.to_dict(),
        sweep=None if sweep is None else sweep.to_dict("records"),
        edges=len(edges),
        unmatched=unmatched,
        failing=failing[:listed],
        failing_total=failing_total,
        drawn=len(drawn),
        errors=errors[["cell", "scenario", "config", "harness_error"]].to_dict("records"),
        warnings=inconclusive_warnings(runs),
        impact=None if impact is None else impact.to_dict("records"),
        fmt=_format,
    )


def _format(row: dict[str, Any], key: str, kind: str) -> str:
    """``value [low, high]``, or ``—`` where there is nothing to estimate."""
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = {"share": "{:.3f}", "usd": "${:.5f}", "count": "{:g}"}[kind]
    low, high = row.get(f"{key}_low"), row.get(f"{key}_high")
    if low is None or high is None or math.isnan(float(low)) or math.isnan(float(high)):
        return text.format(value)
    return f"{text.format(value)} [{text.format(low)}, {text.format(high)}]"
