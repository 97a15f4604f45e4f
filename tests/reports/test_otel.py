"""Traces exported as OpenTelemetry spans and OTLP/JSON, from real simulated runs."""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from google.protobuf import json_format
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.trace import Event as SpanEvent
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from windtunnel.orchestrator import (
    Event,
    InvalidArgument,
    ModelCalled,
    RunFinished,
    ToolCalled,
    ToolRejected,
    Trace,
    event_adapter,
)
from windtunnel.reports import SIM_EPOCH, otlp_json, to_spans, write_otlp_json
from windtunnel.scenarios import load_file, run_demo, run_scenario
from windtunnel.simulators import Sim

SCENARIOS = Path("windtunnel/scenarios/soc/scenarios")
LADDER = "ladder:small@0.85,mid@0.6,large"
ORIGIN = 1_735_689_600 * 10**9  # SIM_EPOCH in nanoseconds since the Unix epoch
# Events that become spans or attributes of spans; every other event is a span event.
SPAN_KINDS = {"run_started", "run_finished", "state_entered", "transition", "model_called", "tool_called"}
SPAN_KINDS |= {"tool_rejected"}


def scenario_events(name: str, *, seed: int = 1) -> list[Event]:
    [loaded] = load_file(SCENARIOS / f"{name}.yaml")
    return run_scenario(loaded, seed=seed, play=LADDER).trace.events


def demo_events(*variants: str, seed: int = 1) -> list[Event]:
    """The demo's variants run one after the other in one simulation, as ``windtunnel demo`` does."""
    sim, trace = Sim(seed=seed), Trace()
    for variant in variants:
        run_demo(variant=variant, sim=sim, trace=trace)  # type: ignore[arg-type]
    return trace.events


@pytest.fixture(scope="module")
def beacon() -> list[Event]:
    """The C2 beacon, played by the ladder: 11 model calls, 8 tool calls, an escalation, a block."""
    return scenario_events("c2-beacon")


@pytest.fixture(scope="module")
def demo() -> list[Event]:
    return run_demo(seed=1).trace.events


def ns(sim_time: float) -> int:
    return ORIGIN + round(sim_time * 1e9)


def by_id(spans: Sequence[ReadableSpan]) -> dict[int, ReadableSpan]:
    return {span.context.span_id: span for span in spans}


def parent_of(span: ReadableSpan, spans: Sequence[ReadableSpan]) -> ReadableSpan:
    assert span.parent is not None
    assert span.parent.trace_id == span.context.trace_id
    return by_id(spans)[span.parent.span_id]


def attrs(item: ReadableSpan | SpanEvent) -> dict[str, Any]:
    """A span's or span event's attributes, as a plain dict."""
    return dict(item.attributes or {})


def operation(span: ReadableSpan) -> Any:
    return attrs(span).get("gen_ai.operation.name")


