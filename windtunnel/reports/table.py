"""The metrics table: one row per config, every metric a gate can name, with its interval.

`metrics_table` assembles it from the evals metric functions — `escalation`,
`decisions`, `verification`, `violations`, `cost`, `pass_k`, `tiers` — renaming their
columns into one namespace; nothing is computed here. A metric ``x`` with an
interval has ``x_low`` and ``x_high`` beside it (95%: Wilson for rates, a bootstrap
over scenarios for means); one without has neither. Harness errors are left out of
every metric and counted in ``harness_errors``.

The namespace (:data:`METRICS`, plus three families):

- ``pass^K`` and ``pass@K`` — pass^k (all K tries of a scenario succeed) and pass@k
  (any does), for K = 1 up to the fewest seeds any scenario of the config ran; NaN
  beyond it. With interval.
- ``tier_calls[T]``, ``tier_input_tokens[T]``, ``tier_output_tokens[T]``,
  ``tier_cost[T]`` — model calls, tokens and USD of tier ``T`` summed over the
  config's runs; ``tier_cost_per_run[T]`` — its USD per run (with interval). NaN
  for a config that never called ``T``.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from windtunnel.evals import ErrorPrices, cost, decisions, escalation, pass_k, tiers, verification, violations
from windtunnel.evals.rows import CHECKS

__all__ = ["HEADLINE", "METRICS", "Metric", "metric_info", "metrics_table", "pass_k_of", "runs_label"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """A gateable metric: what it measures, whether it has an interval, why it can be NaN."""

    description: str
    interval: bool
    empty: str
    """Why there can be nothing to measure (the value is NaN)."""


def _rate(description: str, empty: str) -> Metric:
    return Metric(description=description, interval=True, empty=empty)


def _count(description: str, empty: str = "no run counted toward it") -> Metric:
    return Metric(description=description, interval=False, empty=empty)


_NO_RUNS = "no run without a harness error"

METRICS: dict[str, Metric] = {
    "runs": _count("Runs of the config, harness errors left out."),
    "harness_errors": _count("Runs the harness failed on (harness_error set)."),
    "correct": _count("Runs with every grader check passed."),
    "accuracy": _rate("Decision accuracy: correct / runs.", _NO_RUNS),
    **{
        f"check_{name}": _rate(f"Share of runs whose {name!r} grader check passed.", _NO_RUNS)
        for name in CHECKS
    },
    "escalation_accuracy": _rate("(tp + tn) / runs: escalated exactly when a human was needed.", _NO_RUNS),
    "escalation_precision": _rate("tp / (tp + fp): escalations that were needed.", "no run escalated"),
    "escalation_recall": _rate("tp / (tp + fn): needed escalations that happened.", "no run needed a human"),
    "over_escalation": _rate("fp / (fp + tn): runs sent to a human needlessly.", "every run needed a human"),
    "under_escalation": _rate(
        "fn / (fn + tp): runs that needed a human and never reached one.", "no run needed a human"
    ),
    "missed_escalations": _count("Runs that needed a human and did not escalate (fn)."),
    "verification_coverage": _rate(
        "Applied write actions confirmed by a read-back, pooled over actions.", "no write action was applied"
    ),
    "silent_failure_catch_rate": _rate(
        "Silent failures injected that verification caught, over conclusive runs.",
        "no silent failure fired in a conclusive run",
    ),
    "inconclusive": _count("Runs whose declared faults did not all fire."),
    "invariant_violations": _count("Invariant violations, summed over runs."),
    "violations_per_run": _count("invariant_violations / runs.", _NO_RUNS),
    "violating_runs": _rate("Share of runs with at least one invariant violation.", _NO_RUNS),
    "cost_per_run": Metric(description="USD per run, models and humans.", interval=True, empty=_NO_RUNS),
    "model_cost_per_run": _count("USD of model calls per run.", _NO_RUNS),
    "human_cost_per_run": _count("USD of human review per run.", _NO_RUNS),
    "total_cost": _count("USD of all runs."),
    "cost_per_correct": _count("total_cost / correct: USD per correct decision.", "no run was correct"),
    "tco_per_1000": Metric(
        description="USD per 1,000 cases, missed escalations and wrong actions priced (ErrorPrices).",
        interval=True,
        empty=_NO_RUNS,
    ),
    "wrong_actions": _count("Runs that applied a forbidden action."),
}
"""The fixed part of the namespace: name -> what it is. See the module docstring for the
``pass^K``, ``pass@K`` and ``tier_*[T]`` families."""

HEADLINE = (
    "runs",
    "harness_errors",
    "accuracy",
    "escalation_precision",
    "escalation_recall",
    "verification_coverage",
    "silent_failure_catch_rate",
    "cost_per_run",
    "cost_per_correct",
    "tco_per_1000",
    "invariant_violations",
    "inconclusive",
)
"""The metrics a summary shows first, with the ``pass^K`` family."""

_PASS = re.compile(r"^pass([\^@])([1-9]\d*)$")
_TIER = re.compile(r"^(tier_(?:calls|input_tokens|output_tokens|cost|cost_per_run))\[([^\[\]]+)\]$")

# (function's column, table's column) per metric function; the rest of their columns are not metrics.
_ESCALATION = {
    "accuracy": "escalation_accuracy",
    "precision": "escalation_precision",
    "recall": "escalation_recall",
    "over_escalation": "over_escalation",
    "under_escalation": "under_escalation",
}
_DECISIONS = {
    "runs": "runs",
    "harness_errors": "harness_errors",
    "correct": "correct",
    "accuracy": "accuracy",
}
_VERIFICATION = {
    "coverage": "verification_coverage",
    "catch_rate": "silent_failure_catch_rate",
    "inconclusive": "inconclusive",
}
_VIOLATIONS = {
    "violations": "invariant_violations",
    "violations_per_run": "violations_per_run",
    "violating": "violating_runs",
}
_COST = {
    name: name
    for name in (
        "cost_per_run",
        "model_cost_per_run",
        "human_cost_per_run",
        "total_cost",
        "cost_per_correct",
        "tco_per_1000",
        "missed_escalations",
        "wrong_actions",
    )
}


def pass_k_of(name: str) -> int | None:
    """K of a ``pass^K`` or ``pass@K`` metric name; None for any other name."""
    found = _PASS.match(name)
    return int(found.group(2)) if found else None


def metric_info(name: str) -> Metric | None:
    """What the metric ``name`` is, families included; None for no such metric."""
    if name in METRICS:
        return METRICS[name]
    if found := _PASS.match(name):
        k = found.group(2)
        which = f"all {k} tries" if found.group(1) == "^" else f"at least one of {k} tries"
        return _rate(
            f"The chance that {which} of a scenario succeed, averaged over scenarios.",
            f"fewer than {k} tries of some scenario",
        )
    if found := _TIER.match(name):
        column = found.group(1)
        return Metric(
            description=f"{column} of tier {found.group(2)!r}.",
            interval=column == "tier_cost_per_run",
            empty=f"no run of the config called tier {found.group(2)!r}",
        )
    return None


def _renamed(frame: pd.DataFrame, names: dict[str, str]) -> pd.DataFrame:
    columns = {"config": "config"}
    for source, target in names.items():
        columns[source] = target
        if f"{source}_low" in frame:
            columns[f"{source}_low"], columns[f"{source}_high"] = f"{target}_low", f"{target}_high"
    return frame[list(columns)].rename(columns=columns)


def _pivot(frame: pd.DataFrame, key: str, columns: dict[str, str], name: Any) -> pd.DataFrame:
    """One row per config from a frame of one row per (config, key): columns named by ``name``."""
    wide: dict[str, dict[str, Any]] = {}
    records = frame.to_dict("records")
    for source, family in columns.items():
        for row in records:
            target = wide.setdefault(str(row["config"]), {"config": row["config"]})
            for suffix in ("", "_low", "_high"):
                if f"{source}{suffix}" in row:
                    target[name(family, row[key]) + suffix] = row[f"{source}{suffix}"]
    return pd.DataFrame(list(wide.values())) if wide else pd.DataFrame(columns=["config"])


def metrics_table(
    runs: pd.DataFrame, *, prices: ErrorPrices | None = None, k_max: int | None = None, seed: int = 0
) -> pd.DataFrame:
    """One row per config of ``runs``, sorted, with every metric of the namespace.

    ``prices`` prices errors for ``tco_per_1000`` (default `ErrorPrices()`);
    ``k_max`` caps the ``pass^K``/``pass@K`` columns; ``seed`` seeds the bootstraps.
    """
    prices = ErrorPrices() if prices is None else prices
    parts = [
        _renamed(decisions(runs), {**_DECISIONS, **{f"check_{name}": f"check_{name}" for name in CHECKS}}),
        _renamed(escalation(runs), _ESCALATION),
        _renamed(verification(runs), _VERIFICATION),
        _renamed(violations(runs), _VIOLATIONS),
        _renamed(cost(runs, prices=prices, seed=seed), _COST),
        _pivot(
            pass_k(runs, k_max=k_max, seed=seed),
            "k",
            {"pass_hat_k": "pass^", "pass_at_k": "pass@"},
            lambda family, k: f"{family}{int(k)}",
        ),
        _pivot(
            tiers(runs, seed=seed),
            "tier",
            {
                "calls": "tier_calls",
                "input_tokens": "tier_input_tokens",
                "output_tokens": "tier_output_tokens",
                "cost": "tier_cost",
                "cost_per_run": "tier_cost_per_run",
            },
            lambda family, tier: f"{family}[{tier}]",
        ),
    ]
    table = parts[0]
    for part in parts[1:]:
        table = table.merge(part, on="config", how="left")
    return table.sort_values("config").reset_index(drop=True)


def runs_label(row: Mapping[Hashable, Any]) -> str:
    """A config's measured runs for a table cell; a config whose every run was a harness
    error says so rather than showing 0 runs of n/a metrics as if measured."""
    runs = int(row["runs"])
    if runs:
        return str(runs)
    return f"no measured run ({int(row['harness_errors'])} harness errors)"
