"""Simulated model tiers: a `SimulatedModel` plays a Claude tier against a scenario's ground truth.

A tier is a :class:`TierProfile`: how often it picks the right next state (by the
case's difficulty and the evidence it actually got), how well its confidence
matches that, how often it calls a tool that does not exist or sends bad
arguments, how many tokens it uses and how long it takes. The investigation
supplies a :class:`Playbook` — the read calls a competent analyst makes in each
state, and the right next state — and the model walks through it one call per
turn, then submits.

ASSUMPTIONS, not measurements. :data:`DEFAULT_TIERS` is set so that the trade-off
has a realistic shape, not measured from any model:

| tier  | model             | skill | slope | evidence | overconf. | halluc. | malformed | out tok | latency |
|-------|-------------------|-------|-------|----------|-----------|---------|-----------|---------|---------|
| small | claude-haiku-5-5  | 0.86  | 0.35  | 0.35     | +0.12     | 4 %     | 4 %       | 150     | 1.5 s   |
| mid   | claude-sonnet-5-5 | 0.93  | 0.25  | 0.30     | +0.05     | 1.5 %   | 1.5 %     | 220     | 4 s     |
| large | claude-opus-5-5   | 0.97  | 0.15  | 0.25     | +0.01     | 0.5 %   | 0.5 %     | 300     | 8 s     |

Larger tiers are more accurate, lose less to hard cases and missing evidence,
are better calibrated and fumble fewer tool calls; they also write more, answer
more slowly and cost more per token (prices come from ``genai-prices``: $0.1/$0.5,
$2/$10 and $4/$20 per million input/output tokens). Every tier's floor is 0.5:
with the evidence gone, a binary call is a coin toss. Change a field with
:func:`derive_tier` (validated) or ``profile.model_copy(update=...)`` (not).

The model decides from the request alone (plus the evidence an earlier state of
the same run saw, see ``findings``), so it needs no hooks into the agent: it reads
the state from the ``State:`` line that :func:`~windtunnel.orchestrator.render_context`
writes, the allowed next states from the ``submit`` tool's enum, and its progress
from the tool_use and tool_result blocks of the conversation.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, model_validator

from windtunnel.orchestrator.errors import InvalidArgument, SimulationError
from windtunnel.orchestrator.model import (
    ContentBlock,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolResultBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
)
from windtunnel.orchestrator.tools import SUBMIT
from windtunnel.orchestrator.validation import check_choice

from .world import Alert, Truth

__all__ = [
    "DEFAULT_TIERS",
    "HALLUCINATED_TOOLS",
    "MAX_ATTEMPTS",
    "LogNormal",
    "Playbook",
    "SimulatedModel",
    "TierProfile",
    "derive_tier",
]

HALLUCINATED_TOOLS = ("nmap_scan", "virustotal", "splunk_query", "whois_lookup", "shodan_search")
"""Plausible tools a model invents; one that the request does offer is never picked."""

MAX_ATTEMPTS = 3
"""Tries of one playbook call (the first and two more) before the model moves on without it."""

_EMPTY = frozenset({"", "[]", "{}", "null"})


class LogNormal(BaseModel):
    """A log-normal distribution by its median and the sigma of its logarithm.

    Example:
        >>> LogNormal(median=2.0, sigma=0.0).draw(random.Random(1))
        2.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    median: float = Field(gt=0, description="The median value.")
    sigma: float = Field(0.0, ge=0, description="Standard deviation of the log; 0 always gives the median.")

    def draw(self, rng: random.Random) -> float:
        """One value; always takes exactly one normal draw from ``rng``."""
        return self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0))


