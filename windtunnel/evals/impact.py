"""What an extra fault plan costs: every cell run with it against the same cell run
without it (same scenario, seed index and config — the same case, paired).

An experiment with ``fault_plans`` runs each cell once per plan and once without
(``fault_plan == ""``); :func:`fault_impact` pairs them and reports, per config and
plan, the change in accuracy, escalation, simulated time, cost, human minutes and
invariant violations, each a mean paired difference (with the plan minus without)
with a 95% bootstrap interval that resamples scenarios whole, and McNemar's exact
test on correctness. A run with the plan in which none of its faults fired (a tool
never called, a tier not played) exercised nothing: its pair is left out and
counted in ``unexercised``, never counted as surviving the plan.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from windtunnel.orchestrator import InvalidArgument

from ._frame import add_estimate, require
from .stats import mcnemar_exact, paired_bootstrap

__all__ = ["IMPACT_METRICS", "fault_impact"]

IMPACT_METRICS = {
    "accuracy": "correct",
    "escalation": "escalated",
    "duration": "sim_duration",
    "cost": "cost",
    "human_minutes": "human_minutes",
    "violations": "invariant_violations",
}
"""Each reported change, by name -> the runs column it is the mean of."""

_PAIR = ["config", "scenario", "seed_index"]


def fault_impact(
    frame: pd.DataFrame, *, by: str | None = None, n_resamples: int = 2000, seed: int = 0
) -> pd.DataFrame:
    """One row per (config, extra fault plan) — and per ``by`` column when given — with
    the paired change each plan makes.

    Columns: ``pairs`` (cells run both ways in which some fault of the plan fired;
    harness errors on either side left out), ``unexercised`` (pairs left out because
    none of the plan's faults fired),
    ``harness_errors``, ``scenarios``; for each metric ``m`` of :data:`IMPACT_METRICS`:
    ``m_without``, ``m_with`` (means) and ``m_change`` with ``m_change_low`` /
    ``m_change_high``; ``broke`` and ``fixed`` (cells correct only without / only
    with the plan) and ``p_value`` (McNemar exact on them). Accuracy and escalation are
    shares, so their changes are in share points (-0.25: a quarter fewer correct).

    Raises:
        InvalidArgument: the frame has no ``fault_plan`` column or no run without an
            extra plan to pair with.
    """
    require(frame, "fault_plan", "seed_index", "faults_fired_ids", *IMPACT_METRICS.values())
    keys = _PAIR + ([by] if by and by not in _PAIR else [])
    if by and by not in frame:
        raise InvalidArgument(f"by={by!r} is not a column of the runs frame")
    plans = frame["fault_plan"].fillna("").astype(str)
    base = frame[plans == ""]
    if base.empty:
        raise InvalidArgument("no runs without an extra fault plan (fault_plan == ''): nothing to pair with")
    columns = [*dict.fromkeys([*keys, "harness_error", *IMPACT_METRICS.values()])]
    rows: list[dict[str, Any]] = []
    for plan in sorted(set(plans) - {""}):
        laid = frame[plans == plan]
        fired = laid["faults_fired_ids"].fillna("").astype(str).str.split(",")
        laid = laid.assign(_exercised=[any(i.startswith(f"{plan}/") for i in ids) for ids in fired])
        paired = base[columns].merge(laid[[*columns, "_exercised"]], on=keys, suffixes=("_without", "_with"))
        failed = (paired["harness_error_without"].fillna("").astype(str) != "") | (
            paired["harness_error_with"].fillna("").astype(str) != ""
        )
        group_keys = ["config"] + ([by] if by and by != "config" else [])
        for values, group in paired.groupby(group_keys, sort=True):
            measured = group[~failed.loc[group.index]]
            ok = measured[measured["_exercised"]]
            head = dict(zip(group_keys, values if isinstance(values, tuple) else (values,), strict=True))
            row = _row(head, plan, ok, int(failed.loc[group.index].sum()), n_resamples, seed)
            row["unexercised"] = len(measured) - len(ok)
            rows.append(row)
    return pd.DataFrame(rows)


def _row(
    head: dict[str, Any], plan: str, ok: pd.DataFrame, errors: int, n_resamples: int, seed: int
) -> dict[str, Any]:
    row: dict[str, Any] = {
        **head,
        "fault_plan": plan,
        "pairs": len(ok),
        "harness_errors": errors,
        "scenarios": int(ok["scenario"].nunique()),
    }
    for name, column in IMPACT_METRICS.items():
        without = ok[f"{column}_without"].astype(float)
        with_ = ok[f"{column}_with"].astype(float)
        row[f"{name}_without"] = float(without.mean()) if len(ok) else math.nan
        row[f"{name}_with"] = float(with_.mean()) if len(ok) else math.nan
        add_estimate(
            row,
            f"{name}_change",
            paired_bootstrap(with_, without, ok["scenario"], n_resamples=n_resamples, seed=seed),
        )
    right_without = ok["correct_without"].astype(bool)
    right_with = ok["correct_with"].astype(bool)
    row["broke"] = int((right_without & ~right_with).sum())
    row["fixed"] = int((~right_without & right_with).sum())
    row["p_value"] = mcnemar_exact(row["broke"], row["fixed"])
    return row
