"""A served fake Messages API for live-mode tests: a model that submits at once, over loopback."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from windtunnel.evals import Experiment
from windtunnel.orchestrator import ModelRequest, ModelResponse, ToolUseBlock, Usage
from windtunnel.simulators.fake_api import FakeMessagesAPI
from windtunnel.simulators.fake_server import serve_fake_api

CANARY = "sk-ant-canary-0f9e8d7c6b5a"
MODEL = "claude-haiku-4-5"
USAGE = Usage(input_tokens=1000, output_tokens=100)
CALL_COST = (1000 * 1.0 + 100 * 5.0) / 1e6  # claude-haiku-4-5: $1 in, $5 out per million


@dataclass
class Decider:
    """Submits the first allowed next state, holding each answer briefly so that calls overlap."""

    name: str = MODEL
    hold: float = 0.02
    flying: int = 0
    peak: int = 0
    calls: int = 0
    requests: list[ModelRequest] = field(default_factory=list)

    async def create(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        self.requests.append(request)
        self.flying += 1
        self.peak = max(self.peak, self.flying)
        try:
            await asyncio.sleep(self.hold)  # real time: this runs on the loopback server's loop
        finally:
            self.flying -= 1
        submit = next(tool for tool in request.tools if tool.name == "submit")
        allowed = sorted(submit.input_schema["properties"]["next"]["enum"])
        use = ToolUseBlock(
            id=f"toolu_{len(request.messages):03d}",
            name="submit",
            input={"next": allowed[0], "confidence": 0.9, "rationale": "the first allowed state"},
        )
        return ModelResponse(model=MODEL, content=(use,), stop_reason="tool_use", usage=USAGE)


@contextmanager
def served() -> Iterator[tuple[FakeMessagesAPI, Decider, str]]:
    """The fake API over 127.0.0.1, its model, and its URL."""
    model = Decider()
    api = FakeMessagesAPI(model)
    with serve_fake_api(api) as url:
        yield api, model, url
    api.check()


def experiment(seeds: int = 4) -> Experiment:
    """One small scenario, a real-model config and a simulated one, ``seeds`` seeds."""
    return Experiment(
        name="live",
        scenarios=["windtunnel/scenarios/soc/scenarios/c2-beacon.yaml"],
        seeds=seeds,
        configs=[{"name": "haiku", "play": MODEL}, "small"],
        recheck=0.0,
    )