class TierProfile(BaseModel):
    """How a simulated model tier decides, fumbles, spends tokens and takes time.

    The chance of choosing the right next state is
    ``clamp(skill - difficulty_slope * difficulty - evidence_weight * (1 - evidence), floor, 0.99)``
    where ``evidence`` is the share of the truth's key evidence the model got.

    Example:
        >>> profile = derive_tier("small", skill=0.7)
        >>> profile.model, profile.skill
        ('claude-haiku-5-5', 0.7)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="The tier's name, e.g. 'small'; used in tool-use ids.")
    model: str = Field(min_length=1, description="A real model id; its price is looked up by it.")
    skill: float = Field(ge=0, le=1, description="Accuracy at difficulty 0 with all key evidence.")
    difficulty_slope: float = Field(ge=0, description="Accuracy lost per unit of the case's difficulty.")
    evidence_weight: float = Field(
        ge=0, le=1, description="Accuracy lost when all key evidence is missing; proportional to the share."
    )
    floor: float = Field(
        0.5, ge=0, le=0.99, description="Minimum accuracy (0.5: a coin toss between two choices)."
    )
    overconfidence: float = Field(
        0.0, ge=-1, le=1, description="Added to the stated confidence; 0 is calibrated, > 0 overconfident."
    )
    confidence_noise: float = Field(
        0.03, ge=0, description="Standard deviation of the normal noise on the stated confidence."
    )
    hallucination_rate: float = Field(
        0.0, ge=0, le=1, description="Chance that a tool call names a tool that does not exist."
    )
    malformed_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Chance that a tool call has invalid arguments (missing key, wrong type).",
    )
    input_tokens: LogNormal = Field(
        description="Input tokens on top of the request's own (its characters / 4): hidden prompt overhead."
    )
    output_tokens: LogNormal = Field(description="Output tokens of one response.")
    latency: LogNormal = Field(description="Simulated seconds one call takes.")

    @model_validator(mode="after")
    def _rates_fit_one_draw(self) -> TierProfile:
        if self.hallucination_rate + self.malformed_rate > 1:
            raise InvalidArgument(
                f"hallucination_rate={self.hallucination_rate} + malformed_rate={self.malformed_rate} "
                "must be <= 1: one draw decides a call's fault"
            )
        return self


DEFAULT_TIERS: dict[str, TierProfile] = {
    "small": TierProfile(
        name="small",
        model="claude-haiku-5-5",
        skill=0.86,
        difficulty_slope=0.35,
        evidence_weight=0.35,
        overconfidence=0.12,
        hallucination_rate=0.04,
        malformed_rate=0.04,
        input_tokens=LogNormal(median=300, sigma=0.1),
        output_tokens=LogNormal(median=150, sigma=0.4),
        latency=LogNormal(median=1.5, sigma=0.4),
    ),
    "mid": TierProfile(
        name="mid",
        model="claude-sonnet-5-5",
        skill=0.93,
        difficulty_slope=0.25,
        evidence_weight=0.30,
        overconfidence=0.05,
        hallucination_rate=0.015,
        malformed_rate=0.015,
        input_tokens=LogNormal(median=300, sigma=0.1),
        output_tokens=LogNormal(median=220, sigma=0.4),
        latency=LogNormal(median=4.0, sigma=0.4),
    ),
    "large": TierProfile(
        name="large",
        model="claude-opus-5-5",
        skill=0.97,
        difficulty_slope=0.15,
        evidence_weight=0.25,
        overconfidence=0.01,
        hallucination_rate=0.005,
        malformed_rate=0.005,
        input_tokens=LogNormal(median=300, sigma=0.1),
        output_tokens=LogNormal(median=300, sigma=0.4),
        latency=LogNormal(median=8.0, sigma=0.4),
    ),
}
"""The three tiers of the module docstring's table: assumptions, not measurements."""


def derive_tier(base: str | TierProfile, **changes: Any) -> TierProfile:
    """A copy of ``base`` (a :data:`DEFAULT_TIERS` name or a profile) with ``changes``, validated.

    Raises:
        InvalidArgument: for an unknown tier name.
        pydantic.ValidationError: for an unknown field or a value out of range.
    """
    if not isinstance(base, TierProfile):
        check_choice("base", base, sorted(DEFAULT_TIERS), alternative="a TierProfile")
        base = DEFAULT_TIERS[base]
    return TierProfile.model_validate({**base.model_dump(), **changes})


