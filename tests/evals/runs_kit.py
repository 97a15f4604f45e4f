"""Hand-built runs frames in the column contract of the run matrix, for the metrics tests."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

DEFAULTS: dict[str, Any] = {
    "experiment": "x",
    "tags": "",
    "domain": "soc",
    "seed": 0,
    "status": "finished",
    "final_state": "done",
    "correct": True,
    "escalated": False,
    "needs_human": False,
    "check_completed": True,
    "check_final_state": True,
    "check_escalation": True,
    "check_required_actions": True,
    "check_forbidden_actions": True,
    "check_budget": True,
    "decided_by": "",
    "actions_applied": 0,
    "actions_verified": 0,
    "actions_compensated": 0,
    "silent_failures_injected": 0,
    "silent_failures_caught": 0,
    "faults_declared": 0,
    "faults_fired": 0,
    "faults_fired_by_kind": "{}",
    "inconclusive": False,
    "faults_not_fired": "",
    "faults_fired_ids": "",
    "faults_not_applicable": "",
    "fault_plan": "",
    "by_tier": "{}",
    "model_calls": 1,
    "input_tokens": 100,
    "output_tokens": 10,
    "model_cost": 0.0,
    "human_minutes": 0.0,
    "human_cost": 0.0,
    "cost": 0.0,
    "sim_duration": 1.0,
    "wall_time": 0.001,
    "invariant_violations": 0,
    "violations": "[]",
    "trace_digest": "d",
    "harness_error": "",
    "confidence": math.nan,
}


def runs(*rows: dict[str, Any]) -> pd.DataFrame:
    """A runs frame: each row gives at least config and scenario; the rest defaults.

    ``cost`` defaults to ``model_cost + human_cost`` and ``cell`` to
    ``scenario/seed_index/config``.
    """
    filled = []
    for row in rows:
        full = {**DEFAULTS, "seed_index": 0, **row}
        if "cost" not in row:
            full["cost"] = full["model_cost"] + full["human_cost"]
        full.setdefault("cell", f"{full['scenario']}/{full['seed_index']}/{full['config']}")
        filled.append(full)
    return pd.DataFrame(filled)


def paired_experiment(
    rng: np.random.Generator, *, p_a: float, p_b: float, scenarios: int, seeds: int
) -> pd.DataFrame:
    """Two configs ``a`` and ``b`` on the same cells, each run correct with its own chance."""
    rows = []
    for scenario in range(scenarios):
        for seed_index in range(seeds):
            for config, p in (("a", p_a), ("b", p_b)):
                rows.append(
                    {
                        "config": config,
                        "scenario": f"s{scenario}",
                        "seed_index": seed_index,
                        "correct": bool(rng.random() < p),
                        "model_cost": 0.01,
                    }
                )
    return runs(*rows)
