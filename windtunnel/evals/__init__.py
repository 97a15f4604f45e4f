"""Evaluation over traces: invariant checkers now; run matrices, metrics and fuzzing later."""

from .invariants import Violation, legal_transitions_only, runs_terminate, trace_complete

__all__ = ["Violation", "legal_transitions_only", "runs_terminate", "trace_complete"]
