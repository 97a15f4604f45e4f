"""The action executor: every write tool call is idempotent, leased, applied and verified.

1. Derive an idempotency key from (run, step, tool, normalized arguments, the call's
   order in the step) and look it up in the ledger: an action recorded before — by
   a life of this run that died — goes on from where it stopped, never from the start.
2. Lease the resource with the action's intent. Another run holding it with the
   opposite intent is a conflict, detected before anything commits; the policy
   refuses, waits, or escalates. A high-impact action escalates unless an approval
   granted exactly its resource and intent.
3. Precheck: already in the desired state is a recorded no-op.
4. Record the action as ``pending`` — a durable store refuses this write from a
   stale owner, which so stops before touching the world — then apply it (under
   the tool's timeout, retries and circuit breaker) and record the outcome.
5. Verify by reading back, with back-off for stale reads. When verification fails:
   apply again, then compensate, then escalate — as the policy says. An application
   again that answers an error, and that reading back does not find, is the
   verification failing again: the policy goes on (a first application that does
   so failed: the model is told).

Every step is on record before the next one starts, with the action's events so
far. A life that finds an action ``pending`` or ``compensating`` does not know
whether the world changed: it records ``action_unknown`` and lets the precheck
(or the read-back) decide, visibly, rather than apply or undo anything twice.

A step that ends with an action unsettled — its state's timeout, the run's budget
or an error cut it short while it applied, verified or undid the write — does not
move on as if it were done: :func:`cut_short` records the verification (or the
undo) as failed and the action as needing a human, and the step escalates. Its
retry would not settle it: a new step makes a new key, whose precheck could only
find the change and call it a no-op.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel

from .actions import ActionPolicy, ActionSpec, action_key
from .checkpoint import Grant
from .context import StepContext
from .errors import EscalationRequired, SimulationError
from .events import VerificationStep
from .model import ToolResultBlock, ToolUseBlock
from .store import ActionStore, Lease, LedgerEntry, LedgerStatus

__all__ = ["cut_short", "execute_action"]

_Phase = Literal["apply", "verify", "compensate"]
_UNDONE: dict[str, bool | None] = {"unverified": None, "compensated": True, "undo_failed": False}
_UNSETTLED = frozenset({"pending", "applied", "compensating"})  # "applied" while not verified


async def execute_action(
    ctx: StepContext,
    *,
    tool: str,
    spec: ActionSpec,
    args: BaseModel,
    use: ToolUseBlock,
    apply: Callable[[], Awaitable[ToolResultBlock]],
    store: ActionStore,
    policy: ActionPolicy,
) -> ToolResultBlock:
    """Run one write tool call through the ledger, the lease, the precheck, the
    application and the verification; see the module docstring.

    Args:
        tool: the write tool's name.
        spec: its action spec.
        args: the call's validated arguments.
        use: the model's tool call.
        apply: runs the tool once (with its timeout, retries and breaker) and
            records ``tool_called``.

    Raises:
        EscalationRequired: on a conflict (policy ``escalate``), a high-impact action
            no approval granted, or an action that could not be verified.
        RunTakenOver: another life owns the run now (a durable store's fencing).
    """
    normalized = json.dumps(args.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    key = action_key(ctx.run_id, ctx.step, tool, normalized, ctx.occurrence(tool, normalized))
    action = _Action(ctx, tool, spec, args, use, apply, store, policy, key)
    entry = store.ledger_get(key)
    if entry is not None:
        return await action.go_on(entry)
    if (
        policy.escalate_high_impact
        and spec.impact(args) == "high"
        and Grant(action.resource, spec.intent) not in ctx.grants
    ):
        raise EscalationRequired(
            "high_impact", f"{tool} ({spec.intent}) on {action.resource} is high impact: a human decides"
        )
    refused = await action.lease()
    if refused is not None:
        return refused
    if await spec.precheck(args):
        ctx._record("action_applied", **action.common, intent=spec.intent, noop=True, from_ledger=False)
        action.output = f"no-op: {action.resource} was already in the desired state ({spec.intent})"
        action.record("noop", verified=True)
        return ToolResultBlock(tool_use_id=use.id, content=action.output)
    return await action.drive("apply")


def cut_short(ctx: StepContext) -> EscalationRequired | None:
    """Settle the write actions ``ctx``'s step left unsettled when it ended — applied
    but not verified, or mid-way through applying or undoing — and return the
    escalation they call for; None when it left none.

    Each one records why: ``verification_failed`` (action ``escalate``) for a write
    applied and not verified yet, ``action_unknown`` for one whose application had
    no outcome yet, a failed ``action_compensated`` for one mid-way through its undo;
    its ledger entry goes ``unverified`` (``undo_failed`` for the undo), as when
    verification fails for good.
    """
    writes = ctx._writes
    if not writes:
        return None
    ctx._writes = None
    details = [action.cut_short() for action in list(writes.values())]
    return EscalationRequired("verification_failed", "; ".join(details))


class _Action:
    """One write action in progress: its key, where it stands, and its ledger entry."""

    __slots__ = (
        "apply",
        "args",
        "attempt",
        "common",
        "ctx",
        "first_seq",
        "key",
        "mark",
        "output",
        "policy",
        "reads",
        "resource",
        "spec",
        "status",
        "store",
        "tool",
        "use",
    )

    def __init__(
        self,
        ctx: StepContext,
        tool: str,
        spec: ActionSpec,
        args: BaseModel,
        use: ToolUseBlock,
        apply: Callable[[], Awaitable[ToolResultBlock]],
        store: ActionStore,
        policy: ActionPolicy,
        key: str,
    ) -> None:
        self.ctx, self.tool, self.spec, self.args, self.use = ctx, tool, spec, args, use
        self.apply, self.store, self.policy, self.key = apply, store, policy, key
        self.resource = spec.resource(args)
        self.common = {"tool": tool, "key": key, "resource": self.resource}
        # What the action records from here on goes into its ledger entry (conflict
        # waits and events replayed from a dead life included), so no crash loses it.
        self.mark = len(ctx.trace.records)
        self.first_seq = ctx.seq
        self.attempt = 1
        self.output = ""
        self.status: LedgerStatus | None = None
        self.reads = 0  # made by the read-back in progress (or the last one)

    def record(self, status: LedgerStatus, *, verified: bool = False) -> None:
        """Put the action on record, with every event it has recorded so far, and
        keep it on the step's unsettled writes until it settles."""
        ctx = self.ctx
        run_id = ctx.run_id
        events = tuple((rec[0], rec[6]) for rec in ctx.trace.records[self.mark :] if rec[1] == run_id)
        self.store.ledger_put(
            LedgerEntry(
                key=self.key,
                run_id=run_id,
                tool=self.tool,
                resource=self.resource,
                intent=self.spec.intent,
                status=status,
                verified=verified,
                at=ctx.now(),
                seq=self.first_seq,
                incarnation=ctx.incarnation,
                attempt=self.attempt,
                output=self.output,
                events=events,
            )
        )
        self.status = status
        if status in _UNSETTLED and not verified:
            self.hold()
        elif ctx._writes is not None:
            ctx._writes.pop(self.key, None)

    def hold(self) -> None:
        """Count the action among the step's unsettled writes."""
        writes = self.ctx._writes
        if writes is None:
            writes = self.ctx._writes = {}
        writes[self.key] = self

    def cut_short(self) -> str:
        """Settle the action its step's end cut short (see :func:`cut_short`); says what
        was cut short."""
        ctx, common, what = self.ctx, self.common, f"{self.tool} on {self.resource}"
        if self.status == "applied":
            ctx._record("verification_failed", **common, attempts=self.reads, action="escalate")
            self.record("unverified")
            return (
                f"{what} was applied, but its step ended after {self.reads} read-back(s), before it verified"
            )
        if self.status == "compensating":
            ctx._record("action_compensated", **common, ok=False)
            self.record("undo_failed")
            return f"{what} did not verify, and its step ended while undoing it"
        self.unknown("its step ended before the outcome was known; a human decides")
        self.record("unverified")
        return f"{what} may have been applied: its step ended before the outcome was known"

    def result(self, *, is_error: bool = False) -> ToolResultBlock:
        return ToolResultBlock(tool_use_id=self.use.id, content=self.output, is_error=is_error)

    def escalation(self, *, undone: bool | None) -> EscalationRequired:
        """Why the unverified action goes to a human: ``undone`` True, False (the undo
        failed) or None (there was no undo)."""
        tail = {None: "", True: " and was undone", False: "; undoing it failed too"}[undone]
        return EscalationRequired(
            "verification_failed",
            f"{self.tool} on {self.resource} did not verify after {self.attempt} application(s){tail}",
        )

    async def go_on(self, entry: LedgerEntry) -> ToolResultBlock:
        """Carry on with an action found in the ledger, from where it stopped."""
        ctx, spec = self.ctx, self.spec
        self.attempt, self.output, self.first_seq = entry.attempt, entry.output, entry.seq
        replayed = not entry.committed
        if replayed:
            # Recorded by a life of the run that died before its next checkpoint: its
            # events died with it. Record them again; do not do them again.
            for kind, fields in entry.events:
                ctx._record(kind, **fields)
        status = entry.status
        if status in ("noop", "failed") or (status == "applied" and entry.verified):
            if replayed:
                self.record(status, verified=entry.verified)  # now this life's, to commit
            elif status != "failed":
                ctx._record(
                    "action_applied",
                    **self.common,
                    intent=spec.intent,
                    noop=status == "noop",
                    from_ledger=True,
                )
                self.output = f"already done: {spec.intent} {self.resource} ({status} at t={entry.at:g}s)"
            return self.result(is_error=status == "failed")
        if status in ("unverified", "compensated", "undo_failed"):
            if replayed:
                self.record(status)
            raise self.escalation(undone=_UNDONE[status])
        # The run was dead for a while: its lease may have lapsed and been taken.
        refused = await self.lease()
        if refused is not None:
            return refused
        self.status = status
        self.hold()
        if status == "applied":
            return await self.drive("verify")
        if status == "pending":
            self.unknown("its life ended before its outcome was recorded; reading it back decides")
            reads = await self.read_back()
            if not reads:
                return await self.drive("apply")
            self.landed(reads, "its answer was lost with a crash")
            return self.result()
        self.unknown("its life ended while undoing it; reading it back decides")
        if not await _undone(spec, self.args, self.policy):
            return await self.drive("compensate")
        ctx._record("action_compensated", **self.common, ok=True, recovered=True)
        self.record("compensated")
        raise self.escalation(undone=True)

    def landed(self, reads: int, why: str) -> None:
        """Record an action whose outcome was unknown and that reading back found in
        effect: applied (recovered) and verified."""
        ctx, spec = self.ctx, self.spec
        ctx._record(
            "action_applied",
            **self.common,
            intent=spec.intent,
            noop=False,
            from_ledger=False,
            attempt=self.attempt,
            recovered=True,
        )
        self.output = f"{spec.intent} {self.resource}: applied ({why})"
        ctx._record("action_verified", **self.common, attempts=reads)
        self.record("applied", verified=True)

    def unknown(self, detail: str) -> None:
        self.ctx._record(
            "action_unknown", **self.common, intent=self.spec.intent, attempt=self.attempt, detail=detail
        )

    async def drive(self, phase: _Phase) -> ToolResultBlock:
        """Apply, verify, reapply, compensate: each step on record before the next."""
        ctx, spec, common = self.ctx, self.spec, self.common
        while True:
            if phase == "apply":
                # On record before the world is touched: a stale owner stops here.
                self.record("pending")
                result = await self.apply()
                self.output = result.content
                if result.is_error:
                    # A write that timed out or failed may have landed all the same.
                    answer = result.content[:120]
                    self.unknown(f"the tool answered an error ({answer}); reading it back decides")
                    reads = await self.read_back()
                    if reads:
                        self.landed(reads, "the tool answered an error, but the change is there")
                        return self.result()
                    if self.attempt == 1:
                        self.record("failed")
                        return result
                    # A re-application: the action was applied before and never
                    # verified; not showing now is its verification failing again.
                    phase = self.unverified()
                    continue
                ctx._record(
                    "action_applied", **common, intent=spec.intent, noop=False, from_ledger=False,
                    attempt=self.attempt,
                )  # fmt: skip
                self.record("applied")
                phase = "verify"
            elif phase == "verify":
                attempts = await self.read_back()
                if attempts:
                    ctx._record("action_verified", **common, attempts=attempts)
                    self.record("applied", verified=True)
                    return self.result()
                phase = self.unverified()
            else:
                self.record("compensating")
                ok = await _compensate(spec, self.args)
                ctx._record("action_compensated", **common, ok=ok)
                self.record("compensated" if ok else "undo_failed")
                raise self.escalation(undone=ok)

    def unverified(self) -> _Phase:
        """Record that the action's read-back failed, and what the policy does next:
        apply again, or undo; escalate at once when it does neither.

        Raises:
            EscalationRequired: when the policy neither applies again nor undoes.
        """
        spec, policy = self.spec, self.policy
        then: VerificationStep
        if self.attempt <= policy.reapply:
            then = "reapply"
        elif policy.compensate and spec.compensate is not None:
            then = "compensate"
        else:
            then = "escalate"
        self.ctx._record("verification_failed", **self.common, attempts=policy.verify_attempts, action=then)
        if then == "escalate":
            self.record("unverified")
            raise self.escalation(undone=None)
        if then == "reapply":
            self.attempt += 1
            return "apply"
        return "compensate"

    async def read_back(self) -> int:
        """Read back until the action shows; the number of reads it took, or 0."""
        policy, verify, args = self.policy, self.spec.verify, self.args
        delay = policy.verify_delay
        self.reads = 0
        for attempt in range(1, policy.verify_attempts + 1):
            shows = await verify(args)
            self.reads = attempt
            if shows:
                return attempt
            if attempt < policy.verify_attempts:
                await asyncio.sleep(delay)
                delay *= 2
        return 0

    async def lease(self) -> ToolResultBlock | None:
        """Lease the resource; a lease another run holds with a conflicting intent is a
        conflict. Returns the refusal to give the model, or None once the lease is taken.

        Raises:
            EscalationRequired: a conflict under policy ``escalate`` (or waited in vain).
        """
        ctx, store, policy, spec, resource = self.ctx, self.store, self.policy, self.spec, self.resource
        intent, opposite = spec.intent, spec.opposite
        deadline = ctx.now() + policy.conflict_wait
        delay = 1.0
        while True:
            wanted = Lease(
                resource=resource, intent=intent, holder=ctx.run_id, at=ctx.now(), incarnation=ctx.incarnation
            )
            held = store.acquire(wanted, opposite=opposite)
            if held is None:
                return None
            waiting = policy.on_conflict == "wait" and ctx.now() < deadline
            ctx._record(
                "conflict_detected",
                tool=self.tool,
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
            if policy.on_conflict != "refuse":
                raise EscalationRequired("conflict", detail)  # escalate, or waited in vain
            self.output = f"refused: {detail}"
            self.record("failed")  # a re-run step gets the same answer
            return self.result(is_error=True)


async def _undone(spec: ActionSpec, args: Any, policy: ActionPolicy) -> bool:
    """Read back, with the verification's back-off (stale reads settle), until the
    action shows undone; False if it still shows after every read."""
    delay = policy.verify_delay
    for attempt in range(1, policy.verify_attempts + 1):
        if not await spec.verify(args):
            return True
        if attempt < policy.verify_attempts:
            await asyncio.sleep(delay)
            delay *= 2
    return False


async def _compensate(spec: ActionSpec, args: Any) -> bool:
    """Undo the action; False when the undo itself failed."""
    assert spec.compensate is not None  # checked by the caller's policy decision
    try:
        await spec.compensate(args)
    except SimulationError:
        raise  # the harness failed, not the undo
    except Exception:
        return False
    return True
