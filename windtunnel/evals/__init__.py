"""Evaluation over traces: invariant checkers, and the run matrix (experiments, one
row per run, results directories, executors); metrics later."""

from .executors import Executor, ExperimentSummary, run_cell, run_experiment
from .experiment import Cell, Config, Experiment, cell_seed, plan_digest
from .invariants import Violation, legal_transitions_only, runs_terminate, trace_complete
from .results import Results, read_events, read_runs
from .rows import CHECKS, COLUMNS, EVENTS_SCHEMA, RUNS_SCHEMA

__all__ = [
    "CHECKS",
    "COLUMNS",
    "EVENTS_SCHEMA",
    "RUNS_SCHEMA",
    "Cell",
    "Config",
    "Executor",
    "Experiment",
    "ExperimentSummary",
    "Results",
    "Violation",
    "cell_seed",
    "legal_transitions_only",
    "plan_digest",
    "read_events",
    "read_runs",
    "run_cell",
    "run_experiment",
    "runs_terminate",
    "trace_complete",
]
