"""Evaluation: invariant checkers over traces; the run matrix (experiments, one row
per run, results directories, executors); metrics with intervals over the runs
frame, and paired comparisons."""

from .compare import Comparison, compare
from .executors import Executor, ExperimentSummary, Progress, run_cell, run_experiment
from .experiment import Cell, Config, Experiment, ExtraFaults, cell_seed, plan_digest
from .impact import IMPACT_METRICS, fault_impact
from .invariants import Violation, legal_transitions_only, runs_terminate, trace_complete
from .metrics import (
    decisions,
    escalation,
    inconclusive,
    inconclusive_warnings,
    tiers,
    verification,
    violations,
)
from .pricing import ErrorPrices, cost, pareto
from .reliability import pass_k
from .results import Results, read_events, read_runs
from .rows import CHECKS, COLUMNS, EVENTS_SCHEMA, RUNS_SCHEMA
from .stats import cluster_bootstrap, mcnemar_exact, paired_bootstrap, seeds_needed, wilson
from .sweep import ladder_grid, sweep, sweep_points

__all__ = [
    "CHECKS",
    "COLUMNS",
    "EVENTS_SCHEMA",
    "IMPACT_METRICS",
    "RUNS_SCHEMA",
    "Cell",
    "Comparison",
    "Config",
    "ErrorPrices",
    "Executor",
    "Experiment",
    "ExperimentSummary",
    "ExtraFaults",
    "Progress",
    "Results",
    "Violation",
    "cell_seed",
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
    "paired_bootstrap",
    "pareto",
    "pass_k",
    "plan_digest",
    "read_events",
    "read_runs",
    "run_cell",
    "run_experiment",
    "runs_terminate",
    "seeds_needed",
    "sweep",
    "sweep_points",
    "tiers",
    "trace_complete",
    "verification",
    "violations",
    "wilson",
]
