"""The step loop: drive a run from a state to a terminal one, recording every step.

Each step enters a state, calls its handler under the state's timeout and the
run's budget, checks the chosen next state against the transition table, records
what happened and moves on. Nothing the handler does escapes to the caller: an
exception, a timeout, a bad outcome or an illegal next state is an event and a
policy decision; an exhausted budget ends the run in the declared state. A step that
ends with a write unsettled — cut short while applying, verifying or undoing it —
escalates, whatever the policy says (see :func:`~.executor.cut_short`). Only the
harness's own failures escape — a :class:`SimulationError`, or a :class:`StoreError`
(a damaged or busy store, or a life that lost its run to another owner).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from .checkpoint import json_problem
from .context import StepContext, _Run
from .durable import save_checkpoint
from .errors import AgentError, EscalationRequired, RunError, RunPaused, SimulationError, StoreError
from .events import EscalationTrigger, PolicyAction, RunStatus
from .executor import cut_short
from .trace import Trace
from .workflow import Outcome, Policy, StateSpec, Workflow

__all__ = ["RunResult", "drive"]


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which
# cost 1.5 us a run, a tenth of a short run's time. Treat it as read-only.
@dataclass(slots=True, kw_only=True)
class RunResult:
    """How a run ended."""

    run_id: str
    status: RunStatus
    """completed, budget_exceeded, failed, cancelled — or paused, waiting for a decision."""
    final_state: str
    steps: int
    duration: float
    """Simulated seconds from start to end."""
    cost: float
    """USD charged to the run."""
    data: dict[str, Any]
    """Everything the run's outcomes produced, merged in order."""
    reason: str | None
    """Why the run did not complete; None when it did."""
    trace: Trace


