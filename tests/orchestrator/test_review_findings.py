"""Regression tests for the hostile review of the durable core: one test (or table) per
finding, each asserting the behaviour its fix promises, named F1..F13 as in the review.

Every test drives the real store and engine; the interleavings a review forced with
threads and barriers are forced here through the store's injected clock, a store
subclass or a second connection, so that each runs the same way every time.
"""

from __future__ import annotations

import asyncio
import builtins
import os
import socket
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from windtunnel.evals import trace_complete
from windtunnel.orchestrator import (
    ActionPolicy,
    ActionSpec,
    Approval,
    Checkpoint,
    Lease,
    MemoryStore,
    Outcome,
    RunError,
    RunTakenOver,
    SqliteStore,
    StepContext,
    StoreBusy,
    StoreError,
    Tool,
    ToolRegistry,
    ToolUseBlock,
    Workflow,
    approval_gate,
    call_tool,
    decide,
    resume,
    run,
)
from windtunnel.orchestrator.owners import owner_alive
from windtunnel.orchestrator.trace import Record
from windtunnel.simulators import Sim, SimulatedCrash

from .crash_kit import SMALL, TTL, CrashingStore, Firewall, Reaper, _Clock, workflow
from .durable_kit import Ip
from .test_durable import approval_workflow
from .test_store_damage import RUN, paused_store, reopen_and_resume, sql

X = [[("block_ip", "x")]]
UNBLOCK_X = [[("unblock_ip", "x")]]


class KillBefore(Reaper):
    """Kills the life at the first kill point whose description contains ``what``."""

    def __init__(self, what: str) -> None:
        super().__init__(None)
        self.what = what

    def point(self, what: str) -> None:
        if self.dead:
            raise SimulatedCrash("a dead process writes nothing")
        self.points += 1
        if self.what in what:
            self.dead = True
            raise SimulatedCrash(f"killed before {what}")


def die_before(path: Path, clock: _Clock, firewall: Firewall, what: str, run_id: str, plan: Any) -> None:
    """Run ``plan`` as ``run_id`` in a life killed before the write described by ``what``;
    then move the lease clock past the dead owner's lease."""
    reaper = KillBefore(what)
    firewall.reaper = reaper
    store = CrashingStore(path, reaper, clock)
    sim = Sim(seed=3)
    with pytest.raises(SimulatedCrash, match=f"killed before {what}"):
        sim.run(run(workflow(firewall, plan), env=sim, store=store, run_id=run_id))
    store.close()
    firewall.reaper = None
    clock.now += TTL + 1


def kinds(events: Any, prefix: str) -> list[str]:
    return [event.kind for event in events if event.kind.startswith(prefix)]


# -- F1: an unsettled action keeps its resource leased -------------------------------------


def test_f1_a_dead_run_with_a_pending_action_keeps_its_resource_from_other_runs(tmp_path: Path) -> None:
    """F1 (f1b_pending_reapplied_over_other_run): B's block of x lands and B dies before
    recording it (ledger: pending). Its owner lease lapses, but its lease on ip:x stays
    live: run A's unblock of x sees a conflict and does not act; B's resumption settles
    its block once (no second application) and only then may another run act on x."""
    path, clock, firewall = tmp_path / "f1.sqlite", _Clock(), Firewall()
    die_before(path, clock, firewall, "ledger applied block_ip ip:x", "B", X)
    assert (firewall.blocked, firewall.writes) == ({"x"}, 1)

    store = SqliteStore(path, owner_ttl=TTL, clock=clock)
    info = store.run_info("B")
    assert info is not None
    assert not info.owner_alive
    assert [(lease.holder, lease.intent) for lease in store.leases("ip:x")] == [
        ("B", "block")
    ]  # ...its lease is not

    sim = Sim(seed=4)
    a = sim.run(run(workflow(firewall, UNBLOCK_X), env=sim, store=store, run_id="A"))
    assert (a.status, a.final_state) == ("completed", "escalated")
    [conflict] = a.trace.query(kind="conflict_detected")
    assert conflict.held_by == "B"  # type: ignore[union-attr]
    assert (firewall.blocked, firewall.writes) == ({"x"}, 1)  # A did not touch x

    b = sim.run(resume(workflow(firewall, X), "B", env=sim, store=store))
    assert (b.status, b.final_state) == ("completed", "done")
    assert (firewall.blocked, firewall.writes) == ({"x"}, 1)  # B's block was not applied twice
    assert [(e.run_id, e.status, e.verified) for e in store.ledger] == [("B", "applied", True)]

    # B settled and finished: its lease is gone, and another run may act on x.
    later = sim.run(run(workflow(firewall, UNBLOCK_X), env=sim, store=store, run_id="A2"))
    assert (later.status, later.final_state) == ("completed", "done")
    assert later.trace.query(kind="conflict_detected") == []
    assert firewall.blocked == set()