def parse(text: str) -> ExportTraceServiceRequest:
    """OTLP/JSON read back as the collector does: hex ids are bytes, which protobuf's
    own JSON mapping spells in base64."""
    request = json.loads(text)
    for resource_spans in request["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return json_format.Parse(json.dumps(request), ExportTraceServiceRequest())


def test_one_trace_per_run_each_with_one_root() -> None:
    events = demo_events("nominal", "slow_source", "confused", "endless")
    spans = to_spans(events)
    runs = list(dict.fromkeys(event.run_id for event in events))
    roots = [span for span in spans if span.parent is None]
    assert len(runs) == 4
    assert [attrs(root)["windtunnel.run.id"] for root in roots] == runs
    # One root per trace, and no span in a trace without one.
    assert len({root.context.trace_id for root in roots}) == len(runs)
    assert {span.context.trace_id for span in spans} == {root.context.trace_id for root in roots}
    assert [root.name for root in roots] == [
        f"invoke_agent demo-investigation[{variant}]"
        for variant in ("nominal", "slow_source", "confused", "endless")
    ]


def test_the_span_tree_is_root_then_states_then_calls(beacon: list[Event]) -> None:
    spans = to_spans(beacon)
    root, *rest = spans
    assert root.parent is None
    states = [span for span in rest if parent_of(span, spans) is root]
    calls = [span for span in rest if span not in states]
    entered = [event.state for event in beacon if event.kind == "state_entered"]
    assert [span.name for span in states] == entered == ["triage", "investigate", "contain", "verify"]
    # Each call hangs under the visit of the state it happened in, in the trace's order.
    expected = [
        (
            event.state,
            f"chat {event.model}" if isinstance(event, ModelCalled) else f"execute_tool {event.tool}",
        )
        for event in beacon
        if isinstance(event, ModelCalled | ToolCalled | ToolRejected)
    ]
    assert [(parent_of(span, spans).name, span.name) for span in calls] == expected
    assert {operation(span) for span in calls} == {"chat", "execute_tool"}
    assert [span.kind for span in spans] == [
        SpanKind.CLIENT if operation(span) == "chat" else SpanKind.INTERNAL for span in spans
    ]
    assert len(by_id(spans)) == len(spans)  # span ids are unique


def test_genai_attributes_match_the_model_and_tool_calls(beacon: list[Event]) -> None:
    spans = to_spans(beacon)
    chats = [attrs(span) for span in spans if operation(span) == "chat"]
    models = [event for event in beacon if isinstance(event, ModelCalled)]
    assert [
        (
            chat["gen_ai.provider.name"],
            chat["gen_ai.system"],
            chat["gen_ai.request.model"],
            chat.get("gen_ai.response.id"),
            chat["gen_ai.usage.input_tokens"],
            chat["gen_ai.usage.output_tokens"],
            chat["windtunnel.model.cost"],
            chat["windtunnel.model.tier"],
        )
        for chat in chats
    ] == [
        (
            "anthropic",
            "anthropic",
            event.model,
            None if event.response is None else event.response.id,
            event.input_tokens,
            event.output_tokens,
            event.cost,
            event.tier,
        )
        for event in models
    ]
    total_in = sum(chat["gen_ai.usage.input_tokens"] for chat in chats)
    total_out = sum(chat["gen_ai.usage.output_tokens"] for chat in chats)
    assert (total_in, total_out) == (
        sum(event.input_tokens for event in models),
        sum(event.output_tokens for event in models),
    )
    assert total_in > 0
    assert total_out > 0
    assert {chat["gen_ai.response.id"] for chat in chats} >= {"msg_sim_small_0001", "msg_sim_mid_0001"}
    tools = [attrs(span) for span in spans if operation(span) == "execute_tool"]
    assert [
        (tool["gen_ai.tool.name"], tool["gen_ai.tool.call.id"], tool["windtunnel.tool.status"])
        for tool in tools
    ] == [(event.tool, event.call_id, event.status) for event in beacon if isinstance(event, ToolCalled)]
    [root] = [span for span in spans if span.parent is None]
    [finished] = [event for event in beacon if isinstance(event, RunFinished)]
    assert {key: value for key, value in attrs(root).items() if key != "windtunnel.run.case"} == {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": "soc-investigation",
        "windtunnel.run.id": "run-1-1",
        "windtunnel.workflow": "soc-investigation",
        "windtunnel.run.max_steps": 50,
        "windtunnel.run.max_duration": 14400.0,
        "windtunnel.run.status": "completed",
        "windtunnel.run.final_state": "close",
        "windtunnel.run.steps": 4,
        "windtunnel.run.duration": finished.duration,
        "windtunnel.run.total_cost": finished.total_cost,
    }
    assert root.status.status_code is StatusCode.UNSET


@pytest.mark.parametrize("events", ["beacon", "demo"])
def test_times_nest_and_follow_simulated_time(events: str, request: pytest.FixtureRequest) -> None:
    trace: list[Event] = request.getfixturevalue(events)
    spans = to_spans(trace)
    root = spans[0]
    assert root.start_time == ns(trace[0].sim_time)
    assert root.end_time == ns(trace[-1].sim_time)
    for span in spans:
        assert span.start_time is not None
        assert span.end_time is not None
        assert span.start_time <= span.end_time
        for event in span.events:
            assert span.start_time <= event.timestamp <= span.end_time
        if span.parent is not None:
            parent = parent_of(span, spans)
            assert parent.start_time is not None
            assert parent.end_time is not None
            assert parent.start_time <= span.start_time <= span.end_time <= parent.end_time
    starts = [
        span.start_time or 0 for span in spans if span.parent is not None and parent_of(span, spans) is root
    ]
    assert starts == sorted(starts)
    # A call's span ends when its event was recorded and starts its latency earlier:
    # nesting above holds without clamping any start.
    calls = [span for span in spans if operation(span) in ("chat", "execute_tool")]
    recorded = [event for event in trace if isinstance(event, ModelCalled | ToolCalled)]
    assert [(span.start_time, span.end_time) for span in calls] == [
        (
            ns(event.sim_time - (event.latency if isinstance(event, ModelCalled) else event.duration)),
            ns(event.sim_time),
        )
        for event in recorded
    ]


def test_the_epoch_shifts_every_time() -> None:
    events = run_demo(seed=1).trace.events
    later = SIM_EPOCH + timedelta(days=1, microseconds=5)
    shift = (86_400 * 10**6 + 5) * 1_000
    assert [(span.start_time, span.end_time) for span in to_spans(events, epoch=later)] == [
        ((span.start_time or 0) + shift, (span.end_time or 0) + shift) for span in to_spans(events)
    ]
    with pytest.raises(
        InvalidArgument, match=r"epoch=datetime.datetime\(2025, 1, 1, 0, 0\) must be timezone-aware"
    ):
        to_spans(events, epoch=datetime(2025, 1, 1))


def test_the_same_seed_gives_the_same_bytes(tmp_path: Path) -> None:
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    write_otlp_json(scenario_events("c2-beacon") + demo_events("nominal", "endless"), first)
    write_otlp_json(scenario_events("c2-beacon") + demo_events("nominal", "endless"), second)
    assert first.read_bytes() == second.read_bytes()
    assert first.read_text().count("\n") == 1
    assert first.read_bytes() != otlp_json(scenario_events("c2-beacon", seed=2)).encode() + b"\n"


def test_the_json_is_the_otlp_request_the_sdk_encodes(beacon: list[Event]) -> None:
    text = otlp_json(beacon)
    spans = to_spans(beacon)
    assert parse(text) == encode_spans(spans)
    [resource_spans] = json.loads(text)["resourceSpans"]
    assert resource_spans["resource"]["attributes"] == [
        {"key": "service.name", "value": {"stringValue": "windtunnel"}}
    ]
    [scope_spans] = resource_spans["scopeSpans"]
    assert scope_spans["scope"]["name"] == "windtunnel"
    first, second = scope_spans["spans"][:2]
    # OTLP/JSON: ids in hex, enums as integers.
    assert first["traceId"] == f"{spans[0].context.trace_id:032x}"
    assert (second["spanId"], second["parentSpanId"]) == (
        f"{spans[1].context.span_id:016x}",
        f"{spans[0].context.span_id:016x}",
    )
    assert (first["kind"], first["startTimeUnixNano"]) == (1, str(ORIGIN))


def test_failures_set_error_status() -> None:
    overloaded = to_spans(scenario_events("c2-api-overloaded"))
    failed_calls = [
        span
        for span in overloaded
        if operation(span) == "chat" and span.status.status_code is StatusCode.ERROR
    ]
    assert len(failed_calls) == 2
    assert all(attrs(span)["error.type"] == "_OTHER" for span in failed_calls)
    assert all("OverloadedError (HTTP 529)" in (span.status.description or "") for span in failed_calls)
    # The call's state visit failed with it; its retry and the run went on.
    assert [(span.name, span.status.status_code) for span in overloaded if span.name == "triage"] == [
        ("triage", StatusCode.ERROR),
        ("triage", StatusCode.ERROR),
    ]
    assert overloaded[0].status.status_code is StatusCode.UNSET

    [root, *_] = to_spans(demo_events("endless"))
    assert attrs(root)["windtunnel.run.status"] == "budget_exceeded"
    assert root.status.status_code is StatusCode.ERROR

    edr_down = to_spans(scenario_events("c2-edr-down-mid-investigation"))
    timed_out = [span for span in edr_down if attrs(span).get("error.type") == "timeout"]
    assert timed_out
    assert all(span.status.status_code is StatusCode.ERROR for span in timed_out)
    # Each attempt that timed out is an event on its call's span.
    assert sum(len(span.events) for span in timed_out) == 5
    assert {event.name for span in timed_out for event in span.events} == {"tool_timeout"}

    hallucinated = to_spans(scenario_events("c2-hallucinated-tool-call"))
    rejected = [span for span in hallucinated if "windtunnel.tool.rejected" in attrs(span)]
    assert len(rejected) == 2
    assert all(span.status.status_code is StatusCode.ERROR for span in rejected)
    assert all(span.start_time == span.end_time for span in rejected)


@pytest.mark.parametrize(
    "name",
    ["c2-api-overloaded", "c2-crash-after-triage", "login-malformed-arguments", "c2-everything-at-once"],
)
def test_every_other_event_is_one_span_event_in_its_state(name: str) -> None:
    events = scenario_events(name)
    spans = to_spans(events)
    shown = {
        attrs(event)["seq"]: (attrs(span).get("windtunnel.state"), event.name)
        for span in spans
        for event in span.events
    }
    # Outside a state visit (a resumed run, before it re-enters its state): on the root.
    expected = {
        event.seq: (event.state if event.kind != "run_resumed" else None, event.kind)
        for event in events
        if event.kind not in SPAN_KINDS
    }
    assert shown == expected
    assert sum(len(span.events) for span in spans) == len(expected)


def test_event_fields_become_attributes() -> None:
    events = demo_events("confused")
    spans = to_spans(events)
    [refusal] = [event for event in events if event.kind == "transition_refused"]
    [refused] = [event for span in spans for event in span.events if event.name == "transition_refused"]
    assert attrs(refused) == {
        "seq": refusal.seq,
        "proposed": "block_ip",
        "allowed": ("close", "escalate", "execute", "investigate"),  # a list of strings stays one
        "attempt": 1,
        "action": "retry",
        # route_to is None: left out
    }
    assert [attrs(span) for span in spans if span.name == "decide"] == [
        {"windtunnel.state": "decide", "windtunnel.step": 3, "windtunnel.attempt": 1},
        {
            "windtunnel.state": "decide",
            "windtunnel.step": 4,
            "windtunnel.attempt": 2,
            "windtunnel.transition.target": "execute",
            "windtunnel.transition.confidence": 0.786,
            "windtunnel.transition.data": '{"verdict":"malicious"}',  # nested: JSON
        },
    ]


def test_nested_fields_become_json() -> None:
    decided = event_adapter.validate_python(
        {
            "kind": "approval_decided",
            "run_id": "run-0-1",
            "seq": 7,
            "sim_time": 12.5,
            "wall_time": 1.0,
            "state": "approve",
            "approval_id": "approval-1",
            "decision": "approve",
            "by": None,
            "waited": 2.5,
            "next": "contain",
            "grants": [("ip:203.0.113.9", "block")],
        }
    )
    [root] = to_spans([decided])
    [event] = root.events
    assert (event.name, event.timestamp, attrs(event)) == (
        "approval_decided",
        ns(12.5),
        {
            "seq": 7,
            "approval_id": "approval-1",
            "decision": "approve",
            "waited": 2.5,
            "next": "contain",
            "grants": '[["ip:203.0.113.9","block"]]',
        },
    )


def test_a_selection_of_events_hangs_from_a_bare_root(beacon: list[Event]) -> None:
    models = [event for event in beacon if event.kind == "model_called"]
    root, *chats = to_spans(models)
    assert (root.name, root.parent) == ("invoke_agent", None)
    assert len(chats) == len(models)
    assert all(parent_of(chat, [root]) is root for chat in chats)
