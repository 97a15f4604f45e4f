"""Microseconds per agent step — one tool call and a submit — directly and through the SDK.

The step runs an ``LLMAgent`` in a one-state workflow (engine, trace and pricing
included). Its model answers from a fixed script: called directly (the ``Model``
protocol), and through the real ``anthropic`` SDK talking to the fake Messages
API over respx. Prints one line per path and, last, one JSON object. Not a test.

    python benchmarks/bench_agent.py [N]
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from collections.abc import Callable

from pydantic import BaseModel

from windtunnel import Sim, Workflow, run
from windtunnel.orchestrator import LLMAgent, Model, ModelRequest, ModelResponse, Tool
from windtunnel.simulators import FakeMessagesAPI, respond, submit, tool_call

CALL_TOOL = respond(tool_call("threat_intel", {"ip": "203.0.113.9"}, id="toolu_1"), model="claude-haiku-4-5")
SUBMIT = respond(submit("close", 0.9, "known C2"), model="claude-haiku-4-5")


class Alternating:
    """A tool call, then a submit, then again: one agent step per two calls."""

    name = "claude-haiku-4-5"

    def __init__(self) -> None:
        self.calls = 0

    async def create(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        return CALL_TOOL if self.calls % 2 else SUBMIT


class Ip(BaseModel):
    ip: str


async def threat_intel(args: Ip) -> str:
    return "malicious"


def workflow(model: Model) -> Workflow:
    tool = Tool(name="threat_intel", description="IP reputation.", input_model=Ip, fn=threat_intel)
    agent = LLMAgent(model=model, system="You investigate alerts.", tools=[tool])
    return Workflow(
        states={"investigate": agent},
        transitions={"investigate": ["close"]},
        initial="investigate",
        terminal=["close"],
    )


def time_steps(n: int, make_model: Callable[[Sim], Model]) -> float:
    sim = Sim(seed=0)
    wf = workflow(make_model(sim))

    async def steps() -> str:
        status = ""
        for _ in range(n):
            status = (await run(wf, {"ip": "203.0.113.9"}, env=sim)).final_state
        return status

    started = time.perf_counter()
    final = sim.run(steps())
    elapsed = time.perf_counter() - started
    if final != "close":
        raise SystemExit(f"benchmark agent did not conclude: final state {final!r}")
    return elapsed


def median_us(repeats: int, n: int, make_model: Callable[[Sim], Model]) -> float:
    time_steps(max(1, n // 10), make_model)  # warm-up
    return statistics.median(time_steps(n, make_model) for _ in range(repeats)) / n * 1e6


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 2000
    n_sdk = max(1, n // 10)
    repeats = 5
    direct = median_us(repeats, n, lambda sim: Alternating())
    sdk = median_us(
        repeats,
        n_sdk,
        lambda sim: FakeMessagesAPI(Alternating()).model("claude-haiku-4-5", rng=sim.rng("jitter")),
    )
    print(
        f"python {sys.version.split()[0]}, median of {repeats}; a step = 2 model calls + 1 tool call + engine"
    )
    print(f"direct (Model protocol, {n} steps):         {direct:9.1f} us/step")
    print(f"through the SDK + fake API ({n_sdk} steps):    {sdk:9.1f} us/step")
    print(json.dumps({"direct_us": round(direct, 2), "sdk_us": round(sdk, 2)}))


if __name__ == "__main__":
    main()
