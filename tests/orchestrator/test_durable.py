"""Durable runs: checkpoints at every transition, resume after a crash or a killed
process with nothing applied twice and no event lost, and approvals that pause."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from windtunnel.evals import trace_complete
from windtunnel.orchestrator import (
    Grant,
    Outcome,
    RunError,
    SqliteStore,
    StepContext,
    Trace,
    Workflow,
    approval_gate,
    await_review,
    decide,
    resume,
    run,
)
from windtunnel.simulators import Fault, FaultInjector, FaultPlan, Sim, SimulatedCrash

from .durable_kit import STATES, FileFirewall, durable_workflow

SEED = 11


def uninterrupted(tmp: Path, seed: int = SEED) -> tuple[set[str], list[tuple[str, str, str]], list[str]]:
    firewall = FileFirewall(tmp / f"clean-{seed}.json")
    store = SqliteStore(":memory:")
    sim = Sim(seed=seed)
    result = sim.run(run(durable_workflow(firewall), env=sim, store=store))
    assert result.status == "completed"
    effects = [(e.tool, e.resource, e.status) for e in store.ledger]
    return firewall.blocked(), effects, [e.kind for e in result.trace]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, len(STATES)))
def test_resume_after_a_crash_at_any_transition(seed: int, k: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        clean_world, clean_effects, clean_kinds = uninterrupted(Path(tmp), seed)

        firewall = FileFirewall(Path(tmp) / "crashed.json")
        store = SqliteStore(":memory:")
        sim = Sim(seed=seed)
        plan = FaultPlan(faults=[Fault(id="kill", kind="crash", target="run", at_transition=k)])
        trace = Trace(FaultInjector(plan, seed=sim.seed))
        with pytest.raises(SimulatedCrash):
            sim.run(run(durable_workflow(firewall), env=sim, store=store, trace=trace))
        [checkpoint] = [info.checkpoint for info in store.runs()]
        assert checkpoint.status == "running"
        assert checkpoint.state == STATES[k - 1]  # the state whose transition was lost runs again

        result = sim.run(resume(durable_workflow(firewall), checkpoint.run_id, env=sim, store=store))
        assert result.status == "completed"
        # The same world and the same side effects as the run that never crashed...
        assert firewall.blocked() == clean_world
        assert [(e.tool, e.resource, e.status) for e in store.ledger] == clean_effects
        # ...and every event once, in order: the committed ones and those of the resumed run.
        assert trace_complete(result.trace.events) == []
        assert [e.kind for e in result.trace if e.kind != "run_resumed"] == clean_kinds


def test_resume_after_a_killed_process(tmp_path: Path) -> None:
    clean_world, clean_effects, _ = uninterrupted(tmp_path)
    script = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(Path(__file__).resolve().parents[2])!r})
        from pathlib import Path
        from tests.orchestrator.durable_kit import FileFirewall, durable_workflow
        from windtunnel.orchestrator import SqliteStore, run
        from windtunnel.simulators import Sim
        sim = Sim(seed={SEED})
        store = SqliteStore(Path({str(tmp_path / "killed.sqlite")!r}))
        firewall = FileFirewall(Path({str(tmp_path / "killed.json")!r}))
        sim.run(run(durable_workflow(firewall, kill_at="s3"), env=sim, store=store))
        """
    )
    killed = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert killed.returncode == 17, killed.stderr

    store = SqliteStore(tmp_path / "killed.sqlite")
    [checkpoint] = [info.checkpoint for info in store.runs()]
    assert (checkpoint.status, checkpoint.state) == ("running", "s3")
    firewall = FileFirewall(tmp_path / "killed.json")
    sim = Sim(seed=SEED)
    result = sim.run(resume(durable_workflow(firewall), checkpoint.run_id, env=sim, store=store))
    assert result.status == "completed"
    assert firewall.blocked() == clean_world
    assert [(e.tool, e.resource, e.status) for e in store.ledger] == clean_effects
    assert trace_complete(result.trace.events) == []


