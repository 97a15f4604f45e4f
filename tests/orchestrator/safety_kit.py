"""Fakes for the safety-path tests: a source that fails on cue, a firewall whose
changes never show, a handler that charges, an approval workflow with a distinct
state per outcome, and the small workflows that drive them through the real tool
layer and engine."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from pydantic import BaseModel

from windtunnel.orchestrator import (
    ActionPolicy,
    ActionSpec,
    BudgetExhausted,
    CircuitBreaker,
    Outcome,
    RetryPolicy,
    StepContext,
    Tool,
    ToolCalled,
    ToolRegistry,
    ToolUseBlock,
    Workflow,
    approval_gate,
    call_tool,
    run,
)
from windtunnel.orchestrator.ladder import Ladder, LadderAgent, Rung
from windtunnel.simulators import ScriptedModel, Sim, SimulatedCrash, respond, submit

IP = "203.0.113.9"


class Query(BaseModel):
    ip: str = IP


# Sources that fail on cue: for the circuit breaker.


class ScriptedSource:
    """A read source whose attempts go as ``script`` says, one character each:
    ``.`` answers, ``x`` raises ``ConnectionError``, ``t`` hangs past any timeout.

    An attempt past the end of the script is recorded in ``surprises`` (an exception
    raised here would only be counted as one more failure by the tool layer).
    """

    def __init__(self, script: str) -> None:
        self.script = script
        self.attempts: list[float] = []
        """The simulated time of each attempt."""
        self.surprises: list[str] = []

    async def __call__(self, args: Query) -> str:
        index = len(self.attempts)
        self.attempts.append(asyncio.get_running_loop().time())
        if index >= len(self.script):
            self.surprises.append(f"attempt {index + 1} but the script has {len(self.script)}")
            raise ConnectionError("unscripted attempt")
        step = self.script[index]
        if step == "x":
            raise ConnectionError("backend refused")
        if step == "t":
            await asyncio.Event().wait()
        return f"answer {index + 1}"


def source_tool(source: ScriptedSource, *, failures: int, attempts: int = 1, cooldown: float = 60.0) -> Tool:
    """``source`` as a read tool with a 10 s timeout and back-offs of exactly 1, 2, 4... s."""
    return Tool(
        name="intel",
        description="Reputation of an IP address.",
        input_model=Query,
        fn=source,
        timeout=10.0,
        retry=RetryPolicy(attempts=attempts, base_delay=1.0, jitter=0.0),
        breaker=CircuitBreaker(failures=failures, cooldown=cooldown),
    )


def poll(tool: Tool, at: Sequence[float]) -> list[tuple[float, str, int]]:
    """Call ``tool`` at each simulated time in ``at`` (or as soon after as the previous
    call allows), all in one run: one breaker. Each call's (start, status, attempts)."""
    registry = ToolRegistry([tool])

    async def handler(ctx: StepContext) -> Outcome:
        for when in at:
            await asyncio.sleep(max(0.0, when - ctx.now()))
            use = ToolUseBlock(id=ctx.new_id("call"), name=tool.name, input={})
            await call_tool(ctx, registry, [tool.name], use)
        return Outcome(next="done")

    wf = Workflow(states={"poll": handler}, transitions={"poll": ["done"]}, initial="poll", terminal=["done"])
    sim = Sim(seed=0)
    result = sim.run(run(wf, env=sim))
    assert result.status == "completed", result.reason
    return [
        (event.sim_time - event.duration, event.status, event.attempts)
        for event in result.trace
        if isinstance(event, ToolCalled)
    ]


# A firewall whose rules never show on the replica that verification reads.


