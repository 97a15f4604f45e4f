"""Invariant checkers over traces: each returns the violations it found, never raises.

Checkers read events only — they never re-run anything — so they work the same on
a live trace, a JSONL file or a SQLite database. Each violation names its check,
its run, the offending event's ``seq`` and what happened. The invariants:

==================================  ==============================================================
``runs_terminate``                  every run that started also finished
``trace_complete``                  each run's events are numbered 0, 1, 2, ..., open with
                                    ``run_started`` and close with ``run_finished``
``legal_transitions_only``          every transition is one the workflow allows (needs it)
``writes_verified_or_escalated``    every applied write is verified, undone, or escalated before
                                    its step ends
``no_action_applied_twice``         an idempotency key's applications are successive attempts,
                                    each asked for by a failed verification
``no_conflicting_intents``          no run applies an intent on a resource another run holds
                                    with a conflicting intent (across runs that shared a store)
``no_refused_transition_followed``  a next state the engine refused is not where the run goes
``no_rejected_call_executed``       a tool call the tool layer rejected never runs
``budgets_respected``               no step, simulated second or dollar beyond the run's budget
                                    unless the run stops there with ``budget_exceeded``
==================================  ==============================================================

:func:`check_all` runs them all. The exact definitions are in each checker's docstring.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from windtunnel.orchestrator import Event, Workflow

from ._action_checks import (
    applied_twice,
    conflicting_intents,
    no_action_applied_twice,
    no_conflicting_intents,
    unsettled_writes,
    writes_verified_or_escalated,
)
from ._run_checks import (
    budgets_passed,
    budgets_respected,
    no_refused_transition_followed,
    no_rejected_call_executed,
    refusals_followed,
    rejected_calls_run,
)
from ._violation import Violation
from ._violation import by_run as _by_run

__all__ = [
    "Violation",
    "budgets_respected",
    "check_all",
    "legal_transitions_only",
    "no_action_applied_twice",
    "no_conflicting_intents",
    "no_refused_transition_followed",
    "no_rejected_call_executed",
    "runs_terminate",
    "trace_complete",
    "writes_verified_or_escalated",
]


_PerRun = Callable[[str, Sequence[Event]], list[Violation]]


def _each(runs: Mapping[str, Sequence[Event]], check: _PerRun) -> list[Violation]:
    """``check`` over each run's events, the runs in order."""
    return [found for run_id, run_events in runs.items() for found in check(run_id, run_events)]


def runs_terminate(events: Iterable[Event]) -> list[Violation]:
    """Every run that started also finished."""
    return _each(_by_run(events), _unfinished)


def _unfinished(run_id: str, run_events: Sequence[Event]) -> list[Violation]:
    if any(event.kind == "run_finished" for event in run_events):
        return []
    return [
        Violation(check="runs_terminate", run_id=run_id, seq=None, message="run started but never finished")
    ]


def trace_complete(events: Iterable[Event]) -> list[Violation]:
    """Each run's events are numbered 0, 1, 2, ... without gaps, open with
    ``run_started`` and close with ``run_finished``."""
    return _each(_by_run(events), _incomplete)


def _incomplete(run_id: str, run_events: Sequence[Event]) -> list[Violation]:
    found: list[Violation] = []

    def violation(seq: int | None, message: str) -> None:
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
    transition table, a policy's route is a declared route (a policy's, the budget's,
    or where forced escalations go) or in the table, and every state entered is the
    one the previous transition led to."""
    return _each(_by_run(events), _illegal_in(workflow))


def _illegal_in(workflow: Workflow) -> _PerRun:
    """:func:`legal_transitions_only`'s check of one run's events against ``workflow``."""
    declared = (
        workflow.on_refused.route_to,
        workflow.on_error.route_to,
        workflow.on_budget,
        workflow.escalate_to,
    )
    routes = set(declared) - {None}

    def illegal(run_id: str, run_events: Sequence[Event]) -> list[Violation]:
        found: list[Violation] = []
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

    return illegal


def _check_step(event: Event, current: str | None, workflow: Workflow, routes: set[str | None]) -> str | None:
    if event.kind == "state_entered" and event.state != current:
        return f"entered {event.state!r} but the run was in {current!r}"
    if event.kind == "transition":
        if event.state != current:
            return f"transition from {event.state!r} but the run was in {current!r}"
        allowed: Sequence[str] = workflow.transitions.get(event.state or "", ())
        if event.reason is None and event.target not in allowed:
            return f"handler moved {event.state!r} -> {event.target!r}; allowed: {sorted(allowed)}"
        if event.reason is not None and event.target not in routes and event.target not in allowed:
            return f"policy moved {event.state!r} -> {event.target!r}, which is not a declared route"
    if event.kind == "run_finished" and event.status == "completed" and event.state not in workflow.terminal:
        return f"completed in {event.state!r}, which is not terminal"
    return None


_PER_RUN: tuple[tuple[str, _PerRun], ...] = (
    ("writes_verified_or_escalated", unsettled_writes),
    ("no_action_applied_twice", applied_twice),
    ("no_refused_transition_followed", refusals_followed),
    ("no_rejected_call_executed", rejected_calls_run),
    ("budgets_respected", budgets_passed),
)


def check_all(
    events: Iterable[Event],
    workflow: Workflow | None = None,
    *,
    opposites: Mapping[str, str | None] | None = None,
) -> list[Violation]:
    """Every invariant of this module over ``events`` — ``legal_transitions_only``
    only when ``workflow`` is given, ``no_conflicting_intents`` with ``opposites`` —
    sorted by run, then seq (a run's violations without a seq first).

    ``no_conflicting_intents`` reads the events' runs as having shared one store:
    give the events of one simulation at a time. A checker that raises (it should
    not) becomes one violation saying so, and the others still run.

    Example:
        >>> from windtunnel.scenarios import run_demo
        >>> check_all(run_demo(seed=1).trace.events)
        []
    """
    events = list(events)
    runs = _by_run(events)  # grouped once, for every checker
    found = _guarded("runs_terminate", "", _each, runs, _unfinished)
    found += _guarded("trace_complete", "", _each, runs, _incomplete)
    found += _guarded("no_conflicting_intents", "", conflicting_intents, events, opposites)
    if workflow is not None:
        found += _guarded("legal_transitions_only", "", lambda: _each(runs, _illegal_in(workflow)))
    for run_id, run_events in runs.items():
        for name, per_run in _PER_RUN:
            found.extend(_guarded(name, run_id, per_run, run_id, run_events))
    found.sort(key=lambda violation: (violation.run_id, -1 if violation.seq is None else violation.seq))
    return found


def _guarded(name: str, run_id: str, check: Callable[..., list[Violation]], *args: Any) -> list[Violation]:
    """``check(*args)``; a checker that raises (a bug) becomes one violation saying so,
    rather than hiding what the other checkers found."""
    try:
        return check(*args)
    except Exception as exc:
        return [Violation(check=name, run_id=run_id, seq=None, message=f"the checker raised {exc!r}")]