async def drive(wf: Workflow, run: _Run, state: str, attempt: int, feedback: list[str]) -> RunResult:
    """Run steps from ``state`` until the run ends or pauses."""
    budget = run.budget
    loop = run.loop
    specs = wf.specs
    emit = run.emit
    deadline = None if budget.max_duration is None else run.started + budget.max_duration
    max_steps = budget.max_steps
    max_cost = budget.max_cost
    # The two events of every step are appended inline rather than through
    # run.emit: it saves a call per event on the hottest path.
    append, run_id, now, wall = run.append, run.run_id, loop.time, time.time
    durable = run.durable is not None
    if durable:
        save_checkpoint(run, "running", state, attempt, feedback)
    try:
        while True:
            spec = specs.get(state)
            if spec is None:
                return _finish(run, "completed", state, None)
            if max_steps is not None and run.steps >= max_steps:
                return _exceeded(wf, run, state, "steps", max_steps, run.steps)
            if deadline is not None and loop.time() >= deadline:
                return _exceeded(wf, run, state, "duration", budget.max_duration, run.elapsed())
            run.steps += 1
            run.state = state
            seq = run.seq
            run.seq = seq + 1
            append(
                ("state_entered", run_id, seq, now(), wall(), state, {"step": run.steps, "attempt": attempt})
            )

            ctx = StepContext(run, state, spec.allowed, attempt, tuple(feedback) if feedback else ())
            # Stays set through the step's transition, so that what records then
            # (a simulator observing the trace) still knows the step.
            run.step = ctx
            limit = None if spec.timeout is None else loop.time() + spec.timeout
            if deadline is not None and (limit is None or deadline < limit):
                limit = deadline
            outcome: Any = None
            error: BaseException | None = None
            timed_out = False
            if limit is None:
                try:
                    outcome = await spec.handler(ctx)
                except Exception as exc:
                    error = exc
            else:
                timeout = asyncio.timeout_at(limit)
                try:
                    async with timeout:
                        outcome = await spec.handler(ctx)
                except TimeoutError as exc:
                    error, timed_out = exc, timeout.expired()
                except Exception as exc:
                    error = exc
            cut = None
            if ctx._writes and not isinstance(error, SimulationError | StoreError | RunPaused):
                # A write the step left unsettled goes to a human: a retry would make it
                # anew under another key and find it done. (A life that died, or paused,
                # settles it itself when the run resumes: the step keeps its key.)
                cut = cut_short(ctx)
                if error is None:
                    error = cut

            if max_cost is not None and run.cost > max_cost:
                return _exceeded(wf, run, state, "cost", max_cost, run.cost, cut)
            if timed_out and deadline is not None and loop.time() >= deadline:
                return _exceeded(wf, run, state, "duration", budget.max_duration, run.elapsed(), cut)

            if error is None:
                # The common case — an Outcome without confidence, or with data a
                # durable run need not check — is decided inline.
                problem = (
                    None
                    if type(outcome) is Outcome
                    and outcome.confidence is None
                    and not (durable and outcome.data)
                    else _invalid(outcome, durable)
                )
                if problem is None and outcome.next in spec.allowed:
                    target = outcome.next
                    if outcome.data:
                        run.data.update(outcome.data)
                    seq = run.seq
                    run.seq = seq + 1
                    fields = {
                        "target": target,
                        "confidence": outcome.confidence,
                        "data": outcome.data,
                        "reason": None,
                    }
                    append(("transition", run_id, seq, now(), wall(), state, fields))
                    state, attempt = target, 1
                    if feedback:
                        feedback = []
                    # Into a terminal state, the finishing checkpoint follows at once.
                    if durable and state in specs:
                        save_checkpoint(run, "running", state, attempt, feedback)
                    continue
            else:
                if isinstance(error, SimulationError | StoreError):
                    # The harness failed, the store did, or this life lost its run to
                    # another owner: none of it is the agent's doing to handle.
                    raise error
                if isinstance(error, RunPaused):
                    if not durable:
                        error = RunError(
                            f"{state!r} paused for approval, but the run's store {run.store!r} is not durable"
                        )
                    else:
                        # The step runs again on resume: it does not count twice, and it
                        # keeps its step number (approval ids depend on it).
                        run.steps -= 1
                        save_checkpoint(run, "paused", state, attempt, feedback)
                        return _finish(run, "paused", state, str(error))
                if (
                    cut is not None
                    and wf.escalate_to is not None
                    and not isinstance(error, EscalationRequired)
                ):
                    _refuse(wf, run, spec, attempt, outcome, None, error, timed_out, route_to=wf.escalate_to)
                    error = cut
                if isinstance(error, EscalationRequired) and wf.escalate_to is not None:
                    # A forced trigger: to the escalation state, whatever the confidence.
                    _escalate(run, state, wf.escalate_to, error.trigger, error.detail)
                    state, attempt, feedback = wf.escalate_to, 1, []
                    if durable:
                        save_checkpoint(run, "running", state, attempt, feedback)
                    continue
                problem = None

            action, route, why, trigger = _refuse(wf, run, spec, attempt, outcome, problem, error, timed_out)
            feedback.append(f"attempt {attempt}: {why}")
            if action == "retry":
                attempt += 1
            elif route is not None:
                if route == wf.escalate_to:
                    _escalate(run, state, route, trigger, why)
                else:
                    emit(
                        "transition",
                        state,
                        {"target": route, "confidence": None, "data": {}, "reason": f"policy: {why}"},
                    )
                state, attempt, feedback = route, 1, []
                if durable:
                    save_checkpoint(run, "running", state, attempt, feedback)
            else:
                return _finish(run, "failed", state, why)
    except asyncio.CancelledError:
        run.cancelled = True
        _finish(run, "cancelled", run.state, "the run was cancelled")
        raise
    except RunError as exc:
        # A checkpoint that cannot be written (an event that is not JSON): the run
        # ends failed, recorded, rather than breaking out half-saved.
        run.durable = None
        return _finish(run, "failed", run.state, str(exc))