@pytest.mark.parametrize("intent", ["opposite", "same"])
def test_f1_a_dead_run_compensating_keeps_its_resource_from_every_intent(tmp_path: Path, intent: str) -> None:
    """F1 (f1_cross_run_compensation): B's block of x silently fails; B dies while undoing
    it (ledger: compensating). Run A — unblocking x, or blocking it too — sees B's lease,
    live though B's owner is gone and whatever A's intent, and does not act; B's
    resumption settles its undo and nothing of A's is undone."""
    path, clock, firewall = tmp_path / "f1c.sqlite", _Clock(), Firewall(lands_on={"x": 3})
    die_before(path, clock, firewall, "world unblock x", "B", X)
    store = SqliteStore(path, owner_ttl=TTL, clock=clock)
    assert [(e.run_id, e.status) for e in store.ledger] == [("B", "compensating")]
    sim = Sim(seed=4)
    plan = UNBLOCK_X if intent == "opposite" else X
    a = sim.run(run(workflow(firewall, plan), env=sim, store=store, run_id="A"))
    assert (a.status, a.final_state) == ("completed", "escalated")
    assert [c.held_by for c in a.trace.query(kind="conflict_detected")] == ["B"]  # type: ignore[union-attr]
    writes = firewall.writes
    b = sim.run(resume(workflow(firewall, X), "B", env=sim, store=store))
    assert (b.status, b.final_state) == ("completed", "escalated")
    assert [(e.run_id, e.status) for e in store.ledger] == [("B", "compensated")]
    assert firewall.blocked == set()
    assert firewall.writes == writes  # read back: its block never landed, nothing to undo


# -- F3: acquire() checks and takes in one transaction -------------------------------------


def running_checkpoint(run_id: str) -> Checkpoint:
    return Checkpoint(
        run_id=run_id,
        workflow="w",
        status="running",
        state="s1",
        attempt=1,
        feedback=(),
        data={},
        steps=0,
        seq=0,
        cost=0.0,
        elapsed=0.0,
        case=None,
        budget={},
    )


def test_f3_two_connections_cannot_both_take_conflicting_leases(tmp_path: Path) -> None:
    """F3 (f3_lease_toctou): the conflict check and the take are one transaction. Run
    B's store tries to take the opposite lease at the worst moment — from inside A's
    acquire(), where A reads its clock to judge which leases are live — and exactly one
    of them wins, the other seeing the winner's lease. Never are both held."""
    path = tmp_path / "f3.sqlite"
    interleaved: list[str] = []
    block = Lease(resource="ip:x", intent="block", holder="A", at=0.0, incarnation=0)
    unblock = Lease(resource="ip:x", intent="unblock", holder="B", at=0.0, incarnation=0)
    b_store = SqliteStore(path, busy_timeout=0, clock=lambda: 1_000_000.0)  # the same wall clock
    armed = False

    def a_clock() -> float:
        # Read by A's store while it decides which leases are live: B strikes here.
        nonlocal armed
        if armed:
            armed = False
            try:
                got = b_store.acquire(unblock, opposite="block")
                interleaved.append("B took its lease" if got is None else f"B saw {got.holder}")
            except StoreBusy:
                interleaved.append("B kept out")
        return 1_000_000.0

    a_store = SqliteStore(path, clock=a_clock)
    a_store.save(running_checkpoint("A"), [])
    b_store.save(running_checkpoint("B"), [])
    armed = True
    a_got = a_store.acquire(block, opposite="unblock")
    b_then = b_store.acquire(unblock, opposite="block")
    with sqlite3.connect(path) as db:
        held = db.execute("SELECT holder, intent FROM leases WHERE resource = 'ip:x'").fetchall()
    db.close()
    # Exactly one wins and the other sees its lease; which one depends only on where
    # the clock is read. Both taking theirs (A None, B None) is the bug.
    assert (interleaved, a_got, b_then, held) in [
        (["B kept out"], None, block, [("A", "block")]),
        (["B took its lease"], unblock, None, [("B", "unblock")]),
    ]


# -- F4: a cancelled stale life leaves its successor's leases alone -------------------------


