"""Workflow validation: every problem of a broken definition, reported at once."""

from __future__ import annotations

import functools
from typing import Any

import pytest

from windtunnel import Outcome, Policy, StepContext, Workflow, WorkflowError
from windtunnel.orchestrator import LadderAgent, LLMAgent, Rung, run
from windtunnel.orchestrator.ladder import Ladder
from windtunnel.simulators import ScriptedModel, Sim, respond, submit


async def handler(ctx: StepContext) -> Outcome:
    return Outcome(next="done")


H = handler


def sync_handler(ctx: StepContext) -> Outcome:
    return Outcome(next="done")


class AsyncCallable:
    def __init__(self, next: str = "done") -> None:
        self.next = next

    async def __call__(self, ctx: StepContext) -> Outcome:
        return Outcome(next=self.next)

    async def method(self, ctx: StepContext) -> Outcome:
        return Outcome(next=self.next)


class SyncCallable:
    def __call__(self, ctx: StepContext) -> Outcome:
        return Outcome(next="done")


def build(**overrides: Any) -> Workflow:
    spec: dict[str, Any] = {
        "states": {"a": H, "b": H},
        "transitions": {"a": ["b"], "b": ["done"]},
        "initial": "a",
        "terminal": ["done"],
    }
    spec.update(overrides)
    return Workflow(**spec)


def test_valid_workflow_builds() -> None:
    wf = build()
    assert wf.states == {"a", "b", "done"}
    assert wf.specs["a"].allowed == {"b"}
    assert wf.specs["b"].timeout is None


BROKEN: list[tuple[str, dict[str, Any], list[tuple[str, tuple[str, ...]]]]] = [
    (
        "target is not a state",
        {"transitions": {"a": ["b", "x"], "b": ["done"]}},
        [("transition 'a' -> 'x': 'x' is not a state", ("a", "x"))],
    ),
    (
        "source neither handled nor terminal",
        {"transitions": {"a": ["b"], "b": ["done"], "ghost": ["done"]}},
        [("transitions declared from 'ghost', which is neither handled nor terminal", ("ghost",))],
    ),
    (
        "missing initial state",
        {"initial": ""},
        [
            ("no initial state given", ()),
        ],
    ),
    (
        "initial is not a state",
        {"initial": "start"},
        [("initial state 'start' is not a state", ("start",))],
    ),
    (
        "unreachable state",
        {"states": {"a": H, "b": H, "c": H}, "transitions": {"a": ["b"], "b": ["done"], "c": ["done"]}},
        [("state 'c' cannot be reached from the initial state 'a'", ("c",))],
    ),
    (
        "cycle with no way out",
        {"transitions": {"a": ["b"], "b": ["a"]}},
        [
            ("state 'done' cannot be reached from the initial state 'a'", ("done",)),
            ("no terminal state can be reached from 'a'", ("a",)),
            ("no terminal state can be reached from 'b'", ("b",)),
        ],
    ),
    (
        "dead end",
        {"transitions": {"a": ["b", "done"]}},
        [("state 'b' has no transitions and is not terminal", ("b",))],
    ),
    (
        "no terminal declared",
        {"terminal": [], "transitions": {"a": ["b"], "b": ["a"]}},
        [
            ("no terminal state declared", ()),
            ("no terminal state can be reached from 'a'", ("a",)),
            ("no terminal state can be reached from 'b'", ("b",)),
        ],
    ),
    (
        "terminal with handler and transitions",
        {"states": {"a": H, "b": H, "done": H}, "transitions": {"a": ["b"], "b": ["done"], "done": ["a"]}},
        [
            ("state 'done' is terminal and also has a handler", ("done",)),
            ("terminal state 'done' has transitions to ['a']", ("done",)),
        ],
    ),
    (
        "handler not callable",
        {"states": {"a": H, "b": 42}},
        [("state 'b': handler 42 is not callable", ("b",))],
    ),
    (
        "handlers that are not async",
        {"states": {"a": sync_handler, "b": functools.partial(sync_handler)}},
        [
            (
                "state 'a': handler sync_handler is not async; define it with `async def` "
                "(the engine awaits it in simulated time)",
                ("a",),
            ),
            (
                "state 'b': handler functools.partial(sync_handler) is not async; define it with "
                "`async def` (the engine awaits it in simulated time)",
                ("b",),
            ),
        ],
    ),
    (
        "callable objects that are not async",
        {"states": {"a": SyncCallable(), "b": AsyncCallable}},
        [
            (
                "state 'a': handler SyncCallable() is not async; define it with `async def` "
                "(the engine awaits it in simulated time)",
                ("a",),
            ),
            (  # the class itself: calling it builds an instance, not an outcome
                "state 'b': handler AsyncCallable is not async; define it with `async def` "
                "(the engine awaits it in simulated time)",
                ("b",),
            ),
        ],
    ),
    (
        "policy routes nowhere, bad retries, on_budget not terminal",
        {
            "on_refused": Policy(retries=-1, route_to="nowhere"),
            "on_error": Policy(retries=1, route_to="b"),
            "on_budget": "b",
        },
        [
            ("on_refused: retries=-1 must be an int >= 0", ()),
            ("on_refused routes to 'nowhere', which is not a state", ("nowhere",)),
            ("on_budget='b' must be a terminal state", ("b",)),
        ],
    ),
    (
        "bad timeouts",
        {"timeouts": {"a": 0, "b": float("inf"), "zz": 5, "done": 1}},
        [
            ("timeout for 'a': seconds=0 must be a finite number > 0", ("a",)),
            ("timeout for 'b': seconds=inf must be a finite number > 0", ("b",)),
            ("timeout given for 'zz', which is not a handled state", ("zz",)),
            ("timeout given for 'done', which is not a handled state", ("done",)),
        ],
    ),
]


