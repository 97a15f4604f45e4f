"""`run()`: drive a workflow from its initial state to a terminal one, recording every step.

Each step enters a state, calls its handler under the state's timeout and the
run's budget, checks the chosen next state against the transition table, records
what happened and moves on. Nothing the handler does escapes to the caller: an
exception, a timeout, a bad outcome or an illegal next state is an event and a
policy decision; an exhausted budget ends the run in the declared state.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from contextvars import Token
from dataclasses import dataclass
from typing import Any

from .budget import Budget
from .checkpoint import Checkpoint, CheckpointStore
from .context import _CURRENT, StepContext, _Run
from .errors import AgentError, EscalationRequired, RunError, RunPaused, SimulationError
from .events import EscalationTrigger, PolicyAction, RunStatus
from .runtime import Runtime, SystemRuntime
from .store import ActionStore, default_store
from .trace import Trace
from .workflow import Outcome, Policy, Workflow

__all__ = ["RunResult", "active_runs", "resume", "run"]

_DEFAULT_BUDGET = Budget()
_SYSTEM = SystemRuntime()

# The runs in progress on each event loop, so that a simulator can say which run
# and state are stuck when a loop deadlocks.
_ACTIVE: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, _Run]] = weakref.WeakKeyDictionary()
# The last loop's runs and store: a simulation runs thousands of runs on one loop,
# and two weak-dictionary lookups per run cost more than a transition.
_last: tuple[weakref.ref[asyncio.AbstractEventLoop], dict[str, _Run], ActionStore] | None = None


def _loop_state(loop: asyncio.AbstractEventLoop) -> tuple[dict[str, _Run], ActionStore]:
    global _last
    if _last is not None and _last[0]() is loop:
        return _last[1], _last[2]
    active = _ACTIVE.setdefault(loop, {})
    store = default_store(loop)
    _last = (weakref.ref(loop), active, store)
    return active, store


# Not frozen: a frozen dataclass sets each field through object.__setattr__, which
# cost 1.5 us a run, a tenth of a short run's time. Treat it as read-only.
@dataclass(slots=True, kw_only=True)
class RunResult:
    """How a run ended."""

    run_id: str
    status: RunStatus
    """completed, budget_exceeded, failed or cancelled."""
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


def active_runs(loop: asyncio.AbstractEventLoop) -> dict[str, str]:
    """The runs in progress on ``loop`` and the state each is in."""
    return {run_id: run.state for run_id, run in _ACTIVE.get(loop, {}).items()}


async def run(
    workflow: Workflow,
    case: Any = None,
    *,
    env: Runtime | None = None,
    trace: Trace | None = None,
    budget: Budget | None = None,
    run_id: str | None = None,
    store: ActionStore | None = None,
) -> RunResult:
    """Run ``workflow`` on ``case`` to the end and return how it ended.

    Args:
        workflow: the state machine to drive.
        case: whatever the handlers work on (an alert, a ticket); recorded in the trace.
        env: randomness and ids; a ``Sim`` under simulation, OS sources by default.
        trace: where events go; a new in-memory trace by default.
        budget: limits on steps, simulated duration and cost; ``Budget()`` by default.
        run_id: the run's id; a new one from ``env`` by default.
        store: the idempotency ledger and leases of write actions; by default one
            shared by every run on this event loop, so that leases span them.

    Example:
        >>> import asyncio
        >>> async def triage(ctx): return Outcome(next="close", confidence=0.9)
        >>> wf = Workflow(states={"triage": triage}, transitions={"triage": ["close"]},
        ...               initial="triage", terminal=["close"])
        >>> result = asyncio.run(run(wf, {"alert": "A-1"}, run_id="run-1"))
        >>> result.status, result.final_state, [e.kind for e in result.trace]
        ('completed', 'close', ['run_started', 'state_entered', 'transition', 'run_finished'])
    """
    if not isinstance(workflow, Workflow):
        raise RunError(f"run() needs a Workflow, got workflow={workflow!r}")
    if budget is not None and not isinstance(budget, Budget):
        raise RunError(f"budget must be a Budget, got budget={budget!r}")
    loop = asyncio.get_running_loop()
    env = _SYSTEM if env is None else env
    budget = _DEFAULT_BUDGET if budget is None else budget
    active, shared_store = _loop_state(loop)
    state = _Run(
        run_id=env.new_id("run") if run_id is None else run_id,
        case=case,
        env=env,
        trace=Trace() if trace is None else trace,
        budget=budget,
        loop=loop,
        state=workflow.initial,
        store=shared_store if store is None else store,
        action_policy=workflow.actions,
    )
    if state.durable is not None and state.durable.load(state.run_id) is not None:
        raise RunError(
            f"run_id={state.run_id!r} is already in {state.durable!r}: resume() it, or start the run "
            "with another id (a Sim with another seed, or run_id=...)"
        )
    state.emit(
        "run_started",
        workflow.initial,
        {
            "workflow": workflow.name,
            "case": case,
            "max_steps": budget.max_steps,
            "max_duration": budget.max_duration,
            "max_cost": budget.max_cost,
        },
    )
    # Not a helper coroutine: each layer of awaiting costs a run a microsecond.
    token = _enter(workflow, state, active)
    result = None
    try:
        result = await _drive(workflow, state, workflow.initial, 1, [])
        return result
    finally:
        _leave(state, active, token, result)


async def resume(
    workflow: Workflow,
    run_id: str,
    *,
    store: CheckpointStore,
    env: Runtime | None = None,
    trace: Trace | None = None,
    case: Any = None,
) -> RunResult:
    """Resume run ``run_id`` from its last checkpoint in ``store``: after a crash, a
    killed process, or a pause for approval.

    The state the run was in runs again from its start; actions it had applied are
    found in the ledger and not applied again. The trace (a new one holding the
    run's committed events, by default) goes on from the checkpoint's sequence
    number, so no event is lost or duplicated.

    Args:
        workflow: the same workflow the run was started with.
        run_id: the run to resume.
        store: the durable store the run was checkpointed in.
        env: randomness and ids.
        trace: where events go; by default a new trace holding the committed ones.
        case: the case object, when handlers need it as it was (not its JSON form).

    Raises:
        RunError: no checkpoint for the run, the run already ended, or another workflow.
    """
    checkpoint = store.load(run_id)
    if checkpoint is None:
        raise RunError(f"no checkpoint for run_id={run_id!r} in {store!r}")
    if checkpoint.status not in ("running", "paused"):
        raise RunError(f"run {run_id!r} already ended ({checkpoint.status}); there is nothing to resume")
    if checkpoint.workflow != workflow.name:
        ran = checkpoint.workflow
        raise RunError(f"run {run_id!r} ran workflow {ran!r}, not {workflow.name!r}: resume it with that one")
    loop = asyncio.get_running_loop()
    active, _ = _loop_state(loop)
    if run_id in active:
        raise RunError(f"run_id={run_id!r} is already running on this event loop")
    # Take the run for this life; another process resuming it at the same moment loses.
    if not store.claim(run_id, checkpoint.incarnation):
        raise RunError(f"run {run_id!r} was resumed elsewhere meanwhile; it is not resumed twice")
    if trace is None:
        trace = Trace.from_events(store.events(run_id))
    state = _Run(
        run_id=run_id,
        case=checkpoint.case if case is None else case,
        env=_SYSTEM if env is None else env,
        trace=trace,
        budget=Budget(**checkpoint.budget),
        loop=loop,
        state=checkpoint.state,
        store=store,
        action_policy=workflow.actions,
    )
    state.seq, state.steps, state.cost = checkpoint.seq, checkpoint.steps, checkpoint.cost
    state.data = dict(checkpoint.data)
    # On the same clock (the same simulation, or the machine's monotonic clock) the
    # time spent stopped counts; on another, only the time the run had run.
    now = loop.time()
    state.started = checkpoint.started if now >= checkpoint.saved_at else now - checkpoint.elapsed
    state.saved = len(trace.records)  # what was loaded is committed already
    state.incarnation, state.resumed_seq = checkpoint.incarnation + 1, checkpoint.seq
    state.emit(
        "run_resumed",
        checkpoint.state,
        {"status": checkpoint.status, "attempt": checkpoint.attempt, "steps": checkpoint.steps},
    )
    token = _enter(workflow, state, active)
    result = None
    try:
        result = await _drive(
            workflow, state, checkpoint.state, checkpoint.attempt, list(checkpoint.feedback)
        )
        return result
    finally:
        _leave(state, active, token, result)


def _enter(workflow: Workflow, state: _Run, active: dict[str, _Run]) -> Token[weakref.ref[_Run] | None]:
    """Register a started or resumed run on its loop, before it is driven."""
    if state.run_id in active:
        raise RunError(f"run_id={state.run_id!r} is already running on this event loop")
    active[state.run_id] = state
    state.workflow = workflow.name
    return _CURRENT.set(weakref.ref(state))


def _leave(
    state: _Run, active: dict[str, _Run], token: Token[weakref.ref[_Run] | None], result: RunResult | None
) -> None:
    """Undo :func:`_enter` once the run stops, however it stops."""
    _CURRENT.reset(token)
    del active[state.run_id]
    # A paused run keeps its leases, and so does a durable one that died mid-step (as
    # a killed process would): its resumption takes them up again. Any other run —
    # finished, cancelled, or dead without a checkpoint to resume from — lets go.
    died = result is None and not state.cancelled
    if not (died and state.durable is not None) and not (result is not None and result.status == "paused"):
        state.store.release(state.run_id)
    state.trace.flush()


async def _drive(wf: Workflow, run: _Run, state: str, attempt: int, feedback: list[str]) -> RunResult:
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
    durable = run.durable
    if durable:
        _checkpoint(run, "running", state, attempt, feedback)
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
            trigger: EscalationTrigger
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

            if max_cost is not None and run.cost > max_cost:
                return _exceeded(wf, run, state, "cost", max_cost, run.cost)
            if timed_out and deadline is not None and loop.time() >= deadline:
                return _exceeded(wf, run, state, "duration", budget.max_duration, run.elapsed())
            if error is not None and isinstance(error, SimulationError):
                raise error  # the harness failed, not the agent: never a handled step failure
            if error is not None and isinstance(error, RunPaused):
                if not durable:
                    error = RunError(
                        f"{state!r} paused for approval, but the run's store {run.store!r} is not durable"
                    )
                else:
                    # The step runs again on resume: it does not count twice, and it
                    # keeps its step number (approval ids depend on it).
                    run.steps -= 1
                    _checkpoint(run, "paused", state, attempt, feedback)
                    return _finish(run, "paused", state, str(error))
            if error is not None and isinstance(error, EscalationRequired) and wf.escalate_to is not None:
                # A forced trigger: to the escalation state, whatever the confidence.
                _escalate(run, state, wf.escalate_to, error.trigger, error.detail)
                state, attempt, feedback = wf.escalate_to, 1, []
                if durable:
                    _checkpoint(run, "running", state, attempt, feedback)
                continue

            if error is None:
                # The common case — an Outcome without confidence — is decided inline.
                problem = (
                    None if type(outcome) is Outcome and outcome.confidence is None else _invalid(outcome)
                )
                if problem is None:
                    target = outcome.next
                    if target in spec.allowed:
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
                            _checkpoint(run, "running", state, attempt, feedback)
                        continue
                    action, route = _decide(wf.on_refused, attempt)
                    allowed = sorted(spec.allowed)
                    emit(
                        "transition_refused",
                        state,
                        {
                            "proposed": target,
                            "allowed": allowed,
                            "attempt": attempt,
                            "action": action,
                            "route_to": route,
                        },
                    )
                    why = f"next={target!r} is not allowed from {state!r}; allowed: {allowed}"
                    trigger = "refused_transition"
                else:
                    action, route = _decide(wf.on_error, attempt)
                    emit(
                        "handler_failed",
                        state,
                        {
                            "error": "InvalidOutcome",
                            "message": problem,
                            "timed_out": False,
                            "attempt": attempt,
                            "action": action,
                            "route_to": route,
                        },
                    )
                    why = problem
                    trigger = "tool_failures"
            else:
                action, route = _decide(wf.on_error, attempt)
                if timed_out:
                    message = f"{state!r} timed out after {spec.timeout:g}s"
                else:
                    message = str(error) or type(error).__name__
                emit(
                    "handler_failed",
                    state,
                    {
                        "error": type(error).__name__,
                        "message": message,
                        "timed_out": timed_out,
                        "attempt": attempt,
                        "action": action,
                        "route_to": route,
                    },
                )
                why = f"{type(error).__name__}: {message}"
                trigger = error.trigger if isinstance(error, AgentError) else "tool_failures"

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
                    _checkpoint(run, "running", state, attempt, feedback)
            else:
                return _finish(run, "failed", state, why)
    except asyncio.CancelledError:
        run.cancelled = True
        _finish(run, "cancelled", run.state, "the run was cancelled")
        raise
    except RunError as exc:
        # A checkpoint that cannot be written (data that is not JSON): the run ends
        # failed, recorded, rather than breaking out half-saved.
        run.durable = None
        return _finish(run, "failed", run.state, str(exc))


def _invalid(outcome: Any) -> str | None:
    """Why a handler's return value is not a usable outcome, or None."""
    if not isinstance(outcome, Outcome):
        return f"handler returned {outcome!r}, not an Outcome"
    confidence = outcome.confidence
    if confidence is not None and not 0.0 <= confidence <= 1.0:
        return f"confidence={confidence!r} is outside [0, 1]"
    return None


def _decide(policy: Policy, attempt: int) -> tuple[PolicyAction, str | None]:
    if attempt <= policy.retries:
        return "retry", None
    if policy.route_to is not None:
        return "route", policy.route_to
    return "fail", None


def _checkpoint(run: _Run, status: Any, state: str, attempt: int, feedback: list[str]) -> None:
    """Commit where the run stands, with its events since the last checkpoint."""
    records = run.trace.records
    mine = [record for record in records[run.saved :] if record[1] == run.run_id]
    run.saved = len(records)
    run.durable.save(  # type: ignore[union-attr]
        Checkpoint(
            run_id=run.run_id,
            workflow=run.workflow,
            status=status,
            state=state,
            attempt=attempt,
            feedback=tuple(feedback),
            data=run.data,
            steps=run.steps,
            seq=run.seq,
            cost=run.cost,
            elapsed=run.elapsed(),
            case=run.case,
            budget=run.budget.model_dump(),
            incarnation=run.incarnation,
            started=run.started,
            saved_at=run.loop.time(),
        ),
        mine,
    )


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


def _exceeded(wf: Workflow, run: _Run, state: str, name: str, limit: Any, used: float) -> RunResult:
    run.emit("budget_exceeded", state, {"budget": name, "limit": limit, "used": used})
    reason = f"{name} budget exceeded: used {used:g} of {limit:g}"
    final = state
    if wf.on_budget is not None and wf.on_budget != state:
        _escalate(run, state, wf.on_budget, "budget", reason)
        final = wf.on_budget
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
            _checkpoint(run, status, state, 0, [])
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
