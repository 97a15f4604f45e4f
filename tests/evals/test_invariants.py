"""The invariant checkers find what they say they find, and nothing in real runs."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import random
import tempfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from tests.orchestrator.crash_kit import (
    SILENT,
    SILENT_LANDS_ON,
    TTL,
    CrashingStore,
    Reaper,
    _Clock,
    killed_twice,
)
from tests.orchestrator.safety_kit import IP, Firewall, approval_workflow, blocking_workflow, charging
from windtunnel.evals import Violation, invariants, legal_transitions_only, runs_terminate, trace_complete
from windtunnel.evals.invariants import check_all, no_conflicting_intents, no_refused_transition_followed
from windtunnel.orchestrator import (
    ActionApplied,
    ActionPolicy,
    ActionSpec,
    Budget,
    ConflictPolicy,
    Event,
    MemoryStore,
    Outcome,
    RunResumed,
    SqliteStore,
    StateEntered,
    StepContext,
    Tool,
    ToolRegistry,
    ToolRejected,
    ToolUseBlock,
    Trace,
    TransitionRefused,
    Workflow,
    call_tool,
    decide,
    query_events,
    resume,
    run,
)
from windtunnel.scenarios import (
    BUILTIN_DOMAINS,
    DemoVariant,
    DemoWorld,
    Kit,
    LoadedScenario,
    demo_workflow,
    load_domain,
    load_suite,
    run_demo,
    run_scenario,
)
from windtunnel.scenarios.domain import load_factory
from windtunnel.scenarios.oracle import oracle
from windtunnel.scenarios.soc import Host, World, soc_tools
from windtunnel.simulators import Sim, SimulatedCrash

WF = demo_workflow(DemoWorld())


def events(*records: tuple[str, str | None, dict[str, Any]], run_id: str = "r") -> list[Event]:
    trace = Trace()
    for seq, (kind, state, fields) in enumerate(records):
        trace.append((kind, run_id, seq, float(seq), 0.0, state, fields))
    return trace.events


START = (
    "run_started",
    "triage",
    {"workflow": "w", "case": None, "max_steps": None, "max_duration": None, "max_cost": None},
)


def move(state: str, target: str, reason: str | None = None) -> tuple[str, str, dict[str, Any]]:
    return ("transition", state, {"target": target, "confidence": None, "data": {}, "reason": reason})


def enter(state: str) -> tuple[str, str, dict[str, Any]]:
    return ("state_entered", state, {"step": 1, "attempt": 1})


def finish(state: str, status: str = "completed") -> tuple[str, str, dict[str, Any]]:
    return (
        "run_finished",
        state,
        {"status": status, "steps": 1, "duration": 0.0, "total_cost": 0.0, "reason": None},
    )


def test_a_real_trace_is_clean() -> None:
    trace = run_demo(seed=4, variant="confused").trace.events
    assert legal_transitions_only(trace, WF) == trace_complete(trace) == runs_terminate(trace) == []


def test_illegal_handler_move_and_bad_policy_route() -> None:
    found = legal_transitions_only(
        events(
            START,
            enter("triage"),
            move("triage", "execute"),
            enter("execute"),
            move("execute", "close", reason="policy: x"),
            finish("close"),
        ),
        WF,
    )
    assert found == [
        Violation(
            check="legal_transitions_only",
            run_id="r",
            seq=2,
            message="handler moved 'triage' -> 'execute'; allowed: ['close', 'investigate']",
        ),
        Violation(
            check="legal_transitions_only",
            run_id="r",
            seq=4,
            message="policy moved 'execute' -> 'close', which is not a declared route",
        ),
    ]


def test_entering_a_state_the_run_is_not_in() -> None:
    found = legal_transitions_only(events(START, enter("decide"), finish("triage", "failed")), WF)
    assert [v.message for v in found] == ["entered 'decide' but the run was in 'triage'"]


def test_completed_in_a_non_terminal_state() -> None:
    found = legal_transitions_only(events(START, enter("triage"), finish("triage")), WF)
    assert [v.message for v in found] == ["completed in 'triage', which is not terminal"]


def test_unfinished_run_and_gaps() -> None:
    trace = Trace()
    trace.append(("state_entered", "r", 0, 0.0, 0.0, "triage", {"step": 1, "attempt": 1}))
    trace.append(("state_entered", "r", 2, 0.0, 0.0, "triage", {"step": 1, "attempt": 1}))
    assert [v.message for v in runs_terminate(trace.events)] == ["run started but never finished"]
    assert [v.message for v in trace_complete(trace.events)] == [
        "expected seq 1, found 2",
        "first event is 'state_entered', not 'run_started'",
    ]


def test_events_after_finish() -> None:
    found = trace_complete(events(START, finish("triage", "failed"), enter("triage")))
    assert [v.message for v in found] == ["events follow 'run_finished', or it appears more than once"]


# --- Real runs: no checker may call correct behaviour wrong ---------------------------------------


PLAYS = ["small", "mid", "large", "ladder:small@0.85,mid@0.6,large"]
LIBRARY = list(load_suite([folder for name in BUILTIN_DOMAINS if (folder := load_domain(name).scenarios)]))


def scenario_run(item: LoadedScenario, **how: Any) -> tuple[list[Event], Workflow]:
    """One run of ``item``: its events and the workflow it ran."""
    built: list[Workflow] = []
    factory = load_factory(item.scenario.workflow) if item.scenario.workflow else item.domain.workflow

    def capture(kit: Kit) -> Workflow:
        built.append(factory(kit))
        return built[-1]

    return run_scenario(item, workflow=capture, **how).trace.events, built[0]


@functools.cache
def soc(name: str, seed: int = 0, play: str = "small") -> list[Event]:
    [item] = [item for item in LIBRARY if item.scenario.id == f"soc-{name}"]
    return run_scenario(item, seed=seed, play=play).trace.events


@pytest.fixture(scope="module")
def fast_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A directory in memory when the machine has one: the crash runs open many SQLite files."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path_factory.mktemp("crashes")
        return
    with tempfile.TemporaryDirectory(dir=shm) as path:
        yield Path(path)


def test_every_built_in_scenario_is_clean_on_every_tier_and_seed() -> None:
    dirty, kinds = [], Counter[str]()
    for item in LIBRARY:
        runs = [({"seed": seed, "play": play}) for seed in (0, 1) for play in PLAYS]
        runs += [{"seed": 0, "models": oracle()}, {"seed": 0, "models": oracle(wrong=True)}]
        for how in runs:
            trace, workflow = scenario_run(item, **how)
            kinds.update(event.kind for event in trace)
            found = check_all(trace, workflow)
            if found:
                dirty.append((item.scenario.id, how.get("seed"), how.get("play", "oracle"), found))
    assert dirty == []
    # The runs exercised what the checkers look at.
    assert {"action_verified", "verification_failed", "action_compensated", "tool_rejected"} <= set(kinds)
    assert {"escalated", "run_resumed", "cost_charged"} <= set(kinds)  # budgets: the demo's endless runs


def test_crashed_runs_killed_at_every_point_are_clean(fast_dir: Path) -> None:
    # Silent failures killed at every store and world write: replayed events, unknown
    # outcomes settled by read-back, re-applications, undos and escalations.
    kinds, first = Counter[str](), 1
    while True:
        crashed, reached, _ = killed_twice(fast_dir, SILENT, first, None, SILENT_LANDS_ON)
        if reached < first:
            break
        assert check_all(crashed.trace.events) == [], f"killed at point {first}"
        kinds.update(event.kind for event in crashed.trace)
        kinds["recovered"] += len(crashed.trace.query(kind="action_applied", recovered=True))
        first += 1
    assert first > 20
    assert min(kinds[kind] for kind in ("action_unknown", "recovered", "run_resumed", "action_compensated"))


@pytest.mark.parametrize("variant", ["nominal", "slow_source", "confused", "endless"])
def test_demo_runs_are_clean(variant: DemoVariant) -> None:
    for seed in range(5):
        trace = run_demo(seed=seed, variant=variant).trace.events
        assert check_all(trace, demo_workflow(DemoWorld(), variant=variant)) == []
    assert variant != "confused" or any(event.kind == "transition_refused" for event in trace)
    assert variant != "endless" or any(event.kind == "budget_exceeded" for event in trace)


@pytest.mark.parametrize("undo", ["none", "ok", "fails"])
def test_an_action_that_never_verifies_is_clean(undo: str) -> None:
    firewall = Firewall(undo_fails=undo == "fails")
    sim = Sim(seed=0)
    result = sim.run(run(blocking_workflow(firewall.tool(compensable=undo != "none")), env=sim))
    assert result.final_state == "human"
    assert check_all(result.trace.events) == []


@pytest.mark.parametrize("charges", [[0.3, 0.3], [0.3, 0.3, 0.5, 0.1], [0.5, 0.5]])
def test_cost_budget_runs_are_clean(charges: list[float]) -> None:
    sim, refused = Sim(seed=0), []
    result = sim.run(run(charging(charges, refused), env=sim, budget=Budget(max_cost=1.0)))
    assert check_all(result.trace.events) == []


@pytest.mark.parametrize("max_duration", [900.0, 50.0])
def test_a_paused_and_resumed_run_is_clean(max_duration: float) -> None:
    # With 50 s, the run resumes past its duration budget and stops at once.
    sim, store = Sim(seed=0), SqliteStore(":memory:")
    wf = approval_workflow(timeout=600)
    paused = sim.run(run(wf, env=sim, store=store, budget=Budget(max_duration=max_duration)))
    [request] = store.pending()
    decide(store, request.id, "approve", by="alice", at=sim.now + 60)
    sim.run(asyncio.sleep(100))
    result = sim.run(resume(wf, paused.run_id, env=sim, store=store))
    assert result.status == ("completed" if max_duration > 100 else "budget_exceeded")
    assert check_all(result.trace.events) == []


Calls = list[tuple[str, str, float]]
"""Write calls a run makes, in order: (tool, address, seconds it waits after)."""


def contending(
    runs: dict[str, tuple[float, Calls]],
    *,
    policy: ConflictPolicy,
    seed: int = 0,
    timeout: float | None = None,
) -> list[Event]:
    """Runs (by id: when each starts, what it calls) acting at once on one store, one
    world and one trace, with the conflict ``policy`` and a state ``timeout``."""
    world = World(hosts={"db-01": Host(name="db-01", ip="10.0.0.2", criticality="critical", owner="data")})
    sim = Sim(seed=seed)
    tools = soc_tools(world, rng=sim.rng)
    store, trace = MemoryStore(), Trace()

    def workflow(calls: Calls) -> Workflow:
        async def act(ctx: StepContext) -> Outcome:
            for tool, address, then in calls:
                use = ToolUseBlock(id=ctx.new_id("call"), name=tool, input={"ip": address})
                await call_tool(ctx, tools, [tool], use)
                await asyncio.sleep(then)
            return Outcome(next="done")

        async def escalate(ctx: StepContext) -> Outcome:
            return Outcome(next="done")

        return Workflow(
            states={"act": act, "escalate": escalate},
            transitions={"act": ["done"], "escalate": ["done"]},
            initial="act",
            terminal=["done"],
            escalate_to="escalate",
            timeouts=None if timeout is None else {"act": timeout},
            actions=ActionPolicy(on_conflict=policy, conflict_wait=600),
        )

    async def all_of_them() -> None:
        async def one(run_id: str, start: float, calls: Calls) -> None:
            await asyncio.sleep(start)
            await run(workflow(calls), env=sim, store=store, trace=trace, run_id=run_id)

        await asyncio.gather(*(one(run_id, start, calls) for run_id, (start, calls) in runs.items()))

    sim.run(all_of_them())
    return trace.events


def two_runs(policy: ConflictPolicy) -> list[Event]:
    """A run blocking an address and holding it for 120 s, and one that wants it
    unblocked meanwhile: the unblocker escalates, is refused, or waits."""
    return contending({"A": (0, [("block_ip", IP, 120)]), "B": (30, [("unblock_ip", IP, 0)])}, policy=policy)


OPPOSITES = {"block": "unblock", "unblock": "block"}


@pytest.mark.parametrize("policy", ["escalate", "refuse", "wait"])
def test_two_runs_contending_for_an_address_are_clean(policy: ConflictPolicy) -> None:
    trace = two_runs(policy)
    assert any(event.kind == "conflict_detected" for event in trace)
    assert check_all(trace) == check_all(trace, opposites=OPPOSITES) == []


def test_many_runs_contending_for_two_addresses_are_clean() -> None:
    # Runs that block and unblock two addresses at random moments, some cut short by
    # their state's timeout: every conflict the store lets through would show here.
    conflicts = 0
    for seed in range(30):
        rng = random.Random(seed)
        runs = {
            f"r{index}": (
                rng.uniform(0, 60),
                [
                    (
                        rng.choice(["block_ip", "unblock_ip"]),
                        rng.choice([IP, "203.0.113.10"]),
                        rng.uniform(0, 50),
                    )
                    for _ in range(rng.randint(1, 3))
                ],
            )
            for index in range(6)
        }
        policy: ConflictPolicy = rng.choice(["escalate", "refuse", "wait"])
        trace = contending(runs, policy=policy, seed=seed, timeout=rng.choice([5.0, 30.0, None]))
        conflicts += sum(event.kind == "conflict_detected" for event in trace)
        assert check_all(trace, opposites=OPPOSITES) == [], f"seed {seed}"
    assert conflicts > 100


class Address(BaseModel):
    ip: str = IP


def lagging_block(cut_by: str) -> tuple[Workflow, Budget | None]:
    """A workflow that blocks an address and escalates, whose verification reads a
    replica 60 s behind: its read-backs (5, 10, 20 s apart) outlast 20 s — the state's
    timeout, or the run's duration budget with no on_budget state (``cut_by``)."""
    blocked: dict[str, float] = {}

    async def block(args: Address) -> str:
        blocked[args.ip] = asyncio.get_running_loop().time()
        return "rule added"

    async def applied(args: Address) -> bool:
        return args.ip in blocked  # the primary

    async def shows(args: Address) -> bool:
        at = blocked.get(args.ip)
        return at is not None and asyncio.get_running_loop().time() - at >= 60

    spec = ActionSpec(
        intent="block", opposite="unblock", resource=lambda a: f"ip:{a.ip}", precheck=applied, verify=shows
    )
    tools = ToolRegistry(
        [Tool(name="block_ip", description="", input_model=Address, fn=block, kind="write", action=spec)]
    )

    async def act(ctx: StepContext) -> Outcome:
        await call_tool(ctx, tools, ["block_ip"], ToolUseBlock(id=ctx.new_id("c"), name="block_ip", input={}))
        return Outcome(next="done")

    async def escalate(ctx: StepContext) -> Outcome:
        return Outcome(next="done")

    wf = Workflow(
        states={"act": act, "escalate": escalate},
        transitions={"act": ["done"], "escalate": ["done"]},
        initial="act",
        terminal=["done"],
        escalate_to="escalate",
        timeouts={"act": 20.0} if cut_by == "timeout" else None,
    )
    return wf, Budget(max_duration=20.0) if cut_by == "budget" else None


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "sqlite"])
@pytest.mark.parametrize("cut_by", ["timeout", "budget"])
def test_a_write_cut_short_by_its_state_timeout_is_still_settled(cut_by: str, durable: bool) -> None:
    # Its retry would make it anew under another key, find it done and call it a no-op:
    # the step escalates instead, and the ledger says the write needs a human.
    wf, budget = lagging_block(cut_by)
    sim = Sim(seed=0)
    store = SqliteStore(":memory:") if durable else MemoryStore()
    result = sim.run(run(wf, env=sim, store=store, budget=budget))
    ends = {
        "timeout": [
            "handler_failed",
            "escalated",
            "transition",
            "state_entered",
            "transition",
            "run_finished",
        ],
        "budget": ["budget_exceeded", "escalated", "transition", "run_finished"],
    }
    assert [e.kind for e in result.trace] == [
        "run_started",
        "state_entered",
        "tool_called",
        "action_applied",
        "verification_failed",  # after 3 read-backs, at 20 s
        *ends[cut_by],
    ]
    assert check_all(result.trace.events) == []
    [failed] = result.trace.query(kind="verification_failed")
    [escalated] = result.trace.query(kind="escalated")
    assert (failed.attempts, failed.action, escalated.trigger, escalated.to) == (  # type: ignore[union-attr]
        3,
        "escalate",
        "verification_failed",
        "escalate",
    )
    assert (result.status, result.final_state) == (
        ("completed", "done") if cut_by == "timeout" else ("budget_exceeded", "escalate")
    )
    assert [(e.status, e.verified) for e in store.ledger] == [("unverified", False)]