@pytest.mark.parametrize(("overrides", "expected"), [case[1:] for case in BROKEN], ids=[c[0] for c in BROKEN])
def test_broken_workflows_report_every_problem(
    overrides: dict[str, Any], expected: list[tuple[str, tuple[str, ...]]]
) -> None:
    with pytest.raises(WorkflowError) as info:
        build(**overrides)
    found = [(problem.message, problem.states) for problem in info.value.problems]
    assert found == expected
    # The message lists every problem, one per line.
    assert str(info.value).splitlines()[1:] == [f"  - {message}" for message, _ in expected]


def test_a_shape_known_valid_is_still_checked_in_full_when_anything_differs() -> None:
    build()
    build()  # the same shape again: only its handlers are checked
    with pytest.raises(WorkflowError, match="handler sync_handler is not async"):
        build(states={"a": sync_handler, "b": H})
    with pytest.raises(WorkflowError, match="handler 42 is not callable"):
        build(states={"a": H, "b": 42})
    build(timeouts={"a": 1.0})
    with pytest.raises(WorkflowError, match="seconds=True must be a finite number > 0"):
        build(timeouts={"a": True})  # equal to 1, but not a number of seconds
    build(on_error=Policy(retries=1))
    with pytest.raises(WorkflowError, match="retries=True must be an int >= 0"):
        build(on_error=Policy(retries=True))


def test_policy_route_makes_its_target_reachable() -> None:
    wf = build(
        states={"a": H, "b": H, "escalate": H},
        transitions={"a": ["b"], "b": ["done"], "escalate": ["done"]},
        on_error=Policy(retries=0, route_to="escalate"),
    )
    assert "escalate" in wf.specs


def test_error_names_the_workflow() -> None:
    with pytest.raises(WorkflowError, match=r"^'triage-flow' has 1 problem:"):
        build(name="triage-flow", initial="zz")


async def to(ctx: StepContext, next: str) -> Outcome:
    return Outcome(next=next)


def test_every_kind_of_async_handler_is_accepted_and_runs() -> None:
    model = ScriptedModel([respond(submit("e")), respond(submit("done"))])
    wf = Workflow(
        states={
            "a": functools.partial(to, next="b"),  # a partial of an async function
            "b": functools.partial(AsyncCallable("c")),  # a partial of an async callable object
            "c": AsyncCallable("d").method,  # a bound async method
            "d": LLMAgent(model=model, system="s"),  # objects whose __call__ is async
            "e": LadderAgent(Ladder([Rung(tier="small", model=model)]), system="s"),
        },
        transitions={"a": ["b"], "b": ["c"], "c": ["d"], "d": ["e"], "e": ["done"]},
        initial="a",
        terminal=["done"],
    )
    sim = Sim(seed=0)
    result = sim.run(run(wf, env=sim))
    transitions = [e.target for e in result.trace.query(kind="transition")]  # type: ignore[union-attr]
    assert (result.status, transitions) == ("completed", ["b", "c", "d", "e", "done"])