def test_f4_a_cancelled_stale_life_does_not_drop_its_successors_leases(tmp_path: Path) -> None:
    """F4 (f4_cancelled_stale_owner_releases_leases): life 0 of R blocks a and stalls past
    its lease; life 1 takes R over and pauses for approval, holding ip:a. Life 0 is then
    cancelled: R keeps its lease, and run C's unblock of a sees the conflict."""
    path, clock, firewall = tmp_path / "f4.sqlite", _Clock(), Firewall()
    tools = firewall.registry()

    def wf(stall: bool) -> Workflow:
        async def s1(ctx: StepContext) -> Outcome:
            use = ToolUseBlock(id=ctx.new_id("c"), name="block_ip", input={"ip": "a"})
            await call_tool(ctx, tools, ["block_ip"], use)
            if stall and ctx.incarnation == 0:
                clock.now += TTL + 1  # stalled past its lease; another process takes over
                taker = threading.Thread(target=take_over)
                taker.start()
                taker.join()
                await asyncio.sleep(10_000)
            return Outcome(next="ask")

        async def fin(ctx: StepContext) -> Outcome:
            return Outcome(next="done")

        gate = approval_gate(approve="fin", reject="fin", on_timeout="fin", timeout=1e6)
        return Workflow(
            name="f4",
            states={"s1": s1, "ask": gate, "fin": fin},
            transitions={"s1": ["ask"], "ask": ["fin"], "fin": ["done"]},
            initial="s1",
            terminal=["done"],
        )

    taken: list[str] = []

    def take_over() -> None:
        store = SqliteStore(path, owner_ttl=TTL, clock=clock)
        sim = Sim(seed=3)
        taken.append(sim.run(resume(wf(False), "R", env=sim, store=store)).status)
        store.close()

    stale = SqliteStore(path, owner_ttl=TTL, clock=clock)
    sim = Sim(seed=3)

    async def main() -> None:
        task = asyncio.ensure_future(run(wf(True), env=sim, store=stale, run_id="R"))
        await asyncio.sleep(100)
        task.cancel()
        with pytest.raises((asyncio.CancelledError, RunTakenOver)):
            await task

    sim.run(main())
    assert taken == ["paused"]

    store = SqliteStore(path, owner_ttl=TTL, clock=clock)
    info = store.run_info("R")
    assert info is not None
    assert (info.checkpoint.status, info.checkpoint.incarnation) == ("paused", 1)
    assert [(lease.resource, lease.intent) for lease in info.leases] == [("ip:a", "block")]
    c = sim.run(run(workflow(firewall, [[("unblock_ip", "a")]]), env=sim, store=store, run_id="C"))
    assert (c.status, c.final_state) == ("completed", "escalated")
    assert len(c.trace.query(kind="conflict_detected")) == 1
    assert firewall.blocked == {"a"}


# -- F5: approval events a crash lost are recorded again, once ------------------------------


class DieOnSave(SqliteStore):
    """A store whose process dies as it saves the first checkpoint matching ``when``."""

    def __init__(self, path: Path, clock: _Clock, when: Any) -> None:
        super().__init__(path, owner_ttl=TTL, clock=clock)
        self.when = when

    def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
        if self.when(checkpoint):
            raise SimulatedCrash(f"killed before the checkpoint {checkpoint.status} {checkpoint.state}")
        super().save(checkpoint, records)


def test_f5_a_timeout_decision_whose_event_a_crash_lost_is_recorded_once(tmp_path: Path) -> None:
    """F5 (f5_timeout_decision_event_lost): the gate closes the request as 'timeout' and
    dies before the checkpoint that would commit approval_decided; the next life records
    it. The stored trace holds each approval event exactly once, and is complete."""
    path, clock, sim = tmp_path / "f5.sqlite", _Clock(), Sim(seed=1)
    paused = sim.run(run(approval_workflow(timeout=1800), env=sim, store=SqliteStore(path), run_id="R"))
    assert paused.status == "paused"
    sim.run(asyncio.sleep(1900))
    dies = DieOnSave(path, clock, lambda cp: cp.state == "hold")
    with pytest.raises(SimulatedCrash):
        sim.run(resume(approval_workflow(timeout=1800), "R", env=sim, store=dies))
    clock.now += TTL + 1
    store = SqliteStore(path, owner_ttl=TTL, clock=clock)
    done = sim.run(resume(approval_workflow(timeout=1800), "R", env=sim, store=store))
    assert (done.status, done.final_state, done.data["approval"]) == ("completed", "held", "timeout")
    events = store.events("R")
    assert kinds(events, "approval") == ["approval_requested", "approval_decided"]
    [decided] = [e for e in events if e.kind == "approval_decided"]
    assert (decided.decision, decided.next) == ("timeout", "hold")
    assert trace_complete(events) == []