def approval_workflow(timeout: float = 3600.0) -> Workflow:
    async def propose(ctx: StepContext) -> Outcome:
        return Outcome(next="approve", data={"proposal": "isolate db-01"})

    async def act(ctx: StepContext) -> Outcome:
        return Outcome(next="done", data={"acted": True})

    async def hold(ctx: StepContext) -> Outcome:
        return Outcome(next="held", data={"acted": False})

    return Workflow(
        name="approvals",
        states={
            "propose": propose,
            "approve": approval_gate(
                approve="act",
                reject="hold",
                on_timeout="hold",
                timeout=timeout,
                grants=lambda ctx: [Grant("host:db-01", "isolate")],
            ),
            "act": act,
            "hold": hold,
        },
        transitions={"propose": ["approve"], "approve": ["act", "hold"], "act": ["done"], "hold": ["held"]},
        initial="propose",
        terminal=["done", "held"],
    )


@pytest.mark.parametrize(("decision", "final"), [("approve", "done"), ("reject", "held")])
def test_approval_pauses_durably_and_a_decision_resumes(tmp_path: Path, decision: str, final: str) -> None:
    store = SqliteStore(tmp_path / "approvals.sqlite")
    sim = Sim(seed=1)
    paused = sim.run(run(approval_workflow(), env=sim, store=store))
    assert (paused.status, paused.final_state) == ("paused", "approve")
    [pending] = store.pending()
    assert pending.proposal.startswith("proceed with")

    # Later — another process, even — a human decides, and the run goes on.
    sim.run(__import__("asyncio").sleep(600))
    decide(store, pending.id, decision, by="alice", at=sim.now)  # type: ignore[arg-type]
    done = sim.run(
        resume(approval_workflow(), paused.run_id, env=sim, store=SqliteStore(tmp_path / "approvals.sqlite"))
    )
    assert (done.status, done.final_state) == ("completed", final)
    [decided] = done.trace.query(kind="approval_decided")
    assert (decided.decision, decided.by, decided.waited) == (decision, "alice", 600.0)  # type: ignore[union-attr]
    assert [e.kind for e in done.trace if e.kind.startswith(("approval", "run_"))] == [
        "run_started",
        "approval_requested",
        "run_resumed",
        "approval_decided",
        "run_finished",
    ]
    assert trace_complete(done.trace.events) == []
    if decision == "approve":
        assert done.trace.query(kind="approval_decided")[0].grants == [("host:db-01", "isolate")]  # type: ignore[union-attr]


def test_an_undecided_approval_times_out_to_the_fail_safe(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "approvals.sqlite")
    sim = Sim(seed=1)
    paused = sim.run(run(approval_workflow(timeout=1800), env=sim, store=store))
    early = sim.run(resume(approval_workflow(timeout=1800), paused.run_id, env=sim, store=store))
    assert early.status == "paused"  # nobody answered, and the deadline is not there yet
    sim.run(__import__("asyncio").sleep(1800))
    late = sim.run(resume(approval_workflow(timeout=1800), paused.run_id, env=sim, store=store))
    assert (late.status, late.final_state, late.data["approval"]) == ("completed", "held", "timeout")


