"""The action executor: every write tool call is idempotent, leased, applied and verified.

1. Derive an idempotency key from (run id, tool, normalized arguments) and look it
   up in the ledger: an action applied before — by this run, before a crash — is
   not applied again.
2. Lease the resource with the action's intent. Another run holding it with the
   opposite intent is a conflict, detected before anything commits; the policy
   refuses, waits, or escalates.
3. Precheck: already in the desired state is a recorded no-op.
4. Apply (under the tool's timeout, retries and circuit breaker), and record it in
   the ledger at once.
5. Verify by reading back, with back-off for stale reads. When verification fails:
   apply again, then compensate, then escalate — as the policy says.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, replace
from typing import Any

from pydantic import BaseModel

from .context import StepContext
from .errors import EscalationRequired
from .events import ConflictPolicy
from .model import ToolResultBlock, ToolUseBlock
from .store import ActionStore, Lease, LedgerEntry, LedgerStatus

__all__ = ["ActionPolicy", "action_key", "execute_action"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionPolicy:
    """How the executor verifies, recovers and handles conflicts."""

    verify_attempts: int = 4
    """Read-backs before verification counts as failed."""
    verify_delay: float = 5.0
    """Seconds before the second read-back; doubles each time (stale reads settle)."""
    reapply: int = 1
    """Times the action is applied again after a failed verification."""
    compensate: bool = True
    """Undo an action that never verified, when the tool can."""
    on_conflict: ConflictPolicy = "escalate"
    conflict_wait: float = 300.0
    """For ``on_conflict="wait"``: seconds to wait for the other run's lease."""
    escalate_high_impact: bool = True
    """Escalate before applying a high-impact action."""


def action_key(run_id: str, step: int, tool: str, normalized: str, occurrence: int = 0) -> str:
    """The idempotency key of the ``occurrence``-th call of ``tool`` with ``normalized``
    arguments in step ``step`` of run ``run_id``.

    A step that runs again after a crash keeps its number and makes its calls in the
    same order, so it finds them done; the same call made again — later in the step,
    or in a later step (block, unblock, block again) — is a new action, which the
    precheck judges.
    """
    digest = hashlib.sha256(
        f"{run_id}\x00{step}\x00{tool}\x00{normalized}\x00{occurrence}".encode()
    ).hexdigest()
    return f"{tool}:{digest[:16]}"


