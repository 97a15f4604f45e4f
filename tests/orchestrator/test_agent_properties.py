"""Property: whatever mix of valid, unknown, disallowed and malformed tool calls a model
sends, no rejected call reaches a tool, every call gets exactly one result or one
rejection in the trace, and the agent ends with a legal outcome."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from windtunnel.evals import legal_transitions_only, runs_terminate, trace_complete
from windtunnel.orchestrator import ContentBlock, ModelRequest, ModelResponse, ToolUseBlock
from windtunnel.simulators import respond, submit, tool_call

from .agent_kit import Sources, agent, agent_workflow, run_agent

BLOCKS = st.one_of(
    st.builds(lambda ip: tool_call("threat_intel", {"ip": ip}), st.sampled_from(["203.0.113.9", "10.0.0.1"])),
    st.builds(lambda q: tool_call("siem_search", {"query": q}), st.text(max_size=5)),
    st.builds(lambda name: tool_call(name, {}), st.sampled_from(["nmap", "rm_rf", "threat-intel"])),
    st.builds(
        lambda bad: tool_call("threat_intel", bad), st.sampled_from([{}, {"ip": 7}, {"ip": "x"}, "ip", None])
    ),
    st.just(tool_call("siem_search", {"query": "q", "hours": 0})),
    st.just(tool_call("submit", {"next": "teleport", "confidence": 0.5, "rationale": "x"})),
    st.just(tool_call("submit", {"next": "close"})),
    st.builds(lambda next, c: submit(next, c), st.sampled_from(["close", "escalate"]), st.floats(0, 1)),
    st.just("some reasoning"),
)
RESPONSES = st.lists(st.lists(BLOCKS, min_size=1, max_size=3), min_size=1, max_size=8)


class FuzzedModel:
    """Answers with the generated responses, then always submits."""

    name = "scripted"

    def __init__(self, script: list[list[ContentBlock | str]]) -> None:
        self.script = script
        self.calls = 0
        self.sent: list[ToolUseBlock] = []

    async def create(self, request: ModelRequest) -> ModelResponse:
        call = self.calls
        self.calls += 1
        blocks = self.script[call] if call < len(self.script) else [submit("escalate", 0.1)]
        response = respond(*blocks)
        content = tuple(
            ToolUseBlock(id=f"call-{call}-{i}", name=b.name, input=b.input)
            if isinstance(b, ToolUseBlock)
            else b
            for i, b in enumerate(response.content)
        )
        self.sent.extend(b for b in content if isinstance(b, ToolUseBlock))
        return ModelResponse(
            model=self.name, content=content, stop_reason=response.stop_reason, usage=response.usage
        )


@settings(max_examples=200, deadline=None)
@given(script=RESPONSES, seed=st.integers(0, 1000), allow_siem=st.booleans())
def test_mixed_tool_calls(script: list[list[ContentBlock | str]], seed: int, allow_siem: bool) -> None:
    sources = Sources()
    model = FuzzedModel(script)
    allow = ["threat_intel", "siem_search"] if allow_siem else ["threat_intel"]
    the_agent = agent(model, sources, allow=allow, max_rejections=4)
    result = run_agent(the_agent, seed=seed)
    events = result.trace.events

    tool_calls = [use for use in model.sent if use.name != "submit"]
    answered = [e.call_id for e in events if e.kind in ("tool_called", "tool_rejected")]  # type: ignore[union-attr]
    assert sorted(answered) == sorted(use.id for use in tool_calls)  # exactly one each

    rejected = {e.call_id for e in events if e.kind == "tool_rejected"}  # type: ignore[union-attr]
    ran = [e for e in events if e.kind == "tool_called"]
    # Every function call the sources saw was an attempt of a call that was not rejected.
    assert len(sources.calls) == sum(e.attempts for e in ran)  # type: ignore[union-attr]
    for use in tool_calls:
        if use.id in rejected:
            assert not (use.name in allow and isinstance(use.input, dict) and _valid(use))

    assert result.status == "completed"
    assert result.final_state in {"close", "escalate"}
    wf = agent_workflow(the_agent)
    assert legal_transitions_only(events, wf) + trace_complete(events) + runs_terminate(events) == []


def _valid(use: ToolUseBlock) -> bool:
    from .agent_kit import IpQuery, SiemQuery

    model = IpQuery if use.name == "threat_intel" else SiemQuery
    try:
        model.model_validate(use.input)
    except ValueError:
        return False
    return True
