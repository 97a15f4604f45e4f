"""Fault plans: validation that names the field, and triggers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

from windtunnel.orchestrator import InvalidArgument, Tool, ToolRegistry
from windtunnel.scenarios.soc import World, soc_tools
from windtunnel.simulators import Sim
from windtunnel.simulators.faults import Fault, FaultPlan, Trigger
from windtunnel.simulators.injection import FaultInjector


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            {"id": "a", "kind": "timeout", "target": "tier:small"},
            "target='tier:small' does not fit kind='timeout'",
        ),
        ({"id": "a", "kind": "hallucinated_tool_call", "target": "tool:x"}, "it needs a model tier"),
        ({"id": "a", "kind": "human_wrong", "target": "human"}, "it needs target='humans'"),
        ({"id": "a", "kind": "crash", "target": "run"}, "faults.0.at_transition\n  Field required"),
        ({"id": "a", "kind": "latency_spike", "target": "tool:x"}, "faults.0.seconds\n  Field required"),
        ({"id": "a", "kind": "meteor", "target": "run"}, "faults.0.kind\n  unknown kind='meteor'"),
        ({"id": "a", "kind": "tiemout", "target": "run"}, "; did you mean 'timeout'?"),
        ({"id": "a", "target": "run"}, "faults.0.kind\n  kind is missing; choose one of"),
        (  # each kind has exactly its own parameters
            {"id": "a", "kind": "timeout", "target": "tool:x", "seconds": 3},
            "faults.0.seconds\n  Extra inputs are not permitted",
        ),
        (
            {"id": "a", "kind": "error", "target": "tool:x", "trigger": {"probability": 1.5}},
            "faults.0.trigger.probability",
        ),
        (
            {"id": "a", "kind": "error", "target": "tool:x", "trigger": {"window": [5, 1]}},
            "window=(5.0, 1.0) must have start < end",
        ),
        ({"id": "a", "kind": "error", "target": "tool:x", "colour": "red"}, "faults.0.colour"),
    ],
)
def test_invalid_faults_name_the_field(fault: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as info:
        FaultPlan.model_validate({"faults": [fault]})
    assert message in str(info.value)


def test_duplicate_ids() -> None:
    with pytest.raises(ValidationError, match="two faults have id='x'"):
        FaultPlan(faults=[Fault(id="x", kind="error", target="tool:a")] * 2)


def test_plans_round_trip_as_json() -> None:
    plan = FaultPlan(
        faults=[
            Fault(
                id="t", kind="timeout", target="tool:threat_intel", trigger=Trigger(probability=0.3, times=2)
            ),
            Fault(id="c", kind="crash", target="run", at_transition=3),
        ]
    )
    assert FaultPlan.model_validate_json(plan.model_dump_json()) == plan


def fires(trigger: Trigger, opportunities: int, *, seed: int = 0, at: list[float] | None = None) -> list[int]:
    injector = FaultInjector(
        FaultPlan(faults=[Fault(id="f", kind="error", target="tool:x", trigger=trigger)]),
        seed=seed,
    )
    fault = injector.plan.faults[0]
    times = at or [0.0] * opportunities

    async def count() -> list[int]:
        fired = []
        loop = asyncio.get_running_loop()
        for number, when in enumerate(times, start=1):
            await asyncio.sleep(max(0.0, when - loop.time()))
            if injector._fires(fault):
                fired.append(number)
        return fired

    return Sim(seed=seed).run(count())


def test_triggers() -> None:
    assert fires(Trigger(), 3) == [1, 2, 3]
    assert fires(Trigger(nth=2), 3) == [2]
    assert fires(Trigger(times=2), 5) == [1, 2]
    assert fires(Trigger(window=(10, 20)), 4, at=[5, 10, 19.5, 20]) == [2, 3]
    draws = fires(Trigger(probability=0.3), 1000, seed=1)
    assert 240 < len(draws) < 360
    assert draws == fires(Trigger(probability=0.3), 1000, seed=1)
    assert draws != fires(Trigger(probability=0.3), 1000, seed=2)


# --- a plan meets what it targets -----------------------------------------------------------

TOOLS = ToolRegistry(
    tool for tool in soc_tools(World(), rng=Sim().rng) if tool.name in {"threat_intel", "block_ip"}
)


def check(
    *faults: Fault,
    tools: list[Tool] | ToolRegistry = TOOLS,
    tiers: tuple[str, ...] = ("small", "mid"),
    humans: tuple[str, ...] = ("oncall",),
) -> None:
    FaultInjector(FaultPlan(faults=list(faults)), seed=0).check_targets(
        tools=tools, tiers=tiers, humans=humans
    )


def test_faults_whose_targets_exist_pass() -> None:
    check(
        Fault(id="t", kind="timeout", target="tool:threat_intel"),
        Fault(id="e", kind="error", target="tool:block_ip"),
        Fault(id="s", kind="stale_read", target="tool:block_ip", seconds=5),
        Fault(id="h", kind="hallucinated_tool_call", target="tier:small"),
        Fault(id="r", kind="rate_limit", target="tier:mid"),
        Fault(id="w", kind="human_wrong", target="humans"),
        Fault(id="c", kind="crash", target="run", at_transition=1),
    )


@pytest.mark.parametrize(
    ("fault", "kwargs", "message"),
    [
        (  # tools
            Fault(id="a", kind="timeout", target="tool:threat_intl"),
            {},
            "fault 'a' can never fire: unknown target='tool:threat_intl'; choose one of "
            "['tool:block_ip', 'tool:threat_intel']; did you mean 'tool:threat_intel'?",
        ),
        (  # write tools
            Fault(id="b", kind="conflicting_actor", target="tool:threat_intel"),
            {},
            "fault 'b' can never fire: kind='conflicting_actor' needs a write tool, and "
            "target='tool:threat_intel' is a read tool; choose one of ['tool:block_ip']",
        ),
        (
            Fault(id="c", kind="error", target="tool:block_ip"),
            {"tools": []},
            "fault 'c' can never fire: target='tool:block_ip', and this run has no tools",
        ),
        (  # tiers: model faults and API faults
            Fault(id="d", kind="malformed_arguments", target="tier:large"),
            {},
            "fault 'd' can never fire: unknown target='tier:large'; choose one of ['tier:mid', 'tier:small']",
        ),
        (
            Fault(id="e", kind="overloaded", target="tier:smal"),
            {},
            "fault 'e' can never fire: unknown target='tier:smal'; choose one of ['tier:mid', 'tier:small']; "
            "did you mean 'tier:small'?",
        ),
        (
            Fault(id="f", kind="rate_limit", target="tier:small"),
            {"tiers": ()},
            "fault 'f' can never fire: target='tier:small', and this run has no tiers",
        ),
        (  # humans
            Fault(id="g", kind="human_absent", target="humans"),
            {"humans": ()},
            "fault 'g' can never fire: target='humans', and this run has no humans",
        ),
    ],
)
def test_a_fault_that_can_never_fire_is_refused(fault: Fault, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        check(fault, **kwargs)
    assert str(raised.value) == message


def test_every_fault_that_can_never_fire_is_listed_at_once() -> None:
    with pytest.raises(InvalidArgument) as raised:
        check(
            Fault(id="a", kind="timeout", target="tool:nope"),
            Fault(id="ok", kind="crash", target="run", at_transition=1),  # a run is always there
            Fault(id="b", kind="human_slow", target="humans", seconds=1),
            humans=(),
        )
    assert str(raised.value).splitlines() == [
        "2 faults can never fire:",
        "  - fault 'a': unknown target='tool:nope'; choose one of ['tool:block_ip', 'tool:threat_intel']",
        "  - fault 'b': target='humans', and this run has no humans",
    ]


def test_wrapping_tools_refuses_a_fault_on_a_tool_that_is_not_there() -> None:
    injector = FaultInjector(FaultPlan(faults=[Fault(id="a", kind="timeout", target="tool:nope")]), seed=0)
    with pytest.raises(
        InvalidArgument, match=r"^fault 'a' can never fire: unknown target='tool:nope'; choose one of"
    ):
        injector.tools(TOOLS)


def test_valid_targets_are_listed_once_and_sorted() -> None:
    with pytest.raises(InvalidArgument) as raised:
        check(Fault(id="a", kind="overloaded", target="tier:huge"), tiers=("small", "mid", "small"))
    assert str(raised.value) == (
        "fault 'a' can never fire: unknown target='tier:huge'; choose one of ['tier:mid', 'tier:small']"
    )
