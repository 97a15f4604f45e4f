"""The same agent against the real Anthropic API; runs only with ANTHROPIC_API_KEY set."""

from __future__ import annotations

import asyncio
import os

import pytest

from windtunnel.orchestrator import AnthropicModel, LLMAgent, Trace, run

from .agent_kit import Sources, agent_workflow

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="needs ANTHROPIC_API_KEY"),
]

LIVE_MODEL = os.environ.get("WINDTUNNEL_LIVE_MODEL", "claude-haiku-4-5")


def test_agent_investigates_with_a_real_model() -> None:
    sources = Sources()
    agent = LLMAgent(
        model=AnthropicModel(LIVE_MODEL),
        system=(
            "You are a security analyst. Look up the alert's IP with threat_intel, then call submit: "
            "'close' if it is benign, 'escalate' if it is malicious."
        ),
        tools=sources.registry(),
        max_turns=4,
    )
    trace = Trace()
    result = asyncio.run(run(agent_workflow(agent), {"alert": "C2 beacon", "ip": "203.0.113.9"}, trace=trace))
    assert result.final_state in {"close", "escalate"}
    calls = trace.query(kind="model_called")
    assert calls
    assert all(call.request_id for call in calls if call.error is None)  # type: ignore[union-attr]
    assert result.cost > 0
    assert os.environ["ANTHROPIC_API_KEY"] not in trace.dumps(wall_time=True)