def test_f5b_a_request_whose_event_a_crash_lost_is_recorded_once(tmp_path: Path) -> None:
    """F5b (f5b_request_event_lost): the request is stored and the life dies before its
    paused checkpoint commits approval_requested; the next life records it. Resuming a
    run that still waits, again and again, adds no second approval_requested."""
    path, clock, sim = tmp_path / "f5b.sqlite", _Clock(), Sim(seed=1)
    dies = DieOnSave(path, clock, lambda cp: cp.status == "paused")
    with pytest.raises(SimulatedCrash):
        sim.run(run(approval_workflow(), env=sim, store=dies, run_id="R"))
    clock.now += TTL + 1
    store = SqliteStore(path, owner_ttl=TTL, clock=clock)
    for _ in range(2):
        waiting = sim.run(resume(approval_workflow(), "R", env=sim, store=store))
        assert waiting.status == "paused"
    [request] = store.pending()
    decide(store, request.id, "approve", by="ops", at=sim.now)
    done = sim.run(resume(approval_workflow(), "R", env=sim, store=store))
    assert (done.status, done.final_state) == ("completed", "done")
    events = store.events("R")
    assert kinds(events, "approval") == ["approval_requested", "approval_decided"]
    assert trace_complete(events) == []


# -- F6: resume() refuses what it cannot resume, with a RunError ---------------------------


async def _to_ask(ctx: StepContext) -> Outcome:
    return Outcome(next="ask")


async def _to_b(ctx: StepContext) -> Outcome:
    return Outcome(next="b")


async def _to_done(ctx: StepContext) -> Outcome:
    return Outcome(next="done")


def gated() -> Workflow:
    gate = approval_gate(approve="b", reject="b", on_timeout="b", timeout=100)
    return Workflow(
        name="same",
        states={"a": _to_ask, "ask": gate, "b": _to_done},
        transitions={"a": ["ask"], "ask": ["b"], "b": ["done"]},
        initial="a",
        terminal=["done"],
    )


def changed() -> Workflow:
    """The same name; the state the run paused in is gone."""
    return Workflow(
        name="same",
        states={"a": _to_b, "b": _to_done},
        transitions={"a": ["b"], "b": ["done"]},
        initial="a",
        terminal=["done"],
    )


def paused_in_ask(path: Path) -> SqliteStore:
    store = SqliteStore(path)
    sim = Sim(seed=1)
    assert sim.run(run(gated(), env=sim, store=store, run_id="R")).status == "paused"
    return store


def test_f6_resume_with_a_changed_workflow_of_the_same_name_is_refused(tmp_path: Path) -> None:
    """F6 (f6_api_misuse case 1): a run is not resumed by another version of its workflow."""
    store = paused_in_ask(tmp_path / "f6.sqlite")
    sim = Sim(seed=1)
    with pytest.raises(RunError, match=r"run 'R' ran another version of workflow 'same' .*version it ran"):
        sim.run(resume(changed(), "R", env=sim, store=store))
    assert store.load("R").status == "paused"  # type: ignore[union-attr]  # nothing written


@pytest.mark.parametrize(
    ("damage", "wf"),
    [
        ("json_set(body, '$.state', 'gone')", gated),  # same workflow; a state it lacks
        ("json_set(body, '$.fingerprint', '')", changed),  # no fingerprint saved; 'ask' is gone
    ],
    ids=["unknown-state", "unfingerprinted-checkpoint"],
)
def test_f6_resume_from_a_state_the_workflow_lacks_is_refused(tmp_path: Path, damage: str, wf: Any) -> None:
    """F6 (the state-42 variant): a checkpoint standing in a state the workflow does not
    have is a RunError naming the state, not a run that goes on from nowhere."""
    path = tmp_path / "f6s.sqlite"
    paused_in_ask(path).close()
    sql(f"UPDATE checkpoints SET body = {damage}")(path)
    state = "gone" if wf is gated else "ask"
    sim = Sim(seed=1)
    with pytest.raises(
        RunError, match=rf"run 'R' stands in state '{state}', which workflow 'same' does not have"
    ):
        sim.run(resume(wf(), "R", env=sim, store=SqliteStore(path)))


