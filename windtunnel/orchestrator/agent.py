"""`LLMAgent`: a state handler that reasons with a model and calls tools until it submits.

Each turn sends the state's system prompt, the conversation so far and the
state's tools to the model; tool calls are checked and run (see ``tools.py``) and
their results fed back. The agent concludes when the model calls ``submit`` with
a next state the transition table allows, a confidence in [0, 1] and a short
rationale; those become the :class:`Outcome`. A model that stops without
submitting, sends a malformed submit, or runs out of turns is told so and tried
again, ``nudges`` times; after that — or after ``max_rejections`` refused tool
calls — the agent raises :class:`AgentError`, which the engine records and hands
to the workflow's error policy (typically: escalate).
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable, Mapping
from typing import Any

import pydantic_core

from .context import StepContext
from .errors import AgentError, ModelError
from .events import AgentProblem, EscalationTrigger
from .model import (
    ContentBlock,
    Message,
    Model,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
)
from .pricing import Price, PriceTable
from .tools import SUBMIT, Tool, ToolRegistry, call_tool
from .validation import check_int, check_names, check_probability, reason
from .workflow import Outcome

__all__ = ["DEFAULT_PRICES", "LLMAgent", "render_context", "submit_spec"]

DEFAULT_PRICES = PriceTable(
    {"scripted": Price(input=0.0, output=0.0), "oracle": Price(input=0.0, output=0.0)}
)
"""Prices from ``genai-prices`` as of windtunnel's fixed date; test models named
``scripted`` cost nothing."""

_RATIONALE_MAX = 1000


def submit_spec(allowed: Iterable[str]) -> ToolSpec:
    """The ``submit`` tool for a state whose allowed next states are ``allowed``."""
    return ToolSpec(
        name=SUBMIT,
        description=(
            "Conclude this step: choose the next state, say how confident you are that it is "
            "right (0 to 1), and give a short rationale."
        ),
        input_schema={
            "type": "object",
            "properties": {
                "next": {"type": "string", "enum": sorted(allowed), "description": "The next state."},
                "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                "rationale": {"type": "string", "maxLength": _RATIONALE_MAX},
            },
            "required": ["next", "confidence", "rationale"],
            "additionalProperties": False,
        },
    )


@functools.lru_cache(maxsize=1024)
def _submit_spec(allowed: frozenset[str]) -> ToolSpec:
    # A ToolSpec is frozen, so one serves every agent (they are built per run), and a
    # model that sizes a request's tools (SimulatedModel) can do it once for all runs.
    return submit_spec(allowed)


def render_context(ctx: StepContext) -> str:
    """The first user message of a state: the case, the run's data so far, and
    feedback from earlier attempts, as JSON sections."""
    parts = [
        f"State: {ctx.state}",
        "Case:\n" + pydantic_core.to_json(ctx.case, fallback=repr).decode(),
    ]
    if ctx.data:
        parts.append("Findings so far:\n" + pydantic_core.to_json(dict(ctx.data), fallback=repr).decode())
    if ctx.feedback:
        parts.append("Earlier attempts of this step failed:\n" + "\n".join(ctx.feedback))
    parts.append(f"When you are done, call {SUBMIT!r} with one of: {sorted(ctx.allowed)}.")
    return "\n\n".join(parts)


class LLMAgent:
    """A state handler that runs the tool-use loop with a model until it submits.

    Example::

        agent = LLMAgent(model=AnthropicModel("claude-haiku-4-5"), system="You triage alerts.",
                         tools=registry, allow=["siem_search"], tier="small")
        workflow = Workflow(states={"triage": agent, ...}, ...)
    """

    def __init__(
        self,
        *,
        model: Model,
        system: str,
        tools: ToolRegistry | Iterable[Tool] = (),
        allow: Collection[str] | None = None,
        tier: str | None = None,
        max_turns: int = 8,
        max_tokens: int = 1024,
        nudges: int = 2,
        max_rejections: int = 3,
        prices: PriceTable = DEFAULT_PRICES,
        render: Callable[[StepContext], str] = render_context,
    ) -> None:
        """Args:
        model: what answers; an ``AnthropicModel``, a scripted or a simulated model.
        system: the state's system prompt.
        tools: the workflow's tool registry (or tools to build one from).
        allow: names of the tools this state may use; all of them by default.
        tier: the escalation tier this agent plays, recorded with each model call.
        max_turns: model calls before the agent is told to submit now.
        max_tokens: the cap on each response.
        nudges: how many times a model that fails to conclude is told so and tried again.
        max_rejections: refused tool calls in one step before the agent gives up.
        prices: what each model costs; the cost of every call is charged to the run.
            Raises :class:`UnknownPriceError` at once if ``model`` has no price.
        render: builds the first user message from the step context.
        """
        self.registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.allow = frozenset(self.registry.names if allow is None else allow)
        check_names("allow", self.allow, sorted(self.registry.names))
        check_int("max_turns", max_turns, low=1)
        check_int("max_tokens", max_tokens, low=1)
        check_int("max_rejections", max_rejections, low=1)
        check_int("nudges", nudges, low=0)
        prices.price(model.name)  # an unknown price fails here, not mid-run
        self.model = model
        self.system = system
        self.tier = tier
        self.max_turns = max_turns
        self.max_tokens = max_tokens
        self.nudges = nudges
        self.max_rejections = max_rejections
        self.prices = prices
        self.render = render
        self._tool_specs = tuple(self.registry.spec(name) for name in sorted(self.allow))
        self._tools: dict[frozenset[str], tuple[ToolSpec, ...]] = {}  # by the allowed next states

    def __repr__(self) -> str:
        return f"LLMAgent(model={self.model.name!r}, tier={self.tier!r}, tools={sorted(self.allow)})"

    async def __call__(self, ctx: StepContext) -> Outcome:
        """Run the loop for one step and return the submitted outcome."""
        tools = self._tools.get(ctx.allowed)
        if tools is None:
            tools = self._tools[ctx.allowed] = (*self._tool_specs, _submit_spec(ctx.allowed))
        messages: list[Message] = [Message(role="user", content=(TextBlock(text=self.render(ctx)),))]
        turns = nudges = rejections = overtime = 0
        while True:
            if turns >= self.max_turns + overtime:
                feedback = f"You have used all {turns} turns: call {SUBMIT!r} now."
                nudges = self._nudge(ctx, "max_turns", feedback, nudges)
                messages.append(_user_text(feedback))
                overtime += 1
            response = await self._call(
                ctx,
                ModelRequest(
                    system=self.system, messages=tuple(messages), tools=tools, max_tokens=self.max_tokens
                ),
            )
            turns += 1
            messages.append(Message(role="assistant", content=response.content))
            uses = [block for block in response.content if isinstance(block, ToolUseBlock)]
            if not uses:
                feedback = f"You called no tool. Call {SUBMIT!r} to conclude, or another tool for evidence."
                nudges = self._nudge(ctx, "no_submit", feedback, nudges)
                messages.append(_user_text(feedback))
                continue
            results: list[ContentBlock] = []
            outcome: Outcome | None = None
            malformed: str | None = None
            for use in uses:
                if use.name == SUBMIT:
                    submitted, problem = _read_submit(use.input, ctx.allowed)
                    if problem is not None:
                        malformed = malformed or problem
                        results.append(ToolResultBlock(tool_use_id=use.id, content=problem, is_error=True))
                    elif outcome is not None:
                        results.append(
                            ToolResultBlock(tool_use_id=use.id, content="ignored: already submitted")
                        )
                    else:
                        outcome = submitted
                        results.append(ToolResultBlock(tool_use_id=use.id, content="submitted"))
                    continue
                result, rejected = await call_tool(ctx, self.registry, self.allow, use)
                results.append(result)
                rejections += rejected
            # Decided once the whole turn is answered, so that every call gets its result.
            if outcome is not None:
                return outcome
            if rejections >= self.max_rejections:
                self._give_up(ctx, "rejections", f"{rejections} tool calls were rejected in {ctx.state!r}")
            if malformed is not None:
                nudges = self._nudge(ctx, "malformed_submit", malformed, nudges)
            messages.append(Message(role="user", content=tuple(results)))

    async def _call(self, ctx: StepContext, request: ModelRequest) -> ModelResponse:
        """One model call, recorded as ``model_called`` and charged to the run."""
        started = ctx.now()
        try:
            response = await self.model.create(request)
        except ModelError as exc:
            ctx._record(
                "model_called",
                tier=self.tier,
                model=self.model.name,
                request=request,
                response=None,
                input_tokens=0,
                output_tokens=0,
                cost=0.0,
                latency=ctx.now() - started,
                request_id=exc.request_id,
                retries=exc.retries,
                error=str(exc),
            )
            raise
        cost = self.prices.cost(response.model or self.model.name, response.usage)
        ctx._record(
            "model_called",
            tier=self.tier,
            model=response.model,
            request=request,
            response=response,
            input_tokens=response.usage.input_tokens,
            output_tokens=response.usage.output_tokens,
            cost=cost,
            latency=ctx.now() - started,
            request_id=response.request_id,
            retries=response.retries,
            error=None,
        )
        ctx._add_cost(cost)  # recorded on the model_called event above
        return response

    def _nudge(self, ctx: StepContext, problem: AgentProblem, detail: str, nudges: int) -> int:
        """Record the problem; give up when the nudges are spent, else count one more."""
        if nudges >= self.nudges:
            self._give_up(ctx, problem, f"{detail} (after {nudges} nudge{'s' if nudges != 1 else ''})")
        ctx._record("agent_nudged", problem=problem, detail=detail, gave_up=False)
        return nudges + 1

    def _give_up(self, ctx: StepContext, problem: AgentProblem, detail: str) -> None:
        ctx._record("agent_nudged", problem=problem, detail=detail, gave_up=True)
        trigger: EscalationTrigger = "rejections" if problem == "rejections" else "tool_failures"
        raise AgentError(f"agent in {ctx.state!r} gave up: {detail}", trigger=trigger)


def _user_text(text: str) -> Message:
    return Message(role="user", content=(TextBlock(text=text),))


def _read_submit(data: Any, allowed: frozenset[str]) -> tuple[Outcome | None, str | None]:
    """The outcome a submit asks for, or why it is malformed (said to the model)."""
    if isinstance(data, str):
        try:
            data = json.loads(data)
        except ValueError:
            return None, f"{SUBMIT!r} input must be a JSON object, got {data[:80]!r}"
    if not isinstance(data, Mapping):
        return None, f"{SUBMIT!r} input must be an object with next, confidence and rationale"
    problems = []
    extra = sorted(set(data) - {"next", "confidence", "rationale"})
    if extra:
        problems.append(f"unexpected fields {extra}")
    target = data.get("next")
    if target not in allowed:
        problems.append(f"next={target!r} is not one of {sorted(allowed)}")
    confidence = data.get("confidence")
    if bad := reason(check_probability, "confidence", confidence):
        problems.append(bad)
    rationale = data.get("rationale")
    if not isinstance(rationale, str) or not rationale.strip():
        problems.append("rationale must be a non-empty string")
    elif len(rationale) > _RATIONALE_MAX:
        problems.append(f"rationale must be at most {_RATIONALE_MAX} characters")
    if problems:
        return None, f"malformed {SUBMIT!r}: " + "; ".join(problems)
    return Outcome(next=str(target), confidence=float(confidence or 0), data={"rationale": rationale}), None
