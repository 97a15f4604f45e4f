"""A served fake Messages API for live-mode tests: a model that submits at once, over loopback."""

from __future__ import annotations

import asyncio
import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx2
import pytest

from windtunnel.evals import Experiment
from windtunnel.orchestrator import ModelRequest, ModelResponse, ToolUseBlock, Usage
from windtunnel.simulators.fake_api import FakeMessagesAPI
from windtunnel.simulators.fake_server import serve_fake_api

CANARY = "sk-ant-canary-0f9e8d7c6b5a"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def canary_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """Run from the repository's root, with the canary as the only key and no base URL."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("ANTHROPIC_API_KEY", CANARY)
    monkeypatch.delenv("ANTHROPIC_BASE_URL", raising=False)
    monkeypatch.delenv("ANTHROPIC_AUTH_TOKEN", raising=False)


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
    interrupt_at: int | None = None
    """The call (1-based) on which to send SIGINT to the main thread (Ctrl-C), then hang."""

    async def create(self, request: ModelRequest) -> ModelResponse:
        self.calls += 1
        self.requests.append(request)
        if self.calls == self.interrupt_at:
            main = threading.main_thread().ident
            assert main is not None
            signal.pthread_kill(main, signal.SIGINT)
            await asyncio.sleep(3600)  # hung: only the client's cancelling ends the call
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


@dataclass
class Failing:
    """Serves ``api``, but fails the attempts ``fails`` picks (by 0-based attempt number) with
    ``status``, the error body echoing the request's headers, as a careless proxy would."""

    api: FakeMessagesAPI
    status: int = 401
    fails: frozenset[int] | range = frozenset()
    attempts: int = 0

    @property
    def base_url(self) -> str:
        return self.api.base_url

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        number, self.attempts = self.attempts, self.attempts + 1
        if number not in self.fails:
            return await self.api.handle(request)
        echoed = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
        error = {"type": "error", "error": {"type": "some_error", "message": f"no; you sent {echoed}"}}
        return httpx2.Response(
            self.status, content=json.dumps(error).encode(), headers={"request-id": "req_x"}
        )


@contextmanager
def served(
    *, status: int = 401, fails: frozenset[int] | range = frozenset()
) -> Iterator[tuple[FakeMessagesAPI, Decider, str]]:
    """The fake API over 127.0.0.1, its model, and its URL; the attempts ``fails`` picks fail
    with ``status`` (see :class:`Failing`)."""
    model = Decider()
    api = FakeMessagesAPI(model)
    with serve_fake_api(Failing(api, status=status, fails=fails)) as url:
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
