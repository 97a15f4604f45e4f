"""The HTML report's tables, aggregated in pandas from a results directory.

Every rate comes from ``windtunnel.evals``' metrics (with their intervals); this
module only joins, bins and reshapes their frames, and reads the few events the
report shows. Nothing here plots or writes HTML.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.dataset as ds  # type: ignore[import-untyped]  # no stubs shipped

from windtunnel.evals import cost, decisions, escalation, pass_k, verification, violations
from windtunnel.evals.results import EVENTS

__all__ = [
    "Metric",
    "calibration",
    "config_table",
    "fault_kinds",
    "pass_matrix",
    "transitions",
]


@dataclass(frozen=True, slots=True, kw_only=True)
class Metric:
    """One column of the comparison table: where its estimate and interval come from."""

    key: str
    """The column of the joined metrics frame; ``key_low``/``key_high`` its interval."""
    label: str
    """The column's heading."""
    kind: str
    """How to print it: ``share``, ``usd`` or ``count``."""


METRICS = (
    Metric(key="accuracy", label="Accuracy", kind="share"),
    Metric(key="escalation_precision", label="Escalation precision", kind="share"),
    Metric(key="escalation_recall", label="Escalation recall", kind="share"),
    Metric(key="coverage", label="Verification coverage", kind="share"),
    Metric(key="catch_rate", label="Silent-failure catch rate", kind="share"),
    Metric(key="cost_per_run", label="Cost per run", kind="usd"),
    Metric(key="cost_per_correct", label="Cost per correct decision", kind="usd"),
    Metric(key="pass_hat_k", label="pass^k", kind="share"),
    Metric(key="violating", label="Runs violating an invariant", kind="share"),
)
"""The comparison table's metrics, in order."""


def config_table(runs: pd.DataFrame, *, k: int) -> pd.DataFrame:
    """One row per config: every metric of :data:`METRICS` with ``_low``/``_high``,
    plus ``runs``, ``harness_errors``, ``correct``, ``inconclusive`` runs and ``k``, the
    k of pass^k: ``k``, or the fewest tries of any scenario when fewer."""
    esc = escalation(runs)[["config", *_with_bounds("precision"), *_with_bounds("recall")]]
    esc = esc.rename(columns={c: f"escalation_{c}" for c in esc.columns if c != "config"})
    table = decisions(runs)[["config", "runs", "harness_errors", "correct", *_with_bounds("accuracy")]]
    ver = verification(runs)[
        ["config", "inconclusive", *_with_bounds("coverage"), *_with_bounds("catch_rate")]
    ]
    spent = cost(runs)[["config", *_with_bounds("cost_per_run"), "cost_per_correct"]]
    reliable = pass_k(runs, k_max=k)
    if not reliable.empty:
        reliable = reliable.sort_values("k").groupby("config", sort=False).tail(1)
    reliable = reliable.reindex(columns=["config", "k", *_with_bounds("pass_hat_k")])
    broken = violations(runs)[["config", "violations", *_with_bounds("violating")]]
    for part in (esc, ver, spent, reliable, broken):
        table = table.merge(part, on="config", how="left")
    # evals.cost gives cost per correct decision as a plain ratio, without an interval.
    return table.assign(cost_per_correct_low=np.nan, cost_per_correct_high=np.nan)


def _with_bounds(name: str) -> list[str]:
    return [name, f"{name}_low", f"{name}_high"]


def calibration(runs: pd.DataFrame, *, bins: int = 10) -> pd.DataFrame:
    """Stated confidence against observed accuracy, per config, in ``bins`` equal bins.

    One row per (config, bin) holding runs: ``bin`` (its lower edge), ``confidence``
    (the mean stated confidence in it), ``accuracy`` with ``_low``/``_high`` (from
    ``decisions``) and ``runs``. Runs with no stated confidence are left out.
    """
    stated = runs[runs["confidence"].notna()]
    if stated.empty:
        return pd.DataFrame(columns=["config", "bin", "confidence", "runs", *_with_bounds("accuracy")])
    edge = np.minimum(np.floor(stated["confidence"].astype(float) * bins), bins - 1) / bins
    stated = stated.assign(bin=edge.round(6))
    observed = decisions(stated, by="bin")[["config", "bin", "runs", *_with_bounds("accuracy")]]
    mean = stated.groupby(["config", "bin"], as_index=False)["confidence"].mean()
    return observed.merge(mean, on=["config", "bin"]).query("runs > 0").reset_index(drop=True)


def pass_matrix(runs: pd.DataFrame) -> pd.DataFrame:
    """Scenarios x configs: ``accuracy`` (the share of the cell's runs that passed),
    ``correct`` and ``runs`` per (config, scenario)."""
    return decisions(runs, by="scenario")[["config", "scenario", "runs", "correct", "accuracy"]]


def fault_kinds(runs: pd.DataFrame) -> pd.DataFrame:
    """Decision accuracy by fault kind that fired (``none`` when none did), per config,
    with its interval and ``runs``."""
    return decisions(runs, by="fault_kind")[["config", "fault_kind", "runs", *_with_bounds("accuracy")]]


def transitions(results_dir: Path) -> tuple[pd.DataFrame, str | None, int]:
    """The workflow's transitions taken: ``(edges, start, unmatched)``.

    ``edges`` has one row per (``source``, ``target``) with its ``count`` over all runs;
    ``start`` is the state runs start in. Each transition's target is read as the state
    of the event that follows it in its run (seq + 1), which the engine always writes
    in the target state; this keeps the events' JSON, most of the file, unread.
    ``unmatched`` counts transitions with no such follower (none in a whole trace).
    """
    table = ds.dataset(results_dir / EVENTS, format="parquet").to_table(
        columns=["cell", "seq", "kind", "state"]
    )
    events = table.to_pandas()
    follower = events.shift(-1)
    taken = (events["kind"] == "transition").to_numpy()
    matched = (follower["cell"] == events["cell"]) & (follower["seq"] == events["seq"] + 1)
    matched = matched.to_numpy(dtype=bool, na_value=False)
    edges = pd.DataFrame(
        {"source": events["state"][taken & matched], "target": follower["state"][taken & matched]}
    )
    counts = edges.groupby(["source", "target"], as_index=False).size().rename(columns={"size": "count"})
    starts = events.loc[events["kind"] == "run_started", "state"]
    start = str(starts.mode().iloc[0]) if not starts.empty else None
    return (
        counts.sort_values("count", ascending=False, ignore_index=True),
        start,
        int((taken & ~matched).sum()),
    )