async def execute_action(
    ctx: StepContext,
    tool: Any,
    args: BaseModel,
    use: ToolUseBlock,
    *,
    store: ActionStore,
    policy: ActionPolicy,
    approved: bool = False,
) -> ToolResultBlock:
    """Run one write tool call through the ledger, the lease, the precheck, the
    application and the verification; see the module docstring.

    Raises:
        EscalationRequired: on a conflict (policy ``escalate``), a high-impact action
            not yet ``approved``, or an action that could not be verified.
    """
    from .tools import run_tool  # the tool layer's timeouts, retries, breaker and event

    action = tool.action
    normalized = json.dumps(args.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    key = action_key(ctx.run_id, ctx.step, tool.name, normalized, ctx.occurrence(tool.name, normalized))
    resource = action.resource(args)
    common = {"tool": tool.name, "key": key, "resource": resource}

    run = ctx._run
    entry = store.ledger_get(key)
    if entry is not None:
        if not entry.committed and entry.incarnation < run.incarnation:
            # Done in a life of the run that died before its next checkpoint: its
            # events died with it. Record them again; do not do it again.
            for kind, fields in entry.events:
                ctx.emit(kind, **fields)
            # Recorded in this life now: a later call of the same action is a repeat.
            store.ledger_put(replace(entry, incarnation=run.incarnation))
            if entry.status == "compensated":
                raise EscalationRequired("verification_failed", f"{tool.name} on {resource} was undone")
            if entry.status == "applied" and not entry.verified:
                await _verified_or_escalate(ctx, action, args, policy, common)
            return _result(use, entry.output)
        if entry.status == "compensated":
            raise EscalationRequired("verification_failed", f"{tool.name} on {resource} was undone")
        if entry.status == "applied" and not entry.verified:
            await _verified_or_escalate(ctx, action, args, policy, common)
        ctx.emit(
            "action_applied", **common, intent=action.intent, noop=entry.status == "noop", from_ledger=True
        )
        return _result(use, f"already done: {action.intent} {resource} ({entry.status} at t={entry.at:g}s)")

    if policy.escalate_high_impact and not approved and action.impact(args) == "high":
        raise EscalationRequired("high_impact", f"{tool.name} on {resource} is high impact: a human decides")

    # From here on, what the action records goes into its ledger entry (waiting on a
    # conflict included), so that a crash cannot lose it.
    mark, first_seq = len(ctx.trace.records), run.seq
    refused = await _take_lease(ctx, tool.name, action.intent, action.opposite, resource, store, policy)
    if refused is not None:
        return ToolResultBlock(tool_use_id=use.id, content=f"refused: {refused}", is_error=True)

    def record(status: LedgerStatus, *, verified: bool, output: str) -> None:
        # Committed at once, with the action's events so far: a crash after this
        # point must not apply the action again, nor lose what it recorded.
        events = tuple((rec[0], rec[6]) for rec in ctx.trace.records[mark:] if rec[1] == run.run_id)
        store.ledger_put(
            LedgerEntry(
                key=key,
                run_id=run.run_id,
                tool=tool.name,
                resource=resource,
                intent=action.intent,
                status=status,
                verified=verified,
                at=ctx.now(),
                seq=first_seq,
                incarnation=run.incarnation,
                output=output,
                events=events,
            )
        )

    if await action.precheck(args):
        ctx.emit("action_applied", **common, intent=action.intent, noop=True, from_ledger=False)
        output = f"no-op: {resource} was already in the desired state ({action.intent})"
        record("noop", verified=True, output=output)
        return _result(use, output)

    for round_ in range(policy.reapply + 1):
        result = await run_tool(ctx, tool, args, use)
        if result.is_error:
            return result
        ctx.emit(
            "action_applied",
            **common,
            intent=action.intent,
            noop=False,
            from_ledger=False,
            attempt=round_ + 1,
        )
        record("applied", verified=False, output=result.content)
        attempts = await _verify(ctx, action, args, policy)
        if attempts > 0:
            ctx.emit("action_verified", **common, attempts=attempts)
            record("applied", verified=True, output=result.content)
            return result
        last = round_ == policy.reapply
        step = (
            "reapply"
            if not last
            else ("compensate" if policy.compensate and action.compensate else "escalate")
        )
        ctx.emit("verification_failed", **common, attempts=policy.verify_attempts, action=step)
        if step == "compensate":
            ok = True
            try:
                await action.compensate(args)
            except Exception:
                ok = False
            ctx.emit("action_compensated", **common, ok=ok)
            record("compensated", verified=False, output=result.content)
    raise EscalationRequired(
        "verification_failed",
        f"{tool.name} on {resource} did not verify after {policy.reapply + 1} application(s)",
    )


async def _take_lease(
    ctx: StepContext,
    tool: str,
    intent: str,
    opposite: str | None,
    resource: str,
    store: ActionStore,
    policy: ActionPolicy,
) -> str | None:
    """Lease ``resource``; a lease another run holds with a conflicting intent is a
    conflict. Returns why the call is refused, or None once the lease is taken."""
    deadline = ctx.now() + policy.conflict_wait
    delay = 1.0
    while True:
        conflicting = [
            lease
            for lease in store.leases(resource)
            if lease.holder != ctx.run_id
            and lease.intent != intent
            and (opposite is None or lease.intent == opposite)
        ]
        if not conflicting:
            store.lease(Lease(resource=resource, intent=intent, holder=ctx.run_id, at=ctx.now()))
            return None
        held = conflicting[0]
        waiting = policy.on_conflict == "wait" and ctx.now() < deadline
        ctx.emit(
            "conflict_detected",
            tool=tool,
            resource=resource,
            intent=intent,
            held_by=held.holder,
            held_intent=held.intent,
            policy=policy.on_conflict,
        )
        if waiting:
            await asyncio.sleep(min(delay, max(0.0, deadline - ctx.now())))
            delay *= 2
            continue
        detail = f"{resource} is held by run {held.holder!r} to {held.intent}; this run wants to {intent}"
        if policy.on_conflict == "refuse":
            return detail
        raise EscalationRequired("conflict", detail)  # escalate, or waited in vain


async def _verified_or_escalate(
    ctx: StepContext, action: Any, args: BaseModel, policy: ActionPolicy, common: dict[str, str]
) -> None:
    """Verify an action whose verification was cut short (a crash, an exception);
    undo it (when it can be undone and the policy says so) and escalate if it fails."""
    attempts = await _verify(ctx, action, args, policy)
    if attempts:
        ctx.emit("action_verified", **common, attempts=attempts)
        return
    undo = policy.compensate and action.compensate is not None
    ctx.emit(
        "verification_failed",
        **common,
        attempts=policy.verify_attempts,
        action="compensate" if undo else "escalate",
    )
    if undo:
        ok = True
        try:
            await action.compensate(args)
        except Exception:
            ok = False
        ctx.emit("action_compensated", **common, ok=ok)
    raise EscalationRequired("verification_failed", f"{common['resource']} did not verify")


async def _verify(ctx: StepContext, action: Any, args: BaseModel, policy: ActionPolicy) -> int:
    """Read back until the action shows; the number of reads it took, or 0."""
    delay = policy.verify_delay
    for attempt in range(1, policy.verify_attempts + 1):
        if await action.verify(args):
            return attempt
        if attempt < policy.verify_attempts:
            await asyncio.sleep(delay)
            delay *= 2
    return 0


def _result(use: ToolUseBlock, text: str) -> ToolResultBlock:
    return ToolResultBlock(tool_use_id=use.id, content=text)
