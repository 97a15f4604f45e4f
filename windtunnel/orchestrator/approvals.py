"""Human approvals that pause a run durably, and the decisions that resume it.

An approval state's handler (:func:`approval_gate`) records a request in the
run's checkpoint store and pauses the run: the engine checkpoints it and returns
with status ``paused``, so the caller may exit. A decision (:func:`decide`) is
recorded in the same store; :func:`~windtunnel.orchestrator.resume` then runs the
approval state again, which finds the decision and moves on. A request still
undecided at its deadline follows the declared fail-safe (``on_timeout``).

A step that waits for a human in-process instead (a simulated reviewer, a chat
reply) uses :func:`await_review`: in a durable run its request and deadline are on
record too, so that a life resumed after a crash waits only until the deadline the
first life set, not for a new one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from typing import Literal, TypeAlias, TypeVar

from .checkpoint import Approval, CheckpointStore, Grant
from .context import StepContext
from .errors import RunError, RunPaused
from .workflow import Handler, Outcome

__all__ = ["Decision", "approval_gate", "await_review", "decide"]

Decision: TypeAlias = Literal["approve", "reject", "modify"]
T = TypeVar("T")


def approval_gate(
    *,
    approve: str,
    reject: str,
    on_timeout: str,
    timeout: float,
    modify: str | None = None,
    proposal: Callable[[StepContext], str] | None = None,
    grants: Callable[[StepContext], Sequence[Grant]] | None = None,
) -> Handler:
    """A state handler that asks a human and pauses the run until someone decides.

    Args:
        approve, reject, modify: the next state for each decision (``modify`` goes
            to ``reject``'s state when not given).
        on_timeout: the fail-safe state when nobody decided within ``timeout``
            simulated seconds (typically: do not act, escalate further).
        proposal: what the human is asked, from the step context; the run's data by default.
        grants: what an approval authorizes, each one intent on one resource (e.g.
            ``[Grant("host:db-01", "isolate")]``): once approved, the action executor
            applies high-impact actions with exactly that resource and intent without
            escalating — no other resource, no other intent. Shown to the human with
            the proposal, and kept in the run's checkpoint.
    """

    async def gate(ctx: StepContext) -> Outcome:
        store = ctx.store
        if not isinstance(store, CheckpointStore):
            raise RunError(
                f"{ctx.state!r} asks for approval, but the run's store {store!r} cannot pause a run"
            )
        approval_id = f"{ctx.run_id}:{ctx.state}:{ctx.step}"
        request = store.approval(approval_id)
        now = ctx.now()
        if request is None:
            text = proposal(ctx) if proposal is not None else f"proceed with {dict(ctx.data)!r}"
            asked = tuple(grants(ctx)) if grants is not None else ()
            for grant in asked:
                if not isinstance(grant, Grant):
                    raise RunError(f"grants must return Grant(resource, intent) values, got {grant!r}")
            if asked:
                text += "; grants: " + ", ".join(f"{g.intent} {g.resource}" for g in asked)
            request = Approval(
                id=approval_id,
                run_id=ctx.run_id,
                state=ctx.state,
                proposal=text,
                requested_at=now,
                deadline=now + timeout,
                grants=asked,
            )
            store.put_approval(request)
            ctx._record(
                "approval_requested", approval_id=approval_id, proposal=text, deadline=request.deadline
            )
            raise RunPaused(f"run {ctx.run_id!r} waits for approval {approval_id!r}")
        if request.decision is None:
            if now < request.deadline:
                if not _recorded(ctx, "approval_requested", approval_id):
                    # The life that asked died before its pause was saved: its event too.
                    ctx._record(
                        "approval_requested",
                        approval_id=approval_id,
                        proposal=request.proposal,
                        deadline=request.deadline,
                    )
                raise RunPaused(f"run {ctx.run_id!r} still waits for approval {approval_id!r}")
            # Closed for good, unless a human decided in time meanwhile: then that counts.
            closed = replace(request, decision="timeout", decided_at=now)
            if store.put_approval(closed, if_pending=True):
                request = closed
            else:
                request = store.approval(approval_id) or closed
        if request.decision == "timeout":
            ctx._record(
                "approval_decided",
                approval_id=approval_id,
                decision="timeout",
                by=None,
                waited=(request.decided_at or now) - request.requested_at,
                next=on_timeout,
            )
            return Outcome(next=on_timeout, data={"approval": "timeout", "fail_safe": on_timeout})
        decision = request.decision
        if decision not in ("approve", "reject", "modify"):  # a store that lost or mangled it
            raise RunError(f"approval {approval_id!r} holds decision={decision!r}; it cannot be acted on")
        target = {"approve": approve, "reject": reject, "modify": modify or reject}[decision]
        waited = (request.decided_at or now) - request.requested_at
        granted = request.grants if request.decision == "approve" else ()
        ctx._record(
            "approval_decided",
            approval_id=approval_id,
            decision=request.decision,
            by=request.by,
            waited=waited,
            next=target,
            grants=[(g.resource, g.intent) for g in granted],
        )
        if granted:
            ctx._grant(frozenset(granted))
        return Outcome(
            next=target, confidence=1.0, data={"approval": request.decision, "approved_by": request.by}
        )

    return gate


async def await_review(
    ctx: StepContext, ask: Callable[[], Awaitable[T]], *, timeout: float, proposal: str
) -> T:
    """Await a human's answer, ``ask()``, until ``timeout`` simulated seconds after the
    step first asked — in whichever life of the run that was.

    In a durable run the request is an :class:`Approval` (id ``run:state:step``, as
    :func:`approval_gate`'s) with its deadline, closed ``answered`` or ``timeout``: a
    life resumed after a crash waits only for what remains of the deadline, and one
    that finds the request timed out times out at once. An answer lost with a crash
    is asked for again, under a new deadline. Without a durable store, it is
    ``asyncio.timeout(timeout)`` around ``ask()``.

    Raises:
        TimeoutError: nobody answered by the deadline.
    """
    store = ctx.store
    if not isinstance(store, CheckpointStore):
        async with asyncio.timeout(timeout):
            return await ask()
    approval_id = f"{ctx.run_id}:{ctx.state}:{ctx.step}"
    request = store.approval(approval_id)
    now = ctx.now()
    if request is None or request.decision not in (None, "timeout"):
        request = Approval(
            id=approval_id,
            run_id=ctx.run_id,
            state=ctx.state,
            proposal=proposal,
            requested_at=now,
            deadline=now + timeout,
        )
        store.put_approval(request)
    try:
        if request.decision == "timeout" or now >= request.deadline:
            raise TimeoutError
        async with asyncio.timeout_at(request.deadline):
            answer = await ask()
    except TimeoutError:
        store.put_approval(replace(request, decision="timeout", decided_at=ctx.now()), if_pending=True)
        raise
    store.put_approval(replace(request, decision="answered", decided_at=ctx.now()), if_pending=True)
    return answer


def _recorded(ctx: StepContext, kind: str, approval_id: str) -> bool:
    """Whether the run's trace already holds an event ``kind`` for ``approval_id``."""
    run_id = ctx.run_id
    return any(
        record[0] == kind and record[1] == run_id and record[6].get("approval_id") == approval_id
        for record in ctx.trace.records
    )


def decide(
    store: CheckpointStore, approval_id: str, decision: Decision, *, by: str, at: float, note: str = ""
) -> Approval:
    """Record a human's ``decision`` on a pending request; resume the run afterwards.

    Raises:
        RunError: for an unknown request, one already decided, or an unknown decision.
    """
    request = store.approval(approval_id)
    if request is None:
        pending = [a.id for a in store.pending()]
        raise RunError(f"no approval request {approval_id!r}; pending: {pending}")
    if request.decision is not None:
        raise RunError(f"approval {approval_id!r} was already decided: {request.decision} by {request.by}")
    if at > request.deadline:
        raise RunError(
            f"approval {approval_id!r} passed its deadline t={request.deadline:g}s before t={at:g}s; "
            "the run takes its fail-safe when resumed"
        )
    if decision not in ("approve", "reject", "modify"):
        raise RunError(f"decision={decision!r} must be 'approve', 'reject' or 'modify'")
    decided = replace(request, decision=decision, by=by, decided_at=at, note=note)
    if not store.put_approval(decided, if_pending=True):
        now = store.approval(approval_id)
        state = "nothing" if now is None else f"{now.decision} by {now.by}"
        raise RunError(
            f"approval {approval_id!r} was closed meanwhile ({state}); this decision does not count"
        )
    return decided