def test_a_write_cut_short_is_settled_whenever_its_life_dies(fast_dir: Path) -> None:
    # Killed at each store write, then resumed: the next life settles the write (it
    # verifies, or is cut short again and escalates); none is left applied unverified.
    kill_at = 1
    while True:
        wf, budget = lagging_block("timeout")
        path, clock, sim = fast_dir / f"cut-{kill_at}.sqlite", _Clock(), Sim(seed=0)
        reaper = Reaper(kill_at)
        store = CrashingStore(path, reaper, clock)
        with contextlib.suppress(SimulatedCrash):
            sim.run(run(wf, env=sim, store=store, budget=budget, run_id="r"))
        store.close()
        if reaper.points < kill_at:
            break
        clock.now += TTL + 1  # the dead owner's lease lapses
        store = SqliteStore(path, clock=clock)
        checkpoint = store.load("r")
        if checkpoint is None:
            sim.run(run(wf, env=sim, store=store, budget=budget, run_id="r"))
        elif checkpoint.status == "running":
            sim.run(resume(wf, "r", env=sim, store=store))
        assert check_all(store.events("r")) == [], f"killed at point {kill_at}"
        assert all(e.status in ("unverified", "noop") or e.verified for e in store.ledger), kill_at
        store.close()
        kill_at += 1
    assert kill_at > 3


