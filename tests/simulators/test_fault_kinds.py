"""Fault kinds: one model per kind, a registry a domain extends, decisions independent of
each other, and faults that cannot act where they are aimed recorded as not applicable."""

from __future__ import annotations

import asyncio
import contextlib
import json
from typing import Any, ClassVar, Literal

import pytest
from pydantic import BaseModel, Field, ValidationError

from windtunnel.orchestrator import ActionSpec, InvalidArgument, Tool, ToolRegistry, ToolResultBlock
from windtunnel.simulators import (
    DEFAULT_APPROVERS,
    PARTIAL_STRENGTH,
    Family,
    Fault,
    FaultInjector,
    FaultPlan,
    Hit,
    HumanDecision,
    LatencySpike,
    Review,
    Sim,
    SimulatedHuman,
    Timeout,
    ToolCall,
    Trigger,
    evidence,
    fault_kinds,
    faults,
    register_fault_kind,
)


class Query(BaseModel):
    q: str = ""


def tool(name: str, *, write: bool = False, compensate: bool = True) -> Tool:
    """A tool answering a list of four hits after one simulated second."""

    async def fn(args: Query) -> Any:
        await asyncio.sleep(1.0)
        return [1, 2, 3, 4]

    async def yes(args: Any) -> bool:
        return True

    async def undo(args: Any) -> None:
        return None

    action = (
        ActionSpec(
            intent="restart",
            opposite=None,
            resource=lambda args: f"service:{args.q}",
            precheck=yes,
            verify=yes,
            compensate=undo if compensate else None,
        )
        if write
        else None
    )
    return Tool(
        name=name,
        description=f"The {name} tool.",
        input_model=Query,
        fn=fn,
        kind="write" if write else "read",
        action=action,
    )


def call(tools: ToolRegistry, name: str, times: int = 1) -> list[Any]:
    async def go() -> list[Any]:
        return [await tools.get(name).fn(Query()) for _ in range(times)]

    return Sim().run(go())


# --- the union ---------------------------------------------------------------------------------


def test_fault_builds_and_validates_the_model_of_its_kind() -> None:
    built = Fault(id="s", kind="latency_spike", target="tool:x", seconds=3)
    validated = FaultPlan.model_validate(
        {"faults": [{"id": "s", "kind": "latency_spike", "target": "tool:x", "seconds": 3}]}
    ).faults[0]
    assert type(built) is type(validated) is LatencySpike
    assert built == validated == LatencySpike(id="s", target="tool:x", seconds=3)
    assert Fault.model_validate({"id": "t", "kind": "timeout", "target": "tool:x"}) == Timeout(
        id="t", target="tool:x"
    )
    with pytest.raises(ValidationError, match="kind\n  unknown kind='slowness'"):
        Fault(id="s", kind="slowness", target="tool:x")


def test_the_json_schema_is_a_union_discriminated_by_kind() -> None:
    schema = FaultPlan.model_json_schema()
    items = schema["properties"]["faults"]["items"]
    assert items["discriminator"]["propertyName"] == "kind"
    assert sorted(items["discriminator"]["mapping"]) == sorted(fault_kinds())
    assert schema["$defs"]["LatencySpike"]["required"] == ["id", "kind", "target", "seconds"]
    assert "seconds" not in schema["$defs"]["Timeout"]["properties"]


def test_plans_dump_each_fault_with_its_own_fields() -> None:
    plan = FaultPlan(
        faults=[
            Fault(id="e", kind="error", target="tool:x"),
            Fault(id="c", kind="crash", target="run", at_transition=2),
        ]
    )
    assert json.loads(plan.model_dump_json())["faults"] == [
        {
            "id": "e",
            "kind": "error",
            "target": "tool:x",
            "trigger": dict.fromkeys(Trigger.model_fields),
            "message": "simulated failure",
        },
        {
            "id": "c",
            "kind": "crash",
            "target": "run",
            "trigger": dict.fromkeys(Trigger.model_fields),
            "at_transition": 2,
        },
    ]


# --- a kind of one's own -----------------------------------------------------------------------