class Playbook(Protocol):
    """What a competent analyst does in each state of an investigation; the scenario supplies it."""

    def calls(self, state: str, alert: Alert) -> Sequence[tuple[str, Mapping[str, Any]]]:
        """The read tool calls to make in ``state``, in order: (tool name, arguments).

        Called once per state and model; the answer is cached.
        """
        ...

    def right_choice(self, state: str, allowed: Sequence[str], truth: Truth) -> str:
        """The correct next state out of ``allowed`` (sorted), knowing the truth."""
        ...


class SimulatedModel:
    """A :class:`~windtunnel.orchestrator.Model` that plays a tier against the ground truth.

    Each call answers with one playbook call (a short reasoning text and a tool_use),
    retrying a call that was hallucinated or malformed up to :data:`MAX_ATTEMPTS`
    times, then with a ``submit`` whose next state is right with the profile's
    probability given the difficulty and the evidence the tool results carried.
    A result that is an error or empty carries no evidence, one containing
    ``"partial": true`` half. All randomness comes from ``rng``; one instance plays one run.

    Example::

        model = SimulatedModel(DEFAULT_TIERS["small"], alert=alert, truth=truth,
                               playbook=playbook, rng=sim.rng("model/small"))
        agent = LLMAgent(model=model, system="You investigate alerts.", tools=registry, tier="small")
    """

    def __init__(
        self,
        profile: TierProfile,
        *,
        alert: Alert,
        truth: Truth,
        playbook: Playbook,
        rng: random.Random,
        findings: MutableMapping[str, float] | None = None,
    ) -> None:
        """Args:
        profile: the tier to play.
        alert: the case under investigation, passed to the playbook.
        truth: what really happened; decides what is right.
        playbook: the calls to make and the right choice, per state.
        rng: the model's random stream, e.g. ``sim.rng("model/small")``.
        findings: evidence strength seen so far in the run, by tool; updated by
            each call. Share one mapping between the models of one run so that a
            later state, or a tier that re-makes a decision, knows what was found.
        """
        self.profile = profile
        self.alert = alert
        self.truth = truth
        self.playbook = playbook
        self.rng = rng
        self.findings: MutableMapping[str, float] = {} if findings is None else findings
        self.calls = 0
        """Requests answered so far."""
        self._plans: dict[str, tuple[tuple[str, Mapping[str, Any]], ...]] = {}
        # The agent sends the same tools tuple on every turn of a step: size it once.
        self._tools: tuple[ToolSpec, ...] | None = None
        self._tools_info: tuple[int, tuple[str, ...], dict[str, ToolSpec]] = (0, (), {})

    @property
    def name(self) -> str:
        """The profile's model id: what prices and the trace see."""
        return self.profile.model

    def __repr__(self) -> str:
        return f"SimulatedModel({self.profile.name!r}, model={self.profile.model!r}, calls={self.calls})"

    async def create(self, request: ModelRequest) -> ModelResponse:
        """Answer one request of the tool-use loop after the tier's latency, in simulated time.

        Raises:
            SimulationError: when the request has no ``State:`` line or no ``submit``
                tool, or the playbook names a tool the request does not offer or a
                right choice that is not allowed.
        """
        profile, rng = self.profile, self.rng
        self.calls += 1
        number = self.calls
        state = _state(request)
        tools_chars, allowed, specs = self._tools_of(request)
        plan = self._plans.get(state)
        if plan is None:
            # Normalized as arguments come back from a trip through JSON (the fake API),
            # so that a call made as planned compares equal to the plan.
            plan = self._plans[state] = tuple(
                (tool, json.loads(json.dumps(args))) for tool, args in self.playbook.calls(state, self.alert)
            )
        latency = profile.latency.draw(rng)
        input_tokens = round(profile.input_tokens.draw(rng) + (tools_chars + _chars(request)) / 4)
        output_tokens = max(1, round(profile.output_tokens.draw(rng)))
        index, tries, strengths = _progress(request, plan)
        for tool, strength in strengths.items():
            if strength > self.findings.get(tool, 0.0):
                self.findings[tool] = strength
        if index < len(plan) and not _told_to_submit(request):
            content = self._tool_call(plan[index], tries, specs, number)
        else:
            content = self._submit(state, allowed, number)
        await asyncio.sleep(latency)
        return ModelResponse(
            model=profile.model,
            content=content,
            stop_reason="tool_use",
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            id=f"msg_sim_{profile.name}_{number:04d}",
            latency=latency,
        )

    def _tools_of(self, request: ModelRequest) -> tuple[int, tuple[str, ...], dict[str, ToolSpec]]:
        """The characters of the tool definitions, the submit enum, and the specs by name."""
        if request.tools is self._tools:
            return self._tools_info
        specs = {spec.name: spec for spec in request.tools}
        submit = specs.get(SUBMIT)
        try:
            allowed = tuple(submit.input_schema["properties"]["next"]["enum"])  # type: ignore[union-attr]
        except (AttributeError, KeyError, TypeError):
            allowed = ()
        if not allowed:
            raise SimulationError(
                f"SimulatedModel {self.profile.name!r} needs a {SUBMIT!r} tool whose input schema lists "
                "the allowed next states in properties.next.enum (as LLMAgent sends it); "
                f"got tools {sorted(specs)}"
            )
        chars = sum(
            len(spec.name) + len(spec.description) + len(str(spec.input_schema)) for spec in request.tools
        )
        self._tools, self._tools_info = request.tools, (chars, allowed, specs)
        return self._tools_info

    def _tool_call(
        self, call: tuple[str, Mapping[str, Any]], tries: int, specs: Mapping[str, ToolSpec], number: int
    ) -> tuple[ContentBlock, ...]:
        """A reasoning text and the playbook call, or a hallucinated or malformed version of it."""
        profile, rng = self.profile, self.rng
        tool, args = call
        spec = specs.get(tool)
        if spec is None:
            raise SimulationError(
                f"the playbook calls {tool!r} but the request offers only {sorted(specs)}; "
                "fix the playbook or the agent's allowed tools"
            )
        name: str = tool
        payload: Any = dict(args)
        draw = rng.random()
        if draw < profile.hallucination_rate:
            invented = [candidate for candidate in HALLUCINATED_TOOLS if candidate not in specs]
            name = invented[rng.randrange(len(invented))] if invented else f"{tool}_v2"
        elif draw < profile.hallucination_rate + profile.malformed_rate:
            payload = _corrupt(args, spec, rng)
        again = " again" if tries else ""
        return (
            TextBlock(text=f"To judge alert {self.alert.id} I check {tool}{again}."),
            ToolUseBlock(id=f"toolu_sim_{profile.name}_{number:04d}", name=name, input=payload),
        )

    def _submit(self, state: str, allowed: tuple[str, ...], number: int) -> tuple[ContentBlock, ...]:
        """A reasoning text and a submit: right with the tier's accuracy for this evidence."""
        profile, rng, truth = self.profile, self.rng, self.truth
        right = self.playbook.right_choice(state, allowed, truth)
        if right not in allowed:
            raise SimulationError(
                f"the playbook's right choice {right!r} in state {state!r} is not one of {list(allowed)}"
            )
        key = truth.evidence
        evidence = sum(self.findings.get(tool, 0.0) for tool in key) / len(key) if key else 1.0
        accuracy = (
            profile.skill
            - profile.difficulty_slope * truth.difficulty
            - profile.evidence_weight * (1.0 - evidence)
        )
        accuracy = min(0.99, max(profile.floor, accuracy))
        chosen = right
        if rng.random() >= accuracy and len(allowed) > 1:
            others = [option for option in allowed if option != right]
            chosen = others[rng.randrange(len(others))]
        noise = rng.gauss(0.0, profile.confidence_noise)
        confidence = round(min(0.99, max(0.01, accuracy + profile.overconfidence + noise)), 4)
        found = f"{evidence:.0%} of the key evidence" if key else "the case itself"
        rationale = f"Based on {found}, the next step is {chosen!r}."
        return (
            TextBlock(text=f"I have what I need on alert {self.alert.id}. {rationale}"),
            ToolUseBlock(
                id=f"toolu_sim_{profile.name}_{number:04d}",
                name=SUBMIT,
                input={"next": chosen, "confidence": confidence, "rationale": rationale},
            ),
        )


