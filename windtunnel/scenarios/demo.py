"""The demo investigation: a security alert from triage to close, with plain-function handlers.

triage -> investigate -> decide -> execute -> verify -> close, with an escalate
path (to a human, ending in ``escalated``) and a rollback path (undo an action that
did not verify). Four seeded variants exercise what the orchestrator must survive:

| variant          | what goes wrong                                  | what the trace shows          |
|------------------|--------------------------------------------------|-------------------------------|
| ``nominal``      | nothing                                          | close (or escalate when unsure) |
| ``slow_source``  | threat intel never answers                       | state timeout, retry, escalate |
| ``confused``     | decide asks for a state that is not declared     | refused transition, retry     |
| ``endless``      | the evidence never suffices                      | duration budget stop          |

Handlers become LLM agents in later issues; the workflow shape stays.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Literal, TypeAlias, get_args

from windtunnel.orchestrator import Budget, Outcome, Policy, RunResult, StepContext, Trace, Workflow, run
from windtunnel.orchestrator.validation import check_choice
from windtunnel.simulators import Sim

__all__ = ["DEMO_BUDGET", "DemoAlert", "DemoVariant", "DemoWorld", "demo_workflow", "run_demo"]

DemoVariant: TypeAlias = Literal["nominal", "slow_source", "confused", "endless"]

DEMO_BUDGET = Budget(max_steps=40, max_duration=2700.0)
"""45 simulated minutes, 40 steps."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DemoAlert:
    """The alert under investigation."""

    id: str
    rule: str
    source_ip: str
    host: str
    severity: Literal["low", "medium", "high"]


@dataclass(slots=True, kw_only=True)
class DemoWorld:
    """The little world the demo's actions change: the firewall's blocklist."""

    blocklist: set[str] = field(default_factory=set)
    drop_writes: bool = False
    """When set, a block is acknowledged but not applied (a silent failure)."""


def demo_workflow(world: DemoWorld, *, variant: DemoVariant = "nominal") -> Workflow:
    """The investigation workflow acting on ``world``, playing ``variant``.

    Raises:
        InvalidArgument: for an unknown variant.
    """
    check_choice("variant", variant, get_args(DemoVariant))

    async def triage(ctx: StepContext) -> Outcome:
        alert: DemoAlert = ctx.case
        await asyncio.sleep(ctx.rng.uniform(20, 90))  # an analyst reads the alert
        if alert.severity == "low":
            return Outcome(next="close", confidence=0.9, data={"verdict": "benign"})
        return Outcome(next="investigate", confidence=0.8, data={"priority": alert.severity})

    async def investigate(ctx: StepContext) -> Outcome:
        evidence = dict(ctx.data.get("evidence", {}))
        for source in ("siem", "threat_intel", "asset_db"):
            if source in evidence:
                continue
            if variant == "slow_source" and source == "threat_intel":
                await asyncio.Event().wait()  # never answers; the state's timeout ends the wait
            await asyncio.sleep(ctx.rng.lognormvariate(3.5, 0.6))  # ~30 s median per query
            evidence[source] = round(ctx.rng.random(), 3)
        return Outcome(next="decide", confidence=0.7, data={"evidence": evidence})

    async def decide(ctx: StepContext) -> Outcome:
        await asyncio.sleep(ctx.rng.uniform(30, 120))
        evidence = ctx.data["evidence"]
        if variant == "endless":
            # Never enough: ask for another round of evidence, forever.
            return Outcome(next="investigate", confidence=0.4, data={"evidence": {}})
        if variant == "confused" and ctx.attempt == 1:
            return Outcome(next="block_ip", confidence=0.95)  # not a state: refused
        score = sum(evidence.values()) / len(evidence)
        if score < 0.25:
            return Outcome(next="close", confidence=1 - score, data={"verdict": "benign"})
        confidence = round(0.5 + ctx.rng.random() / 2, 3)
        if confidence < 0.6:
            return Outcome(next="escalate", confidence=confidence, data={"verdict": "unsure"})
        return Outcome(next="execute", confidence=confidence, data={"verdict": "malicious"})

    async def execute(ctx: StepContext) -> Outcome:
        ip = ctx.case.source_ip
        await asyncio.sleep(5)
        if not world.drop_writes:
            world.blocklist.add(ip)
        return Outcome(next="verify", data={"action": f"block {ip}"})

    async def verify(ctx: StepContext) -> Outcome:
        await asyncio.sleep(10)
        if ctx.case.source_ip in world.blocklist:
            return Outcome(next="close", confidence=1.0, data={"verified": True})
        return Outcome(next="rollback", confidence=1.0, data={"verified": False})

    async def rollback(ctx: StepContext) -> Outcome:
        world.blocklist.discard(ctx.case.source_ip)
        return Outcome(next="escalate", data={"rolled_back": True})

    async def escalate(ctx: StepContext) -> Outcome:
        await asyncio.sleep(60)  # page the on-call analyst
        return Outcome(next="escalated", data={"ticket": ctx.new_id("ticket")})

    return Workflow(
        name=f"demo-investigation[{variant}]",
        states={
            "triage": triage,
            "investigate": investigate,
            "decide": decide,
            "execute": execute,
            "verify": verify,
            "rollback": rollback,
            "escalate": escalate,
        },
        transitions={
            "triage": ["investigate", "close"],
            "investigate": ["decide"],
            "decide": ["investigate", "execute", "escalate", "close"],
            "execute": ["verify"],
            "verify": ["close", "rollback"],
            "rollback": ["escalate"],
            "escalate": ["escalated"],
        },
        initial="triage",
        terminal=["close", "escalated"],
        timeouts={"investigate": 300.0, "execute": 60.0, "verify": 60.0},
        on_refused=Policy(retries=2, route_to="escalate"),
        on_error=Policy(retries=1, route_to="escalate"),
        on_budget="escalated",
    )


def run_demo(
    *, variant: DemoVariant = "nominal", seed: int = 0, sim: Sim | None = None, trace: Trace | None = None
) -> RunResult:
    """Run the demo investigation once in simulation and return its result.

    Pass ``sim`` to run several investigations in one simulation (their ids then
    differ); otherwise a new ``Sim(seed=seed)`` is used.

    Raises:
        InvalidArgument: for an unknown variant, or a seed that is not an int >= 0.
    """
    sim = Sim(seed=seed) if sim is None else sim
    workflow = demo_workflow(DemoWorld(), variant=variant)  # checks the variant before any draw
    alert = DemoAlert(
        id=sim.new_id("alert"),
        rule="outbound connection to known C2",
        source_ip=f"203.0.113.{sim.rng('demo/alert').randrange(1, 255)}",
        host="web-01",
        severity="high",
    )
    return sim.run(run(workflow, alert, env=sim, trace=trace, budget=DEMO_BUDGET))