def _refuse(
    wf: Workflow,
    run: _Run,
    spec: StateSpec,
    attempt: int,
    outcome: Any,
    problem: str | None,
    error: BaseException | None,
    timed_out: bool,
    *,
    route_to: str | None = None,
) -> tuple[PolicyAction, str | None, str, EscalationTrigger]:
    """Record why a step gave no usable, allowed next state — a refused transition, an
    invalid outcome, a failed or timed-out handler — and what the policy does about it.

    Args:
        route_to: where a failed handler's step goes whatever the policy says (the
            escalation state, when it left a write unsettled).

    Returns the policy's action, where it routes, why (for the feedback), and the
    escalation trigger if it routes to the escalation state.
    """
    state = spec.name
    if error is None and problem is None:
        action, route = _decide(wf.on_refused, attempt)
        allowed = sorted(spec.allowed)
        run.emit(
            "transition_refused",
            state,
            {
                "proposed": outcome.next,
                "allowed": allowed,
                "attempt": attempt,
                "action": action,
                "route_to": route,
            },
        )
        return (
            action,
            route,
            f"next={outcome.next!r} is not allowed from {state!r}; allowed: {allowed}",
            "refused_transition",
        )
    action, route = _decide(wf.on_error, attempt) if route_to is None else ("route", route_to)
    if error is None:
        name, message, why = "InvalidOutcome", problem, problem
        trigger: EscalationTrigger = "tool_failures"
    else:
        name = type(error).__name__
        message = f"{state!r} timed out after {spec.timeout:g}s" if timed_out else (str(error) or name)
        why = f"{name}: {message}"
        trigger = error.trigger if isinstance(error, AgentError) else "tool_failures"
    run.emit(
        "handler_failed",
        state,
        {
            "error": name,
            "message": message,
            "timed_out": timed_out,
            "attempt": attempt,
            "action": action,
            "route_to": route,
        },
    )
    return action, route, str(why), trigger


def _invalid(outcome: Any, durable: bool) -> str | None:
    """Why a handler's return value is not a usable outcome, or None."""
    if not isinstance(outcome, Outcome):
        return f"handler returned {outcome!r}, not an Outcome"
    confidence = outcome.confidence
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        return f"confidence={confidence!r} is outside [0, 1]"
    if durable and outcome.data:
        return json_problem(dict(outcome.data), "outcome data")
    return None


def _decide(policy: Policy, attempt: int) -> tuple[PolicyAction, str | None]:
    if attempt <= policy.retries:
        return "retry", None
    if policy.route_to is not None:
        return "route", policy.route_to
    return "fail", None


def _escalate(run: _Run, state: str, to: str, trigger: EscalationTrigger, detail: str) -> None:
    """Record an escalation and the transition it makes."""
    run.emit(
        "escalated",
        state,
        {"trigger": trigger, "to": to, "from_tier": None, "confidence": None, "detail": detail},
    )
    run.emit(
        "transition",
        state,
        {"target": to, "confidence": None, "data": {}, "reason": f"escalation: {trigger}"},
    )


def _exceeded(
    wf: Workflow,
    run: _Run,
    state: str,
    name: str,
    limit: Any,
    used: float,
    cut: EscalationRequired | None = None,
) -> RunResult:
    """End the run over budget, escalated to ``on_budget`` if declared — or, when the
    step left a write unsettled (``cut``), to the escalation state."""
    run.emit("budget_exceeded", state, {"budget": name, "limit": limit, "used": used})
    reason = f"{name} budget exceeded: used {used:g} of {limit:g}"
    final = state
    if wf.on_budget is not None and wf.on_budget != state:
        _escalate(run, state, wf.on_budget, "budget", reason)
        final = wf.on_budget
    elif cut is not None and wf.escalate_to is not None and wf.escalate_to != state:
        _escalate(run, state, wf.escalate_to, cut.trigger, cut.detail)
        final = wf.escalate_to
    return _finish(run, "budget_exceeded", final, reason)


def _finish(run: _Run, status: RunStatus, state: str, reason: str | None) -> RunResult:
    run.state = state
    duration = run.elapsed()
    if status != "paused":
        run.emit(
            "run_finished",
            state,
            {
                "status": status,
                "steps": run.steps,
                "duration": duration,
                "total_cost": run.cost,
                "reason": reason,
            },
        )
        if run.durable:
            save_checkpoint(run, status, state, 0, [])
    return RunResult(
        run_id=run.run_id,
        status=status,
        final_state=state,
        steps=run.steps,
        duration=duration,
        cost=run.cost,
        data=run.data,
        reason=reason,
        trace=run.trace,
    )
