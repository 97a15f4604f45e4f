"""Invariant checkers over traces: each returns the violations it found, never raises.

Checkers read events only — they never re-run anything — so they work the same on
a live trace, a JSONL file or a SQLite database.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from windtunnel.orchestrator import Event, Workflow

__all__ = ["Violation", "legal_transitions_only", "runs_terminate", "trace_complete"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One broken invariant, located in the trace."""

    check: str
    run_id: str
    seq: int | None
    message: str


def _by_run(events: Iterable[Event]) -> dict[str, list[Event]]:
    runs: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        runs[event.run_id].append(event)
    return runs


def runs_terminate(events: Iterable[Event]) -> list[Violation]:
    """Every run that started also finished."""
    return [
        Violation(check="runs_terminate", run_id=run_id, seq=None, message="run started but never finished")
        for run_id, run_events in _by_run(events).items()
        if not any(event.kind == "run_finished" for event in run_events)
    ]


def trace_complete(events: Iterable[Event]) -> list[Violation]:
    """Each run's events are numbered 0, 1, 2, ... without gaps, open with
    ``run_started`` and close with ``run_finished``."""
    found: list[Violation] = []
    for run_id, run_events in _by_run(events).items():

        def violation(seq: int | None, message: str, run_id: str = run_id) -> None:
            found.append(Violation(check="trace_complete", run_id=run_id, seq=seq, message=message))

        for expected, event in enumerate(run_events):
            if event.seq != expected:
                violation(event.seq, f"expected seq {expected}, found {event.seq}")
                break
        if run_events[0].kind != "run_started":
            violation(run_events[0].seq, f"first event is {run_events[0].kind!r}, not 'run_started'")
        finished = [event.seq for event in run_events if event.kind == "run_finished"]
        if finished and finished != [run_events[-1].seq]:
            violation(finished[0], "events follow 'run_finished', or it appears more than once")
    return found


def legal_transitions_only(events: Iterable[Event], workflow: Workflow) -> list[Violation]:
    """Every transition is allowed by ``workflow``: a handler's choice is in the
    transition table, a policy's route is a declared route, and every state entered
    is the one the previous transition led to."""
    routes = {workflow.on_refused.route_to, workflow.on_error.route_to, workflow.on_budget} - {None}
    found: list[Violation] = []
    for run_id, run_events in _by_run(events).items():
        current: str | None = workflow.initial
        for event in run_events:
            message = _check_step(event, current, workflow, routes)
            if message is not None:
                found.append(
                    Violation(check="legal_transitions_only", run_id=run_id, seq=event.seq, message=message)
                )
            if event.kind == "transition":
                current = event.target
    return found


def _check_step(event: Event, current: str | None, workflow: Workflow, routes: set[str | None]) -> str | None:
    if event.kind == "state_entered" and event.state != current:
        return f"entered {event.state!r} but the run was in {current!r}"
    if event.kind == "transition":
        if event.state != current:
            return f"transition from {event.state!r} but the run was in {current!r}"
        allowed: Sequence[str] = workflow.transitions.get(event.state or "", ())
        if event.reason is None and event.target not in allowed:
            return f"handler moved {event.state!r} -> {event.target!r}; allowed: {sorted(allowed)}"
        if event.reason is not None and event.target not in routes:
            return f"policy moved {event.state!r} -> {event.target!r}, which is not a declared route"
    if event.kind == "run_finished" and event.status == "completed" and event.state not in workflow.terminal:
        return f"completed in {event.state!r}, which is not terminal"
    return None
