"""The Messages-API shape: conversions to and from the API's JSON."""

from __future__ import annotations

import pytest

from windtunnel.orchestrator import (
    InvalidArgument,
    Message,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
    block_from_api,
    request_from_api,
    request_to_api,
    response_from_api,
    response_to_api,
)

REQUEST = ModelRequest(
    system="You triage.",
    messages=(
        Message(role="user", content=(TextBlock(text="alert A-1"),)),
        Message(
            role="assistant",
            content=(TextBlock(text="look"), ToolUseBlock(id="t1", name="siem", input={"q": 1})),
        ),
        Message(role="user", content=(ToolResultBlock(tool_use_id="t1", content="3 hits", is_error=False),)),
    ),
    tools=(ToolSpec(name="siem", description="Search.", input_schema={"type": "object"}),),
    max_tokens=512,
)

RESPONSE = ModelResponse(
    model="claude-haiku-4-5",
    content=(TextBlock(text="done"), ToolUseBlock(id="t2", name="submit", input={"next": "close"})),
    stop_reason="tool_use",
    usage=Usage(input_tokens=10, output_tokens=5, cache_read_input_tokens=2, cache_creation_input_tokens=1),
    id="msg_1",
)


def test_request_round_trip() -> None:
    body = request_to_api(REQUEST, model="claude-haiku-4-5")
    assert body["model"] == "claude-haiku-4-5"
    assert body["messages"][1]["content"][1] == {
        "type": "tool_use",
        "id": "t1",
        "name": "siem",
        "input": {"q": 1},
    }
    assert request_from_api(body) == REQUEST


def test_response_round_trip() -> None:
    data = response_to_api(RESPONSE)
    assert data["usage"] == {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 2,
        "cache_creation_input_tokens": 1,
    }
    assert response_from_api(data) == RESPONSE


def test_string_content_and_thinking_blocks() -> None:
    body = {"max_tokens": 5, "messages": [{"role": "user", "content": "hello"}], "system": [{"text": "sys"}]}
    request = request_from_api(body)
    assert request.messages[0].content == (TextBlock(text="hello"),)
    assert request.system == "sys"
    data = {
        "model": "m",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "s"},
            {"type": "text", "text": "ok"},
        ],
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    assert response_from_api(data).content == (TextBlock(text="hmm"), TextBlock(text="ok"))


def test_unknown_block_type() -> None:
    with pytest.raises(InvalidArgument) as raised:
        block_from_api({"type": "image"})
    assert (
        str(raised.value)
        == "unknown content block type='image'; choose one of ['text', 'tool_use', 'tool_result']"
    )