@pytest.mark.parametrize(
    ("workflow_arg", "store_arg", "message"),
    [
        (
            "workflow",
            "memory",
            r"resume\(\) needs a durable store \(a SqliteStore\), got store=<.*MemoryStore",
        ),
        ("workflow", "str", r"resume\(\) needs a durable store \(a SqliteStore\), got store='.*f6m.sqlite'"),
        ("name", "sqlite", r"resume\(\) needs a Workflow, got workflow='same'"),
        (None, "sqlite", r"resume\(\) needs a Workflow, got workflow=None"),
    ],
)
def test_f6_resume_with_the_wrong_arguments_is_a_run_error(
    tmp_path: Path, workflow_arg: str | None, store_arg: str, message: str
) -> None:
    """F6 (f6_api_misuse cases 2-6, f6b_resume_nonworkflow): resume() given a MemoryStore,
    a path, or something not a Workflow raises RunError, never AttributeError."""
    path = tmp_path / "f6m.sqlite"
    store = paused_in_ask(path)
    wf: Any = {"workflow": gated(), "name": "same", None: None}[workflow_arg]
    target: Any = {"memory": MemoryStore(), "str": str(path), "sqlite": store}[store_arg]
    sim = Sim(seed=1)
    with pytest.raises(RunError, match=message):
        sim.run(resume(wf, "R", env=sim, store=target))


# -- F7: events that are not JSON; a busy store ---------------------------------------------


def test_f7_an_event_with_a_value_that_is_not_json_is_stored_as_its_repr(tmp_path: Path) -> None:
    """F7 (f6_api_misuse 8g): an event field that JSON cannot hold does not break the
    checkpoint: the run completes and the stored event holds the value's repr."""

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque input>"

    async def emits(ctx: StepContext) -> Outcome:
        ctx.emit("tool_rejected", tool="t", call_id="c", input=Opaque(), reason="unknown_tool", detail="")
        return Outcome(next="done")

    wf = Workflow(name="h", states={"a": emits}, transitions={"a": ["done"]}, initial="a", terminal=["done"])
    path = tmp_path / "f7.sqlite"
    sim = Sim(seed=4)
    result = sim.run(run(wf, env=sim, store=SqliteStore(path), run_id="H"))
    assert result.status == "completed"
    stored = SqliteStore(path).events("H")
    assert [e.kind for e in stored] == [
        "run_started",
        "state_entered",
        "tool_rejected",
        "transition",
        "run_finished",
    ]
    assert stored[2].input == "<opaque input>"  # type: ignore[union-attr]


def test_f7_release_run_on_a_locked_store_is_store_busy_and_leaves_the_store_usable(tmp_path: Path) -> None:
    """F7/F9 (f9_release_busy): release_run while another process holds the write lock
    raises StoreBusy (a StoreError), not a raw sqlite3 error from a ROLLBACK with no
    transaction open; once the lock is gone, the same store releases the run."""
    path = tmp_path / "f7b.sqlite"
    paused_store(path)
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")
    store = SqliteStore(path, busy_timeout=0)
    try:
        with pytest.raises(StoreBusy, match=r"stayed locked by other processes .*\(releasing a run\)"):
            store.release_run(RUN, force=True)
        assert issubclass(StoreBusy, StoreError)
    finally:
        locker.execute("ROLLBACK")
        locker.close()
    assert store.release_run(RUN, force=True).checkpoint.run_id == RUN


# -- F8: damaged rows not yet in test_store_damage's table ----------------------------------

MORE_DAMAGE = [
    (
        "ledger event fields not an object",
        "UPDATE ledger SET body = json_set(body, '$.events[0][1]', 5)",
        rf"a ledger entry of run '{RUN}' is damaged \(events\.0\.1: Input should be an object\)",
    ),
    (
        "ledger seq not a number",
        "UPDATE ledger SET body = json_set(body, '$.seq', 'x')",
        rf"a ledger entry of run '{RUN}' is damaged \(seq: Input should be a valid integer",
    ),
    (
        "checkpoint data a list",
        "UPDATE checkpoints SET body = json_set(body, '$.data', json('[1, 2]'))",
        rf"the checkpoint of run '{RUN}' is damaged \(data: Input should be a valid dictionary\)",
    ),
    (
        "checkpoint attempt null",
        "UPDATE checkpoints SET body = json_set(body, '$.attempt', json('null'))",
        rf"the checkpoint of run '{RUN}' is damaged \(attempt: Input should be a valid integer\)",
    ),
    (
        "checkpoint state a number",
        "UPDATE checkpoints SET body = json_set(body, '$.state', 42)",
        rf"the checkpoint of run '{RUN}' is damaged \(state: Input should be a valid string\)",
    ),
    (
        "event row whose body has another seq",
        "UPDATE events SET body = json_set(body, '$.seq', 7) WHERE seq = 0",
        rf"the row of run '{RUN}', seq 0 holds the event of run '{RUN}', seq 7",
    ),
]


