"""``windtunnel fuzz``: find the smallest fault plan that breaks a workflow, and keep
it as a regression scenario.

A campaign (:func:`fuzz`) replays the saved regressions, then runs trials: a
scenario with a swarm of generated faults over its own (:mod:`.generate`), judged
by the invariant checkers and the grader (:mod:`.trial`); a new failure is shrunk
to a minimal plan (:mod:`.shrink`) and written as a scenario file
(:mod:`.regression`). :mod:`.coverage` counts what the trials reached and leans
generation toward what they did not; :func:`breaking_point` searches one fault's
severity for the point where the workflow starts to fail.
"""

from .breaking import BreakingPoint, Level, breaking_point
from .campaign import fuzz
from .report import Finding, FuzzProgress, FuzzReport
from .trial import ORACLES, Failure, Oracle, Outcome, Subject

__all__ = [
    "ORACLES",
    "BreakingPoint",
    "Failure",
    "Finding",
    "FuzzProgress",
    "FuzzReport",
    "Level",
    "Oracle",
    "Outcome",
    "Subject",
    "breaking_point",
    "fuzz",
]
