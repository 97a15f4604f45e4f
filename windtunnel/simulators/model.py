"""`SimulatedModel`: a model tier that plays a domain's playbook against what the run lets it see.

A domain supplies a :class:`Playbook` — the read calls a competent agent makes in
each state, and the right next state — with its case and truth already bound in;
the model walks through the calls one per turn, then submits, right with its
tier's accuracy (see :mod:`~windtunnel.simulators.profiles`). It knows tools,
states and evidence, never a domain's vocabulary.

The model decides from the request and the run's context alone (plus the
evidence an earlier state of the same run saw, see ``findings``), so it needs no
hooks into the agent: the state comes from the step being handled
(:func:`~windtunnel.orchestrator.current_step`), the allowed next states from the
``submit`` tool's enum, its progress from the tool_use and tool_result blocks of
the conversation, and the weight of each result from
:func:`~windtunnel.simulators.evidence.strength`.
"""

from __future__ import annotations

import json
import math
import random
from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any, Protocol, TypeAlias

from windtunnel.orchestrator.context import current_step
from windtunnel.orchestrator.errors import SimulationError
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

from .evidence import strength
from .loop import sleep
from .profiles import TierProfile

__all__ = ["HALLUCINATED_TOOLS", "MAX_ATTEMPTS", "Playbook", "SimulatedModel"]

HALLUCINATED_TOOLS = ("web_search", "run_shell", "sql_query", "http_get", "lookup_v2")
"""Plausible tools a model invents; one that the request does offer is never picked."""

MAX_ATTEMPTS = 3
"""Tries of one playbook call (the first and two more) before the model moves on without it."""

_ToolsInfo: TypeAlias = tuple[int, tuple[str, ...], Mapping[str, ToolSpec]]
"""The characters of a request's tool definitions, its submit enum, and its specs by name."""

# What each tools tuple tells the model, by the ids of its specs. An agent sends a new
# tuple every step, but of the same frozen specs in every run (tools.py caches a tool's,
# agent.py a submit's), and sizing their JSON schemas cost a tenth of a model call. An
# entry holds its specs, so that their ids cannot pass to other objects.
_TOOLS_INFO: dict[tuple[int, ...], tuple[tuple[ToolSpec, ...], _ToolsInfo]] = {}
_TOOLS_INFO_MAX = 1024


class Playbook(Protocol):
    """What a competent agent does in each state of a workflow; the domain supplies it.

    A domain binds its case and its truth into the object (a small class or a
    closure) before handing it to the model, so the model never sees either.

    Example::

        @dataclass(frozen=True)
        class RestartPlaybook:
            service: str
            broken: bool

            def calls(self, state):
                return [("read_health", {"service": self.service})] if state == "diagnose" else []

            def right_choice(self, state, allowed):
                return "restart" if self.broken else "close"
    """

    def calls(self, state: str) -> Sequence[tuple[str, Mapping[str, Any]]]:
        """The read tool calls to make in ``state``, in order: (tool name, arguments).

        Called once per state and model; the answer is cached.
        """
        ...

    def right_choice(self, state: str, allowed: Sequence[str]) -> str:
        """The correct next state out of ``allowed`` (sorted), knowing the truth."""
        ...


