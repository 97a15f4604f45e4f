"""Fault plans: validation that names the field, and triggers."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from pydantic import ValidationError

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
        ({"id": "a", "kind": "crash", "target": "run"}, "kind='crash' needs at_transition="),
        ({"id": "a", "kind": "latency_spike", "target": "tool:x"}, "kind='latency_spike' needs seconds="),
        ({"id": "a", "kind": "meteor", "target": "run"}, "faults.0.kind"),
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
        rng=Sim(seed=seed).rng,
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