# --- Broken traces: each checker finds exactly what it should -------------------------------------


def resequenced(trace: list[Event]) -> list[Event]:
    """``trace`` with each run's events numbered 0, 1, 2, ... again (after a drop or an insert)."""
    counts: dict[str, int] = {}
    renumbered = []
    for event in trace:
        seq = counts.get(event.run_id, 0)
        counts[event.run_id] = seq + 1
        renumbered.append(event if event.seq == seq else event.model_copy(update={"seq": seq}))
    return renumbered


def at(trace: list[Event], kind: str, nth: int = 0, **fields: Any) -> int:
    """The index of the ``nth`` event of ``kind`` with ``fields``."""
    return [i for i, event in enumerate(trace) if query_events([event], kind=kind, **fields)][nth]


def without(trace: list[Event], *indexes: int) -> list[Event]:
    return resequenced([event for i, event in enumerate(trace) if i not in indexes])


def inserted(trace: list[Event], index: int, event: Event) -> list[Event]:
    return resequenced([*trace[:index], event, *trace[index:]])


SILENT_BLOCK = "c2-block-silent-failure"  # block, fail to verify, block again, fail, undo, escalate


def test_a_write_neither_verified_undone_nor_escalated() -> None:
    trace = soc(SILENT_BLOCK)
    undone, escalated = at(trace, "action_compensated"), at(trace, "escalated")
    # Undone, or escalated, is settled...
    assert check_all(without(trace, undone)) == check_all(without(trace, escalated)) == []
    # ...neither is not: the write is reported at its first application.
    broken = without(trace, undone, escalated)
    applied, ended = broken[at(broken, "action_applied")], broken[at(broken, "state_entered", 3)]
    assert isinstance(applied, ActionApplied)
    assert check_all(broken) == [
        Violation(
            check="writes_verified_or_escalated",
            run_id=applied.run_id,
            seq=applied.seq,
            message=f"block_ip (block) on {applied.resource} was applied (attempt 1, key {applied.key}) "
            f"but neither verified, undone nor escalated before its step ended at seq {ended.seq}",
        )
    ]


