"""Traces as OpenTelemetry spans, following the GenAI semantic conventions, and as OTLP/JSON.

A run is a trace; its root span ``invoke_agent {workflow}`` holds each state visit
as a child span named after the state, and each state span holds the state's model
calls (``chat {model}``) and tool calls (``execute_tool {tool}``). Everything else
that happens in a state (faults, escalations, actions, approvals, refusals) is a
span event on it, named by the event's kind. The spans are built by the
OpenTelemetry SDK and encoded by its OTLP exporter's encoder, so any tool that
reads OTLP can load a simulated run.

A span's status is ERROR when what it stands for failed: a model call with an
error, a tool call that did not end ``ok`` or was rejected, a state visit whose
handler failed, a run that ended ``failed``, ``budget_exceeded`` or ``cancelled``.
Model calls are attributed to the provider ``anthropic``: every model answers the
Messages API.

Times are simulated: a span starts at ``epoch`` plus the simulated seconds of its
first event. Wall times are left out on purpose: they differ on every run, and a
simulated 45-minute investigation takes milliseconds of wall time, in which its
simulated latencies would not fit. Ids derive from the run id, so the same trace
gives the same spans, byte for byte.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from google.protobuf.json_format import MessageToDict
from opentelemetry import trace as trace_api
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanLimits, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.sdk.trace.sampling import ALWAYS_ON
from opentelemetry.semconv._incubating.attributes import gen_ai_attributes as gen_ai
from opentelemetry.semconv.attributes.error_attributes import ERROR_TYPE
from opentelemetry.semconv.attributes.service_attributes import SERVICE_NAME
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.util.types import AttributeValue

import windtunnel
from windtunnel.orchestrator import (
    Event,
    HandlerFailed,
    InvalidArgument,
    ModelCalled,
    RunFinished,
    RunStarted,
    StateEntered,
    ToolCalled,
    ToolRejected,
    ToolTimedOut,
    TransitionTaken,
    WindtunnelError,
)

__all__ = ["SIM_EPOCH", "otlp_json", "to_spans", "write_otlp_json"]

SIM_EPOCH = datetime(2025, 1, 1, tzinfo=UTC)
"""The instant simulated time 0 maps onto, unless another ``epoch`` is given."""

# The GenAI conventions' values, as strings: their enums in the semconv package are
# marked deprecated (moved to the GenAI conventions' own repository), their names not.
_ANTHROPIC = "anthropic"
_CHAT = "chat"
_EXECUTE_TOOL = "execute_tool"
_INVOKE_AGENT = "invoke_agent"

# Environment variables (OTEL_SPAN_EVENT_COUNT_LIMIT, ...) would otherwise cap what
# is recorded, and make the output depend on where it is made.
_UNLIMITED = SpanLimits(
    max_attributes=SpanLimits.UNSET,
    max_events=SpanLimits.UNSET,
    max_links=SpanLimits.UNSET,
    max_span_attributes=SpanLimits.UNSET,
    max_event_attributes=SpanLimits.UNSET,
    max_link_attributes=SpanLimits.UNSET,
    max_attribute_length=SpanLimits.UNSET,
    max_span_attribute_length=SpanLimits.UNSET,
)
# Fields every event has: its time becomes the span event's time, the rest is
# implied by the trace and the span, or not deterministic (wall_time).
_COMMON = frozenset({"kind", "run_id", "sim_time", "wall_time", "state"})


def to_spans(events: Iterable[Event], *, epoch: datetime = SIM_EPOCH) -> list[ReadableSpan]:
    """The spans of the runs in ``events``: per run, its root span first, then the
    others in the order they started.

    Args:
        events: the events of one or more runs, e.g. ``Trace.events``, or a
            selection of them; runs keep the order of their first event.
        epoch: the instant simulated time 0 maps onto; a timezone-aware datetime.

    A run without its ``run_started`` or ``run_finished`` event (a selection, a
    run that died) still gets a root span, from its first event to its last.

    Raises:
        InvalidArgument: ``epoch`` is naive.
        WindtunnelError: the OpenTelemetry SDK is disabled (``OTEL_SDK_DISABLED``).

    Example:
        >>> to_spans([])
        []
    """
    if epoch.tzinfo is None:
        raise InvalidArgument(
            f"epoch={epoch!r} must be timezone-aware, e.g. datetime(2025, 1, 1, tzinfo=UTC)"
        )
    since = epoch - datetime(1970, 1, 1, tzinfo=UTC)
    origin = (since.days * 86_400 + since.seconds) * 10**9 + since.microseconds * 1_000
    runs: dict[str, list[Event]] = {}
    for event in events:
        runs.setdefault(event.run_id, []).append(event)
    ids = _RunIds()
    exporter = InMemorySpanExporter()
    provider = TracerProvider(
        sampler=ALWAYS_ON,
        resource=Resource({SERVICE_NAME: "windtunnel"}),
        shutdown_on_exit=False,
        id_generator=ids,
        span_limits=_UNLIMITED,
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("windtunnel", windtunnel.__version__)
    for run_id, run in runs.items():
        ids.start(run_id)
        _Run(tracer, origin).build(sorted(run, key=lambda event: event.seq))
    provider.shutdown()
    return list(exporter.get_finished_spans())


def otlp_json(events: Iterable[Event], *, epoch: datetime = SIM_EPOCH) -> str:
    """The spans of ``events`` as one OTLP/JSON ``ExportTraceServiceRequest``, on one
    line, as the OpenTelemetry Collector's file exporter writes it and its
    ``otlpjsonfile`` receiver reads it.

    Trace and span ids are hex strings and enums integers, as OTLP/JSON requires
    (protobuf's own JSON mapping would give base64 and names).

    Example:
        >>> otlp_json([])
        '{}'
    """
    request = MessageToDict(encode_spans(to_spans(events, epoch=epoch)), use_integers_for_enums=True)
    for resource_spans in request.get("resourceSpans", []):
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:
                        span[key] = base64.b64decode(span[key]).hex()
    return json.dumps(request, separators=(",", ":"), ensure_ascii=False)


def write_otlp_json(events: Iterable[Event], path: str | Path, *, epoch: datetime = SIM_EPOCH) -> None:
    """Write :func:`otlp_json` of ``events`` to ``path``, ending in a newline,
    replacing the file if it exists."""
    Path(path).write_text(otlp_json(events, epoch=epoch) + "\n", encoding="utf-8")


class _RunIds(IdGenerator):
    """Ids drawn from the run id: the trace id is a hash of it, span ids come from a
    generator seeded with it, in the order the spans are made."""

    def __init__(self) -> None:
        self._trace_id = 0
        self._rng = random.Random()

    def start(self, run_id: str) -> None:
        """Draw the ids of ``run_id``'s spans from now on."""
        digest = hashlib.sha256(run_id.encode()).digest()
        self._trace_id = int.from_bytes(digest[:16]) or 1  # 0 is the invalid id
        self._rng.seed(digest)

    def generate_trace_id(self) -> int:
        return self._trace_id

    def generate_span_id(self) -> int:
        while True:
            span_id = self._rng.getrandbits(64)
            if span_id:
                return span_id


@dataclass(slots=True)
class _StateSpan:
    """A state visit's span while the events of the visit come in."""

    span: trace_api.Span
    state: str
    start: int
    end: int
    timeouts: dict[str, list[ToolTimedOut]] = field(default_factory=dict)
    """Timed-out attempts of tool calls whose ``tool_called`` event has not come yet."""


class _Run:
    """Builds the spans of one run from its events, in order."""

    def __init__(self, tracer: trace_api.Tracer, origin: int) -> None:
        self._tracer = tracer
        self._origin = origin
        # Each span's end time, in the order the spans were made: they end in that
        # order once the run is built, so that the exporter lists each run's root
        # first and every span after its parent.
        self._ends: dict[trace_api.Span, int] = {}

    def _ns(self, sim_time: float) -> int:
        return self._origin + round(sim_time * 1e9)

    def _start(
        self,
        name: str,
        parent: trace_api.Span | None,
        start: int,
        attributes: dict[str, AttributeValue],
        *,
        kind: SpanKind = SpanKind.INTERNAL,
    ) -> trace_api.Span:
        context = None if parent is None else trace_api.set_span_in_context(parent)
        span = self._tracer.start_span(name, context, kind=kind, attributes=attributes, start_time=start)
        if not span.is_recording():
            raise WindtunnelError(
                "the OpenTelemetry SDK is disabled (OTEL_SDK_DISABLED=true): unset it to export"
            )
        self._ends[span] = start
        return span

    def build(self, events: list[Event]) -> None:
        first = events[0]
        start = self._ns(first.sim_time)
        root_attributes: dict[str, AttributeValue] = {
            gen_ai.GEN_AI_OPERATION_NAME: _INVOKE_AGENT,
            "windtunnel.run.id": first.run_id,
        }
        workflow = next((event.workflow for event in events if isinstance(event, RunStarted)), None)
        if workflow is not None:
            root_attributes[gen_ai.GEN_AI_AGENT_NAME] = workflow
            root_attributes["windtunnel.workflow"] = workflow
        name = _INVOKE_AGENT if workflow is None else f"{_INVOKE_AGENT} {workflow}"
        root = self._start(name, None, start, root_attributes)
        end = start
        visit: _StateSpan | None = None
        for event in events:
            at = self._ns(event.sim_time)
            end = max(end, at)
            in_state = visit if visit is not None and event.state == visit.state else None
            if in_state is not None:
                in_state.end = max(in_state.end, at)
            parent = root if in_state is None else in_state.span
            low = start if in_state is None else in_state.start
            match event:
                case RunStarted():
                    root.set_attributes(
                        _attributes(event, prefix="windtunnel.run.", exclude={"seq", "workflow"})
                    )
                case RunFinished():
                    self._close(visit)
                    visit = None
                    root.set_attributes(_attributes(event, prefix="windtunnel.run.", exclude={"seq"}))
                    if event.state is not None:
                        root.set_attribute("windtunnel.run.final_state", event.state)
                    if event.status not in ("completed", "paused"):
                        root.set_status(Status(StatusCode.ERROR, event.reason or event.status))
                case StateEntered():
                    self._close(visit)
                    visit = self._visit(event, root, at)
                case ModelCalled():
                    self._model_call(event, parent, max(low, self._ns(event.sim_time - event.latency)), at)
                case ToolCalled():
                    timeouts = [] if in_state is None else in_state.timeouts.pop(event.call_id, [])
                    begin = max(low, self._ns(event.sim_time - event.duration))
                    self._tool_call(event, parent, begin, at, timeouts)
                case ToolRejected():
                    self._tool_rejected(event, parent, at)
                case ToolTimedOut() if in_state is not None:
                    in_state.timeouts.setdefault(event.call_id, []).append(event)
                case TransitionTaken() if in_state is not None:
                    in_state.span.set_attributes(
                        _attributes(event, prefix="windtunnel.transition.", exclude={"seq"})
                    )
                case HandlerFailed() if in_state is not None:
                    in_state.span.add_event(event.kind, _attributes(event), at)
                    in_state.span.set_attribute(ERROR_TYPE, event.error)
                    in_state.span.set_status(Status(StatusCode.ERROR, f"{event.error}: {event.message}"))
                case _:
                    parent.add_event(event.kind, _attributes(event), at)
        self._close(visit)
        self._ends[root] = end
        for span, when in self._ends.items():
            span.end(when)

    def _visit(self, event: StateEntered, root: trace_api.Span, at: int) -> _StateSpan:
        assert event.state is not None  # the engine records state_entered in its state
        attributes: dict[str, AttributeValue] = {
            "windtunnel.state": event.state,
            "windtunnel.step": event.step,
            "windtunnel.attempt": event.attempt,
        }
        span = self._start(event.state, root, at, attributes)
        return _StateSpan(span=span, state=event.state, start=at, end=at)

    def _close(self, visit: _StateSpan | None) -> None:
        if visit is None:
            return
        for timeouts in visit.timeouts.values():  # the run died before the call ended
            for timeout in timeouts:
                visit.span.add_event(timeout.kind, _attributes(timeout), self._ns(timeout.sim_time))
        self._ends[visit.span] = visit.end

    def _model_call(self, event: ModelCalled, parent: trace_api.Span, start: int, end: int) -> None:
        attributes: dict[str, AttributeValue] = {
            gen_ai.GEN_AI_OPERATION_NAME: _CHAT,
            gen_ai.GEN_AI_PROVIDER_NAME: _ANTHROPIC,
            # Deprecated for gen_ai.provider.name, but what many tracing tools still read.
            gen_ai.GEN_AI_SYSTEM: _ANTHROPIC,
            gen_ai.GEN_AI_REQUEST_MODEL: event.model,
            gen_ai.GEN_AI_REQUEST_MAX_TOKENS: event.request.max_tokens,
            gen_ai.GEN_AI_USAGE_INPUT_TOKENS: event.input_tokens,
            gen_ai.GEN_AI_USAGE_OUTPUT_TOKENS: event.output_tokens,
        }
        response = event.response
        if response is not None:
            attributes[gen_ai.GEN_AI_RESPONSE_MODEL] = response.model
            if response.id is not None:
                attributes[gen_ai.GEN_AI_RESPONSE_ID] = response.id
            if response.stop_reason is not None:
                attributes[gen_ai.GEN_AI_RESPONSE_FINISH_REASONS] = [response.stop_reason]
            attributes[gen_ai.GEN_AI_USAGE_CACHE_READ_INPUT_TOKENS] = response.usage.cache_read_input_tokens
            attributes[gen_ai.GEN_AI_USAGE_CACHE_CREATION_INPUT_TOKENS] = (
                response.usage.cache_creation_input_tokens
            )
        attributes |= {
            "windtunnel.model.tier": event.tier,
            "windtunnel.model.cost": event.cost,
            "windtunnel.model.latency": event.latency,
            "windtunnel.model.retries": event.retries,
            "windtunnel.model.request_id": event.request_id,
            "windtunnel.seq": event.seq,
        }
        if event.error is not None:
            # The error is a message, not a type: OTel's catch-all type, the message as the status.
            attributes[ERROR_TYPE] = "_OTHER"
        span = self._start(
            f"{_CHAT} {event.model}", parent, start, _present(attributes), kind=SpanKind.CLIENT
        )
        if event.error is not None:
            span.set_status(Status(StatusCode.ERROR, event.error))
        self._ends[span] = end

    def _tool_call(
        self, event: ToolCalled, parent: trace_api.Span, start: int, end: int, timeouts: list[ToolTimedOut]
    ) -> None:
        attributes = _tool_attributes(event.tool, event.call_id) | {
            "windtunnel.tool.status": event.status,
            "windtunnel.tool.attempts": event.attempts,
            "windtunnel.tool.duration": event.duration,
            "windtunnel.seq": event.seq,
        }
        if event.status != "ok":
            attributes[ERROR_TYPE] = event.status
        span = self._start(f"{_EXECUTE_TOOL} {event.tool}", parent, start, attributes)
        for timeout in timeouts:
            span.add_event(timeout.kind, _attributes(timeout), self._ns(timeout.sim_time))
        if event.status != "ok":
            span.set_status(Status(StatusCode.ERROR, event.output))
        self._ends[span] = end

    def _tool_rejected(self, event: ToolRejected, parent: trace_api.Span, at: int) -> None:
        attributes = _tool_attributes(event.tool, event.call_id) | {
            "windtunnel.tool.rejected": event.reason,
            ERROR_TYPE: event.reason,
            "windtunnel.seq": event.seq,
        }
        span = self._start(f"{_EXECUTE_TOOL} {event.tool}", parent, at, attributes)
        span.set_status(Status(StatusCode.ERROR, event.detail))  # refused before anything ran: no time


def _tool_attributes(tool: str, call_id: str) -> dict[str, AttributeValue]:
    return {
        gen_ai.GEN_AI_OPERATION_NAME: _EXECUTE_TOOL,
        gen_ai.GEN_AI_TOOL_NAME: tool,
        gen_ai.GEN_AI_TOOL_CALL_ID: call_id,
        gen_ai.GEN_AI_TOOL_TYPE: "function",
    }


def _attributes(event: Event, *, prefix: str = "", exclude: Iterable[str] = ()) -> dict[str, AttributeValue]:
    """The event's own fields as attributes: scalars and lists of one scalar type as
    they are, anything nested as JSON; None left out."""
    skip = _COMMON | set(exclude)
    fields = event.model_dump(mode="json", fallback=repr)
    return _present({prefix + name: _value(value) for name, value in fields.items() if name not in skip})


def _value(value: Any) -> AttributeValue | None:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    kinds = {type(item) for item in value} if isinstance(value, list) else set()
    if len(kinds) == 1 and kinds <= {bool, int, float, str}:
        return value  # type: ignore[no-any-return]
    return json.dumps(value, ensure_ascii=False, sort_keys=True, separators=(",", ":"))


def _present(attributes: Mapping[str, AttributeValue | None]) -> dict[str, AttributeValue]:
    return {name: value for name, value in attributes.items() if value is not None}
