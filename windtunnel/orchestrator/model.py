"""The model boundary: requests and responses in the shape of Anthropic's Messages API.

Plain frozen dataclasses, because an agent builds several per step; pydantic
validates them only where they cross a boundary (a trace read back from a file,
the fake Messages API). :func:`request_to_api` and :func:`response_from_api` map
them to and from the API's JSON.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol, TypeAlias

from .validation import check_choice

__all__ = [
    "ContentBlock",
    "Message",
    "Model",
    "ModelRequest",
    "ModelResponse",
    "StopReason",
    "TextBlock",
    "ToolResultBlock",
    "ToolSpec",
    "ToolUseBlock",
    "Usage",
    "block_from_api",
    "block_to_api",
    "request_from_api",
    "request_to_api",
    "response_from_api",
    "response_to_api",
]

StopReason: TypeAlias = Literal[
    "end_turn", "max_tokens", "stop_sequence", "tool_use", "pause_turn", "refusal"
]


@dataclass(frozen=True, slots=True, kw_only=True)
class TextBlock:
    """Text from the model (its reasoning, an answer) or from the user."""

    text: str
    type: Literal["text"] = "text"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolUseBlock:
    """The model asks to call tool ``name`` with ``input``."""

    id: str
    name: str
    input: Any
    """The arguments as the model sent them: usually a dict, not yet validated."""
    type: Literal["tool_use"] = "tool_use"


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolResultBlock:
    """The result of a tool call, sent back to the model."""

    tool_use_id: str
    content: str
    is_error: bool = False
    type: Literal["tool_result"] = "tool_result"


ContentBlock: TypeAlias = TextBlock | ToolUseBlock | ToolResultBlock


@dataclass(frozen=True, slots=True, kw_only=True)
class Message:
    """One turn of the conversation."""

    role: Literal["user", "assistant"]
    content: tuple[ContentBlock, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ToolSpec:
    """A tool as the model sees it: name, description and JSON schema of its input."""

    name: str
    description: str
    input_schema: Mapping[str, Any]


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelRequest:
    """What an agent asks the model: a system prompt, the conversation, the tools."""

    system: str
    messages: tuple[Message, ...]
    tools: tuple[ToolSpec, ...] = ()
    max_tokens: int = 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Usage:
    """Tokens a call consumed."""

    input_tokens: int
    output_tokens: int
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelResponse:
    """What the model answered, and what the call cost in tokens and retries."""

    model: str
    content: tuple[ContentBlock, ...]
    stop_reason: StopReason | None
    usage: Usage
    id: str | None = None
    request_id: str | None = None
    """The API's request id, for support tickets and log correlation."""
    retries: int = 0
    """How many times the client retried the HTTP request before this answer."""
    latency: float | None = field(default=None, compare=False)
    """Seconds the call took on the event loop's clock, when the model measures it."""


class Model(Protocol):
    """Anything that answers a Messages-API request: the Anthropic SDK, a script, a simulation."""

    @property
    def name(self) -> str:
        """The model id, e.g. ``claude-haiku-4-5``; used for prices and the trace."""
        ...

    async def create(self, request: ModelRequest) -> ModelResponse:
        """Answer one request.

        Raises:
            ModelError: or a subclass, when the call fails after any retries.
        """
        ...


def block_to_api(block: ContentBlock) -> dict[str, Any]:
    """One content block as the API's JSON."""
    if isinstance(block, TextBlock):
        return {"type": "text", "text": block.text}
    if isinstance(block, ToolUseBlock):
        return {"type": "tool_use", "id": block.id, "name": block.name, "input": block.input}
    return {
        "type": "tool_result",
        "tool_use_id": block.tool_use_id,
        "content": block.content,
        "is_error": block.is_error,
    }


