"""Rates over the runs frame: escalation, decisions, verification, invariants.

Each function takes the runs frame (one row per run) and returns one row per
``config`` — and per ``by=`` key when asked: a column such as ``scenario`` or
``domain``, ``tag``, or ``fault_kind``. Every rate ``x`` comes with ``x_low`` and
``x_high``, its 95% Wilson interval, and NaN when its denominator is zero. Runs whose
``harness_error`` is set are left out and counted in ``harness_errors``.

>>> import pandas as pd
>>> runs = pd.DataFrame({
...     "config": ["small"] * 3, "scenario": ["s1", "s2", "s3"], "harness_error": ["", "", "boom"],
...     "escalated": [True, False, False], "needs_human": [True, True, False],
... })
>>> escalation(runs)[["config", "runs", "harness_errors", "tp", "fn", "recall"]]
  config  runs  harness_errors  tp  fn  recall
0  small     2               1   1   1     0.5
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from ._frame import By, add_estimate, add_rate, grouped, require, rows_frame
from .stats import cluster_bootstrap

__all__ = [
    "decisions",
    "escalation",
    "inconclusive",
    "inconclusive_warnings",
    "tiers",
    "verification",
    "violation_rows",
    "violations",
]

CHECKS = (
    "check_completed",
    "check_final_state",
    "check_escalation",
    "check_required_actions",
    "check_forbidden_actions",
    "check_budget",
)


def _base(keys: dict[str, Any], agent: pd.DataFrame, harness_errors: int) -> dict[str, Any]:
    return {**keys, "runs": len(agent), "harness_errors": harness_errors}


def escalation(frame: pd.DataFrame, *, by: By = ()) -> pd.DataFrame:
    """The escalation confusion matrix against ``needs_human``, and its rates.

    ``tp`` = escalated and needed, ``fp`` = escalated, not needed, ``fn`` = needed, not
    escalated, ``tn`` = neither. Then ``accuracy = (tp + tn) / runs``, ``precision = tp /
    (tp + fp)``, ``recall = tp / (tp + fn)``, ``over_escalation = fp / (fp + tn)`` (of the
    cases a human did not need, the share sent to one) and ``under_escalation = fn /
    (fn + tp)`` (of the cases a human needed, the share that never reached one).
    """
    require(frame, "escalated", "needs_human")
    rows = []
    for keys, agent, errors in grouped(frame, by):
        esc, need = agent["escalated"].astype(bool), agent["needs_human"].astype(bool)
        tp, fp = int((esc & need).sum()), int((esc & ~need).sum())
        fn, tn = int((~esc & need).sum()), int((~esc & ~need).sum())
        row = {**_base(keys, agent, errors), "tp": tp, "fp": fp, "fn": fn, "tn": tn}
        add_rate(row, "accuracy", tp + tn, tp + fp + fn + tn)
        add_rate(row, "precision", tp, tp + fp)
        add_rate(row, "recall", tp, tp + fn)
        add_rate(row, "over_escalation", fp, fp + tn)
        add_rate(row, "under_escalation", fn, fn + tp)
        rows.append(row)
    return rows_frame(rows, by)


def decisions(frame: pd.DataFrame, *, by: By = ()) -> pd.DataFrame:
    """Decision accuracy (share of runs ``correct``) and each grader check's pass rate.

    ``correct`` counts the correct runs; ``accuracy = correct / runs``; for each
    ``check_*`` column present, the column of the same name is its share of runs passed.
    """
    require(frame, "correct")
    checks = [check for check in CHECKS if check in frame]
    rows = []
    for keys, agent, errors in grouped(frame, by):
        n = len(agent)
        correct = int(agent["correct"].astype(bool).sum())
        row = {**_base(keys, agent, errors), "correct": correct}
        add_rate(row, "accuracy", correct, n)
        for check in checks:
            add_rate(row, check, int(agent[check].astype(bool).sum()), n)
        rows.append(row)
    return rows_frame(rows, by)


def verification(frame: pd.DataFrame, *, by: By = ()) -> pd.DataFrame:
    """Verification coverage and the silent-failure catch rate.

    ``coverage = sum(actions_verified) / sum(actions_applied)``, pooled over actions:
    its Wilson interval treats actions as independent, which they are not quite
    (actions of one run share a fate), so read it as a lower bound on the uncertainty.
    ``catch_rate = sum(silent_failures_caught) / sum(silent_failures_injected)`` over
    every run: a run in which no silent failure fired adds nothing to either side, and
    one in which it fired counts whatever else did not fire. ``inconclusive`` counts
    the runs with a declared fault that never fired, for the reader.
    """
    require(
        frame, "actions_applied", "actions_verified", "silent_failures_injected", "silent_failures_caught"
    )
    rows = []
    for keys, agent, errors in grouped(frame, by):
        applied, verified = int(agent["actions_applied"].sum()), int(agent["actions_verified"].sum())
        flagged = (
            agent["inconclusive"].astype(bool) if "inconclusive" in agent else pd.Series(False, agent.index)
        )
        injected = int(agent["silent_failures_injected"].sum())
        caught = int(agent["silent_failures_caught"].sum())
        row = {
            **_base(keys, agent, errors),
            "actions_applied": applied,
            "actions_verified": verified,
            "silent_failures_injected": injected,
            "silent_failures_caught": caught,
            "inconclusive": int(flagged.sum()),
        }
        add_rate(row, "coverage", min(verified, applied), applied)
        add_rate(row, "catch_rate", min(caught, injected), injected)
        rows.append(row)
    return rows_frame(rows, by)


def violations(frame: pd.DataFrame, *, by: By = ()) -> pd.DataFrame:
    """Invariant violations: their total, per run, and the share of runs with any.

    ``violations = sum(invariant_violations)``, ``violations_per_run = violations /
    runs``, ``violating = share of runs with invariant_violations > 0`` (Wilson).
    """
    require(frame, "invariant_violations")
    rows = []
    for keys, agent, errors in grouped(frame, by):
        counts = agent["invariant_violations"].astype(int)
        total = int(counts.sum())
        row = {
            **_base(keys, agent, errors),
            "violations": total,
            "violations_per_run": total / len(agent) if len(agent) else float("nan"),
        }
        add_rate(row, "violating", int((counts > 0).sum()), len(agent))
        rows.append(row)
    return rows_frame(rows, by)


def tiers(frame: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """Model calls, tokens and cost by config and tier (the ``by_tier`` column expanded).

    One row per (config, tier) that any run called: ``calls``, ``input_tokens``,
    ``output_tokens`` and ``cost`` summed over the config's runs, and
    ``cost_per_run`` — the tier's cost averaged over all of the config's runs, those
    that never reached it counting 0 — with its cluster bootstrap interval.
    """
    require(frame, "by_tier")
    rows = []
    for keys, agent, errors in grouped(frame, ()):
        spent = [json.loads(value) if value else {} for value in agent["by_tier"]]
        for tier in sorted({name for run in spent for name in run}):
            mine = [run.get(tier, {}) for run in spent]
            row: dict[str, Any] = {**keys, "tier": tier, "runs": len(agent), "harness_errors": errors}
            for column in ("calls", "input_tokens", "output_tokens"):
                row[column] = int(sum(run.get(column, 0) for run in mine))
            costs = [float(run.get("cost", 0.0)) for run in mine]
            row["cost"] = sum(costs)
            add_estimate(row, "cost_per_run", cluster_bootstrap(costs, agent["scenario"], seed=seed))
            rows.append(row)
    return rows_frame(rows, (), ["tier"])


def violation_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """Every invariant violation of every run, one row each: ``config``, ``scenario``,
    ``cell``, ``seed_index``, ``invariant``, ``seq`` (the offending event's, or NA for
    a whole-run violation) and ``message``. Group it by ``invariant`` for the counts.

    >>> runs = pd.DataFrame({"config": ["a"], "scenario": ["s"], "cell": ["s/0/a"], "seed_index": [0],
    ...     "harness_error": [""], "violations": ['[{"invariant": "runs_terminate", "seq": null,'
    ...     ' "message": "run started but never finished"}]']})
    >>> violation_rows(runs)[["cell", "invariant", "message"]].to_dict("records")
    [{'cell': 's/0/a', 'invariant': 'runs_terminate', 'message': 'run started but never finished'}]
    """
    require(frame, "violations", "cell", "seed_index")
    keys = ["config", "scenario", "cell", "seed_index"]
    rows = [
        {**dict(zip(keys, head, strict=True)), **found}
        for *head, text in frame[[*keys, "violations"]].itertuples(index=False)
        for found in (json.loads(text) if isinstance(text, str) and text else [])
    ]
    columns = [*keys, "invariant", "seq", "message"]
    table = pd.DataFrame(rows, columns=columns)
    return table.astype({"seq": "Int64"})


def inconclusive(frame: pd.DataFrame) -> pd.DataFrame:
    """The runs whose declared faults did not all fire: never counted as surviving them.

    One row per such run (harness errors left out), sorted, with ``config``,
    ``scenario``, ``cell``, ``seed_index``, ``faults_declared``, ``faults_fired`` and
    ``faults_not_fired`` (the ids, comma-joined).
    """
    require(
        frame, "inconclusive", "cell", "seed_index", "faults_declared", "faults_fired", "faults_not_fired"
    )
    columns = [
        "config",
        "scenario",
        "cell",
        "seed_index",
        "faults_declared",
        "faults_fired",
        "faults_not_fired",
    ]
    ok = frame["harness_error"].fillna("").astype(str) == ""
    found = frame[ok & frame["inconclusive"].astype(bool)]
    return found[columns].sort_values(["config", "scenario", "seed_index", "cell"]).reset_index(drop=True)


def inconclusive_warnings(frame: pd.DataFrame) -> list[str]:
    """One warning per (scenario, fault id) that did not fire in some runs: how many
    runs of how many, under which configs — the lines a summary prints.

    >>> runs = pd.DataFrame({
    ...     "config": ["small", "large", "small"], "scenario": ["s1", "s1", "s2"], "harness_error": "",
    ...     "cell": ["a", "b", "c"], "seed_index": 0, "faults_declared": 1, "faults_fired": [0, 1, 1],
    ...     "faults_not_fired": ["slow-intel", "", ""], "inconclusive": [True, False, False],
    ... })
    >>> print(*inconclusive_warnings(runs))  # doctest: +NORMALIZE_WHITESPACE
    scenario 's1': fault 'slow-intel' never fired in 1 of 2 runs (config small);
    those runs say nothing about surviving it
    """
    require(frame, "faults_not_fired")
    ok = frame[frame["harness_error"].fillna("").astype(str) == ""]
    missed: dict[tuple[str, str], list[str]] = {}
    for scenario, config, ids in ok[["scenario", "config", "faults_not_fired"]].itertuples(index=False):
        for fault_id in str(ids or "").split(","):
            if fault_id:
                missed.setdefault((str(scenario), fault_id), []).append(str(config))
    return [
        f"scenario {scenario!r}: fault {fault_id!r} never fired in {len(configs)} of "
        f"{_declaring(ok, scenario, fault_id)} runs (config {', '.join(sorted(set(configs)))}); "
        "those runs say nothing about surviving it"
        for (scenario, fault_id), configs in sorted(missed.items())
    ]


def _declaring(runs: pd.DataFrame, scenario: str, fault_id: str) -> int:
    """The runs of ``scenario`` the fault applied to: those of its extra plan (an id
    ``plan/fault``) or all (a scenario's own), less those that did not play its tier."""
    mine = runs[runs["scenario"] == scenario]
    plan, _, rest = fault_id.partition("/")
    if rest and "fault_plan" in mine:
        mine = mine[mine["fault_plan"] == plan]
    if "faults_not_applicable" in mine:
        idle = mine["faults_not_applicable"].fillna("").astype(str).str.split(",")
        mine = mine[[fault_id not in ids for ids in idle]]
    return len(mine)