class SimulatedModel:
    """A :class:`~windtunnel.orchestrator.Model` that plays a tier against the ground truth.

    Each call answers with one playbook call (a short reasoning text and a tool_use),
    retrying a call that was hallucinated or malformed up to :data:`MAX_ATTEMPTS`
    times, then with a ``submit`` whose next state is right with the profile's
    probability given the difficulty and the evidence the tool results carried.
    A result's evidence is its :func:`~windtunnel.simulators.evidence.strength`.
    All randomness comes from ``rng``; one instance plays one run.

    Example::

        model = SimulatedModel(DEFAULT_TIERS["small"], playbook=playbook, difficulty=0.3,
                               evidence=["read_health"], rng=sim.rng("model/small"))
        agent = LLMAgent(model=model, system="You keep the service up.", tools=registry, tier="small")
    """

    def __init__(
        self,
        profile: TierProfile,
        *,
        playbook: Playbook,
        difficulty: float,
        evidence: Sequence[str],
        rng: random.Random,
        findings: MutableMapping[str, float] | None = None,
    ) -> None:
        """Args:
        profile: the tier to play.
        playbook: the calls to make and the right choice, per state, with the
            case and its truth bound in.
        difficulty: how hard the case is, 0 (plain) to 1; lowers the accuracy by
            the profile's ``difficulty_slope`` times it.
        evidence: the key evidence: names of the tools whose results decide the
            case; the share of them the run actually got sets the accuracy.
        rng: the model's random stream, e.g. ``sim.rng("model/small")``.
        findings: evidence strength seen so far in the run, by tool; updated by
            each call. Share one mapping between the models of one run so that a
            later state, or a tier that re-makes a decision, knows what was found.
        """
        self.profile = profile
        self.playbook = playbook
        self.difficulty = difficulty
        self.evidence = tuple(evidence)
        self.rng = rng
        self.findings: MutableMapping[str, float] = {} if findings is None else findings
        self.calls = 0
        """Requests answered so far."""
        self._plans: dict[str, tuple[tuple[str, Mapping[str, Any]], ...]] = {}
        # The agent sends the same tools tuple on every turn of a step: size it once.
        self._tools: tuple[ToolSpec, ...] | None = None
        self._tools_info: _ToolsInfo = (0, (), {})

    @property
    def name(self) -> str:
        """The profile's model id: what prices and the trace see."""
        return self.profile.model

    def __repr__(self) -> str:
        return f"SimulatedModel({self.profile.name!r}, model={self.profile.model!r}, calls={self.calls})"

    async def create(self, request: ModelRequest) -> ModelResponse:
        """Answer one request of the tool-use loop after the tier's latency, in simulated time.

        Raises:
            SimulationError: when it is called outside a run's step, when the request
                has no ``submit`` tool, or the playbook names a tool the request does not offer or a
                right choice that is not allowed.
        """
        profile, rng = self.profile, self.rng
        self.calls += 1
        number = self.calls
        state = self._state()
        tools_chars, allowed, specs = self._tools_of(request)
        plan = self._plans.get(state)
        if plan is None:
            # Normalized as arguments come back from a trip through JSON (the fake API),
            # so that a call made as planned compares equal to the plan.
            calls = self.playbook.calls(state)
            plan = self._plans[state] = tuple((tool, _as_json(args)) for tool, args in calls)
        latency = profile.latency.draw(rng)
        input_tokens = round(profile.input_tokens.draw(rng) + (tools_chars + _chars(request)) / 4)
        output_tokens = max(1, round(profile.output_tokens.draw(rng)))
        index, tries, strengths = _progress(request, plan)
        for tool, weight in strengths.items():
            if weight > self.findings.get(tool, 0.0):
                self.findings[tool] = weight
        if index < len(plan) and not _told_to_submit(request):
            content = self._tool_call(plan[index], tries, specs, number)
        else:
            content = self._submit(state, allowed, number)
        await sleep(latency)
        return ModelResponse(
            model=profile.model,
            content=content,
            stop_reason="tool_use",
            usage=Usage(input_tokens=input_tokens, output_tokens=output_tokens),
            id=f"msg_sim_{profile.name}_{number:04d}",
            latency=latency,
        )

    def _state(self) -> str:
        """The state of the step this call is made in."""
        step = current_step()
        if step is None:
            raise SimulationError(
                f"SimulatedModel {self.profile.name!r} was called outside a run's step: it plays the "
                "state of windtunnel.orchestrator.current_step(); call it from a handler (e.g. an "
                "LLMAgent) of a running workflow, in the handler's own task"
            )
        return step.state

    def _tools_of(self, request: ModelRequest) -> _ToolsInfo:
        """The characters of the tool definitions, the submit enum, and the specs by name."""
        tools = request.tools
        if tools is self._tools:
            return self._tools_info
        key = tuple(map(id, tools))
        known = _TOOLS_INFO.get(key)
        if known is None:
            info = self._size_tools(tools)
            if len(_TOOLS_INFO) >= _TOOLS_INFO_MAX:
                _TOOLS_INFO.clear()  # specs rebuilt per request (the fake API's) would pile up
            _TOOLS_INFO[key] = (tools, info)
        else:
            info = known[1]
        self._tools, self._tools_info = tools, info
        return info

    def _size_tools(self, tools: tuple[ToolSpec, ...]) -> _ToolsInfo:
        """What :meth:`_tools_of` tells of ``tools``, worked out."""
        specs = {spec.name: spec for spec in tools}
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
        chars = sum(len(spec.name) + len(spec.description) + len(str(spec.input_schema)) for spec in tools)
        return chars, allowed, specs

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
            TextBlock(text=f"To decide, I check {tool}{again}."),
            ToolUseBlock(id=f"toolu_sim_{profile.name}_{number:04d}", name=name, input=payload),
        )

    def _submit(self, state: str, allowed: tuple[str, ...], number: int) -> tuple[ContentBlock, ...]:
        """A reasoning text and a submit: right with the tier's accuracy for this evidence."""
        profile, rng = self.profile, self.rng
        right = self.playbook.right_choice(state, allowed)
        if right not in allowed:
            raise SimulationError(
                f"the playbook's right choice {right!r} in state {state!r} is not one of {list(allowed)}"
            )
        key = self.evidence
        evidence = sum(self.findings.get(tool, 0.0) for tool in key) / len(key) if key else 1.0
        accuracy = (
            profile.skill
            - profile.difficulty_slope * self.difficulty
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
            TextBlock(text=f"I have what I need. {rationale}"),
            ToolUseBlock(
                id=f"toolu_sim_{profile.name}_{number:04d}",
                name=SUBMIT,
                input={"next": chosen, "confidence": confidence, "rationale": rationale},
            ),
        )


_SCALARS = (str, int, bool, type(None))


def _as_json(args: Mapping[str, Any]) -> Any:
    """``args`` as they come back from a trip through JSON."""
    # The common case, a flat dict of strings, numbers and None, comes back equal: copy it
    # rather than pay for the trip. Floats come back equal only when finite (NaN != NaN).
    if type(args) is dict and all(
        type(key) is str and (type(value) in _SCALARS or (type(value) is float and math.isfinite(value)))
        for key, value in args.items()
    ):
        return dict(args)
    return json.loads(json.dumps(args))


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
            weight = strength(results.get(use.id))
            if weight >= strengths.get(tool, 0.0):
                strengths[tool] = weight
            index, tries = index + 1, 0
        else:
            # A hallucinated or malformed try: the call is still to be made, a few times at most.
            tries += 1
            if tries >= MAX_ATTEMPTS:
                index, tries = index + 1, 0
    return index, tries, strengths


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
