"""The on-call incident workflow, built from what the harness hands it.

```
detect (agent) --> diagnose (agent) --> rollback | restart | scale --> verify --> resolved
   |                  |                         |                      |
   +--> close         +--> close                +--> escalate <--------+
                      +--> escalate (page the human) --> escalated
```

It escalates on triggers of its own, beside the engine's (a high-impact action on a
tier-0 service, a conflict, a write that never verified, a ladder spent): another
operator's deploy in progress or a deploy history it cannot read (it will not act
blind on a live service), nothing earlier to roll back to, and a mitigation whose
effect does not hold while the service soaks.
"""

from __future__ import annotations

import asyncio
import json
import math
from typing import Any

from windtunnel.orchestrator import (
    EscalationRequired,
    Outcome,
    Policy,
    StepContext,
    ToolUseBlock,
    Workflow,
    await_review,
    call_tool,
)
from windtunnel.scenarios.domain import Kit
from windtunnel.simulators import Review

from .playbook import MITIGATIONS

__all__ = ["OPTIONS", "oncall_workflow"]

OPTIONS = ("rollback", "restart", "scale", "wait")
"""What the paged human chooses from."""

_REVIEW_TIMEOUT = 2 * 3600.0  # a human who has not answered in two hours is treated as absent
_SOAK = (0.0, 120.0, 240.0)  # seconds between health reads after a mitigation: it must hold
_HEADROOM = 1.25  # scale to the traffic plus a quarter

DETECT = (
    "You are on call for a web service and were paged. Look at its health and error rate, "
    "then diagnose the incident, or close a false alarm."
)
DIAGNOSE = (
    "You diagnose an incident: read the deploy history, the logs and the metrics; then roll back a bad "
    "deploy, restart a leaking service, scale a saturated one, escalate to a human when unsure, "
    "or close a false alarm."
)


