"""The Markdown summary of a results directory (``summary.md``), the metrics as CSV, and
GitHub Actions' step summary."""

from __future__ import annotations

import math
import os
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from windtunnel.evals import inconclusive_warnings

from .gates import GateResult
from .table import metrics_table, runs_label

__all__ = ["append_step_summary", "metrics_csv", "summary_markdown"]

# (metric, column heading, how its numbers are written)
_COLUMNS = (
    ("accuracy", "accuracy", "rate"),
    ("escalation_precision", "escalation precision", "rate"),
    ("escalation_recall", "escalation recall", "rate"),
    ("verification_coverage", "verification coverage", "rate"),
    ("silent_failure_catch_rate", "silent-failure catch rate", "rate"),
    ("cost_per_run", "cost per run (USD)", "usd"),
    ("cost_per_correct", "cost per correct decision (USD)", "usd"),
)
_SHOWN_ERRORS = 20


def _number(value: float, kind: str) -> str:
    return f"{value:.4f}" if kind == "usd" else f"{value:.2f}"


def _cell(row: Mapping[Hashable, Any], metric: str, kind: str) -> str:
    """``value (low–high)``; ``n/a`` when there was nothing to measure."""
    value = float(row.get(metric, math.nan))
    if math.isnan(value):
        return "n/a"
    low, high = float(row.get(f"{metric}_low", math.nan)), float(row.get(f"{metric}_high", math.nan))
    interval = "" if math.isnan(low) else f" ({_number(low, kind)}–{_number(high, kind)})"
    return _number(value, kind) + interval


def _escape(text: object) -> str:
    """``text`` on one line of a Markdown table or list, its markup shown as text: a
    scenario or config name must not become a link, an image or HTML on a PR page."""
    return markdown_text(" ".join(str(text).split()))


def markdown_text(text: str) -> str:
    """``text`` with every character Markdown or HTML would read escaped."""
    # What makes HTML, links, images, emphasis, code or a table cell; the rest is plain.
    return "".join(f"\\{ch}" if ch in "\\`*_[]<>|~" else ch for ch in text)


def _common_k(table: pd.DataFrame) -> int | None:
    """The largest k whose pass^k every config has: the seeds all scenarios ran."""
    k = 0
    while f"pass^{k + 1}" in table and table[f"pass^{k + 1}"].notna().all():
        k += 1
    return k or None


def _table(table: pd.DataFrame) -> list[str]:
    k = _common_k(table)
    columns = [*_COLUMNS, *([(f"pass^{k}", f"pass^{k}", "rate")] if k else [])]
    lines = [
        "| config | runs | " + " | ".join(heading for _, heading, _ in columns) + " |",
        "|---|---:|" + "---:|" * len(columns),
    ]
    for row in table.to_dict("records"):
        cells = [_cell(row, metric, kind) for metric, _, kind in columns]
        lines.append(f"| {_escape(row['config'])} | {runs_label(row)} | " + " | ".join(cells) + " |")
    return lines


def _gates(results: Sequence[GateResult]) -> list[str]:
    failed = [result for result in results if not result.passed]
    lines = [f"### Gates: {len(results) - len(failed)} of {len(results)} passed", ""]
    # The message names the gate, its bound, the config and the measured value.
    lines += [f"- {_escape(result.message)}" for result in failed]
    if not failed:
        lines.append("Every gate passed.")
    return lines


def _harness_errors(runs: pd.DataFrame) -> list[str]:
    broken = runs[runs["harness_error"].fillna("").astype(str) != ""]
    if broken.empty:
        return []
    lines = [f"### Harness errors: the harness failed on {len(broken)} of {len(runs)} runs", ""]
    for cell, error in broken[["cell", "harness_error"]].head(_SHOWN_ERRORS).itertuples(index=False):
        lines.append(f"- `{cell}`: {_escape(error)}")
    if len(broken) > _SHOWN_ERRORS:
        lines.append(f"- and {len(broken) - _SHOWN_ERRORS} more (the harness_error column of runs.parquet)")
    return lines


def summary_markdown(
    runs: pd.DataFrame, gate_results: Sequence[GateResult], manifest: Mapping[str, Any]
) -> str:
    """The summary a pull request or a CI step shows: a table by config, each metric
    ``value (low–high)`` with its 95% interval, the failing gates with their measured
    value and bound, harness errors, and the warnings about inconclusive runs."""
    table = metrics_table(runs)
    experiment = manifest.get("experiment", {})
    scenarios = runs["scenario"].nunique()
    head = [
        f"## windtunnel: {experiment.get('name', 'results')}",
        "",
        f"{len(runs)} runs: {scenarios} scenarios × {manifest.get('seeds', '?')} seeds × "
        f"{runs['config'].nunique()} configs (windtunnel {manifest.get('windtunnel', '?')}, "
        f"prices as of {manifest.get('prices', {}).get('as_of', '?')}). Intervals are 95%: "
        "Wilson for rates, a bootstrap over scenarios for costs and pass^k; n/a: nothing to measure.",
        "",
    ]
    sections = [head + _table(table)]
    if gate_results:
        sections.append(_gates(gate_results))
    if errors := _harness_errors(runs):
        sections.append(errors)
    if warnings := inconclusive_warnings(runs):
        sections.append(["### Inconclusive runs", "", *(f"- {_escape(warning)}" for warning in warnings)])
    return "\n\n".join("\n".join(section) for section in sections) + "\n"


def metrics_csv(runs: pd.DataFrame) -> str:
    """The metrics table (`metrics_table`) as CSV: one row per config."""
    text: str = metrics_table(runs).to_csv(index=False)
    return text


def append_step_summary(text: str) -> Path | None:
    """Append ``text`` to the file ``GITHUB_STEP_SUMMARY`` names (GitHub Actions shows it
    on the run's page); the file, or None when the variable is not set."""
    name = os.environ.get("GITHUB_STEP_SUMMARY")
    if not name:
        return None
    path = Path(name)
    with path.open("a", encoding="utf-8") as summary:
        summary.write(text if text.endswith("\n") else text + "\n")
    return path