@pytest.mark.parametrize(
    ("statement", "message"), [(s, m) for _, s, m in MORE_DAMAGE], ids=[n for n, _, _ in MORE_DAMAGE]
)
def test_f8_more_damaged_rows_are_named_store_errors(tmp_path: Path, statement: str, message: str) -> None:
    """F8 (f8_damage): rows damaged in ways test_store_damage does not list are a
    StoreError naming the file, the run and the field — never a raw error or a resume."""
    path = tmp_path / "store.sqlite"
    paused_store(path)
    sql(statement)(path)
    with pytest.raises(StoreError, match=message) as info:
        reopen_and_resume(path)
    assert info.value.path == str(path)


# -- F9: release_run looks up one run --------------------------------------------------------


def test_f9_release_run_does_not_list_every_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """F9 (f10_perf): releasing one run reads that run, not every run in the store."""
    path = tmp_path / "f9.sqlite"
    paused_store(path)

    def every_run(self: SqliteStore) -> Any:
        raise AssertionError("release_run listed every run in the store")

    monkeypatch.setattr(SqliteStore, "runs", every_run)
    store = SqliteStore(path)
    assert store.release_run(RUN, force=True).checkpoint.run_id == RUN
    with pytest.raises(RunError, match=r"no run 'nope'"):
        store.release_run("nope")


# -- F10: a write that lands and answers after its timeout ---------------------------------


@pytest.mark.parametrize("durable", [False, True], ids=["memory", "sqlite"])
def test_f10_a_write_that_lands_after_its_timeout_is_applied_once_and_recovered(
    tmp_path: Path, durable: bool
) -> None:
    """F10 (f11_write_timeout_landed): the tool layer does not retry a write; the timed-out
    write that landed is read back: action_unknown, then action_applied(recovered=True)
    and action_verified; the ledger says applied, verified."""
    blocked: set[str] = set()
    applied: list[str] = []

    async def apply(args: Ip) -> str:
        blocked.add(args.ip)
        applied.append(args.ip)  # the change lands...
        await asyncio.sleep(60)  # ...and the answer comes after the timeout
        return "ok"

    async def done(args: Ip) -> bool:
        return args.ip in blocked

    async def undo(args: Ip) -> None:
        blocked.discard(args.ip)

    spec = ActionSpec(
        intent="block",
        opposite="unblock",
        resource=lambda args: f"ip:{args.ip}",
        precheck=done,
        verify=done,
        compensate=undo,
    )
    tools = ToolRegistry(
        [
            Tool(
                name="block_ip",
                description="block",
                input_model=Ip,
                fn=apply,
                kind="write",
                timeout=10.0,
                action=spec,
            )
        ]
    )

    async def s1(ctx: StepContext) -> Outcome:
        result, _ = await call_tool(
            ctx, tools, ["block_ip"], ToolUseBlock(id="c1", name="block_ip", input={"ip": "x"})
        )
        return Outcome(next="done", data={"is_error": result.is_error})

    wf = Workflow(name="t", states={"s1": s1}, transitions={"s1": ["done"]}, initial="s1", terminal=["done"])
    store: Any = SqliteStore(tmp_path / "f10.sqlite") if durable else MemoryStore()
    sim = Sim(seed=1)
    result = sim.run(run(wf, env=sim, store=store, run_id="R"))
    assert applied == ["x"]
    assert result.data["is_error"] is False
    assert [(e.status, e.verified) for e in store.ledger] == [("applied", True)]
    events = [e for e in result.trace if e.kind.startswith(("action", "tool_"))]
    assert [e.kind for e in events] == [
        "tool_timeout",
        "tool_called",
        "action_unknown",
        "action_applied",
        "action_verified",
    ]
    assert events[1].attempts == 1  # type: ignore[union-attr]
    assert events[3].recovered is True  # type: ignore[union-attr]


# -- F11: stale reads do not make crash recovery apply twice -------------------------------


