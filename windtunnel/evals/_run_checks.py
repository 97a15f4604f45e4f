"""Invariant checkers over what the engine and the tool layer did in each step: a
refused transition not followed, a rejected tool call not run, budgets respected.
Each checker's docstring defines its invariant exactly;
:mod:`windtunnel.evals.invariants` exports them. Each has a per-run part that
``check_all`` calls after grouping the events once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from windtunnel.orchestrator import BudgetExceeded, Event, RunStarted, TransitionRefused

from ._violation import Violation, by_run

__all__ = [
    "budgets_passed",
    "budgets_respected",
    "no_refused_transition_followed",
    "no_rejected_call_executed",
    "refusals_followed",
    "rejected_calls_run",
]


def no_refused_transition_followed(events: Iterable[Event]) -> list[Violation]:
    """A next state the engine refused is not where the run goes: after a
    ``transition_refused`` (``state`` S chose ``proposed`` P; the refusal policy's
    ``action`` and ``route_to`` R), the rest of that step moves the run only as the
    policy said.

    A violation is the first of: a ``transition`` to P before the next state is
    entered, unless the policy routed there (action ``route`` and R == P); else the
    next ``state_entered`` being P, unless that is the policy's doing (``retry`` with
    P == S, or ``route`` with P == R). The look stops at ``budget_exceeded``,
    ``run_resumed`` or ``run_finished``: a budget, a crash or the end moved the run.
    """
    return [
        found
        for run_id, run_events in by_run(events).items()
        for found in refusals_followed(run_id, run_events)
    ]


def refusals_followed(run_id: str, run_events: Sequence[Event]) -> list[Violation]:
    found: list[Violation] = []
    for index, refused in enumerate(run_events):
        if refused.kind != "transition_refused":
            continue
        for later in run_events[index + 1 :]:
            if later.kind == "transition":
                if later.target == refused.proposed and not _routed(refused, later.target):
                    found.append(
                        _followed(run_id, refused, later.seq, f"moved there (reason: {later.reason})")
                    )
                    break
            elif later.kind == "state_entered":
                entered = later.state
                retried = refused.action == "retry" and entered == refused.state
                if entered == refused.proposed and not (retried or _routed(refused, entered)):
                    found.append(_followed(run_id, refused, later.seq, "entered it"))
                break
            elif later.kind in ("budget_exceeded", "run_resumed", "run_finished"):
                break
    return found


def _routed(refused: TransitionRefused, target: str | None) -> bool:
    return refused.action == "route" and target == refused.route_to


def _followed(run_id: str, refused: TransitionRefused, seq: int, what: str) -> Violation:
    return Violation(
        check="no_refused_transition_followed",
        run_id=run_id,
        seq=seq,
        message=f"{refused.state!r} chose {refused.proposed!r}, refused at seq {refused.seq} "
        f"(policy: {refused.action}), but the run {what}",
    )


def no_rejected_call_executed(events: Iterable[Event]) -> list[Violation]:
    """A tool call the tool layer rejected (``tool_rejected``: unknown tool, not
    allowed, invalid arguments) never runs: no ``tool_called`` or ``tool_timeout``
    with its ``call_id`` follows it in the same model turn — up to the run's next
    ``model_called``, ``state_entered`` or ``run_resumed``. (Call ids are unique within
    a model's response, not across conversations, so the look stops at the next turn.
    A write's ``action_applied`` carries no call id: a rejected write that ran shows
    as its ``tool_called``, unless the precheck or the ledger found it done.)
    """
    return [
        found
        for run_id, run_events in by_run(events).items()
        for found in rejected_calls_run(run_id, run_events)
    ]


def rejected_calls_run(run_id: str, run_events: Sequence[Event]) -> list[Violation]:
    found: list[Violation] = []
    rejected: dict[str, tuple[int, str]] = {}  # call id -> (seq, why), in this model turn
    for event in run_events:
        if event.kind == "tool_rejected":
            rejected[event.call_id] = (event.seq, f"{event.reason}: {event.tool}")
        elif event.kind == "tool_called" or event.kind == "tool_timeout":
            refusal = rejected.pop(event.call_id, None)
            if refusal is not None:
                found.append(
                    Violation(
                        check="no_rejected_call_executed",
                        run_id=run_id,
                        seq=event.seq,
                        message=f"call {event.call_id!r} to {event.tool!r} was rejected at seq {refusal[0]} "
                        f"({refusal[1]}) but ran ({event.kind})",
                    )
                )
        elif event.kind in ("model_called", "state_entered", "run_resumed"):
            rejected.clear()
    return found


def budgets_respected(events: Iterable[Event]) -> list[Violation]:
    """No step, simulated second or dollar beyond the run's budget — the one its
    ``run_started`` records — unless the run stops there with ``budget_exceeded``.

    A violation is any of: a ``state_entered`` whose ``step`` passes ``max_steps``; an
    event (other than ``run_resumed``) more than ``max_duration`` simulated seconds
    after the start, before any ``budget_exceeded``; the step in which the running
    total of ``model_called`` and ``cost_charged`` costs passes ``max_cost`` going on
    (a ``transition``, ``transition_refused``, ``handler_failed``, ``state_entered`` or
    ``run_finished``) without a ``budget_exceeded`` first; a ``budget_exceeded`` for a
    budget that was not used up; and anything but the escalation to ``on_budget`` and
    ``run_finished`` after a ``budget_exceeded``. Time is measured from the
    ``run_started``; a run resumed on another clock carries its elapsed time over. A
    run without ``run_started`` is not judged (``trace_complete`` says so).
    """
    return [
        found for run_id, run_events in by_run(events).items() for found in budgets_passed(run_id, run_events)
    ]


_TOLERANCE = 1e-9
_STEP_ENDS = frozenset(
    {"transition", "transition_refused", "handler_failed", "state_entered", "run_finished"}
)


def budgets_passed(run_id: str, run_events: Sequence[Event]) -> list[Violation]:
    """:func:`budgets_respected` for one run's events."""
    start = next((event for event in run_events if isinstance(event, RunStarted)), None)
    if start is None:
        return []
    found: list[Violation] = []
    reported: set[str] = set()  # each kind of violation once per run: the first says where

    def violation(what: str, seq: int, message: str) -> None:
        if what not in reported:
            reported.add(what)
            found.append(Violation(check="budgets_respected", run_id=run_id, seq=seq, message=message))

    max_steps, max_duration, max_cost = start.max_steps, start.max_duration, start.max_cost
    origin = previous = start.sim_time
    rebased = False
    steps, cost = 0, 0.0
    passed: int | None = None  # the seq at which the cost passed its budget
    over: int | None = None  # the seq of budget_exceeded
    for event in run_events:
        if event.kind == "run_resumed":
            if event.sim_time < previous:  # resumed on another clock: elapsed time carries over
                origin, rebased = event.sim_time - (previous - origin), True
            previous, steps = event.sim_time, event.steps
            continue
        previous = event.sim_time
        elapsed = event.sim_time - origin
        if over is not None:
            if event.kind not in ("escalated", "transition", "run_finished"):
                message = f"{event.kind} after budget_exceeded at seq {over}, which ends the run"
                violation("after", event.seq, message)
            continue
        if event.kind == "budget_exceeded":
            over = event.seq
            if not _exhausted(event, steps, elapsed, cost, rebased=rebased, start=start):
                limit = {"steps": max_steps, "duration": max_duration, "cost": max_cost}[event.budget]
                used = {"steps": steps, "duration": elapsed, "cost": cost}[event.budget]
                message = f"budget_exceeded ({event.budget}) with {used:g} used of max_{event.budget}={limit}"
                violation("unjustified", event.seq, message)
            continue
        if event.kind == "state_entered":
            steps = event.step
            if max_steps is not None and steps > max_steps:
                violation("steps", event.seq, f"entered step {steps} of max_steps={max_steps}")
        if max_duration is not None and elapsed > max_duration * (1 + _TOLERANCE):
            message = (
                f"{event.kind} at {elapsed:g}s, past max_duration={max_duration:g}s, without budget_exceeded"
            )
            violation("duration", event.seq, message)
        if event.kind == "model_called" or event.kind == "cost_charged":
            cost += event.cost
            if passed is None and max_cost is not None and cost > max_cost * (1 + _TOLERANCE) + _TOLERANCE:
                passed = event.seq
        elif passed is not None and event.kind in _STEP_ENDS:
            message = (
                f"the cost passed max_cost={max_cost:g} at seq {passed} but the run went on to "
                f"{event.kind} without budget_exceeded"
            )
            violation("cost", event.seq, message)
    return found


def _exhausted(
    event: BudgetExceeded, steps: int, elapsed: float, cost: float, *, rebased: bool, start: RunStarted
) -> bool:
    """Whether the budget ``event`` names was used up: the steps reached, the time reached
    (or unknown: the run was resumed on another clock), the cost passed."""
    if event.budget == "steps":
        return start.max_steps is not None and steps >= start.max_steps
    if event.budget == "duration":
        limit = start.max_duration
        return limit is not None and (rebased or elapsed >= limit * (1 - _TOLERANCE))
    return start.max_cost is not None and cost > start.max_cost * (1 - _TOLERANCE) - _TOLERANCE
