"""The SOC investigation workflow, built from what the harness hands it.

```
triage (agent) --> investigate (agent) --> contain --> verify --> close
   |                    |                                 |
   +--> close           +--> escalate (human) --> escalated
                        +--> close                 rollback --> escalate
```

:func:`soc_hunt_workflow` puts a ``scope`` agent between investigate and contain: it
sweeps every host of the world for the attacker before containing (a long
investigation: dozens of reads and model calls).
"""

from __future__ import annotations

import asyncio
import json

from windtunnel.orchestrator import (
    Handler,
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

__all__ = ["soc_hunt_workflow", "soc_workflow"]

_REVIEW_TIMEOUT = 2 * 3600.0  # a human who has not answered in two hours is treated as absent

TRIAGE = "You triage SOC alerts: look at the logs and the asset, then investigate or close."
INVESTIGATE = (
    "You investigate SOC alerts: check the address, the processes and the user; then contain the threat, "
    "escalate to a human when the asset is critical or you are unsure, or close a false alarm."
)
SCOPE = (
    "You scope a confirmed intrusion: search every host's logs and processes for the attacker, "
    "then contain it, escalate to a human, or close a false alarm."
)
_SCOPE_TURNS = 200  # one model call per read, two reads per host


def soc_workflow(kit: Kit) -> Workflow:
    """Triage and investigate with agents; contain, verify, roll back; escalate to a human."""
    return _workflow(kit, scope=False)


def soc_hunt_workflow(kit: Kit) -> Workflow:
    """:func:`soc_workflow` with a ``scope`` agent that sweeps every host before containing."""
    return _workflow(kit, scope=True)


def _workflow(kit: Kit, *, scope: bool) -> Workflow:
    alert, tools, truth = kit.case.input, kit.tools, kit.case.truth

    async def contain(ctx: StepContext) -> Outcome:
        use = ToolUseBlock(id=ctx.new_id("contain"), name="block_ip", input={"ip": alert.dst_ip})
        result, _ = await call_tool(ctx, tools, ["block_ip"], use)
        return Outcome(
            next="verify", data={"contained": not result.is_error, "action": f"block_ip {alert.dst_ip}"}
        )

    async def verify(ctx: StepContext) -> Outcome:
        # Read the block back; a fresh write may not be visible yet, so look again with back-off.
        for attempt in range(3):
            use = ToolUseBlock(id=ctx.new_id("verify"), name="firewall_rules", input={"ip": alert.dst_ip})
            result, _ = await call_tool(ctx, tools, ["firewall_rules"], use)
            if not result.is_error and json.loads(result.content).get("blocked") is True:
                return Outcome(next="close", confidence=1.0, data={"verified": True, "reads": attempt + 1})
            await asyncio.sleep(30.0 * 2**attempt)
        return Outcome(next="rollback", confidence=1.0, data={"verified": False, "reads": 3})

    async def rollback(ctx: StepContext) -> Outcome:
        use = ToolUseBlock(id=ctx.new_id("rollback"), name="unblock_ip", input={"ip": alert.dst_ip})
        await call_tool(ctx, tools, ["unblock_ip"], use)
        return Outcome(next="escalate", data={"rolled_back": True})

    async def escalate(ctx: StepContext) -> Outcome:
        proposal = "malicious" if ctx.data.get("contained") or alert.severity != "medium" else "benign"
        review = Review(proposal=proposal, options=("malicious", "benign"), right=truth.verdict or proposal)
        try:
            # The deadline outlives a crash: a resumed run waits only for what remains.
            decision = await await_review(
                ctx, lambda: kit.human.review(review), timeout=_REVIEW_TIMEOUT, proposal=proposal
            )
        except TimeoutError:
            # Fail-safe: nobody answered, so take no action and leave the case open to people.
            return Outcome(next="escalated", data={"human": "no answer", "fail_safe": "no action"})
        ctx.charge(
            decision.cost,
            source=f"human:{decision.approver}",
            detail=f"{decision.review_minutes:.1f} minutes of review",
        )
        data = {
            "human": decision.choice,
            "human_correct": decision.correct,
            "review_minutes": decision.review_minutes,
        }
        return Outcome(next="escalated", confidence=1.0, data=data)

    states: dict[str, Handler] = {}
    transitions: dict[str, list[str]] = {}
    timeouts: dict[str, float] = {}
    if scope:
        states["scope"] = kit.agent(
            "scope", system=SCOPE, allow=["siem_search", "edr_process_tree"], max_turns=_SCOPE_TURNS
        )
        transitions["scope"] = ["contain", "escalate", "close"]
        timeouts["scope"] = 3 * 3600.0
    decided = ["scope" if scope else "contain", "escalate", "close"]
    return Workflow(
        name="soc-hunt" if scope else "soc-investigation",
        states={
            **states,
            "triage": kit.agent("triage", system=TRIAGE, allow=["siem_search", "asset_lookup"]),
            "investigate": kit.agent(
                "investigate",
                system=INVESTIGATE,
                allow=["threat_intel", "edr_process_tree", "user_lookup", "siem_search"],
            ),
            "contain": contain,
            "verify": verify,
            "rollback": rollback,
            "escalate": escalate,
        },
        transitions={
            **transitions,
            "triage": ["investigate", "close"],
            "investigate": decided,
            "contain": ["verify"],
            "verify": ["close", "rollback"],
            "rollback": ["escalate"],
            "escalate": ["escalated"],
        },
        initial="triage",
        terminal=["close", "escalated"],
        timeouts={
            "triage": 900.0,
            "investigate": 1800.0,
            "contain": 300.0,
            "verify": 600.0,
            **timeouts,
        },
        on_refused=Policy(retries=1, route_to="escalate"),
        on_error=Policy(retries=1, route_to="escalate"),
        on_budget="escalated",
        escalate_to="escalate",
    )
