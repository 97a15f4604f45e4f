"""`run()` and `resume()`: start a workflow run, or pick a durable one up again.

The step loop itself is in :mod:`~windtunnel.orchestrator.driver`; checkpoints
and the rules of what a durable run keeps in :mod:`~windtunnel.orchestrator.checkpoint`.
"""

from __future__ import annotations

import asyncio
import weakref
from contextvars import Token
from typing import Any

from .budget import Budget
from .checkpoint import Checkpoint, CheckpointStore, json_problem
from .context import _CURRENT, _Run
from .driver import RunResult, drive
from .durable import resumable_events
from .errors import RunError
from .runtime import Runtime, SystemRuntime
from .store import ActionStore, default_store
from .trace import Trace
from .workflow import Workflow

__all__ = ["active_runs", "resume", "run"]

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
        >>> from windtunnel.orchestrator import Outcome
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
    if state.durable is not None:
        if state.durable.load(state.run_id) is not None:
            raise RunError(
                f"run_id={state.run_id!r} is already in {state.durable!r}: resume() it, or start the run "
                "with another id (a Sim with another seed, or run_id=...)"
            )
        # What a durable run is given must come back unchanged after a resume.
        problem = json_problem(case, "case")
        if problem is not None:
            raise RunError(f"cannot run durably: {problem}")
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
        result = await drive(workflow, state, workflow.initial, 1, [])
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
        RunError: no checkpoint for the run, the run already ended, another workflow,
            or another process owns the run (its lease is live).
        StoreError: the store is damaged, or its events do not cover the checkpoint.
    """
    if not isinstance(workflow, Workflow):
        raise RunError(f"resume() needs a Workflow, got workflow={workflow!r}")
    if not isinstance(store, CheckpointStore):
        raise RunError(f"resume() needs a durable store (a SqliteStore), got store={store!r}")
    checkpoint = _resumable(workflow, run_id, store)
    loop = asyncio.get_running_loop()
    active, _ = _loop_state(loop)
    if run_id in active:
        raise RunError(f"run_id={run_id!r} is already running on this event loop")
    # Take the run for this life: refused while another owner's lease is live, or
    # when another process resumed it first. From here on no other life can write.
    store.claim(run_id, checkpoint.incarnation)
    claimed = checkpoint.incarnation + 1
    try:
        checkpoint = _resumable(workflow, run_id, store)  # as it stands now that it is ours
        events = resumable_events(store, checkpoint)
    except BaseException:
        store.release_owner(run_id, claimed)
        raise
    if trace is None:
        trace = Trace.from_events(events)
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
    state.grants = frozenset(checkpoint.grants)
    # On the same clock (the same simulation, or the machine's monotonic clock) the
    # time spent stopped counts; on another, only the time the run had run.
    now = loop.time()
    state.started = checkpoint.started if now >= checkpoint.saved_at else now - checkpoint.elapsed
    state.saved = len(trace.records)  # what was loaded is committed already
    state.incarnation, state.resumed_seq = checkpoint.incarnation, checkpoint.seq
    state.emit(
        "run_resumed",
        checkpoint.state,
        {"status": checkpoint.status, "attempt": checkpoint.attempt, "steps": checkpoint.steps},
    )
    token = _enter(workflow, state, active)
    result = None
    try:
        result = await drive(workflow, state, checkpoint.state, checkpoint.attempt, list(checkpoint.feedback))
        return result
    finally:
        _leave(state, active, token, result)


def _resumable(workflow: Workflow, run_id: str, store: CheckpointStore) -> Checkpoint:
    """The run's checkpoint, if ``workflow`` can resume it."""
    checkpoint = store.load(run_id)
    if checkpoint is None:
        raise RunError(f"no checkpoint for run_id={run_id!r} in {store!r}")
    if checkpoint.status not in ("running", "paused"):
        raise RunError(f"run {run_id!r} already ended ({checkpoint.status}); there is nothing to resume")
    if checkpoint.workflow != workflow.name:
        ran = checkpoint.workflow
        raise RunError(f"run {run_id!r} ran workflow {ran!r}, not {workflow.name!r}: resume it with that one")
    if checkpoint.fingerprint and checkpoint.fingerprint != workflow.fingerprint:
        raise RunError(
            f"run {run_id!r} ran another version of workflow {workflow.name!r} (its states or transitions "
            "changed since): resume it with the version it ran"
        )
    if checkpoint.state not in workflow.states:
        raise RunError(
            f"run {run_id!r} stands in state {checkpoint.state!r}, which workflow "
            f"{workflow.name!r} does not have"
        )
    return checkpoint


def _enter(workflow: Workflow, state: _Run, active: dict[str, _Run]) -> Token[weakref.ref[_Run] | None]:
    """Register a started or resumed run on its loop, before it is driven."""
    if state.run_id in active:
        raise RunError(f"run_id={state.run_id!r} is already running on this event loop")
    active[state.run_id] = state
    state.workflow = workflow.name
    if state.durable is not None:
        state.fingerprint = workflow.fingerprint
    return _CURRENT.set(weakref.ref(state))


def _leave(
    state: _Run, active: dict[str, _Run], token: Token[weakref.ref[_Run] | None], result: RunResult | None
) -> None:
    """Undo :func:`_enter` once the run stops, however it stops."""
    _CURRENT.reset(token)
    del active[state.run_id]
    # A paused run keeps its leases, and a durable one that died mid-step keeps its
    # leases and its owner lease, as a killed process would: they lapse with the owner
    # lease, or its resumption takes them up again. Any other run — finished,
    # cancelled, or dead without a checkpoint to resume from — lets go.
    died = result is None and not state.cancelled
    if not (died and state.durable is not None) and not (result is not None and result.status == "paused"):
        state.store.release(state.run_id)
    state.trace.flush()
