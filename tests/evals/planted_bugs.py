"""Planted-bug workflows: the SOC workflow with one deliberate orchestration bug each.

The fuzzer's acceptance test runs them (``tests.evals.planted_bugs:NAME``) to show
that generated fault plans find each bug, and that ``correct`` — the SOC workflow
itself — gives it nothing to report. Each variant is the SOC workflow built as
usual, with one handler wrapped or one route changed; each bug shows only under
faults, never in a run without them:

===================  ==========================================================================
``unverified_write`` ``block_ip`` is "verified" by the apply's own report (no exception: done),
                     and the ``verify`` state trusts ``contain``'s report: a silent failure is
                     verified and the case closed with the address still open
``never_escalates``  forced escalations (a failed verification, a conflict, a spent ladder) and
                     the rollback path close the case instead of reaching a human
``timeout_approves`` a review nobody answered within the timeout counts as the proposal
                     approved: the case is closed, as if a human had signed off
``retry_without_key`` a ``block_ip`` that failed is tried again by calling the tool directly,
                     around the action executor: no idempotency key, lease, precheck or read-back
``correct``          the SOC workflow, unchanged
===================  ==========================================================================
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path

from windtunnel.orchestrator import Handler, Outcome, Policy, StepContext, ToolUseBlock, Workflow
from windtunnel.orchestrator.tools import Tool, ToolRegistry, run_tool
from windtunnel.scenarios.domain import Kit
from windtunnel.scenarios.soc import soc_workflow

__all__ = [
    "PLAIN",
    "correct",
    "never_escalates",
    "plain_paths",
    "retry_without_key",
    "timeout_approves",
    "unverified_write",
]

PLAIN = (
    "benign-backup",
    "benign-scanner",
    "c2-beacon",
    "critical-host-c2",
    "privileged-login",
    "suspicious-login",
)
"""The SOC scenarios that meet no fault of their own: where the fuzzer hunts the planted bugs."""


def plain_paths() -> list[Path]:
    """The files of :data:`PLAIN`."""
    folder = Path(__file__).resolve().parents[2] / "windtunnel/scenarios/soc/scenarios"
    return [folder / f"{name}.yaml" for name in PLAIN]


correct = soc_workflow
"""The SOC workflow, unchanged: the fuzzer must report nothing against it."""


def unverified_write(kit: Kit) -> Workflow:
    """The SOC workflow whose block is verified by the apply's report instead of a read-back."""
    tools = ToolRegistry(_trusting(tool) if tool.name == "block_ip" else tool for tool in kit.tools)
    base = soc_workflow(dataclasses.replace(kit, tools=tools))

    async def verify(ctx: StepContext) -> Outcome:
        # The bug: contain said it blocked the address, so it is blocked — no firewall read.
        if ctx.data.get("contained"):
            return Outcome(next="close", confidence=1.0, data={"verified": True, "reads": 0})
        return Outcome(next="rollback", confidence=1.0, data={"verified": False, "reads": 0})

    return _variant(base, "unverified-write", handlers={"verify": verify})


def _trusting(tool: Tool) -> Tool:
    """``tool`` whose action's verifier believes the tool's answer rather than the world."""
    assert tool.action is not None  # block_ip is a write tool
    spec, apply = tool.action, tool.fn
    answered: set[str] = set()  # resources the tool said it changed

    async def call(args: object) -> object:
        result = await apply(args)
        answered.add(spec.resource(args))  # it answered without an error: take it as done
        return result

    async def reported(args: object) -> bool:
        return spec.resource(args) in answered

    return dataclasses.replace(tool, fn=call, action=dataclasses.replace(spec, verify=reported))


def never_escalates(kit: Kit) -> Workflow:
    """The SOC workflow whose escalation routes lead to ``close``: no human is ever asked."""
    base = soc_workflow(kit)
    rollback = base.handlers["rollback"]

    async def rollback_and_close(ctx: StepContext) -> Outcome:
        outcome = await rollback(ctx)
        # The bug: the block did not verify and was undone; the case is closed, not escalated.
        return dataclasses.replace(outcome, next="close")

    to_close = Policy(retries=1, route_to="close")
    return _variant(
        base,
        "never-escalates",
        handlers={"rollback": rollback_and_close},
        transitions={"rollback": ["close"]},
        # The bug: forced triggers (failed verification, conflict, a spent ladder) close the case.
        escalate_to="close",
        on_refused=to_close,
        on_error=to_close,
    )


def timeout_approves(kit: Kit) -> Workflow:
    """The SOC workflow in which a review nobody answered counts as approved."""
    base = soc_workflow(kit)
    escalate = base.handlers["escalate"]

    async def escalate_or_assume(ctx: StepContext) -> Outcome:
        outcome = await escalate(ctx)
        if outcome.data.get("human") != "no answer":
            return outcome
        # The bug: silence taken for approval — the proposal stands and the case is closed.
        return Outcome(next="close", data={"human": "no answer", "approved": "on timeout"})

    return _variant(
        base,
        "timeout-approves",
        handlers={"escalate": escalate_or_assume},
        transitions={"escalate": ["escalated", "close"]},
    )


def retry_without_key(kit: Kit) -> Workflow:
    """The SOC workflow whose ``contain`` retries a failed block by calling the tool itself."""
    base = soc_workflow(kit)
    contain = base.handlers["contain"]
    tool = kit.tools.get("block_ip")
    assert tool is not None  # a SOC registry has it

    async def contain_with_retry(ctx: StepContext) -> Outcome:
        outcome = await contain(ctx)
        if outcome.data.get("contained"):
            return outcome
        # The bug: try again around the action executor — no idempotency key, no lease, no
        # precheck, no read-back. Had the first call landed unseen, this applies it twice.
        use = ToolUseBlock(id=ctx.new_id("retry"), name=tool.name, input={"ip": kit.case.input.dst_ip})
        result = await run_tool(ctx, tool, tool.input_model.model_validate(use.input), use)
        return dataclasses.replace(outcome, data={**outcome.data, "contained": not result.is_error})

    return _variant(base, "retry-without-key", handlers={"contain": contain_with_retry})


def _variant(
    base: Workflow,
    bug: str,
    *,
    handlers: Mapping[str, Handler] | None = None,
    transitions: Mapping[str, list[str]] | None = None,
    escalate_to: str | None = None,
    on_refused: Policy | None = None,
    on_error: Policy | None = None,
) -> Workflow:
    """``base`` with some handlers, transitions, routes and policies replaced, named for its bug."""
    return Workflow(
        name=f"{base.name}+{bug}",
        states={**base.handlers, **(handlers or {})},
        transitions={**base.transitions, **(transitions or {})},
        initial=base.initial,
        terminal=base.terminal,
        timeouts=base.timeouts,
        on_refused=on_refused or base.on_refused,
        on_error=on_error or base.on_error,
        on_budget=base.on_budget,
        escalate_to=escalate_to or base.escalate_to,
        actions=base.actions,
    )
