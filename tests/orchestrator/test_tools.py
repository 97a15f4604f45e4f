"""Tool calls: timeouts in simulated time, retries with seeded jitter, circuit breaker,
degraded results, and registry checks."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import BaseModel

from windtunnel.orchestrator import RetryPolicy, Tool, ToolRegistry, WorkflowError
from windtunnel.simulators import ScriptedModel, respond, submit, tool_call

from .agent_kit import IpQuery, Sources, agent, run_agent

INTEL = tool_call("threat_intel", {"ip": "203.0.113.9"})


def test_retry_delays_double_and_jitter_shortens_them() -> None:
    policy = RetryPolicy(attempts=5, base_delay=2.0, max_delay=10.0, jitter=0.5)
    assert [policy.delay(n, 0.0) for n in (1, 2, 3, 4)] == [2.0, 4.0, 8.0, 10.0]
    assert policy.delay(2, 0.5) == 3.0


def test_timeouts_are_retried_then_reported_as_unavailable() -> None:
    sources = Sources()
    sources.intel_hangs = True
    with ScriptedModel([respond(INTEL), respond(submit("escalate", 0.2))]) as model:
        result = run_agent(agent(model, sources, registry=sources.registry(attempts=3, timeout=10.0)))
    timeouts = result.trace.query(kind="tool_timeout")
    assert [(t.attempt, t.timeout) for t in timeouts] == [(1, 10.0), (2, 10.0), (3, 10.0)]  # type: ignore[union-attr]
    [called] = result.trace.query(kind="tool_called")
    assert (called.status, called.attempts) == ("timeout", 3)  # type: ignore[union-attr]
    assert called.output == "source unavailable: 'threat_intel' timed out after 10s (attempt 3 of 3)"  # type: ignore[union-attr]
    # Three 10 s timeouts plus two jittered back-offs (1 s then 2 s, each shortened by up to half).
    assert 30 + 0.5 + 1.0 <= called.duration <= 33.0  # type: ignore[union-attr]
    fed_back = model.requests[1].messages[-1].content[0]
    assert fed_back.is_error
    assert "source unavailable" in fed_back.content
    assert result.final_state == "escalate"


def test_a_failure_then_success_is_one_ok_call() -> None:
    sources = Sources()
    sources.intel_failures = 1
    with ScriptedModel([respond(INTEL), respond(submit("close"))]) as model:
        result = run_agent(agent(model, sources))
    [called] = result.trace.query(kind="tool_called")
    assert (called.status, called.attempts) == ("ok", 2)  # type: ignore[union-attr]
    assert len(sources.calls) == 2


def test_jitter_comes_from_the_seed() -> None:
    def duration(seed: int) -> float:
        sources = Sources()
        sources.intel_failures = 2
        with ScriptedModel([respond(INTEL), respond(submit("close"))]) as model:
            result = run_agent(agent(model, sources), seed=seed)
        return result.trace.query(kind="tool_called")[0].duration  # type: ignore[union-attr]

    assert duration(1) == duration(1)
    assert duration(1) != duration(2)


def test_circuit_breaker_opens_then_half_opens_after_the_cooldown() -> None:
    sources = Sources()
    sources.intel_failures = 10
    registry = sources.registry(attempts=2, failures=3)
    script = [respond(INTEL), respond(INTEL), respond(INTEL), respond(submit("escalate", 0.1))]
    with ScriptedModel(script) as model:
        result = run_agent(agent(model, sources, registry=registry))
    statuses = [(c.status, c.attempts) for c in result.trace.query(kind="tool_called")]  # type: ignore[union-attr]
    # 2 failed attempts, then 1 more opens the breaker mid-call, then the source is not called.
    assert statuses == [("error", 2), ("error", 1), ("unavailable", 0)]
    assert len(sources.calls) == 3
    unavailable = result.trace.query(kind="tool_called")[2]
    assert unavailable.output.startswith("source unavailable: 'threat_intel' failed 3 times in a row")  # type: ignore[union-attr]


def test_breaker_lets_one_attempt_through_after_cooldown() -> None:
    sources = Sources()
    sources.intel_failures = 3
    registry = sources.registry(attempts=3, failures=3)
    sleep_past_cooldown = tool_call("siem_search", {"query": "wait", "hours": 1})

    async def slow_siem(args: Any) -> str:
        import asyncio

        await asyncio.sleep(700)  # longer than the 600 s cool-down
        return "nothing"

    slow = ToolRegistry(
        [
            *(t for t in registry if t.name == "threat_intel"),
            Tool(name="siem_search", description="slow", input_model=_Query, fn=slow_siem, timeout=None),
        ]
    )
    script = [respond(INTEL), respond(sleep_past_cooldown), respond(INTEL), respond(submit("close"))]
    with ScriptedModel(script) as model:
        result = run_agent(agent(model, sources, registry=slow))
    statuses = [(c.tool, c.status) for c in result.trace.query(kind="tool_called")]  # type: ignore[union-attr]
    assert statuses == [("threat_intel", "error"), ("siem_search", "ok"), ("threat_intel", "ok")]


class _Query(BaseModel):
    query: str
    hours: int = 1


async def _noop(args: Any) -> None:
    return None


@pytest.mark.parametrize(
    ("tools", "messages"),
    [
        ([Tool(name="a", description="", input_model=IpQuery, fn=_noop)] * 2, ["two tools are named 'a'"]),
        (
            [Tool(name="submit", description="", input_model=IpQuery, fn=_noop)],
            ["tool name 'submit' is reserved for concluding a state"],
        ),
        (
            [Tool(name="bad name!", description="", input_model=IpQuery, fn=_noop)],
            ["tool name 'bad name!' must match ^[a-zA-Z0-9_-]{1,64}$ (the API's rule)"],
        ),
        (
            [
                Tool(
                    name="t",
                    description="",
                    input_model=IpQuery,
                    fn=_noop,
                    timeout=0,
                    retry=RetryPolicy(attempts=0),
                )
            ],
            ["tool 't': timeout=0 must be > 0", "tool 't': retry.attempts=0 must be >= 1"],
        ),
    ],
)
def test_registry_reports_every_problem(tools: list[Tool], messages: list[str]) -> None:
    with pytest.raises(WorkflowError) as info:
        ToolRegistry(tools)
    assert [p.message for p in info.value.problems] == messages


def test_replacing_swaps_tools_in_place_and_checks_only_the_replacements() -> None:
    first = Tool(name="a", description="A.", input_model=IpQuery, fn=_noop)
    second = Tool(name="b", description="B.", input_model=IpQuery, fn=_noop)
    registry = ToolRegistry([first, second])
    wrapped = Tool(name="a", description="A, wrapped.", input_model=IpQuery, fn=_noop, timeout=5.0)
    copy = registry.replacing([wrapped])
    assert list(copy) == [wrapped, second]
    assert copy.spec("a").description == "A, wrapped."
    assert list(registry) == [first, second]  # the original is left as it was
    assert registry.spec("a").description == "A."
    assert list(registry.replacing([])) == [first, second]
    with pytest.raises(WorkflowError) as info:
        registry.replacing(
            [
                Tool(name="c", description="", input_model=IpQuery, fn=_noop),
                Tool(name="b", description="", input_model=IpQuery, fn=_noop, timeout=0),
            ]
        )
    assert [p.message for p in info.value.problems] == [
        "no tool named 'c' to replace",
        "tool 'b': timeout=0 must be > 0",
    ]