class StaleFirewall(Firewall):
    """A firewall whose reads lag its writes by ``lag`` simulated seconds."""

    lag = 3.0

    def __post_init__(self) -> None:
        super().__post_init__()
        self.history: list[tuple[float, frozenset[str]]] = [(float("-inf"), frozenset())]

    def set(self, ip: str, present: bool) -> None:
        super().set(ip, present)
        self.history.append((asyncio.get_running_loop().time(), frozenset(self._blocked)))

    @property
    def blocked(self) -> builtins.set[str]:  # `set` here is the method above
        try:
            seen_at = asyncio.get_running_loop().time() - self.lag
        except RuntimeError:  # read by the test, outside the run: the truth
            return self._blocked
        return builtins.set([view for at, view in self.history if at <= seen_at][-1])


def stale_workflow(firewall: Firewall) -> Workflow:
    tools = firewall.registry()

    async def s1(ctx: StepContext) -> Outcome:
        await call_tool(
            ctx, tools, ["block_ip"], ToolUseBlock(id=ctx.new_id("call"), name="block_ip", input={"ip": "a"})
        )
        return Outcome(next="done")

    return Workflow(
        name="stale",
        states={"s1": s1},
        transitions={"s1": ["done"]},
        initial="s1",
        terminal=["done"],
        actions=ActionPolicy(verify_attempts=4, verify_delay=1.0),  # out-waits the lag
    )


def test_f11_crash_recovery_under_stale_reads_does_not_apply_twice(tmp_path: Path) -> None:
    """F11 (f12_stale_read_double_apply): the block lands, the life dies before recording
    it; the next life reads back with back-off, sees it through the stale reads, and does
    not apply it a second time."""
    path, clock, firewall = tmp_path / "f11.sqlite", _Clock(), StaleFirewall()
    sim = Sim(seed=3)
    reaper = KillBefore("ledger applied block_ip ip:a")
    firewall.reaper = reaper
    with pytest.raises(SimulatedCrash):
        sim.run(run(stale_workflow(firewall), env=sim, store=CrashingStore(path, reaper, clock), run_id="R"))
    firewall.reaper = None
    clock.now += TTL + 1
    store = SqliteStore(path, owner_ttl=TTL, clock=clock)
    result = sim.run(resume(stale_workflow(firewall), "R", env=sim, store=store))
    assert (result.status, result.final_state) == ("completed", "done")
    assert (firewall.writes, firewall.blocked) == (1, {"a"})
    assert [(e.kind, getattr(e, "recovered", None)) for e in result.trace if e.kind.startswith("action")] == [
        ("action_unknown", None),
        ("action_applied", True),
        ("action_verified", None),
    ]
    assert [(e.status, e.verified) for e in store.ledger] == [("applied", True)]


# -- F12: an owner in another process-id space is trusted until its lease expires ----------


def test_f12_an_owner_in_another_pid_space_with_a_live_lease_is_alive(tmp_path: Path) -> None:
    """F12 (f13_owner_liveness): a live lease held by an owner of this host name but
    another process-id space (another container, another boot) is not judged by a PID
    that means nothing here: resume() refuses to take the run. The same PID in this
    very space is a dead process, whose lease holds nothing."""
    path = tmp_path / "f12.sqlite"
    paused_store(path)
    store = SqliteStore(path)
    here = store.owner.rsplit(":", 2)[0]  # host/space of this process
    assert here.startswith(f"{socket.gethostname()}/")
    no_such_pid = 4_194_305  # above any pid_max: no process here has it
    with pytest.raises(ProcessLookupError):
        os.kill(no_such_pid, 0)
    expires = store._now() + 600
    elsewhere = f"{socket.gethostname()}/0ther5pc:{no_such_pid}:beef"
    assert owner_alive(elsewhere, expires, store._now())
    assert owner_alive(f"{socket.gethostname()}:{no_such_pid}:beef", expires, store._now())  # older id form
    assert not owner_alive(f"{here}:{no_such_pid}:beef", expires, store._now())

    sql(f"UPDATE checkpoints SET owner = '{elsewhere}', owner_expires = {expires}")(path)
    info = store.run_info(RUN)
    assert info is not None
    assert info.owner_alive
    sim = Sim(seed=3)
    with pytest.raises(RunError, match=rf"run '{RUN}' is owned by {elsewhere} until .*not resumed twice"):
        sim.run(resume(workflow(Firewall(), SMALL), RUN, env=sim, store=store))


# -- F13: a decision and a timeout cannot both win ------------------------------------------


