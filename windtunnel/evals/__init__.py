"""Evaluation: invariant checkers over traces; the run matrix (experiments, one row
per run, results directories, executors); metrics with intervals over the runs
frame, and paired comparisons; tier profiles calibrated from recorded runs.

The analysis modules (metrics, statistics, comparisons; pandas and scipy) load on
first use, so that a pool worker running cells imports none of them."""

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .executors import Executor, ExperimentSummary, Progress, run_cell, run_experiment
from .experiment import Cell, Config, Experiment, ExtraFaults, cell_seed, plan_digest
from .invariants import (
    Violation,
    budgets_respected,
    check_all,
    legal_transitions_only,
    no_action_applied_twice,
    no_conflicting_intents,
    no_refused_transition_followed,
    no_rejected_call_executed,
    runs_terminate,
    trace_complete,
    writes_verified_or_escalated,
)
from .manifest import MANIFEST_SCHEMA, Manifest, Session, read_manifest
from .profile_file import read_profile, write_profile
from .results import Results, read_events, read_runs, run_events
from .rows import CHECKS, COLUMNS, EVENTS_SCHEMA, RUNS_SCHEMA

if _TYPE_CHECKING:
    from .calibration import Calibration, calibrate
    from .comparison import Comparison, compare
    from .impact import IMPACT_METRICS, fault_impact
    from .metrics import (
        decisions,
        escalation,
        inconclusive,
        inconclusive_warnings,
        tiers,
        verification,
        violation_rows,
        violations,
    )
    from .pricing import ErrorPrices, cost, pareto
    from .reliability import pass_k
    from .stats import cluster_bootstrap, mcnemar_exact, paired_bootstrap, seeds_needed, wilson
    from .sweeps import ladder_grid, sweep, sweep_points

_LAZY = {
    "Calibration": "calibration",
    "calibrate": "calibration",
    "Comparison": "comparison",
    "ErrorPrices": "pricing",
    "IMPACT_METRICS": "impact",
    "cluster_bootstrap": "stats",
    "compare": "comparison",
    "cost": "pricing",
    "decisions": "metrics",
    "escalation": "metrics",
    "fault_impact": "impact",
    "inconclusive": "metrics",
    "inconclusive_warnings": "metrics",
    "ladder_grid": "sweeps",
    "mcnemar_exact": "stats",
    "paired_bootstrap": "stats",
    "pareto": "pricing",
    "pass_k": "reliability",
    "seeds_needed": "stats",
    "sweep": "sweeps",
    "sweep_points": "sweeps",
    "tiers": "metrics",
    "verification": "metrics",
    "violation_rows": "metrics",
    "violations": "metrics",
    "wilson": "stats",
}
"""Names loaded on first use, by the module that defines them. No module is named as
one of its functions: importing it would bind the module under the function's name."""


def __getattr__(name: str) -> _Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(_import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


__all__ = [
    "CHECKS",
    "COLUMNS",
    "EVENTS_SCHEMA",
    "IMPACT_METRICS",
    "MANIFEST_SCHEMA",
    "RUNS_SCHEMA",
    "Calibration",
    "Cell",
    "Comparison",
    "Config",
    "ErrorPrices",
    "Executor",
    "Experiment",
    "ExperimentSummary",
    "ExtraFaults",
    "Manifest",
    "Progress",
    "Results",
    "Session",
    "Violation",
    "budgets_respected",
    "calibrate",
    "cell_seed",
    "check_all",
    "cluster_bootstrap",
    "compare",
    "cost",
    "decisions",
    "escalation",
    "fault_impact",
    "inconclusive",
    "inconclusive_warnings",
    "ladder_grid",
    "legal_transitions_only",
    "mcnemar_exact",
    "no_action_applied_twice",
    "no_conflicting_intents",
    "no_refused_transition_followed",
    "no_rejected_call_executed",
    "paired_bootstrap",
    "pareto",
    "pass_k",
    "plan_digest",
    "read_events",
    "read_manifest",
    "read_profile",
    "read_runs",
    "run_cell",
    "run_events",
    "run_experiment",
    "runs_terminate",
    "seeds_needed",
    "sweep",
    "sweep_points",
    "tiers",
    "trace_complete",
    "verification",
    "violation_rows",
    "violations",
    "wilson",
    "write_profile",
    "writes_verified_or_escalated",
]