def test_a_verification_of_another_key_does_not_count() -> None:
    trace = soc("c2-beacon")
    verified = at(trace, "action_verified")
    broken = [*trace]
    broken[verified] = trace[verified].model_copy(update={"key": "block_ip:another"})
    assert [(v.check, v.seq) for v in check_all(broken)] == [
        ("writes_verified_or_escalated", trace[at(trace, "action_applied")].seq)
    ]


def test_a_ladder_escalation_does_not_settle_a_write() -> None:
    trace = soc(SILENT_BLOCK)
    escalated = at(trace, "escalated")
    ladder = trace[escalated].model_copy(update={"to": "mid", "from_tier": "small"})
    broken = without([*trace[:escalated], ladder, *trace[escalated + 1 :]], at(trace, "action_compensated"))
    assert [v.check for v in check_all(broken)] == ["writes_verified_or_escalated"]


def test_an_action_applied_twice() -> None:
    trace = soc(SILENT_BLOCK)
    first = at(trace, "action_applied")
    again = inserted(trace, first + 1, trace[first])
    assert check_all(again) == [
        Violation(
            check="no_action_applied_twice",
            run_id=trace[first].run_id,
            seq=first + 1,
            message=f"block_ip (block) on {trace[first].resource}, key {trace[first].key}, "  # type: ignore[union-attr]
            "was applied twice as attempt 1",
        )
    ]
    # The same attempt recovered by reading back is that application settled, not another.
    recovered = inserted(trace, first + 1, trace[first].model_copy(update={"recovered": True}))
    assert check_all(recovered) == []
    # Out of the ledger, it is not applied at all.
    ledger = inserted(trace, first + 1, trace[first].model_copy(update={"from_ledger": True}))
    assert check_all(ledger) == []


