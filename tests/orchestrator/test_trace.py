"""The trace: typed events, sinks, loading, frames and queries."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from windtunnel.orchestrator import (
    JsonlSink,
    Message,
    ModelRequest,
    ModelResponse,
    SqliteSink,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Trace,
    TraceError,
    TransitionTaken,
    Usage,
    events_frame,
    load_trace,
)
from windtunnel.orchestrator import trace as trace_module
from windtunnel.orchestrator.trace import Record
from windtunnel.scenarios import run_demo
from windtunnel.simulators import Sim


def demo_trace(*sinks: JsonlSink | SqliteSink) -> Trace:
    trace = Trace(*sinks)
    sim = Sim(seed=1)
    run_demo(variant="confused", sim=sim, trace=trace)
    run_demo(variant="slow_source", sim=sim, trace=trace)
    trace.close()
    return trace


def test_events_are_typed_and_carry_the_common_fields() -> None:
    trace = demo_trace()
    event = trace.query(kind="transition")[0]
    assert isinstance(event, TransitionTaken)
    assert event.run_id == "run-1-1"
    assert event.state == "triage"
    assert event.wall_time > 1e9
    assert len(trace) == len(trace.records) == len(trace.events)


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_sinks_round_trip_every_event(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"trace{suffix}"
    sink = JsonlSink(path) if suffix == ".jsonl" else SqliteSink(path, batch=3)
    trace = demo_trace(sink)
    loaded = load_trace(path)
    # In memory the case is the DemoAlert object; on disk, its JSON form.
    assert loaded.dumps(wall_time=True) == trace.dumps(wall_time=True)
    assert len(loaded) == len(trace)


def test_sqlite_sink_has_queryable_columns(tmp_path: Path) -> None:
    path = tmp_path / "trace.db"
    demo_trace(SqliteSink(path))
    with sqlite3.connect(path) as db:
        rows = db.execute(
            "SELECT state, COUNT(*) FROM events WHERE kind = 'handler_failed' GROUP BY state"
        ).fetchall()
    assert rows == [("investigate", 2)]


def test_frame_has_common_columns_then_kind_fields() -> None:
    trace = demo_trace()
    frame = trace.to_frame()
    assert list(frame.columns[:6]) == ["run_id", "seq", "kind", "sim_time", "wall_time", "state"]
    assert len(frame) == len(trace)
    assert frame.groupby("run_id")["seq"].max().to_dict() == {"run-1-1": 13, "run-1-2": 10}
    refused = frame[frame.kind == "transition_refused"]
    assert refused["proposed"].tolist() == ["block_ip"]
    assert events_frame([]).columns.tolist() == ["run_id", "seq", "kind", "sim_time", "wall_time", "state"]


def test_query_filters_by_run_kind_state_and_fields() -> None:
    trace = demo_trace()
    assert [e.seq for e in trace.query(run_id="run-1-2", kind="handler_failed")] == [4, 6]
    both = trace.query(kind=["transition_refused", "handler_failed"])
    assert [e.kind for e in both] == ["transition_refused", "handler_failed", "handler_failed"]
    assert [e.run_id for e in trace.query(kind="transition", target="escalated")] == ["run-1-2"]
    assert trace.query(state="decide", timed_out=True) == []
    assert len(trace.query(timed_out=True)) == 2


def test_dumps_drops_wall_time_unless_asked() -> None:
    trace = demo_trace()
    assert "wall_time" not in trace.dumps()
    assert trace.dumps(wall_time=True).count("wall_time") == len(trace)


def naive_dumps(trace: Trace, *, wall_time: bool) -> str:
    """What dumps() is: each event's model_dump_json on a line."""
    exclude = None if wall_time else {"wall_time"}
    return "".join(event.model_dump_json(exclude=exclude, fallback=repr) + "\n" for event in trace.events)


