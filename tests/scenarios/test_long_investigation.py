"""A 45-minute simulated investigation: over a hundred model calls, an approval wait and a
crash in the middle; it resumes from its checkpoints and completes, nothing done twice."""

from __future__ import annotations

import asyncio

from windtunnel.evals import trace_complete
from windtunnel.orchestrator import (
    LLMAgent,
    ModelRequest,
    ModelResponse,
    Outcome,
    SqliteStore,
    StepContext,
    ToolResultBlock,
    ToolUseBlock,
    Trace,
    Workflow,
    approval_gate,
    call_tool,
    decide,
    resume,
    run,
)
from windtunnel.scenarios.soc import Host, IpInfo, World, soc_tools
from windtunnel.simulators import (
    DEFAULT_APPROVERS,
    Fault,
    FaultInjector,
    FaultPlan,
    Review,
    Sim,
    SimulatedCrash,
    SimulatedHuman,
    respond,
    submit,
    tool_call,
)

SWEEPS = 50
IP = "203.0.113.77"


class Analyst:
    """A model with no memory of its own: it looks at the conversation and either
    searches the SIEM (a first turn) or concludes the sweep. Fifteen seconds a call."""

    name = "claude-haiku-4-5"

    async def create(self, request: ModelRequest) -> ModelResponse:
        await asyncio.sleep(15)
        searched = any(
            isinstance(block, ToolResultBlock) for message in request.messages for block in message.content
        )
        if searched:
            return respond("Nothing new in this window.", submit("plan", 0.9, "swept"), model=self.name)
        return respond(
            "Let me look at the logs.", tool_call("siem_search", {"query": "", "ip": IP}), model=self.name
        )


def workflow(world: World) -> Workflow:
    sim_tools = soc_tools(world, rng=lambda name: __import__("random").Random(name))
    sweep = LLMAgent(
        model=Analyst(), system="Sweep the logs.", tools=sim_tools, allow=["siem_search"], tier="small"
    )

    async def plan(ctx: StepContext) -> Outcome:
        done = int(ctx.data.get("sweeps", 0))
        return Outcome(next="sweep" if done < SWEEPS else "approve", data={"sweeps": done + 1})

    async def contain(ctx: StepContext) -> Outcome:
        use = ToolUseBlock(id=f"contain-{ctx.step}", name="block_ip", input={"ip": IP})
        result, _ = await call_tool(ctx, sim_tools, ["block_ip"], use)
        return Outcome(next="close", data={"contained": not result.is_error})

    async def stand_down(ctx: StepContext) -> Outcome:
        return Outcome(next="close", data={"contained": False})

    return Workflow(
        name="long-investigation",
        states={
            "plan": plan,
            "sweep": sweep,
            "approve": approval_gate(
                approve="contain", reject="stand_down", on_timeout="stand_down", timeout=4 * 3600
            ),
            "contain": contain,
            "stand_down": stand_down,
        },
        transitions={
            "plan": ["sweep", "approve"],
            "sweep": ["plan"],
            "approve": ["contain", "stand_down"],
            "contain": ["close"],
            "stand_down": ["close"],
        },
        initial="plan",
        terminal=["close"],
    )


def test_a_long_investigation_survives_a_crash_and_an_approval_wait(tmp_path: object) -> None:
    world = World(
        hosts={"web-01": Host(name="web-01", ip="10.0.0.5", owner="web")},
        ips={IP: IpInfo(address=IP, reputation="malicious")},
    )
    store = SqliteStore(f"{tmp_path}/long.sqlite")
    sim = Sim(seed=3)
    crash = FaultInjector(
        FaultPlan(faults=[Fault(id="kill", kind="crash", target="run", at_transition=60)]), seed=sim.seed
    )
    budget = __import__("windtunnel").Budget(max_steps=500, max_duration=6 * 3600)

    # First life: dies in the middle of the sweeps.
    try:
        sim.run(run(workflow(world), env=sim, store=store, trace=Trace(crash), budget=budget))
        raise AssertionError("the crash fault did not fire")
    except SimulatedCrash:
        pass
    [checkpoint] = [info.checkpoint for info in store.runs()]
    assert checkpoint.status == "running"
    run_id = checkpoint.run_id

    # Second life: finishes the sweeps, then pauses for a human.
    paused = sim.run(resume(workflow(world), run_id, env=sim, store=store))
    assert paused.status == "paused"
    [request] = store.pending()

    # The on-call analyst answers in simulated time; the run resumes and acts.
    human = SimulatedHuman(DEFAULT_APPROVERS["oncall"], rng=sim.rng("humans"))
    review = Review(proposal="malicious", options=("malicious", "benign"), right="malicious")
    answer = sim.run(human.review(review))
    decision = "approve" if answer.choice == review.proposal else "reject"
    decide(store, request.id, decision, by=answer.approver, at=sim.now)
    done = sim.run(resume(workflow(world), run_id, env=sim, store=store))

    assert (done.status, done.final_state) == ("completed", "close")
    events = done.trace.events
    assert trace_complete(events) == []
    model_calls = [e for e in events if e.kind == "model_called"]
    assert len(model_calls) >= 100
    assert done.duration >= 2700  # 45 simulated minutes and more
    assert [e.kind for e in events if e.kind in ("run_started", "run_resumed", "run_finished")] == [
        "run_started",
        "run_resumed",
        "run_resumed",
        "run_finished",
    ]
    assert done.data["sweeps"] == SWEEPS + 1
    if decision == "approve":
        assert done.data["contained"] is True
        assert world.blocklist == {IP}
        assert [e.status for e in store.ledger] == ["applied"]  # applied once, verified
        assert store.ledger[0].verified
    # Every event of the run is committed in the store, once.
    assert [e.seq for e in store.events(run_id)] == list(range(len(events)))
