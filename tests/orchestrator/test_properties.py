"""Property: random valid workflows, driven by random handler behaviour, always end
in a terminal or budget state through legal transitions only."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from hypothesis import given, settings
from hypothesis import strategies as st

from windtunnel import Budget, Outcome, Policy, Sim, StepContext, Workflow, run
from windtunnel.evals import legal_transitions_only, runs_terminate, trace_complete

BEHAVIOURS = ("legal", "legal", "legal", "illegal", "raise", "hang", "bad_confidence", "not_outcome")


@dataclass(frozen=True)
class Shape:
    handled: list[str]
    terminal: list[str]
    transitions: dict[str, list[str]]
    escalate: bool
    timeout: float | None


@st.composite
def shapes(draw: st.DrawFn) -> Shape:
    n = draw(st.integers(1, 7))
    handled = [f"s{i}" for i in range(n)]
    terminal = [f"t{i}" for i in range(draw(st.integers(1, 3)))]
    escalate = draw(st.booleans())
    # A chain s0 -> s1 -> ... -> t0 makes every state reachable and able to end;
    # random extra edges (cycles included) make the rest of the shape.
    transitions: dict[str, list[str]] = {
        state: [handled[i + 1] if i + 1 < n else terminal[0]] for i, state in enumerate(handled)
    }
    for term in terminal[1:]:
        transitions[draw(st.sampled_from(handled))].append(term)
    extra = st.tuples(st.sampled_from(handled), st.sampled_from(handled + terminal))
    for source, target in draw(st.lists(extra, max_size=3 * n)):
        transitions[source].append(target)
    if escalate:
        handled.append("escalate")
        transitions["escalate"] = [terminal[0]]
    timeout = draw(st.one_of(st.none(), st.floats(1, 100)))
    return Shape(handled, terminal, transitions, escalate, timeout)


def build(shape: Shape) -> Workflow:
    async def handler(ctx: StepContext) -> Outcome:
        allowed = sorted(shape.transitions[ctx.state])
        behaviour = ctx.rng.choice(BEHAVIOURS)
        await asyncio.sleep(ctx.rng.expovariate(1 / 5))
        if behaviour == "illegal":
            return Outcome(next=ctx.rng.choice([*allowed, "nowhere", shape.handled[0]]))
        if behaviour == "raise":
            raise RuntimeError("tool exploded")
        if behaviour == "hang":
            await asyncio.sleep(10_000)
        if behaviour == "bad_confidence":
            return Outcome(next=allowed[0], confidence=2.0)
        if behaviour == "not_outcome":
            return allowed[0]  # type: ignore[return-value]
        return Outcome(next=ctx.rng.choice(allowed), confidence=ctx.rng.random())

    route = "escalate" if shape.escalate else None
    return Workflow(
        states=dict.fromkeys(shape.handled, handler),
        transitions=shape.transitions,
        initial="s0",
        terminal=shape.terminal,
        timeouts={} if shape.timeout is None else dict.fromkeys(shape.handled, shape.timeout),
        on_refused=Policy(retries=1, route_to=route),
        on_error=Policy(retries=1, route_to=route),
        on_budget=shape.terminal[-1],
    )


@settings(max_examples=300, deadline=None)
@given(
    shape=shapes(),
    seed=st.integers(0, 2**32),
    max_steps=st.integers(1, 60),
    max_duration=st.one_of(st.none(), st.floats(10, 5000)),
)
def test_runs_end_legally(shape: Shape, seed: int, max_steps: int, max_duration: float | None) -> None:
    wf = build(shape)
    sim = Sim(seed=seed)
    result = sim.run(run(wf, env=sim, budget=Budget(max_steps=max_steps, max_duration=max_duration)))
    events = result.trace.events

    assert legal_transitions_only(events, wf) == []
    assert trace_complete(events) == []
    assert runs_terminate(events) == []
    assert result.steps <= max_steps
    if max_duration is not None:
        assert result.duration <= max_duration
    if result.status == "completed":
        assert result.final_state in shape.terminal
    elif result.status == "budget_exceeded":
        assert result.final_state == shape.terminal[-1]
    else:
        # Only a workflow with no escalation route may give up.
        assert (result.status, shape.escalate) == ("failed", False)
        assert result.final_state in shape.handled
    entered = [e.state for e in events if e.kind == "state_entered"]
    assert len(entered) == result.steps
    assert set(entered) <= set(shape.handled)


@settings(max_examples=50, deadline=None)
@given(shape=shapes(), seed=st.integers(0, 2**32))
def test_same_seed_same_trace(shape: Shape, seed: int) -> None:
    def once() -> str:
        sim = Sim(seed=seed)
        return sim.run(run(build(shape), env=sim)).trace.dumps()

    assert once() == once()