def test_a_reapplication_no_failed_verification_asked_for() -> None:
    trace = soc(SILENT_BLOCK)
    asked = at(trace, "verification_failed", action="reapply")
    broken = without(trace, asked)
    second = broken[at(broken, "action_applied", 1)]
    assert [(v.check, v.seq, v.message) for v in check_all(broken)] == [
        (
            "no_action_applied_twice",
            second.seq,
            f"block_ip (block) on {second.resource}, key {second.key}, was applied again "  # type: ignore[union-attr]
            "(attempt 2, after attempt 1) without a failed verification asking for it",
        )
    ]


def test_an_application_after_a_noop() -> None:
    trace = soc(SILENT_BLOCK)
    first = at(trace, "action_applied")
    noop = trace[first].model_copy(update={"noop": True})
    assert [(v.check, v.seq) for v in check_all(inserted(trace, first, noop))] == [
        ("no_action_applied_twice", first + 1)
    ]


def test_an_unblock_while_another_run_holds_the_block() -> None:
    trace = two_runs("wait")
    finished = at(trace, "run_finished", run_id="A")
    unblock = at(trace, "action_applied", run_id="B")
    # Had A finished later, B's unblock would have gone through while A held the block.
    late = [*trace]
    late[finished] = trace[finished].model_copy(update={"sim_time": trace[unblock].sim_time + 1})
    expected = Violation(
        check="no_conflicting_intents",
        run_id="B",
        seq=trace[unblock].seq,
        message=f"unblock_ip applied 'unblock' on ip:{IP} while run 'A' held it to 'block'",
    )
    assert check_all(late) == check_all(late, opposites=OPPOSITES) == [expected]
    # An intent that declares another opposite does not conflict with a block.
    assert no_conflicting_intents(late, opposites={"unblock": "allow"}) == []
    # Finishing exactly when B applies is letting go first.
    tie = [*trace]
    tie[finished] = trace[finished].model_copy(update={"sim_time": trace[unblock].sim_time})
    assert check_all(tie) == []