def test_resume_errors(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.sqlite")
    sim = Sim(seed=1)
    with pytest.raises(RunError, match="no checkpoint for run_id='nope'"):
        sim.run(resume(approval_workflow(), "nope", env=sim, store=store))
    paused = sim.run(run(approval_workflow(), env=sim, store=store))
    decide(store, store.pending()[0].id, "approve", by="bob", at=sim.now)
    sim.run(resume(approval_workflow(), paused.run_id, env=sim, store=store))
    with pytest.raises(RunError, match="already ended"):
        sim.run(resume(approval_workflow(), paused.run_id, env=sim, store=store))
    with pytest.raises(RunError, match="was already decided: approve by bob"):
        decide(store, store.approval(f"{paused.run_id}:approve:2").id, "reject", by="eve", at=0.0)  # type: ignore[union-attr]


def test_pausing_needs_a_durable_store() -> None:
    sim = Sim(seed=1)
    result = sim.run(run(approval_workflow(), env=sim))
    [failed] = result.trace.query(kind="handler_failed")[:1]
    assert "cannot pause a run" in failed.message  # type: ignore[union-attr]


def test_two_crashes_in_a_row_still_lose_and_repeat_nothing(tmp_path: Path) -> None:
    clean_world, clean_effects, clean_kinds = uninterrupted(tmp_path)
    firewall = FileFirewall(tmp_path / "twice.json")
    store = SqliteStore(":memory:")
    sim = Sim(seed=SEED)

    def crash_at(k: int) -> FaultInjector:
        plan = FaultPlan(faults=[Fault(id="kill", kind="crash", target="run", at_transition=k)])
        return FaultInjector(plan, seed=sim.seed)

    with pytest.raises(SimulatedCrash):
        sim.run(run(durable_workflow(firewall), env=sim, store=store, trace=Trace(crash_at(2))))
    run_id = store.runs()[0].checkpoint.run_id
    # The second life dies at its first transition: the very step the first one lost.
    second = Trace.from_events(store.events(run_id))
    second.attach(crash_at(1))
    with pytest.raises(SimulatedCrash):
        sim.run(resume(durable_workflow(firewall), run_id, env=sim, store=store, trace=second))
    result = sim.run(resume(durable_workflow(firewall), run_id, env=sim, store=store))

    assert result.status == "completed"
    assert firewall.blocked() == clean_world
    assert [(e.tool, e.resource, e.status) for e in store.ledger] == clean_effects
    assert trace_complete(result.trace.events) == []
    assert [e.kind for e in result.trace if e.kind != "run_resumed"] == clean_kinds


def test_a_run_id_already_in_the_store_is_refused(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.sqlite")
    sim = Sim(seed=1)
    sim.run(run(approval_workflow(), env=sim, store=store, run_id="r-1"))
    with pytest.raises(RunError, match="run_id='r-1' is already in SqliteStore"):
        sim.run(run(approval_workflow(), env=sim, store=store, run_id="r-1"))


def test_a_decision_after_the_deadline_is_refused(tmp_path: Path) -> None:
    store = SqliteStore(tmp_path / "x.sqlite")
    sim = Sim(seed=1)
    paused = sim.run(run(approval_workflow(timeout=600), env=sim, store=store))
    [request] = store.pending()
    with pytest.raises(RunError, match="passed its deadline t=600s before t=900s"):
        decide(store, request.id, "approve", by="late", at=900.0)
    sim.run(__import__("asyncio").sleep(900))
    done = sim.run(resume(approval_workflow(timeout=600), paused.run_id, env=sim, store=store))
    assert done.data["approval"] == "timeout"
    assert store.pending() == []  # closed for good


def test_data_that_cannot_be_checkpointed_fails_the_run_cleanly(tmp_path: Path) -> None:
    async def opaque(ctx: StepContext) -> Outcome:
        return Outcome(next="done", data={"handle": object()})

    wf = Workflow(states={"a": opaque}, transitions={"a": ["b", "done"]}, initial="a", terminal=["done", "b"])
    sim = Sim(seed=1)
    result = sim.run(run(wf, env=sim, store=SqliteStore(tmp_path / "x.sqlite")))
    assert result.status == "failed"
    assert "outcome data['handle'] is of type object; a durable run keeps only JSON values" in (
        result.reason or ""
    )
    assert result.trace.events[-1].kind == "run_finished"


def test_a_run_is_not_resumed_twice_at_once(tmp_path: Path) -> None:
    path = tmp_path / "claims.sqlite"
    store = SqliteStore(path)
    sim = Sim(seed=1)
    paused = sim.run(run(approval_workflow(), env=sim, store=store))
    # Two processes read the checkpoint at life 0; only the first claim wins.
    first, second, third = SqliteStore(path), SqliteStore(path), SqliteStore(path)
    first.claim(paused.run_id, incarnation=0)
    with pytest.raises(RunError, match=r"was resumed elsewhere meanwhile \(life 1\)"):
        second.claim(paused.run_id, incarnation=0)
    # A third reads the checkpoint after the first claimed it: the first owns the run
    # (its lease is live), so the third does not take the next life.
    with pytest.raises(RunError, match=f"run {paused.run_id!r} is owned by {first.owner} until"):
        third.claim(paused.run_id, incarnation=1)
    with pytest.raises(RunError, match="is owned by"):
        sim.run(resume(approval_workflow(), paused.run_id, env=sim, store=third))


def reviewing(
    answers: list[float | None], *, timeout: float = 100.0, crash_in: float | None = None
) -> Workflow:
    """One state that awaits a human review, answered after ``answers.pop(0)`` seconds
    (None: never); with ``crash_in``, its life dies that many seconds into the state."""

    async def review(ctx: StepContext) -> Outcome:
        async def ask() -> str:
            after = answers.pop(0)
            if crash_in is not None:
                await asyncio.sleep(crash_in)
                raise SimulatedCrash("killed while the review waits")
            await asyncio.sleep(1e9 if after is None else after)
            return "answered"

        try:
            answer = await await_review(ctx, ask, timeout=timeout, proposal="contain?")
        except TimeoutError:
            answer = "no answer"
        return Outcome(next="done", data={"answer": answer, "at": ctx.now()})

    return Workflow(
        states={"review": review}, transitions={"review": ["done"]}, initial="review", terminal=["done"]
    )


def test_a_review_deadline_outlives_a_crash() -> None:
    """Killed 40 s into a 100 s review nobody answers: the next life waits 60 s, not 100."""
    store, sim = SqliteStore(":memory:"), Sim(seed=0)
    with pytest.raises(SimulatedCrash):
        sim.run(run(reviewing([None], crash_in=40.0), env=sim, store=store, run_id="r"))
    result = sim.run(resume(reviewing([None]), "r", env=sim, store=store))
    assert (result.data["answer"], result.data["at"]) == ("no answer", 100.0)
    [request] = [store.approval("r:review:1")]
    assert request is not None
    assert (request.deadline, request.decision) == (100.0, "timeout")
    assert store.pending() == []


def test_a_review_that_timed_out_before_a_crash_times_out_at_once() -> None:
    """The crash the fuzzer found: the review timed out, the transition after it died."""
    store, sim = SqliteStore(":memory:"), Sim(seed=0)
    plan = FaultPlan(faults=[Fault(id="kill", kind="crash", target="run", at_transition=1)])
    with pytest.raises(SimulatedCrash):
        sim.run(
            run(reviewing([None]), env=sim, store=store, run_id="r", trace=Trace(FaultInjector(plan, seed=0)))
        )
    asked: list[float | None] = [5.0]  # a human who would answer now is not asked
    result = sim.run(resume(reviewing(asked), "r", env=sim, store=store))
    assert (result.data["answer"], result.data["at"], asked) == ("no answer", 100.0, [5.0])


def test_an_answer_lost_with_a_crash_is_asked_for_again_under_a_new_deadline() -> None:
    store, sim = SqliteStore(":memory:"), Sim(seed=0)
    plan = FaultPlan(faults=[Fault(id="kill", kind="crash", target="run", at_transition=1)])
    with pytest.raises(SimulatedCrash):
        sim.run(
            run(reviewing([90.0]), env=sim, store=store, run_id="r", trace=Trace(FaultInjector(plan, seed=0)))
        )
    result = sim.run(resume(reviewing([90.0]), "r", env=sim, store=store))
    assert (result.data["answer"], result.data["at"]) == ("answered", 180.0)
    request = store.approval("r:review:1")
    assert request is not None
    assert (request.requested_at, request.deadline, request.decision) == (90.0, 190.0, "answered")


def test_without_a_durable_store_a_review_is_a_plain_timeout() -> None:
    sim = Sim(seed=0)
    result = sim.run(run(reviewing([None]), env=sim))
    assert (result.data["answer"], result.data["at"]) == ("no answer", 100.0)