def _state(request: ModelRequest) -> str:
    """The state named on the ``State:`` line of the first user message."""
    first = request.messages[0] if request.messages else None
    if first is not None and first.role == "user":
        for block in first.content:
            if isinstance(block, TextBlock):
                text = block.text
                found = -1 if text.startswith("State: ") else text.find("\nState: ")
                if found < 0 and not text.startswith("State: "):
                    continue
                start = found + 8
                end = text.find("\n", start)
                state = (text[start:] if end < 0 else text[start:end]).strip()
                if state:
                    return state
    shown = "" if first is None else repr(first.content)[:200]
    raise SimulationError(
        "SimulatedModel needs a line 'State: <state>' in the first user message, as LLMAgent's "
        f"render_context writes it; the first message is {shown or 'missing'}"
    )


def _chars(request: ModelRequest) -> int:
    """The request's size in characters, roughly as serialized (tools apart)."""
    total = len(request.system)
    for message in request.messages:
        for block in message.content:
            if isinstance(block, TextBlock):
                total += len(block.text)
            elif isinstance(block, ToolResultBlock):
                total += len(block.content) + 40
            else:
                total += len(block.name) + len(str(block.input)) + 40
    return total


def _progress(
    request: ModelRequest, plan: Sequence[tuple[str, Mapping[str, Any]]]
) -> tuple[int, int, dict[str, float]]:
    """How far the conversation went through ``plan``: the next call's index, the
    failed tries of that call, and the strength of the evidence each tool gave."""
    results: dict[str, ToolResultBlock] = {}
    uses: list[ToolUseBlock] = []
    for message in request.messages:
        for block in message.content:
            if isinstance(block, ToolUseBlock):
                if block.name != SUBMIT:
                    uses.append(block)
            elif isinstance(block, ToolResultBlock):
                results[block.tool_use_id] = block
    index = tries = 0
    strengths: dict[str, float] = {}
    for use in uses:
        if index >= len(plan):
            break
        tool, args = plan[index]
        if use.name == tool and use.input == args:
            # Made as planned: whatever came back (even a rejection) is the evidence it gave.
            strength = _strength(results.get(use.id))
            if strength >= strengths.get(tool, 0.0):
                strengths[tool] = strength
            index, tries = index + 1, 0
        else:
            # A hallucinated or malformed try: the call is still to be made, a few times at most.
            tries += 1
            if tries >= MAX_ATTEMPTS:
                index, tries = index + 1, 0
    return index, tries, strengths