@pytest.mark.parametrize("status", ["running", "paused"])
def test_a_dead_life_holds_nothing_until_it_resumes(status: str) -> None:
    trace = two_runs("wait")
    finished = at(trace, "run_finished", run_id="A")
    transition = at(trace, "transition", run_id="A")
    unblock = trace[at(trace, "action_applied", run_id="B")]
    # A's life ends before B unblocks (died, or paused), and A is resumed afterwards.
    resumed = RunResumed(
        run_id="A", seq=0, sim_time=unblock.sim_time + 1, wall_time=0.0, state="act",
        status=status, attempt=1, steps=1,
    )  # fmt: skip
    again = trace[finished].model_copy(update={"sim_time": unblock.sim_time + 2})
    lives = resequenced(
        [e for i, e in enumerate(trace) if i not in (transition, finished)] + [resumed, again]
    )
    # A dead life's leases may lapse meanwhile; a paused run keeps them.
    assert [(v.run_id, v.seq) for v in no_conflicting_intents(lives)] == (
        [] if status == "running" else [("B", unblock.seq)]
    )


def test_a_refused_choice_the_run_followed() -> None:
    trace = run_demo(seed=4, variant="confused").trace.events
    refused = at(trace, "transition_refused")
    event = trace[refused]
    assert isinstance(event, TransitionRefused)
    assert (event.state, event.action, trace[refused + 1].kind) == ("decide", "retry", "state_entered")
    chose = event.model_copy(update={"proposed": "escalate"})
    entered = trace[refused + 1].model_copy(update={"state": "escalate"})
    moved = trace[at(trace, "transition")].model_copy(update={"state": "decide", "target": "escalate"})
    message = f"'decide' chose 'escalate', refused at seq {event.seq} (policy: retry), but the run "
    assert no_refused_transition_followed([*trace[:refused], chose, entered]) == [
        Violation(
            check="no_refused_transition_followed",
            run_id=event.run_id,
            seq=event.seq + 1,
            message=message + "entered it",
        )
    ]
    followed = resequenced([*trace[:refused], chose, moved, entered])
    assert no_refused_transition_followed(followed) == [
        Violation(
            check="no_refused_transition_followed",
            run_id=event.run_id,
            seq=event.seq + 1,
            message=message + "moved there (reason: None)",
        )
    ]
    # Retrying the state that chose itself, or a route the policy itself took, is no following.
    itself = event.model_copy(update={"proposed": "decide"})
    assert no_refused_transition_followed([*trace[:refused], itself, *trace[refused + 1 :]]) == []
    routed = event.model_copy(update={"proposed": "escalate", "action": "route", "route_to": "escalate"})
    policy = moved.model_copy(update={"reason": "policy: refused"})
    assert no_refused_transition_followed(resequenced([*trace[:refused], routed, policy, entered])) == []