def oncall_workflow(kit: Kit) -> Workflow:
    """Detect and diagnose with agents; roll back, restart or scale; verify; page a human."""
    page, tools, truth = kit.case.input, kit.tools, kit.case.truth
    service = page.service

    async def read(ctx: StepContext, tool: str, **args: Any) -> Any:
        """The tool's answer, decoded; None when it failed."""
        use = ToolUseBlock(id=ctx.new_id(tool), name=tool, input={"service": service, **args})
        result, _ = await call_tool(ctx, tools, [tool], use)
        if result.is_error:
            return None
        answer = json.loads(result.content)
        if isinstance(answer, dict) and answer.get("partial") is True:
            return answer.get("result")
        return answer

    async def write(ctx: StepContext, tool: str, **args: Any) -> bool:
        """Apply one write through the executor; whether it landed."""
        use = ToolUseBlock(id=ctx.new_id(tool), name=tool, input={"service": service, **args})
        result, _ = await call_tool(ctx, tools, [tool], use)
        return not result.is_error

    async def blocked(ctx: StepContext) -> tuple[str | None, list[dict[str, Any]]]:
        """Why a human must take over before any change (None: go ahead), and the deploys."""
        history = await read(ctx, "deploy_history")
        if not isinstance(history, list):
            return "the deploy history cannot be read: no change to a live service blind", []
        busy = [d for d in history if d.get("status") == "in_progress"]
        if busy:
            return f"{busy[0]['by']} is deploying {busy[0]['version']} right now", history
        return None, history

    def escalate_for(trigger: str, why: str, mitigation: str) -> Outcome:
        return Outcome(next="escalate", data={"trigger": trigger, "why": why, "mitigation": mitigation})

    async def rollback(ctx: StepContext) -> Outcome:
        why, history = await blocked(ctx)
        if why is not None:
            return escalate_for("deploy_in_progress", why, "rollback")
        done = [d["version"] for d in history if d.get("status") == "done"]
        earlier = [version for version in done if version != done[0]] if done else []
        if not earlier:
            return escalate_for("no_rollback_target", "no earlier version to roll back to", "rollback")
        landed = await write(ctx, "rollback_deploy", version=earlier[0])
        if not landed:
            return escalate_for("action_failed", f"rollback to {earlier[0]} failed", "rollback")
        return Outcome(next="verify", data={"mitigation": "rollback", "version": earlier[0]})

    async def restart(ctx: StepContext) -> Outcome:
        why, _ = await blocked(ctx)
        if why is not None:
            return escalate_for("deploy_in_progress", why, "restart")
        if not await write(ctx, "restart_service"):
            return escalate_for("action_failed", "the restart failed", "restart")
        return Outcome(next="verify", data={"mitigation": "restart"})

    async def scale(ctx: StepContext) -> Outcome:
        why, _ = await blocked(ctx)
        if why is not None:
            return escalate_for("deploy_in_progress", why, "scale")
        state = await read(ctx, "service_health")
        if not isinstance(state, dict) or not state.get("capacity_rps"):
            return escalate_for("no_health", "health cannot be read: nothing to size the scale on", "scale")
        wanted = math.ceil(state["traffic_rps"] * _HEADROOM / state["capacity_rps"])
        replicas = max(wanted, int(state["replicas"]) + 1)
        if not await write(ctx, "scale_service", replicas=replicas):
            return escalate_for("action_failed", f"scaling to {replicas} failed", "scale")
        return Outcome(next="verify", data={"mitigation": "scale", "replicas": replicas})

    async def verify(ctx: StepContext) -> Outcome:
        # The mitigation must hold while the service soaks, not just look good once.
        for reads, pause in enumerate(_SOAK, start=1):
            if pause:
                await asyncio.sleep(pause)
            state = await read(ctx, "service_health")
            if not isinstance(state, dict) or state.get("healthy") is not True:
                seen = f"error rate {state.get('error_rate')}" if isinstance(state, dict) else "unreadable"
                return Outcome(
                    next="escalate",
                    confidence=1.0,
                    data={"trigger": "not_healthy", "why": f"read {reads}: {seen}", "healthy": False},
                )
        return Outcome(next="resolved", confidence=1.0, data={"healthy": True, "reads": len(_SOAK)})

    async def escalate(ctx: StepContext) -> Outcome:
        proposal = str(ctx.data.get("mitigation") or "wait")
        summary = f"{page.id}: {page.summary or page.signal}; proposed: {proposal}"
        try:
            paged = await write(ctx, "page_human", summary=summary[:500], severity="sev2")
        except EscalationRequired:
            paged = False  # the page itself did not verify: the human is still asked below
        right = MITIGATIONS.get(truth.verdict or "", "wait")
        review = Review(proposal=proposal if proposal in OPTIONS else "wait", options=OPTIONS, right=right)
        try:
            # The deadline outlives a crash: a resumed run waits only for what remains.
            decision = await await_review(
                ctx, lambda: kit.human.review(review), timeout=_REVIEW_TIMEOUT, proposal=summary
            )
        except TimeoutError:
            # Fail-safe: nobody answered, so change nothing more and leave the incident open.
            data = {"paged": paged, "human": "no answer", "fail_safe": "no action"}
            return Outcome(next="escalated", data=data)
        ctx.charge(
            decision.cost,
            source=f"human:{decision.approver}",
            detail=f"{decision.review_minutes:.1f} minutes of review",
        )
        data = {
            "paged": paged,
            "human": decision.choice,
            "human_correct": decision.correct,
            "review_minutes": decision.review_minutes,
        }
        return Outcome(next="escalated", confidence=1.0, data=data)

    return Workflow(
        name="oncall-incident",
        states={
            "detect": kit.agent("detect", system=DETECT, allow=["service_health", "read_metrics"]),
            "diagnose": kit.agent(
                "diagnose",
                system=DIAGNOSE,
                allow=["deploy_history", "read_logs", "read_metrics", "service_health"],
            ),
            "rollback": rollback,
            "restart": restart,
            "scale": scale,
            "verify": verify,
            "escalate": escalate,
        },
        transitions={
            "detect": ["diagnose", "close"],
            "diagnose": ["rollback", "restart", "scale", "escalate", "close"],
            "rollback": ["verify", "escalate"],
            "restart": ["verify", "escalate"],
            "scale": ["verify", "escalate"],
            "verify": ["resolved", "escalate"],
            "escalate": ["escalated"],
        },
        initial="detect",
        terminal=["close", "resolved", "escalated"],
        timeouts={
            "detect": 900.0,
            "diagnose": 1800.0,
            "rollback": 900.0,
            "restart": 900.0,
            "scale": 900.0,
            "verify": 900.0,
        },
        on_refused=Policy(retries=1, route_to="escalate"),
        on_error=Policy(retries=1, route_to="escalate"),
        on_budget="escalated",
        escalate_to="escalate",
    )