def _strength(result: ToolResultBlock | None) -> float:
    """How much evidence a tool result carries: 0 (error, empty, missing), 0.5 (partial) or 1."""
    if result is None or result.is_error:
        return 0.0
    content = result.content.strip()
    if content in _EMPTY:
        return 0.0
    if '"partial": true' in content:
        return 0.5
    return 1.0


def _told_to_submit(request: ModelRequest) -> bool:
    """Whether the agent's last word, after the opening message, is a text asking for a submit."""
    if len(request.messages) < 2:
        return False
    last = request.messages[-1]
    return last.role == "user" and any(
        isinstance(block, TextBlock) and SUBMIT in block.text for block in last.content
    )


def _corrupt(args: Mapping[str, Any], spec: ToolSpec, rng: random.Random) -> Any:
    """``args`` made invalid the way models get them wrong: a required key dropped, or a wrong type."""
    required = spec.input_schema.get("required") or ()
    present = [key for key in required if key in args]
    keys = present or list(args)
    if not keys:
        # Nothing to drop or mistype: send the arguments as a JSON string instead of an object.
        return json.dumps(dict(args))
    key = keys[rng.randrange(len(keys))]
    if present and rng.random() < 0.5:
        return {name: value for name, value in args.items() if name != key}
    return {**args, key: _wrong_type(args[key])}


def _wrong_type(value: Any) -> Any:
    if isinstance(value, str):
        return [value]
    if isinstance(value, bool | int | float):
        return f"about {value}"
    return str(value)