def test_a_rejected_call_that_ran() -> None:
    trace = soc("c2-hallucinated-tool-call")
    rejected = trace[at(trace, "tool_rejected")]
    assert isinstance(rejected, ToolRejected)
    ran = trace[at(trace, "tool_called")].model_copy(update={"call_id": rejected.call_id})
    broken = inserted(trace, rejected.seq + 1, ran)
    assert check_all(broken) == [
        Violation(
            check="no_rejected_call_executed",
            run_id=rejected.run_id,
            seq=rejected.seq + 1,
            message=f"call {rejected.call_id!r} to {ran.tool!r} was rejected at seq {rejected.seq} "  # type: ignore[union-attr]
            f"(unknown_tool: {rejected.tool}) but ran (tool_called)",
        )
    ]
    # A later model turn may reuse the id (ids are unique per response only).
    next_turn = at(trace, "model_called", 1)
    assert check_all(inserted(trace, next_turn + 1, ran)) == []


def budget(trace: list[Event], **limits: float | None) -> list[Event]:
    """``trace`` with its run_started recording other limits."""
    return [trace[0].model_copy(update=limits), *trace[1:]]


def test_steps_past_the_budget() -> None:
    trace = soc("c2-beacon")
    last = trace[at(trace, "state_entered", -1)]
    assert isinstance(last, StateEntered)
    assert check_all(budget(trace, max_steps=last.step - 1)) == [
        Violation(
            check="budgets_respected",
            run_id=last.run_id,
            seq=last.seq,
            message=f"entered step {last.step} of max_steps={last.step - 1}",
        )
    ]


