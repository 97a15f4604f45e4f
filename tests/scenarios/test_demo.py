"""The demo investigation: each seeded variant shows what it is meant to exercise."""

from __future__ import annotations

import pytest

from windtunnel.evals import legal_transitions_only, runs_terminate, trace_complete
from windtunnel.orchestrator import InvalidArgument, Trace
from windtunnel.scenarios import DEMO_BUDGET, DemoWorld, demo_workflow, run_demo
from windtunnel.simulators import Sim


@pytest.mark.parametrize("seed", range(5))
def test_nominal_blocks_and_verifies_or_escalates(seed: int) -> None:
    result = run_demo(seed=seed)
    assert result.status == "completed"
    assert result.final_state in {"close", "escalated"}
    if "action" in result.data:  # it blocked the IP: then it read the block back
        assert result.data["verified"] is True
    else:
        assert result.data["verdict"] in {"benign", "unsure"}
    assert result.trace.query(kind=["handler_failed", "transition_refused", "budget_exceeded"]) == []


def test_slow_source_times_out_and_escalates() -> None:
    result = run_demo(seed=0, variant="slow_source")
    failed = result.trace.query(kind="handler_failed", state="investigate")
    assert [(e.timed_out, e.action) for e in failed] == [(True, "retry"), (True, "route")]  # type: ignore[union-attr]
    assert result.final_state == "escalated"
    assert result.data["ticket"] == "ticket-0-1"


def test_confused_decision_is_refused_then_retried() -> None:
    result = run_demo(seed=0, variant="confused")
    [refused] = result.trace.query(kind="transition_refused")
    assert (refused.state, refused.proposed, refused.action) == ("decide", "block_ip", "retry")  # type: ignore[union-attr]
    assert result.trace.query(kind="state_entered", state="decide")[-1].attempt == 2  # type: ignore[union-attr]
    assert result.status == "completed"


def test_endless_investigation_hits_the_45_minute_budget() -> None:
    result = run_demo(seed=0, variant="endless")
    [exceeded] = result.trace.query(kind="budget_exceeded")
    assert (exceeded.budget, exceeded.limit, exceeded.sim_time) == ("duration", 2700.0, 2700.0)  # type: ignore[union-attr]
    assert (result.status, result.final_state, result.duration) == ("budget_exceeded", "escalated", 2700.0)


def test_silent_write_failure_is_caught_by_verify_and_rolled_back() -> None:
    sim = Sim(seed=0)
    from windtunnel.orchestrator import run

    world = DemoWorld(drop_writes=True)
    alert = run_demo(seed=0).trace.events[0].case  # type: ignore[union-attr]
    result = sim.run(run(demo_workflow(world), alert, env=sim, budget=DEMO_BUDGET))
    path = [e.target for e in result.trace.query(kind="transition")]  # type: ignore[union-attr]
    assert path[-4:] == ["verify", "rollback", "escalate", "escalated"]
    assert world.blocklist == set()


@pytest.mark.parametrize("variant", ["nominal", "slow_source", "confused", "endless"])
def test_variants_are_deterministic_and_legal(variant: str) -> None:
    first = run_demo(seed=11, variant=variant)  # type: ignore[arg-type]
    second = run_demo(seed=11, variant=variant)  # type: ignore[arg-type]
    assert first.trace.dumps() == second.trace.dumps()
    assert first.trace.dumps() != run_demo(seed=12, variant=variant).trace.dumps()  # type: ignore[arg-type]
    events = first.trace.events
    wf = demo_workflow(DemoWorld(), variant=variant)  # type: ignore[arg-type]
    assert legal_transitions_only(events, wf) + trace_complete(events) + runs_terminate(events) == []


def test_one_sim_many_runs_distinct_ids() -> None:
    sim, trace = Sim(seed=3), Trace()
    results = [run_demo(variant=v, sim=sim, trace=trace) for v in ("nominal", "confused")]  # type: ignore[arg-type]
    assert [r.run_id for r in results] == ["run-3-1", "run-3-2"]
    assert trace_complete(trace.events) == []


def test_unknown_variant() -> None:
    with pytest.raises(InvalidArgument) as raised:
        demo_workflow(DemoWorld(), variant="chaos")  # type: ignore[arg-type]
    assert (
        str(raised.value)
        == "unknown variant='chaos'; choose one of ['nominal', 'slow_source', 'confused', 'endless']"
    )
    with pytest.raises(InvalidArgument, match=r"did you mean 'nominal'\?$"):
        run_demo(variant="nominl")  # type: ignore[arg-type]


def test_seed_must_be_an_int_at_least_0() -> None:
    with pytest.raises(InvalidArgument, match=r"^seed=-1 must be an int >= 0$"):
        run_demo(seed=-1)
