"""`ScriptedModel`: a model that answers from a list, for tests.

Each call takes the next step of the script: a response, an exception to raise,
or a function of the request. A call past the end of the script, or steps left
unused, fail loudly: the engine records a handler's exceptions rather than raising
them, so the model also remembers every surprise and :meth:`ScriptedModel.verify`
(or leaving its ``with`` block) raises it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import replace
from types import TracebackType
from typing import Any, TypeAlias

from windtunnel.orchestrator import SimulationError
from windtunnel.orchestrator.model import (
    ContentBlock,
    ModelRequest,
    ModelResponse,
    StopReason,
    TextBlock,
    ToolUseBlock,
    Usage,
)
from windtunnel.orchestrator.tools import SUBMIT

__all__ = ["ScriptError", "ScriptStep", "ScriptedModel", "respond", "submit", "tool_call"]

ScriptStep: TypeAlias = "ModelResponse | BaseException | Callable[[ModelRequest], ModelResponse]"


class ScriptError(SimulationError):
    """A scripted model was called more often than scripted, or not as often."""


def tool_call(name: str, input: Any = None, *, id: str = "") -> ToolUseBlock:
    """A tool_use block; an empty ``id`` is filled in by the model, deterministically."""
    return ToolUseBlock(id=id, name=name, input={} if input is None else input)


def submit(next: str, confidence: float = 0.9, rationale: str = "scripted") -> ToolUseBlock:
    """A call of the ``submit`` tool."""
    return tool_call(SUBMIT, {"next": next, "confidence": confidence, "rationale": rationale})


def respond(
    *blocks: ContentBlock | str,
    stop_reason: StopReason | None = None,
    input_tokens: int = 100,
    output_tokens: int = 20,
    model: str = "",
) -> ModelResponse:
    """A response made of ``blocks`` (strings become text blocks); the stop reason is
    ``tool_use`` when a block calls a tool, else ``end_turn``."""
    content = tuple(TextBlock(text=block) if isinstance(block, str) else block for block in blocks)
    if stop_reason is None:
        stop_reason = "tool_use" if any(isinstance(b, ToolUseBlock) for b in content) else "end_turn"
    return ModelResponse(
        model=model,
        content=content,
        stop_reason=stop_reason,
        usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
    )


class ScriptedModel:
    """Answers each call with the next step of its script.

    Example:
        >>> model = ScriptedModel([respond("Looks benign.", submit("close", 0.95))])
        >>> model.name
        'scripted'
    """

    def __init__(self, steps: Iterable[ScriptStep], *, name: str = "scripted") -> None:
        self._steps = list(steps)
        self._name = name
        self.requests: list[ModelRequest] = []
        """Every request received, in order."""
        self.surprises: list[str] = []
        """Calls past the end of the script."""

    @property
    def name(self) -> str:
        """The model id reported in responses (``scripted`` costs nothing by default)."""
        return self._name

    @property
    def remaining(self) -> int:
        """Steps not yet used."""
        return max(0, len(self._steps) - len(self.requests))

    async def create(self, request: ModelRequest) -> ModelResponse:
        """Answer with the next step; raise :class:`ScriptError` past the end."""
        call = len(self.requests)
        self.requests.append(request)
        if call >= len(self._steps):
            last = request.messages[-1].content if request.messages else ()
            message = (
                f"ScriptedModel {self._name!r} got call {call + 1} but its script has {len(self._steps)} "
                f"step{'s' if len(self._steps) != 1 else ''}; the call's last message: {last!r:.300}"
            )
            self.surprises.append(message)
            raise ScriptError(message)
        step = self._steps[call]
        if isinstance(step, BaseException):
            raise step
        response = step(request) if callable(step) else step
        return replace(
            response,
            model=response.model or self._name,
            content=tuple(
                replace(block, id=f"toolu_{call + 1:03d}_{index}")
                if isinstance(block, ToolUseBlock) and not block.id
                else block
                for index, block in enumerate(response.content)
            ),
        )

    def verify(self) -> None:
        """Raise :class:`ScriptError` if any call was unexpected or any step is unused."""
        problems = list(self.surprises)
        if self.remaining:
            plural = "s" if self.remaining != 1 else ""
            problems.append(
                f"ScriptedModel {self._name!r} has {self.remaining} unused step{plural} "
                f"of {len(self._steps)} (called {len(self.requests)} times)"
            )
        if problems:
            raise ScriptError("\n".join(problems))

    def __enter__(self) -> ScriptedModel:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.verify()