class SlowDns(Fault):
    """A domain's own kind: every call of the tool first waits for DNS."""

    kind: Literal["slow_dns"] = "slow_dns"
    family: ClassVar[Family] = "tool"
    seconds: float = Field(gt=0)


async def slow_dns(hit: Hit, call: ToolCall) -> Any:
    hit.record(f"{call.tool.name} waits {hit.fault.seconds:g}s for DNS")
    await asyncio.sleep(hit.fault.seconds)
    assert call.proceed is not None
    return await call.proceed(call.args)


@pytest.fixture
def registry(monkeypatch: pytest.MonkeyPatch) -> None:
    """A copy of the registry for the test, so a kind registered there does not leak."""
    monkeypatch.setattr(faults, "_KINDS", dict(faults._KINDS))


@pytest.mark.usefixtures("registry")
def test_a_domain_registers_its_own_kind() -> None:
    with pytest.raises(ValidationError, match="unknown kind='slow_dns'"):
        FaultPlan.model_validate(
            {"faults": [{"id": "d", "kind": "slow_dns", "target": "tool:x", "seconds": 5}]}
        )
    register_fault_kind(SlowDns, slow_dns)
    plan = FaultPlan.model_validate(
        {"faults": [{"id": "d", "kind": "slow_dns", "target": "tool:x", "seconds": 5, "trigger": {"nth": 2}}]}
    )
    assert isinstance(plan.faults[0], SlowDns)
    assert "SlowDns" in FaultPlan.model_json_schema()["$defs"]
    injector = FaultInjector(plan, seed=0)
    tools = injector.tools(ToolRegistry([tool("x")]))

    async def timed() -> list[float]:
        loop, took = asyncio.get_running_loop(), []
        for _ in range(3):
            start = loop.time()
            await tools.get("x").fn(Query())
            took.append(loop.time() - start)
        return took

    assert Sim().run(timed()) == [1.0, 6.0, 1.0]
    assert injector.log == [("d", "slow_dns", "x waits 5s for DNS")]
    # Its target is checked as any tool kind's.
    with pytest.raises(ValidationError, match="target='humans' does not fit kind='slow_dns'"):
        Fault(id="d", kind="slow_dns", target="humans", seconds=1)


@pytest.mark.usefixtures("registry")
def test_registering_refuses_a_kind_without_a_name_or_twice() -> None:
    class Nameless(Fault):
        family: ClassVar[Family] = "tool"

    with pytest.raises(InvalidArgument, match="Nameless needs a default kind"):
        register_fault_kind(Nameless, slow_dns)

    class Another(Fault):
        kind: Literal["timeout"] = "timeout"
        family: ClassVar[Family] = "tool"

    with pytest.raises(InvalidArgument, match=r"kind='timeout' is registered already \(by Timeout\)"):
        register_fault_kind(Another, slow_dns)


# --- independent decisions ---------------------------------------------------------------------


PROBABLE = [
    Fault(id="a", kind="latency_spike", target="tool:x", seconds=1, trigger=Trigger(probability=0.4)),
    Fault(id="b", kind="partial_result", target="tool:x", trigger=Trigger(probability=0.5)),
    Fault(id="c", kind="empty_result", target="tool:x", trigger=Trigger(probability=0.3)),
    Fault(id="d", kind="latency_spike", target="tool:y", seconds=2, trigger=Trigger(probability=0.5)),
    Fault(id="e", kind="error", target="tool:y", trigger=Trigger(probability=0.2, times=3)),
]


def pattern(plan: list[Fault], *, seed: int = 7) -> dict[str, list[int]]:
    """Per fault id, the calls (numbered per tool) it fired on."""
    injector = FaultInjector(FaultPlan(faults=plan), seed=seed)
    tools = injector.tools(ToolRegistry([tool("x"), tool("y")]))
    fired: dict[str, list[int]] = {fault.id: [] for fault in plan}

    async def go() -> None:
        for number in range(1, 41):
            for name in ("x", "y"):
                before = len(injector.log)
                with contextlib.suppress(ConnectionError):
                    await tools.get(name).fn(Query())
                for fault_id, _, _ in injector.log[before:]:
                    fired[fault_id].append(number)

    Sim().run(go())
    return fired