def test_time_past_the_budget() -> None:
    trace = soc("c2-beacon")
    late = next(event for event in trace if event.sim_time > 20.0)
    assert [(v.check, v.seq, v.message) for v in check_all(budget(trace, max_duration=20.0))] == [
        (
            "budgets_respected",
            late.seq,
            f"{late.kind} at {late.sim_time:g}s, past max_duration=20s, without budget_exceeded",
        )
    ]


def test_cost_past_the_budget() -> None:
    trace = soc("c2-beacon")
    spent = 0.0
    for event in trace:
        spent += getattr(event, "cost", 0.0)
        if spent > 0.001:
            break
    after = next(e for e in trace[event.seq :] if e.kind in ("transition", "state_entered", "run_finished"))
    assert [(v.check, v.seq, v.message) for v in check_all(budget(trace, max_cost=0.001))] == [
        (
            "budgets_respected",
            after.seq,
            f"the cost passed max_cost=0.001 at seq {event.seq} but the run went on to {after.kind} "
            "without budget_exceeded",
        )
    ]


def test_a_budget_exceeded_that_was_not() -> None:
    trace = run_demo(seed=0, variant="endless").trace.events
    exceeded = at(trace, "budget_exceeded")
    assert [(v.check, v.seq) for v in check_all(budget(trace, max_duration=3000.0))] == [
        ("budgets_respected", exceeded)
    ]
    went_on = inserted(trace, exceeded + 1, trace[exceeded - 1])
    assert [(v.check, v.seq, v.message) for v in check_all(went_on)] == [
        (
            "budgets_respected",
            exceeded + 1,
            f"state_entered after budget_exceeded at seq {exceeded}, which ends the run",
        )
    ]


def test_check_all_sorts_by_run_then_seq_and_survives_a_failing_checker(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    a = [event.model_copy(update={"run_id": "a"}) for event in soc(SILENT_BLOCK)]
    b = [event.model_copy(update={"run_id": "b"}) for event in soc("c2-beacon")]
    broken_a = budget(a, max_steps=1)
    broken_b = without(b, at(b, "action_verified"))
    found = check_all([*broken_b, *broken_a])
    assert [(v.run_id, v.check) for v in found] == [
        ("a", "budgets_respected"),
        ("b", "writes_verified_or_escalated"),
    ]
    assert found == sorted(found, key=lambda v: (v.run_id, v.seq or -1))

    def broken(run_id: str, run_events: Any) -> list[Violation]:
        raise RuntimeError("a bug")

    monkeypatch.setattr(invariants, "_PER_RUN", (("budgets_respected", broken),))
    assert [(v.run_id, v.check, v.message) for v in check_all(b)] == [
        ("b", "budgets_respected", "the checker raised RuntimeError('a bug')")
    ]
