"""Verified idempotent actions: ledger, precheck, verification, recovery, leases and conflicts."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from pydantic import BaseModel

from windtunnel.evals import writes_verified_or_escalated
from windtunnel.orchestrator import (
    ActionPolicy,
    ActionSpec,
    Grant,
    MemoryStore,
    Outcome,
    RunResult,
    SqliteStore,
    StepContext,
    Tool,
    ToolRegistry,
    ToolUseBlock,
    Trace,
    Workflow,
    WorkflowError,
    approval_gate,
    call_tool,
    decide,
    resume,
    run,
)
from windtunnel.scenarios.soc import Host, World, soc_tools
from windtunnel.simulators import Fault, FaultInjector, FaultPlan, Sim

IP = "203.0.113.9"


def world() -> World:
    return World(hosts={"db-01": Host(name="db-01", ip="10.0.0.2", criticality="critical", owner="data")})


def acting(
    tools: ToolRegistry, *calls: tuple[str, dict[str, Any]], then: float = 0.0
) -> Callable[[StepContext], Awaitable[Outcome]]:
    """A handler that makes ``calls`` through the tool layer, then waits ``then`` seconds."""

    async def handler(ctx: StepContext) -> Outcome:
        outputs = []
        for name, args in calls:
            use = ToolUseBlock(id=ctx.new_id("call"), name=name, input=args)
            result, _ = await call_tool(ctx, tools, [name], use)
            outputs.append([result.is_error, result.content])
        await asyncio.sleep(then)
        return Outcome(next="done", data={"outputs": outputs})

    return handler


async def to_done(ctx: StepContext) -> Outcome:
    return Outcome(next="done")


def workflow(handler: Callable[[StepContext], Awaitable[Outcome]], **kwargs: Any) -> Workflow:
    return Workflow(
        states={"act": handler, "escalate": to_done},
        transitions={"act": ["done"], "escalate": ["done"]},
        initial="act",
        terminal=["done"],
        escalate_to="escalate",
        **kwargs,
    )


def kinds(result: RunResult, *wanted: str) -> list[str]:
    return [e.kind for e in result.trace if e.kind in wanted]


def test_the_same_action_twice_is_applied_once() -> None:
    w, sim = world(), Sim(seed=0)
    tools = soc_tools(w, rng=sim.rng)
    store = MemoryStore()
    block = ("block_ip", {"ip": IP})
    result = sim.run(run(workflow(acting(tools, block, block)), env=sim, store=store))
    applied = result.trace.query(kind="action_applied")
    # Two calls, two keys; the second finds the address blocked: a recorded no-op.
    assert [(e.noop, e.from_ledger) for e in applied] == [(False, False), (True, False)]  # type: ignore[union-attr]
    assert applied[0].key != applied[1].key  # type: ignore[union-attr]
    assert len(result.trace.query(kind="tool_called", tool="block_ip")) == 1
    assert [e.status for e in store.ledger] == ["applied", "noop"]
    assert store.ledger[0].verified
    assert w.blocklist == {IP}


def test_block_unblock_block_in_one_step_ends_blocked() -> None:
    w, sim = world(), Sim(seed=0)
    tools = soc_tools(w, rng=sim.rng)
    calls = [("block_ip", {"ip": IP}), ("unblock_ip", {"ip": IP}), ("block_ip", {"ip": IP})]
    result = sim.run(run(workflow(acting(tools, *calls)), env=sim, store=MemoryStore()))
    assert len(result.trace.query(kind="tool_called")) == 3
    assert w.blocklist == {IP}


def test_precheck_makes_a_done_action_a_recorded_noop() -> None:
    w, sim = world(), Sim(seed=0)
    w.change("blocklist", IP, True, at=0.0)
    tools = soc_tools(w, rng=sim.rng)
    result = sim.run(run(workflow(acting(tools, ("block_ip", {"ip": IP}))), env=sim, store=MemoryStore()))
    [applied] = result.trace.query(kind="action_applied")
    assert applied.noop  # type: ignore[union-attr]
    assert result.trace.query(kind="tool_called") == []


def test_verification_outwaits_a_stale_read() -> None:
    w, sim = world(), Sim(seed=0)
    injector = FaultInjector(
        FaultPlan(faults=[Fault(id="s", kind="stale_read", target="tool:block_ip", seconds=12)]),
        seed=sim.seed,
    )
    tools = injector.tools(soc_tools(w, rng=sim.rng), world=w)
    result = sim.run(run(workflow(acting(tools, ("block_ip", {"ip": IP}))), env=sim, store=MemoryStore()))
    [verified] = result.trace.query(kind="action_verified")
    assert verified.attempts == 3  # type: ignore[union-attr]  # read at +0 and +5 s: stale; at +15 s: seen
    assert result.final_state == "done"


def test_unverifiable_action_is_reapplied_compensated_then_escalated() -> None:
    w, sim = world(), Sim(seed=0)
    injector = FaultInjector(
        FaultPlan(faults=[Fault(id="s", kind="silent_failure", target="tool:block_ip")]), seed=sim.seed
    )
    tools = injector.tools(soc_tools(w, rng=sim.rng), world=w)
    result = sim.run(run(workflow(acting(tools, ("block_ip", {"ip": IP}))), env=sim, store=MemoryStore()))
    assert kinds(result, "action_applied", "verification_failed", "action_compensated", "escalated") == [
        "action_applied",
        "verification_failed",
        "action_applied",
        "verification_failed",
        "action_compensated",
        "escalated",
    ]
    assert [e.action for e in result.trace.query(kind="verification_failed")] == ["reapply", "compensate"]  # type: ignore[union-attr]
    [escalated] = result.trace.query(kind="escalated")
    assert (escalated.trigger, escalated.to) == ("verification_failed", "escalate")  # type: ignore[union-attr]
    assert [e.target for e in result.trace.query(kind="transition")] == ["escalate", "done"]  # type: ignore[union-attr]


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "sqlite"])
def test_a_reapplication_that_times_out_unseen_goes_on_to_undo_and_escalate(durable: bool) -> None:
    """Applied, unseen under a stale read, applied again into a timeout, still unseen:
    the reapplication's failed read-back is the action's verification failing again,
    so the policy goes on (undo, escalate) rather than record the write as failed and
    leave its first application unsettled (a fuzzer's find)."""
    w, sim = world(), Sim(seed=0)
    faults = [
        Fault(id="stale", kind="stale_read", target="tool:block_ip", seconds=3600),
        Fault(id="slow", kind="latency_spike", target="tool:block_ip", trigger={"nth": 2}, seconds=60),
    ]
    injector = FaultInjector(FaultPlan(faults=faults), seed=sim.seed)
    tools = injector.tools(soc_tools(w, rng=sim.rng), world=w)
    store = SqliteStore(":memory:") if durable else MemoryStore()
    result = sim.run(run(workflow(acting(tools, ("block_ip", {"ip": IP}))), env=sim, store=store))
    assert kinds(result, *CUT, "action_applied") == [
        "action_applied",
        "verification_failed",
        "action_unknown",
        "verification_failed",
        "action_compensated",
        "escalated",
    ]
    assert [e.action for e in result.trace.query(kind="verification_failed")] == ["reapply", "compensate"]  # type: ignore[union-attr]
    [escalated] = result.trace.query(kind="escalated")
    assert (escalated.trigger, escalated.to) == ("verification_failed", "escalate")  # type: ignore[union-attr]
    assert [(e.status, e.attempt) for e in store.ledger] == [("compensated", 2)]
    assert writes_verified_or_escalated(result.trace.events) == []
    assert w.blocklist == set()


def test_high_impact_action_escalates_unless_approved() -> None:
    w, sim = world(), Sim(seed=0)
    tools = soc_tools(w, rng=sim.rng)
    isolate = ("isolate_host", {"host": "db-01"})
    result = sim.run(run(workflow(acting(tools, isolate)), env=sim, store=MemoryStore()))
    [escalated] = result.trace.query(kind="escalated")
    assert escalated.trigger == "high_impact"  # type: ignore[union-attr]
    assert w.isolated == set()


def approved_then(tools: ToolRegistry, call: tuple[str, dict[str, Any]]) -> Workflow:
    """Ask for approval to isolate db-01, then make ``call``."""
    return Workflow(
        name="approved",
        states={
            "approve": approval_gate(
                approve="act",
                reject="escalate",
                on_timeout="escalate",
                timeout=3600,
                grants=lambda ctx: [Grant("host:db-01", "isolate")],
            ),
            "act": acting(tools, call),
            "escalate": to_done,
        },
        transitions={"approve": ["act", "escalate"], "act": ["done"], "escalate": ["done"]},
        initial="approve",
        terminal=["done"],
        escalate_to="escalate",
    )


@pytest.mark.parametrize(
    ("decision", "call", "isolated", "escalated"),
    [
        ("approve", ("isolate_host", {"host": "db-01"}), {"db-01"}, []),
        # An approval covers only the resource and the intent it was asked for.
        ("approve", ("isolate_host", {"host": "db-02"}), set(), ["high_impact"]),
        ("approve", ("release_host", {"host": "db-01"}), set(), ["high_impact"]),
        ("reject", ("isolate_host", {"host": "db-01"}), set(), []),
    ],
)
def test_an_approval_grants_exactly_its_resource_and_intent(
    decision: str, call: tuple[str, dict[str, Any]], isolated: set[str], escalated: list[str]
) -> None:
    w, sim = world(), Sim(seed=0)
    w.hosts["db-02"] = Host(name="db-02", ip="10.0.0.3", criticality="critical", owner="data")
    tools = soc_tools(w, rng=sim.rng)
    store = SqliteStore(":memory:")
    paused = sim.run(run(approved_then(tools, call), env=sim, store=store))
    [request] = store.pending()
    assert request.grants == (Grant("host:db-01", "isolate"),)
    assert request.proposal.endswith("grants: isolate host:db-01")
    decide(store, request.id, decision, by="alice", at=sim.now)  # type: ignore[arg-type]
    result = sim.run(resume(approved_then(tools, call), paused.run_id, env=sim, store=store))
    assert result.status == "completed"
    assert w.isolated == isolated
    assert [e.trigger for e in result.trace.query(kind="escalated")] == escalated  # type: ignore[union-attr]
    [decided] = result.trace.query(kind="approval_decided")
    granted = [("host:db-01", "isolate")] if decision == "approve" else []
    assert decided.grants == granted  # type: ignore[union-attr]


@pytest.mark.parametrize("policy", ["escalate", "refuse", "wait"])
def test_two_runs_with_opposite_intents_on_one_ip(policy: str) -> None:
    w, sim = world(), Sim(seed=0)
    tools = soc_tools(w, rng=sim.rng)
    store, trace = MemoryStore(), Trace()
    actions = ActionPolicy(on_conflict=policy, conflict_wait=600)  # type: ignore[arg-type]
    blocker = workflow(acting(tools, ("block_ip", {"ip": IP}), then=120), actions=actions)
    unblocker = workflow(acting(tools, ("unblock_ip", {"ip": IP})), actions=actions)

    async def both() -> list[RunResult]:
        first = asyncio.create_task(run(blocker, env=sim, store=store, trace=trace, run_id="blocker"))
        await asyncio.sleep(30)  # the block is applied and verified, the lease held
        second = await run(unblocker, env=sim, store=store, trace=trace, run_id="unblocker")
        return [await first, second]

    first, second = sim.run(both())
    conflicts = trace.query(kind="conflict_detected", run_id="unblocker")
    assert conflicts
    assert (conflicts[0].held_by, conflicts[0].held_intent, conflicts[0].intent) == (
        "blocker",
        "block",
        "unblock",
    )  # type: ignore[union-attr]
    if policy == "escalate":
        assert [e.trigger for e in trace.query(kind="escalated", run_id="unblocker")] == ["conflict"]  # type: ignore[union-attr]
        assert w.blocklist == {IP}  # the conflicting unblock never committed
    elif policy == "refuse":
        assert second.data["outputs"][0][0] is True  # an error result
        assert "refused" in second.data["outputs"][0][1]
        assert w.blocklist == {IP}
    else:
        # It waited for the blocker's lease to go, then acted: never both at once.
        assert trace.query(kind="action_applied", run_id="unblocker")[0].sim_time >= first.duration
        assert w.blocklist == set()


def test_write_tool_without_verifier_is_rejected_when_built() -> None:
    class Args(BaseModel):
        ip: str

    async def block(args: Args) -> None:
        return None

    with pytest.raises(WorkflowError, match="write tool 'block' declares no action"):
        ToolRegistry([Tool(name="block", description="", input_model=Args, fn=block, kind="write")])


def test_a_cancelled_run_lets_go_of_its_leases() -> None:
    w, sim = world(), Sim(seed=0)
    tools = soc_tools(w, rng=sim.rng)
    store = MemoryStore()
    holder = workflow(acting(tools, ("block_ip", {"ip": IP}), then=1000))

    async def cancel_then_unblock() -> RunResult:
        task = asyncio.create_task(run(holder, env=sim, store=store, run_id="holder"))
        await asyncio.sleep(30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return await run(workflow(acting(tools, ("unblock_ip", {"ip": IP}))), env=sim, store=store)

    result = sim.run(cancel_then_unblock())
    assert result.trace.query(kind="conflict_detected") == []
    assert w.blocklist == set()


class Ip(BaseModel):
    ip: str = IP


def slow_firewall(
    *, lands: bool, takes: float = 0.0, undo_takes: float = 0.0, lag: float = 0.0
) -> ToolRegistry:
    """A ``block_ip`` that takes ``takes`` seconds (and does nothing unless ``lands``),
    verified on a replica ``lag`` seconds behind, whose undo takes ``undo_takes`` seconds."""
    blocked: dict[str, float] = {}

    async def block(args: Ip) -> str:
        await asyncio.sleep(takes)
        if lands:
            blocked[args.ip] = asyncio.get_running_loop().time()
        return "rule added"

    async def is_blocked(args: Ip) -> bool:
        return args.ip in blocked

    async def shows(args: Ip) -> bool:
        at = blocked.get(args.ip)
        return at is not None and asyncio.get_running_loop().time() - at >= lag

    async def unblock(args: Ip) -> None:
        await asyncio.sleep(undo_takes)
        blocked.pop(args.ip, None)

    spec = ActionSpec(
        intent="block",
        opposite="unblock",
        resource=lambda a: f"ip:{a.ip}",
        precheck=is_blocked,
        verify=shows,
        compensate=unblock,
    )
    return ToolRegistry(
        [Tool(name="block_ip", description="", input_model=Ip, fn=block, kind="write", action=spec)]
    )


CUT = ("action_unknown", "verification_failed", "action_compensated", "handler_failed", "escalated")


@pytest.mark.parametrize(
    ("tools", "cut", "status"),
    [
        pytest.param(slow_firewall(lands=True, takes=25), ["action_unknown"], "unverified", id="applying"),
        pytest.param(
            slow_firewall(lands=False, undo_takes=25),
            ["verification_failed", "action_compensated"],
            "undo_failed",
            id="undoing",
        ),
    ],
)
def test_a_write_its_state_timeout_cuts_short_escalates(
    tools: ToolRegistry, cut: list[str], status: str
) -> None:
    wf = workflow(
        acting(tools, ("block_ip", {})),
        timeouts={"act": 20.0},
        actions=ActionPolicy(verify_attempts=1, reapply=0),
    )
    store = MemoryStore()
    sim = Sim(seed=0)
    result = sim.run(run(wf, env=sim, store=store))
    assert kinds(result, *CUT) == [*cut, "handler_failed", "escalated"]
    assert [(e.status, e.verified) for e in store.ledger] == [(status, False)]
    assert result.final_state == "done"


def test_a_write_cut_short_without_an_escalation_state_stays_on_record_unverified() -> None:
    # The policy's retry goes on, and its precheck finds the change: a no-op. The
    # ledger still says the first application needs a human.
    tools = slow_firewall(lands=True, lag=60)  # read back at 0, 5 and 15 s, then cut at 20 s
    wf = Workflow(
        states={"act": acting(tools, ("block_ip", {}))},
        transitions={"act": ["done"]},
        initial="act",
        terminal=["done"],
        timeouts={"act": 20.0},
    )
    store = MemoryStore()
    sim = Sim(seed=0)
    result = sim.run(run(wf, env=sim, store=store))
    assert kinds(result, *CUT, "action_applied") == [
        "action_applied",
        "verification_failed",
        "handler_failed",
        "action_applied",
    ]
    assert [e.noop for e in result.trace.query(kind="action_applied")] == [False, True]  # type: ignore[union-attr]
    assert [(e.status, e.verified) for e in store.ledger] == [("unverified", False), ("noop", True)]