def test_removing_a_fault_leaves_every_other_faults_decisions_unchanged() -> None:
    whole = pattern(PROBABLE)
    assert all(whole[fault.id] for fault in PROBABLE)  # each fires sometimes
    assert len(whole["e"]) == 3
    for removed in PROBABLE:
        rest = [fault for fault in PROBABLE if fault is not removed]
        assert pattern(rest) == {fault.id: whole[fault.id] for fault in rest}, removed.id
    assert pattern(PROBABLE) == whole
    assert pattern(PROBABLE, seed=8) != whole


# --- not applicable ----------------------------------------------------------------------------


def test_a_fault_that_cannot_act_where_it_is_aimed_is_not_applicable_never_fired() -> None:
    plan = FaultPlan(
        faults=[
            Fault(id="undo", kind="conflicting_actor", target="tool:restart"),
            Fault(id="stale", kind="stale_read", target="tool:restart", seconds=30),
            Fault(id="lost", kind="silent_failure", target="tool:restart", trigger=Trigger(nth=2)),
        ]
    )
    injector = FaultInjector(plan, seed=0)
    tools = injector.tools(ToolRegistry([tool("restart", write=True, compensate=False)]))  # no world
    assert call(tools, "restart", 3) == [[1, 2, 3, 4], {"status": "ok"}, [1, 2, 3, 4]]
    assert injector.not_applicable == [
        ("undo", "conflicting_actor", "restart has no compensation for another actor to undo it with"),
        (
            "stale",
            "stale_read",
            "a stale read needs a world that can hide changes (changes, make_stale); "
            "call tools(registry, world=world)",
        ),
    ]
    counts = injector.counts()
    assert [(c.opportunities, c.fired) for c in counts.values()] == [(0, 0), (0, 0), (3, 1)]
    assert counts["undo"].not_applicable == injector.not_applicable[0][2]
    assert counts["lost"].not_applicable is None
    assert [entry[0] for entry in injector.log] == ["lost"]


# --- humans ------------------------------------------------------------------------------------


def test_human_wrong_picks_another_option_than_the_right_one() -> None:
    sure = DEFAULT_APPROVERS["oncall"].model_copy(update={"accuracy": 1.0})
    review = Review(proposal="rollback", options=("rollback", "restart", "scale", "leave"), right="rollback")

    def choices(seed: int) -> list[str]:
        sim = Sim(seed=seed)
        plan = FaultPlan(faults=[Fault(id="w", kind="human_wrong", target="humans")])
        human = FaultInjector(plan, seed=seed).human(SimulatedHuman(sure, rng=sim.rng("humans")))

        async def many() -> list[HumanDecision]:
            return [await human.review(review) for _ in range(60)]

        return [d.choice for d in sim.run(many()) if not d.correct]

    wrong = choices(1)
    assert len(wrong) == 60
    assert set(wrong) == {"restart", "scale", "leave"}
    assert wrong == choices(1)


# --- the evidence codec ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("content", "strength"),
    [
        (json.dumps(evidence.partial([1, 2, 3, 4], 0.5), sort_keys=True), PARTIAL_STRENGTH),
        (json.dumps(evidence.partial({"host": "web-01"}, 0.5)), PARTIAL_STRENGTH),
        ('{"partial": false, "hits": 3}', 1.0),
        ('["partial", true]', 1.0),
        ('{"note": "a partial answer: true"}', 1.0),
        ("partial: true", 1.0),
        (json.dumps(evidence.empty([1, 2])), 0.0),
        (json.dumps(evidence.empty({"a": 1})), 0.0),
        (evidence.empty("text"), 0.0),  # a string result is shown as it is
        ('{"hits": 3}', 1.0),
    ],
)
def test_the_codec_reads_back_what_it_writes(content: str, strength: float) -> None:
    assert evidence.strength(ToolResultBlock(tool_use_id="t", content=content)) == strength


def test_an_error_or_no_result_carries_no_evidence() -> None:
    assert evidence.strength(None) == 0.0
    assert evidence.strength(ToolResultBlock(tool_use_id="t", content='{"hits": 3}', is_error=True)) == 0.0
    assert evidence.partial([1, 2, 3], 0.5) == {"partial": True, "result": [1]}