class Firewall:
    """Applies rules that the replica verification reads never shows; undoing them
    fails when ``undo_fails`` (the API is down), and the first read-back kills the
    process when ``crash_on_first_read``."""

    def __init__(self, *, undo_fails: bool, crash_on_first_read: bool = False) -> None:
        self.rules: set[str] = set()
        self.undo_fails = undo_fails
        self.crash_on_first_read = crash_on_first_read
        self.applied = 0
        self.reads = 0
        self.undos = 0

    async def block(self, args: Query) -> str:
        self.applied += 1
        self.rules.add(args.ip)
        return f"rule added for {args.ip}"

    async def already_blocked(self, args: Query) -> bool:
        return False  # the primary is not consulted: the precheck reads the replica too

    async def replica_shows(self, args: Query) -> bool:
        self.reads += 1
        if self.crash_on_first_read and self.reads == 1:
            raise SimulatedCrash("killed while reading back")
        return False

    async def unblock(self, args: Query) -> None:
        self.undos += 1
        if self.undo_fails:
            raise ConnectionError("firewall API down")
        self.rules.discard(args.ip)

    def tool(self, *, compensable: bool = True) -> Tool:
        return Tool(
            name="block_ip",
            description="Block an IP address.",
            input_model=Query,
            fn=self.block,
            kind="write",
            action=ActionSpec(
                intent="block",
                opposite="unblock",
                resource=lambda args: f"ip:{args.ip}",
                precheck=self.already_blocked,
                verify=self.replica_shows,
                compensate=self.unblock if compensable else None,
            ),
        )


def blocking_workflow(tool: Tool, *, name: str = "block") -> Workflow:
    """Call ``tool`` once in state ``act``; a forced escalation goes to the terminal
    state ``human``. Two read-backs 1 s apart, and one re-application, per attempt."""
    registry = ToolRegistry([tool])

    async def act(ctx: StepContext) -> Outcome:
        use = ToolUseBlock(id=ctx.new_id("call"), name=tool.name, input={"ip": IP})
        await call_tool(ctx, registry, [tool.name], use)
        return Outcome(next="done")

    return Workflow(
        name=name,
        states={"act": act},
        transitions={"act": ["done"]},
        initial="act",
        terminal=["done", "human"],
        escalate_to="human",
        actions=ActionPolicy(verify_attempts=2, verify_delay=1.0, reapply=1),
    )


# A one-rung ladder: the decision stands, or goes to the human state.


def ladder_decision(threshold: float, confidence: float) -> str:
    """The state a one-rung ladder (``threshold``) ends in when its model submits
    ``close`` with ``confidence``: ``close`` if it stood, ``escalate`` if not."""
    with ScriptedModel([respond(submit("close", confidence))]) as model:
        ladder = Ladder([Rung(tier="small", model=model, threshold=threshold)], human_state="escalate")
        wf = Workflow(
            states={"decide": LadderAgent(ladder, system="Decide.")},
            transitions={"decide": ["close", "escalate"]},
            initial="decide",
            terminal=["close", "escalate"],
        )
        sim = Sim(seed=0)
        result = sim.run(run(wf, env=sim))
    escalated = [e for e in result.trace if e.kind == "escalated"]
    assert (result.final_state == "escalate") == bool(escalated), "an escalation leaves its event"
    return result.final_state


# Approvals: a distinct state for each way out of the gate.


def approval_workflow(timeout: float) -> Workflow:
    """``ask`` pauses for approval; approve goes to ``act``, reject to ``drop``, and no
    decision by the deadline to the fail-safe ``hold``: three different states."""

    async def ask(ctx: StepContext) -> Outcome:
        return Outcome(next="approve")

    return Workflow(
        name="approval",
        states={
            "ask": ask,
            "approve": approval_gate(approve="act", reject="drop", on_timeout="hold", timeout=timeout),
        },
        transitions={"ask": ["approve"], "approve": ["act", "drop", "hold"]},
        initial="ask",
        terminal=["act", "drop", "hold"],
    )


# Charges.


def charging(charges: Sequence[float], refused: list[int]) -> Workflow:
    """A workflow whose one step charges each of ``charges`` in turn, swallowing
    :class:`BudgetExhausted` (noting the index of each charge that raised it in
    ``refused``); the cost budget ends in the terminal state ``over``."""

    async def spend(ctx: StepContext) -> Outcome:
        for index, usd in enumerate(charges):
            try:
                ctx.charge(usd, source="api:enrichment", detail=f"charge {index}")
            except BudgetExhausted:  # a careless handler: the engine must still stop the run
                refused.append(index)
        return Outcome(next="done")

    return Workflow(
        states={"spend": spend},
        transitions={"spend": ["done"]},
        initial="spend",
        terminal=["done", "over"],
        on_budget="over",
    )