def model_called(
    seq: int, request: ModelRequest | dict[str, Any], *, response: ModelResponse | None
) -> Record:
    fields = {
        "tier": "small",
        "model": 'm\u2028"odd"',
        "request": request,
        "response": response,
        "input_tokens": 3,
        "output_tokens": 4,
        "cost": 0.25,
        "latency": 1.5,
        "request_id": None,
        "retries": 0,
        "error": None,
    }
    return ("model_called", "run-1", seq, float(seq), 1e9 + seq, "triage", fields)


def test_dumps_is_each_events_json_on_a_line() -> None:
    # A model call's messages and tools are serialized once per dumps() and shared by the
    # events holding them: the bytes must stay each event's own model_dump_json.
    tools = (
        ToolSpec(name="siem", description="search \u00e9", input_schema={"type": "object", "response": []}),
    )
    first = Message(role="user", content=(TextBlock(text='State: triage ,"response": \u2028 "x"'),))
    answer = (
        TextBlock(text="looking"),
        ToolUseBlock(id="t1", name="siem", input={"query": ',"response":', "tools": [], "n": 1.5}),
    )
    second = Message(role="assistant", content=answer)
    third = Message(role="user", content=(ToolResultBlock(tool_use_id="t1", content="{}", is_error=True),))
    response = ModelResponse(
        model="m", content=answer, stop_reason="tool_use", usage=Usage(input_tokens=3, output_tokens=4)
    )
    trace = Trace()
    trace.append(
        model_called(0, ModelRequest(system="s\u00e9", messages=(first,), tools=tools), response=response)
    )
    trace.append(
        model_called(
            1, ModelRequest(system="s\u00e9", messages=(first, second, third), tools=tools), response=None
        )
    )
    # Read back from a file, the request is validated from plain JSON.
    trace.append(
        model_called(
            3, {"system": "s", "messages": [{"role": "user", "content": [{"text": "hi"}]}]}, response=None
        )
    )
    for run in (trace, demo_trace()):
        for wall_time in (False, True):
            assert run.dumps(wall_time=wall_time) == naive_dumps(run, wall_time=wall_time)
    assert trace_module._SPLICEABLE, (
        "ModelCalled or ModelRequest changed layout: update _json_lines' assembly"
    )


def test_a_trace_from_events_holds_them_and_dumps_the_same() -> None:
    trace = demo_trace()
    again = Trace.from_events(iter(trace.events))  # any iterable, read once
    assert again.events == trace.events
    assert again.dumps(wall_time=True) == trace.dumps(wall_time=True)


def test_unknown_or_malformed_events_are_clear_errors() -> None:
    trace = Trace()
    trace.append(("state_entered", "r", 0, 0.0, 0.0, "a", {"step": "one", "attempt": 1}))
    with pytest.raises(TraceError, match=r"malformed 'state_entered' event \(run 'r', seq 0\)"):
        _ = trace.events
    odd = Trace()
    odd.append(("teleported", "r", 0, 0.0, 0.0, "a", {}))
    with pytest.raises(TraceError, match="unknown event kind='teleported'"):
        _ = odd.events


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("bad.jsonl", '{"kind": "run_started"', r"bad\.jsonl:1: not valid JSON"),
        ("bad.jsonl", '\n{"kind": "nope", "run_id": "r"}\n', r"bad\.jsonl:2: invalid event"),
        ("bad.sqlite", "not a database", r"cannot read events from"),
        ("trace.csv", "a,b", r"cannot tell the format of .*suffix='\.csv'"),
    ],
)
def test_bad_trace_files(tmp_path: Path, name: str, content: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(content)
    with pytest.raises(TraceError, match=message):
        load_trace(path)


def test_missing_trace_file(tmp_path: Path) -> None:
    with pytest.raises(TraceError, match="no trace file at"):
        load_trace(tmp_path / "absent.jsonl")


def test_sqlite_sink_refuses_to_overwrite_a_run(tmp_path: Path) -> None:
    path = tmp_path / "trace.sqlite"
    run_demo(seed=1, trace=Trace(SqliteSink(path)))
    with pytest.raises(TraceError, match=r"already holds events of a run .*run 'run-1-1', seq 0"):
        run_demo(seed=1, trace=Trace(SqliteSink(path)))
