"""The simulators serve a domain that is not security operations: an on-call service
whose deploy went bad, with its own playbook, review options and faults."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from windtunnel.orchestrator import (
    LLMAgent,
    Outcome,
    RunResult,
    StepContext,
    Tool,
    ToolRegistry,
    Workflow,
    run,
)
from windtunnel.simulators import (
    DEFAULT_APPROVERS,
    DEFAULT_TIERS,
    Fault,
    FaultInjector,
    FaultPlan,
    Review,
    Sim,
    SimulatedHuman,
    SimulatedModel,
    Trigger,
)


class Service(BaseModel):
    name: str


@dataclass
class Deploys:
    """The service's state: healthy or not, and the deploys seen."""

    healthy: bool = False
    reads: int = 0

    def registry(self) -> ToolRegistry:
        async def read_health(args: Service) -> Any:
            self.reads += 1
            return {"service": args.name, "error_rate": 0.01 if self.healthy else 0.4}

        async def deploy_history(args: Service) -> Any:
            return [{"version": "v41"}, {"version": "v42", "at": "-10m"}]

        return ToolRegistry(
            [
                Tool(name="read_health", description="Error rate.", input_model=Service, fn=read_health),
                Tool(
                    name="deploy_history",
                    description="Recent deploys.",
                    input_model=Service,
                    fn=deploy_history,
                ),
            ]
        )


@dataclass(frozen=True)
class OnCallPlaybook:
    """A competent on-call engineer: read health and deploys, then roll back a bad deploy."""

    service: str
    bad_deploy: bool

    def calls(self, state: str) -> list[tuple[str, dict[str, Any]]]:
        if state == "diagnose":
            return [("read_health", {"name": self.service}), ("deploy_history", {"name": self.service})]
        return []

    def right_choice(self, state: str, allowed: Any) -> str:
        return "ask" if self.bad_deploy else "close"


def on_call(seed: int, plan: FaultPlan) -> tuple[RunResult, FaultInjector]:
    sim = Sim(seed=seed)
    injector = FaultInjector(plan, seed=sim.seed)
    playbook = OnCallPlaybook(service="checkout", bad_deploy=True)
    model = SimulatedModel(
        DEFAULT_TIERS["large"],
        playbook=playbook,
        difficulty=0.2,
        evidence=["read_health", "deploy_history"],
        rng=sim.rng("model/large"),
    )
    tools = injector.tools(Deploys().registry())
    human = injector.human(SimulatedHuman(DEFAULT_APPROVERS["oncall"], rng=sim.rng("humans")))

    async def ask(ctx: StepContext) -> Outcome:
        decision = await human.review(
            Review(proposal="rollback", options=("rollback", "restart", "leave"), right="rollback")
        )
        return Outcome(next="done", data={"choice": decision.choice, "correct": decision.correct})

    workflow = Workflow(
        name="on-call",
        states={
            "diagnose": LLMAgent(
                model=injector.model(model, tier="large"),
                system="You keep the checkout service up.",
                tools=tools,
                tier="large",
            ),
            "ask": ask,
        },
        transitions={"diagnose": ["ask", "close"], "ask": ["done"]},
        initial="diagnose",
        terminal=["close", "done"],
    )
    return sim.run(run(workflow, {"service": "checkout"}, env=sim)), injector


def test_an_on_call_domain_plays_through_the_generic_simulators() -> None:
    plan = FaultPlan(
        faults=[
            Fault(id="slow-metrics", kind="latency_spike", target="tool:read_health", seconds=20),
            Fault(id="cut-history", kind="partial_result", target="tool:deploy_history"),
            Fault(id="misjudged", kind="human_wrong", target="humans", trigger=Trigger(nth=1)),
        ]
    )
    result, injector = on_call(3, plan)
    assert result.final_state == "done"  # the large tier asks the human here
    assert result.data["choice"] in {"restart", "leave"}  # another option than the right one
    assert result.data["correct"] is False
    assert [fault_id for fault_id, _, _ in injector.log] == ["slow-metrics", "cut-history", "misjudged"]
    assert {fault_id: c.fired for fault_id, c in injector.counts().items()} == dict.fromkeys(
        ["slow-metrics", "cut-history", "misjudged"], 1
    )
    fired = [e for e in result.trace.events if e.kind == "fault_injected"]  # type: ignore[attr-defined]
    assert [e.fault_id for e in fired] == ["slow-metrics", "cut-history", "misjudged"]  # type: ignore[attr-defined]
    assert on_call(3, plan)[0].trace.dumps() == result.trace.dumps()