def test_f13_a_decision_stored_in_time_is_not_overwritten_by_the_gates_timeout(tmp_path: Path) -> None:
    """F13 (f14_decision_lost_update): the resumed gate reads the request as pending
    past its deadline; a human's decide(), in time, lands before the gate writes
    'timeout'. The gate's conditional write loses: the approval stands and the run acts."""
    path, sim = tmp_path / "f13.sqlite", Sim(seed=1)
    sim.run(run(approval_workflow(timeout=1800), env=sim, store=SqliteStore(path), run_id="R"))
    [request] = SqliteStore(path).pending()
    human = SqliteStore(path)
    sim.run(asyncio.sleep(1800))
    decided: list[Approval] = []

    class Gate(SqliteStore):
        def put_approval(self, approval: Approval, *, if_pending: bool = False) -> bool:
            if approval.decision == "timeout" and not decided:
                decided.append(decide(human, request.id, "approve", by="alice", at=request.deadline - 1))
            return super().put_approval(approval, if_pending=if_pending)

    result = sim.run(resume(approval_workflow(timeout=1800), "R", env=sim, store=Gate(path)))
    assert [a.decision for a in decided] == ["approve"]
    assert (result.status, result.final_state, result.data["acted"]) == ("completed", "done", True)
    stored = SqliteStore(path).approval(request.id)
    assert stored is not None
    assert (stored.decision, stored.by) == ("approve", "alice")
    [event] = result.trace.query(kind="approval_decided")
    assert (event.decision, event.by) == ("approve", "alice")  # type: ignore[union-attr]


def test_f13_a_decision_after_the_gate_closed_the_request_is_refused(tmp_path: Path) -> None:
    """F13 (f14_decision_lost_update, the mirror order): decide() read the request while
    pending; the gate then closed it as 'timeout'. The decision's conditional write
    fails and decide() raises RunError; the store still says 'timeout'."""
    path, sim = tmp_path / "f13b.sqlite", Sim(seed=1)
    sim.run(run(approval_workflow(timeout=1800), env=sim, store=SqliteStore(path), run_id="R"))
    [request] = SqliteStore(path).pending()
    sim.run(asyncio.sleep(1900))
    held = sim.run(resume(approval_workflow(timeout=1800), "R", env=sim, store=SqliteStore(path)))
    assert (held.final_state, held.data["approval"]) == ("held", "timeout")

    class ReadBeforeTheGate(SqliteStore):
        """The human's read happened before the gate closed the request."""

        stale = True

        def approval(self, approval_id: str) -> Approval | None:
            if self.stale:
                self.stale = False
                return request
            return super().approval(approval_id)

    with pytest.raises(
        RunError, match=r"was closed meanwhile \(timeout by None\); this decision does not count"
    ):
        decide(ReadBeforeTheGate(path), request.id, "approve", by="alice", at=request.deadline - 1)
    stored = SqliteStore(path).approval(request.id)
    assert stored is not None
    assert stored.decision == "timeout"


# -- F2 (a documented limit): the window is one application ---------------------------------


def test_f2_the_owner_lease_is_renewed_before_every_application(tmp_path: Path) -> None:
    """F2 (f2_stale_owner_writes_world), a documented limit: a write already in flight
    when its owner loses the run still lands. What is promised is that the window is one
    application: the owner lease is renewed at the pending entry before every write,
    even when the periodic renewal is not yet due."""
    path, clock = tmp_path / "f2.sqlite", _Clock()
    seen: list[tuple[str, float, float]] = []

    class Watched(Firewall):
        def set(self, ip: str, present: bool) -> None:
            with sqlite3.connect(path) as db:
                [(expires,)] = db.execute("SELECT owner_expires FROM checkpoints").fetchall()
            db.close()
            seen.append((ip, clock.now, expires))
            clock.now += 5.0  # less than owner_ttl / 4: no periodic renewal is due
            super().set(ip, present)

    store = SqliteStore(path, owner_ttl=TTL, clock=clock)
    sim = Sim(seed=3)
    plan = [[("block_ip", "a"), ("block_ip", "b"), ("block_ip", "c")]]
    result = sim.run(run(workflow(Watched(), plan), env=sim, store=store, run_id="R"))
    assert result.status == "completed"
    # At each application the lease runs a full owner_ttl from the moment it began.
    assert seen == [(ip, 1_000_000.0 + 5.0 * i, 1_000_000.0 + 5.0 * i + TTL) for i, ip in enumerate("abc")]