def block_from_api(data: Mapping[str, Any]) -> ContentBlock:
    """One content block from the API's JSON.

    Raises:
        InvalidArgument: for a block type this boundary does not handle.
    """
    kind = data.get("type")
    check_choice("content block type", kind, ("text", "tool_use", "tool_result"))
    if kind == "text":
        return TextBlock(text=str(data["text"]))
    if kind == "tool_use":
        return ToolUseBlock(id=str(data["id"]), name=str(data["name"]), input=data.get("input"))
    content = data.get("content", "")
    if not isinstance(content, str):
        content = "".join(part.get("text", "") for part in content if isinstance(part, Mapping))
    return ToolResultBlock(
        tool_use_id=str(data["tool_use_id"]), content=content, is_error=bool(data.get("is_error", False))
    )


def request_to_api(request: ModelRequest, *, model: str) -> dict[str, Any]:
    """The JSON body of ``POST /v1/messages`` for ``request``."""
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": request.max_tokens,
        "system": request.system,
        "messages": [
            {"role": message.role, "content": [block_to_api(block) for block in message.content]}
            for message in request.messages
        ],
    }
    if request.tools:
        body["tools"] = [
            {"name": tool.name, "description": tool.description, "input_schema": dict(tool.input_schema)}
            for tool in request.tools
        ]
    return body


def request_from_api(body: Mapping[str, Any]) -> ModelRequest:
    """A request from the JSON body of ``POST /v1/messages``.

    Raises:
        ValueError / KeyError / TypeError: when the body is not a Messages request.
    """
    system = body.get("system", "")
    if not isinstance(system, str):
        system = "".join(part.get("text", "") for part in system)
    messages = []
    for message in body["messages"]:
        content = message["content"]
        blocks = (
            (TextBlock(text=content),) if isinstance(content, str) else tuple(map(block_from_api, content))
        )
        messages.append(Message(role=message["role"], content=blocks))
    tools = tuple(
        ToolSpec(
            name=tool["name"], description=tool.get("description", ""), input_schema=tool["input_schema"]
        )
        for tool in body.get("tools", ())
    )
    return ModelRequest(
        system=system, messages=tuple(messages), tools=tools, max_tokens=int(body["max_tokens"])
    )


def response_to_api(response: ModelResponse) -> dict[str, Any]:
    """The JSON the Messages API returns for ``response``."""
    return {
        "id": response.id or "msg_windtunnel",
        "type": "message",
        "role": "assistant",
        "model": response.model,
        "content": [block_to_api(block) for block in response.content],
        "stop_reason": response.stop_reason,
        "stop_sequence": None,
        "usage": {
            "input_tokens": response.usage.input_tokens,
            "output_tokens": response.usage.output_tokens,
            "cache_read_input_tokens": response.usage.cache_read_input_tokens,
            "cache_creation_input_tokens": response.usage.cache_creation_input_tokens,
        },
    }


def response_from_api(
    data: Mapping[str, Any], *, request_id: str | None = None, retries: int = 0, latency: float | None = None
) -> ModelResponse:
    """A response from the Messages API's JSON (or the SDK's ``Message.model_dump()``)."""
    usage = data.get("usage") or {}
    return ModelResponse(
        model=str(data["model"]),
        content=tuple(block_from_api(block) for block in _blocks(data["content"])),
        stop_reason=data.get("stop_reason"),
        usage=Usage(
            input_tokens=int(usage.get("input_tokens") or 0),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_read_input_tokens=int(usage.get("cache_read_input_tokens") or 0),
            cache_creation_input_tokens=int(usage.get("cache_creation_input_tokens") or 0),
        ),
        id=data.get("id"),
        request_id=request_id,
        retries=retries,
        latency=latency,
    )


def _blocks(content: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    # Thinking and server-tool blocks carry nothing this boundary acts on; keep
    # the text of thinking as text so that reasoning still reaches the trace.
    kept: list[Mapping[str, Any]] = []
    for block in content:
        kind = block.get("type")
        if kind == "thinking":
            kept.append({"type": "text", "text": block.get("thinking", "")})
        elif kind in {"text", "tool_use", "tool_result"}:
            kept.append(block)
    return kept
