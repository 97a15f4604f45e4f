"""The engine: transitions enforced, failures and budgets handled by policy, nothing escapes."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from windtunnel import Budget, Outcome, Policy, Sim, StepContext, Workflow, run
from windtunnel.orchestrator import RunError, RunResult, Trace

Script = Callable[[StepContext], Awaitable[Outcome]]


def go(to: str, *, confidence: float | None = None, sleep: float = 0.0, **data: Any) -> Script:
    async def handler(ctx: StepContext) -> Outcome:
        if sleep:
            await asyncio.sleep(sleep)
        return Outcome(next=to, confidence=confidence, data=data)

    return handler


def linear(**kwargs: Any) -> Workflow:
    spec: dict[str, Any] = {
        "states": {"triage": go("decide"), "decide": go("close"), "escalate": go("escalated")},
        "transitions": {"triage": ["decide"], "decide": ["close", "escalate"], "escalate": ["escalated"]},
        "initial": "triage",
        "terminal": ["close", "escalated"],
        "on_refused": Policy(retries=1, route_to="escalate"),
        "on_error": Policy(retries=1, route_to="escalate"),
    }
    spec.update(kwargs)
    return Workflow(**spec)


def simulate(wf: Workflow, *, seed: int = 0, budget: Budget | None = None, case: Any = None) -> RunResult:
    sim = Sim(seed=seed)
    return sim.run(run(wf, case, env=sim, budget=budget))


def kinds(result: RunResult) -> list[str]:
    return [event.kind for event in result.trace]


def test_linear_run_records_every_step() -> None:
    result = simulate(
        linear(
            states={
                "triage": go("decide", x=1),
                "decide": go("close", confidence=0.9, y=2),
                "escalate": go("escalated"),
            }
        )
    )
    assert (result.status, result.final_state, result.steps) == ("completed", "close", 2)
    assert result.data == {"x": 1, "y": 2}
    assert kinds(result) == [
        "run_started",
        "state_entered",
        "transition",
        "state_entered",
        "transition",
        "run_finished",
    ]
    transitions = result.trace.query(kind="transition")
    assert [(e.state, e.target, e.confidence) for e in transitions] == [  # type: ignore[union-attr]
        ("triage", "decide", None),
        ("decide", "close", 0.9),
    ]
    assert [event.seq for event in result.trace] == list(range(6))
    assert {event.run_id for event in result.trace} == {result.run_id}


def test_undeclared_next_state_is_refused_never_followed() -> None:
    entered: list[str] = []

    async def confused(ctx: StepContext) -> Outcome:
        entered.append(ctx.state)
        return Outcome(next="close" if ctx.attempt > 1 else "block_ip")

    result = simulate(
        linear(
            states={"triage": confused, "decide": go("close"), "escalate": go("escalated")},
            transitions={
                "triage": ["decide", "close"],
                "decide": ["close", "escalate"],
                "escalate": ["escalated"],
            },
        )
    )
    assert result.final_state == "close"
    refused = result.trace.query(kind="transition_refused")
    assert [(e.proposed, e.allowed, e.action) for e in refused] == [  # type: ignore[union-attr]
        ("block_ip", ["close", "decide"], "retry")
    ]
    assert result.trace.query(kind="transition", target="block_ip") == []
    assert entered == ["triage", "triage"]


def test_feedback_tells_the_retry_what_was_refused() -> None:
    seen: list[tuple[str, ...]] = []

    async def confused(ctx: StepContext) -> Outcome:
        seen.append(ctx.feedback)
        return Outcome(next="nowhere")

    result = simulate(linear(states={"triage": confused, "decide": go("close"), "escalate": go("escalated")}))
    assert seen == [(), ("attempt 1: next='nowhere' is not allowed from 'triage'; allowed: ['decide']",)]
    assert result.final_state == "escalated"
    policy_moves = result.trace.query(kind="transition", state="triage")
    assert [e.target for e in policy_moves] == ["escalate"]  # type: ignore[union-attr]
    assert policy_moves[0].reason.startswith("policy: next='nowhere'")  # type: ignore[union-attr]


def test_default_refusal_policy_fails_the_run_after_two_retries() -> None:
    wf = Workflow(states={"a": go("zz")}, transitions={"a": ["done"]}, initial="a", terminal=["done"])
    result = simulate(wf)
    assert (result.status, result.final_state, result.steps) == ("failed", "a", 3)
    assert [e.action for e in result.trace.query(kind="transition_refused")] == [  # type: ignore[union-attr]
        "retry",
        "retry",
        "fail",
    ]
    assert result.reason == "next='zz' is not allowed from 'a'; allowed: ['done']"


async def boom(ctx: StepContext) -> Outcome:
    raise ValueError("source returned garbage")


async def not_an_outcome(ctx: StepContext) -> Any:
    return "close"


async def overconfident(ctx: StepContext) -> Outcome:
    return Outcome(next="close", confidence=1.5)


@pytest.mark.parametrize(
    ("handler", "error", "message"),
    [
        (boom, "ValueError", "source returned garbage"),
        (not_an_outcome, "InvalidOutcome", "handler returned 'close', not an Outcome"),
        (overconfident, "InvalidOutcome", "confidence=1.5 is outside [0, 1]"),
    ],
)
def test_handler_failures_are_events_and_policy(handler: Script, error: str, message: str) -> None:
    result = simulate(linear(states={"triage": go("decide"), "decide": handler, "escalate": go("escalated")}))
    failed = result.trace.query(kind="handler_failed")
    assert [(e.error, e.message, e.attempt, e.action) for e in failed] == [  # type: ignore[union-attr]
        (error, message, 1, "retry"),
        (error, message, 2, "route"),
    ]
    assert (result.status, result.final_state) == ("completed", "escalated")


def test_state_timeout_in_simulated_time() -> None:
    wf = linear(
        states={"triage": go("decide", sleep=3600), "decide": go("close"), "escalate": go("escalated")},
        timeouts={"triage": 300},
    )
    sim = Sim(seed=0)
    result = sim.run(run(wf, env=sim))
    failed = result.trace.query(kind="handler_failed")
    assert [(e.timed_out, e.sim_time, e.message) for e in failed] == [  # type: ignore[union-attr]
        (True, 300.0, "'triage' timed out after 300s"),
        (True, 600.0, "'triage' timed out after 300s"),
    ]
    assert result.final_state == "escalated"
    assert sim.now == 600.0


def test_handler_own_timeout_error_is_not_a_state_timeout() -> None:
    async def flaky(ctx: StepContext) -> Outcome:
        raise TimeoutError("upstream said so")

    wf = linear(
        states={"triage": flaky, "decide": go("close"), "escalate": go("escalated")}, timeouts={"triage": 300}
    )
    failed = simulate(wf).trace.query(kind="handler_failed")
    assert next((e.timed_out, e.message) for e in failed) == (False, "upstream said so")  # type: ignore[union-attr]


def test_step_budget_stops_a_loop() -> None:
    wf = Workflow(
        states={"a": go("b"), "b": go("a")},
        transitions={"a": ["b"], "b": ["a", "done"]},
        initial="a",
        terminal=["done", "halted"],
        on_budget="halted",
    )
    result = simulate(wf, budget=Budget(max_steps=5))
    assert (result.status, result.final_state, result.steps) == ("budget_exceeded", "halted", 5)
    exceeded = result.trace.query(kind="budget_exceeded")
    assert [(e.budget, e.limit, e.used, e.state) for e in exceeded] == [  # type: ignore[union-attr]
        ("steps", 5, 5, "b")
    ]
    assert kinds(result)[-4:] == ["budget_exceeded", "escalated", "transition", "run_finished"]


def test_duration_budget_cuts_a_handler_short() -> None:
    wf = linear(
        states={
            "triage": go("decide", sleep=100),
            "decide": go("close", sleep=10_000),
            "escalate": go("escalated"),
        }
    )
    sim = Sim(seed=0)
    result = sim.run(run(wf, env=sim, budget=Budget(max_duration=2700)))
    assert (result.status, result.final_state, result.duration) == ("budget_exceeded", "decide", 2700.0)
    assert sim.now == 2700.0
    assert [e.budget for e in result.trace.query(kind="budget_exceeded")] == ["duration"]  # type: ignore[union-attr]
    assert result.trace.query(kind="handler_failed") == []


def test_cost_budget_even_when_the_handler_swallows_the_signal() -> None:
    async def spender(ctx: StepContext) -> Outcome:
        for _ in range(10):
            with contextlib.suppress(Exception):  # a careless handler; the engine still stops the run
                ctx.charge(0.02, source="api:enrichment")
        return Outcome(next="close")

    result = simulate(
        linear(states={"triage": spender, "decide": go("close"), "escalate": go("escalated")}),
        budget=Budget(max_cost=0.05),
    )
    assert result.status == "budget_exceeded"
    assert result.cost == pytest.approx(0.2)
    [exceeded] = result.trace.query(kind="budget_exceeded")
    assert (exceeded.budget, exceeded.limit) == ("cost", 0.05)  # type: ignore[union-attr]


def test_cancelled_run_is_recorded_and_propagates() -> None:
    trace = Trace()

    async def main() -> None:
        wf = linear(
            states={"triage": go("decide", sleep=50), "decide": go("close"), "escalate": go("escalated")}
        )
        task = asyncio.create_task(run(wf, env=sim, trace=trace))
        await asyncio.sleep(10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    sim = Sim(seed=0)
    sim.run(main())
    last = trace.events[-1]
    assert (last.kind, last.status, last.sim_time) == ("run_finished", "cancelled", 10.0)  # type: ignore[union-attr]


def test_context_gives_case_data_clock_rng_and_ids() -> None:
    seen: dict[str, Any] = {}

    async def first(ctx: StepContext) -> Outcome:
        await asyncio.sleep(42)
        return Outcome(next="decide", data={"found": 1})

    async def second(ctx: StepContext) -> Outcome:
        seen.update(
            case=ctx.case,
            data=dict(ctx.data),
            now=ctx.now(),
            elapsed=ctx.elapsed(),
            draw=ctx.rng.random(),
            ticket=ctx.new_id("ticket"),
            step=ctx.step,
            run_id=ctx.run_id,
        )
        with pytest.raises(TypeError):
            ctx.data["found"] = 2  # type: ignore[index]
        return Outcome(next="close")

    sim = Sim(seed=5, start=1000.0)
    result = sim.run(
        run(
            linear(states={"triage": first, "decide": second, "escalate": go("escalated")}),
            {"alert": "A-1"},
            env=sim,
        )
    )
    assert seen == {
        "case": {"alert": "A-1"},
        "data": {"found": 1},
        "now": 1042.0,
        "elapsed": 42.0,
        "draw": random.Random(Sim(seed=5).seed_for(f"{result.run_id}/decide/2")).random(),
        "ticket": "ticket-5-1",
        "step": 2,
        "run_id": "run-5-1",
    }


def test_bad_arguments_are_clear_errors() -> None:
    sim = Sim(seed=0)
    with pytest.raises(RunError, match="run\\(\\) needs a Workflow, got workflow='triage'"):
        sim.run(run("triage", env=sim))  # type: ignore[arg-type]
    with pytest.raises(RunError, match="budget must be a Budget"):
        sim.run(run(linear(), env=sim, budget={"max_steps": 3}))  # type: ignore[arg-type]


def test_duplicate_run_id_on_one_loop_is_refused() -> None:
    wf = linear(states={"triage": go("decide", sleep=5), "decide": go("close"), "escalate": go("escalated")})

    async def both() -> list[Any]:
        return await asyncio.gather(
            run(wf, env=sim, run_id="r"), run(wf, env=sim, run_id="r"), return_exceptions=True
        )

    sim = Sim(seed=0)
    first, second = sim.run(both())
    assert isinstance(first, RunResult)
    assert isinstance(second, RunError)


def test_concurrent_runs_share_a_trace_without_mixing_sequences() -> None:
    wf = linear(
        states={"triage": go("decide", sleep=7), "decide": go("close", sleep=3), "escalate": go("escalated")}
    )
    trace = Trace()

    async def many() -> list[RunResult]:
        return await asyncio.gather(*(run(wf, env=sim, trace=trace) for _ in range(3)))

    sim = Sim(seed=0)
    results = sim.run(many())
    for result in results:
        assert [e.seq for e in trace.query(run_id=result.run_id)] == list(range(6))
    assert sim.now == 10.0


def test_production_runtime_without_a_sim() -> None:
    result = asyncio.run(run(linear(), {"alert": 1}))
    assert result.status == "completed"
    assert result.run_id.startswith("run-")
