"""Shared pieces for agent and tool tests: a little investigation with two tools."""

from __future__ import annotations

import asyncio
from typing import Any

from pydantic import BaseModel, Field

from windtunnel.orchestrator import (
    Budget,
    CircuitBreaker,
    LLMAgent,
    Model,
    Policy,
    RetryPolicy,
    RunResult,
    Tool,
    ToolRegistry,
    Workflow,
    run,
)
from windtunnel.simulators import Sim


class IpQuery(BaseModel):
    ip: str = Field(pattern=r"^\d+\.\d+\.\d+\.\d+$")


class SiemQuery(BaseModel):
    query: str
    hours: int = Field(1, ge=1, le=72)


class Sources:
    """Fake sources whose behaviour a test sets: latency, failures, hangs."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.intel_latency = 1.0
        self.intel_failures = 0  # the next N calls raise
        self.intel_hangs = False

    async def intel(self, args: IpQuery) -> dict[str, str]:
        self.calls.append(("threat_intel", args.model_dump()))
        if self.intel_hangs:
            await asyncio.Event().wait()
        await asyncio.sleep(self.intel_latency)
        if self.intel_failures:
            self.intel_failures -= 1
            raise ConnectionError("intel backend refused")
        return {"ip": args.ip, "reputation": "malicious"}

    async def siem(self, args: SiemQuery) -> str:
        self.calls.append(("siem_search", args.model_dump()))
        await asyncio.sleep(2.0)
        return f"3 events for {args.query!r} in {args.hours}h"

    def registry(self, *, attempts: int = 3, failures: int = 5, timeout: float = 30.0) -> ToolRegistry:
        return ToolRegistry(
            [
                Tool(
                    name="threat_intel",
                    description="Reputation of an IP address.",
                    input_model=IpQuery,
                    fn=self.intel,
                    timeout=timeout,
                    retry=RetryPolicy(attempts=attempts, base_delay=1.0),
                    breaker=CircuitBreaker(failures=failures, cooldown=600.0),
                ),
                Tool(
                    name="siem_search", description="Search SIEM logs.", input_model=SiemQuery, fn=self.siem
                ),
            ]
        )


def agent_workflow(agent: LLMAgent) -> Workflow:
    async def done(ctx: Any) -> Any:  # pragma: no cover - never reached: "close" is terminal
        raise AssertionError

    return Workflow(
        name="agent-test",
        states={"investigate": agent},
        transitions={"investigate": ["close", "escalate"]},
        initial="investigate",
        terminal=["close", "escalate"],
        on_error=Policy(retries=0, route_to="escalate"),
    )


def run_agent(agent: LLMAgent, *, seed: int = 0, case: Any = None, budget: Budget | None = None) -> RunResult:
    sim = Sim(seed=seed)
    return sim.run(
        run(
            agent_workflow(agent), case or {"alert": "C2 beacon", "ip": "203.0.113.9"}, env=sim, budget=budget
        )
    )


def agent(model: Model, sources: Sources, **kwargs: Any) -> LLMAgent:
    registry = kwargs.pop("registry", None) or sources.registry()
    return LLMAgent(model=model, system="You investigate alerts.", tools=registry, **kwargs)
