"""Workflow validation: every problem of a broken definition, reported at once."""

from __future__ import annotations

from typing import Any

import pytest

from windtunnel import Outcome, Policy, StepContext, Workflow, WorkflowError


async def handler(ctx: StepContext) -> Outcome:
    return Outcome(next="done")


H = handler


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
