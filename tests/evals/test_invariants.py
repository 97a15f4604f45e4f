"""The invariant checkers find what they say they find."""

from __future__ import annotations

from typing import Any

from windtunnel.evals import Violation, legal_transitions_only, runs_terminate, trace_complete
from windtunnel.orchestrator import Event, Trace
from windtunnel.scenarios import DemoWorld, demo_workflow, run_demo

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
