"""Fault plans, and the injector that applies one to a run's tools, models and humans.

A :class:`FaultPlan` is data — scenario files hold it, the fuzzer generates it —
and each :class:`Fault` in it names what it hits (``tool:<name>``, ``tier:<name>``,
``humans``, ``run``), when it fires (a :class:`Trigger`) and how. The
:class:`FaultInjector` wraps tools, models and humans so that the orchestrator
never knows, and records every fault that fires as a ``fault_injected`` event with
the fault's id, so that an outcome can always be tied to the faults behind it.

| kind                     | target          | what it does                                            |
|--------------------------|-----------------|---------------------------------------------------------|
| timeout                  | tool            | the call never answers; the tool's timeout ends it      |
| latency_spike            | tool            | the call takes ``seconds`` longer                       |
| error                    | tool            | the call raises ``message``                             |
| empty_result             | tool            | the call answers with nothing                           |
| partial_result           | tool            | the call answers with the first ``fraction`` of its list |
| stale_read               | write tool      | for ``seconds`` after the write, readers see the old state |
| silent_failure           | write tool      | the write is acknowledged but not applied               |
| conflicting_actor        | write tool      | another actor undoes the write ``seconds`` after it     |
| hallucinated_tool_call   | tier            | a tool call names a tool that does not exist            |
| malformed_arguments      | tier            | a tool call's arguments are mangled                     |
| rate_limit, overloaded   | tier            | the Messages API answers 429 / 529 (fake API needed)    |
| human_slow               | humans          | the human answers ``seconds`` later                     |
| human_absent             | humans          | the human never answers                                 |
| human_wrong              | humans          | the human decides the opposite                          |
| crash                    | run             | the run stops dead at transition ``at_transition``      |
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, Protocol, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

from windtunnel.orchestrator import (
    EventBase,
    Model,
    ModelRequest,
    ModelResponse,
    SimulationError,
    Tool,
    ToolRegistry,
    ToolUseBlock,
    current_step,
)

from .world import World

__all__ = [
    "HALLUCINATED_TOOLS",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "SimulatedCrash",
    "Trigger",
]

FaultKind: TypeAlias = Literal[
    "timeout",
    "latency_spike",
    "error",
    "empty_result",
    "partial_result",
    "stale_read",
    "silent_failure",
    "conflicting_actor",
    "hallucinated_tool_call",
    "malformed_arguments",
    "rate_limit",
    "overloaded",
    "human_slow",
    "human_absent",
    "human_wrong",
    "crash",
]

_TOOL_KINDS = {"timeout", "latency_spike", "error", "empty_result", "partial_result"}
_WRITE_KINDS = {"stale_read", "silent_failure", "conflicting_actor"}
_MODEL_KINDS = {"hallucinated_tool_call", "malformed_arguments"}
_API_KINDS = {"rate_limit", "overloaded"}
_HUMAN_KINDS = {"human_slow", "human_absent", "human_wrong"}
_NEEDS_SECONDS = {"latency_spike", "stale_read", "human_slow"}

HALLUCINATED_TOOLS = ("nmap_scan", "virustotal_lookup", "splunk_query", "crowdstrike_contain")
"""Names a hallucinating model reaches for: plausible, and not in any registry."""


class SimulatedCrash(SimulationError):
    """The run was stopped dead by a ``crash`` fault, as a killed process would be."""


class Trigger(BaseModel):
    """When a fault fires. Every condition given must hold; none given: every time.

    An opportunity is one call of the target (a tool call, a model call, an HTTP
    attempt, a review) or, for a crash, one transition.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    probability: float | None = Field(
        None, ge=0, le=1, description="Chance per opportunity, drawn on the stream 'faults/<id>'."
    )
    nth: int | None = Field(None, ge=1, description="Fire on this opportunity only (1 = the first).")
    window: tuple[float, float] | None = Field(
        None, description="Fire only while start <= simulated time < end."
    )
    after: str | None = Field(None, description="Fire only once an event of this kind was recorded.")
    times: int | None = Field(None, ge=1, description="Fire at most this many times.")

    @model_validator(mode="after")
    def _window_in_order(self) -> Trigger:
        if self.window is not None and not self.window[0] < self.window[1]:
            raise ValueError(f"window={self.window!r} must have start < end")
        return self


class Fault(BaseModel):
    """One fault: what it hits, when it fires, and its parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1, description="Unique within the plan; named by every event it causes.")
    kind: FaultKind
    target: str = Field(description="'tool:<name>', 'tier:<name>', 'humans' or 'run'.")
    trigger: Trigger = Field(default_factory=Trigger)
    seconds: float | None = Field(
        None, gt=0, description="Extra latency, staleness, delay of the conflicting actor, or human delay."
    )
    message: str = Field("simulated failure", description="The error an 'error' fault raises.")
    fraction: float = Field(0.5, ge=0, le=1, description="Share of a list a 'partial_result' keeps.")
    at_transition: int | None = Field(None, ge=1, description="For 'crash': the transition it stops at.")
    retry_after: float | None = Field(None, ge=0, description="For 'rate_limit': seconds in retry-after.")

    @model_validator(mode="after")
    def _fits(self) -> Fault:
        prefix, _, name = self.target.partition(":")
        if self.kind in _TOOL_KINDS | _WRITE_KINDS:
            expected = "a tool, e.g. target='tool:block_ip'"
            fits = prefix == "tool" and bool(name)
        elif self.kind in _MODEL_KINDS | _API_KINDS:
            expected, fits = "a model tier, e.g. target='tier:small'", prefix == "tier" and bool(name)
        elif self.kind in _HUMAN_KINDS:
            expected, fits = "target='humans'", self.target == "humans"
        else:
            expected, fits = "target='run'", self.target == "run"
        if not fits:
            raise ValueError(f"target={self.target!r} does not fit kind={self.kind!r}: it needs {expected}")
        if self.kind in _NEEDS_SECONDS and self.seconds is None:
            raise ValueError(f"kind={self.kind!r} needs seconds=")
        if self.kind == "crash" and self.at_transition is None:
            raise ValueError("kind='crash' needs at_transition=")
        return self


class FaultPlan(BaseModel):
    """The faults of one scenario run.

    Example:
        >>> plan = FaultPlan(faults=[
        ...     Fault(id="slow-intel", kind="timeout", target="tool:threat_intel", trigger=Trigger(nth=1)),
        ...     Fault(id="lost-block", kind="silent_failure", target="tool:block_ip"),
        ... ])
        >>> [fault.id for fault in plan.faults]
        ['slow-intel', 'lost-block']
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    faults: list[Fault] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_ids(self) -> FaultPlan:
        seen: set[str] = set()
        for fault in self.faults:
            if fault.id in seen:
                raise ValueError(f"two faults have id={fault.id!r}; ids must be unique")
            seen.add(fault.id)
        return self

    def targeting(self, target: str, kinds: set[str] | None = None) -> list[Fault]:
        """The faults aimed at ``target`` (and of one of ``kinds``, if given)."""
        return [f for f in self.faults if f.target == target and (kinds is None or f.kind in kinds)]


class _Reviewer(Protocol):
    async def review(self, *, proposal: str, truth: Any) -> Any: ...


class FaultInjector:
    """Applies a :class:`FaultPlan` to one simulation's tools, models and humans.

    Args:
        plan: the faults.
        rng: the simulation's named streams (``sim.rng``); fault ``f`` draws from
            ``faults/<f.id>``, so faults never shift each other's draws.
    """

    def __init__(self, plan: FaultPlan, *, rng: Callable[[str], random.Random]) -> None:
        self.plan = plan
        self._rng = rng
        self._opportunities: dict[str, int] = {}
        self._fired: dict[str, int] = {}
        self._seen: set[str] = set()
        self._transitions: dict[str, int] = {}
        self.log: list[tuple[str, str, str]] = []
        """(fault id, kind, detail) of every fault that fired, in order."""

    # -- deciding ---------------------------------------------------------------------

    def _fires(self, fault: Fault) -> bool:
        """Count one opportunity for ``fault``; True when its trigger fires on it."""
        count = self._opportunities[fault.id] = self._opportunities.get(fault.id, 0) + 1
        trigger = fault.trigger
        if trigger.times is not None and self._fired.get(fault.id, 0) >= trigger.times:
            return False
        if trigger.nth is not None and count != trigger.nth:
            return False
        if trigger.window is not None:
            now = asyncio.get_running_loop().time()
            if not trigger.window[0] <= now < trigger.window[1]:
                return False
        if trigger.after is not None and trigger.after not in self._seen:
            return False
        if (
            trigger.probability is not None
            and self._rng(f"faults/{fault.id}").random() >= trigger.probability
        ):
            return False
        self._fired[fault.id] = self._fired.get(fault.id, 0) + 1
        return True

    def _record(self, fault: Fault, detail: str) -> None:
        self.log.append((fault.id, fault.kind, detail))
        ctx = current_step()
        if ctx is not None:
            ctx.emit(
                "fault_injected", fault_id=fault.id, fault_kind=fault.kind, target=fault.target, detail=detail
            )

    # -- tools ------------------------------------------------------------------------

    def tools(self, registry: ToolRegistry, *, world: World | None = None) -> ToolRegistry:
        """A copy of ``registry`` whose targeted tools misbehave as planned.

        Raises:
            SimulationError: for a fault aimed at a tool the registry lacks, or a
                write-only fault aimed at a read tool, or a stale read without ``world``.
        """
        names = set(registry.names)
        for fault in self.plan.faults:
            prefix, _, name = fault.target.partition(":")
            if prefix != "tool":
                continue
            tool = registry.get(name)
            if tool is None:
                raise SimulationError(
                    f"fault {fault.id!r}: no tool {name!r} to target; tools: {sorted(names)}"
                )
            if fault.kind in _WRITE_KINDS and tool.kind != "write":
                raise SimulationError(
                    f"fault {fault.id!r}: kind={fault.kind!r} needs a write tool, not {name!r}"
                )
            if fault.kind == "stale_read" and world is None:
                raise SimulationError(
                    f"fault {fault.id!r}: a stale read needs the world (tools(..., world=...))"
                )
        return ToolRegistry(self._wrap_tool(tool, world) for tool in registry)

    def _wrap_tool(self, tool: Tool, world: World | None) -> Tool:
        faults = self.plan.targeting(f"tool:{tool.name}")
        if not faults:
            return tool
        inner = tool.fn
        action = tool.action

        async def call(args: Any) -> Any:
            for fault in faults:
                if not self._fires(fault):
                    continue
                kind = fault.kind
                if kind == "timeout":
                    self._record(fault, f"{tool.name} hangs")
                    await asyncio.Event().wait()
                elif kind == "latency_spike":
                    self._record(fault, f"{tool.name} {fault.seconds:g}s slower")
                    await asyncio.sleep(fault.seconds or 0.0)
                elif kind == "error":
                    self._record(fault, f"{tool.name} raises: {fault.message}")
                    raise ConnectionError(fault.message)
                elif kind == "empty_result":
                    self._record(fault, f"{tool.name} answers empty")
                    return _empty(await inner(args))
                elif kind == "partial_result":
                    self._record(fault, f"{tool.name} answers {fault.fraction:.0%} of its result")
                    return _partial(await inner(args), fault.fraction)
                elif kind == "silent_failure":
                    self._record(fault, f"{tool.name} acknowledged, not applied")
                    return {"status": "ok"}
                elif kind == "stale_read" and world is not None:
                    since = len(world.changes)
                    result = await inner(args)
                    until = asyncio.get_running_loop().time() + (fault.seconds or 0.0)
                    count = world.make_stale(since, until=until)
                    self._record(
                        fault, f"{count} change(s) by {tool.name} unseen by readers until t={until:g}s"
                    )
                    return result
                elif kind == "conflicting_actor" and action is not None and action.compensate is not None:
                    result = await inner(args)
                    undo = action.compensate
                    delay = fault.seconds or 0.0
                    self._record(
                        fault,
                        f"another actor does {action.opposite or 'the opposite'} on {action.resource(args)} "
                        f"{delay:g}s after {tool.name}",
                    )
                    if delay:
                        _later(delay, undo, args)
                    else:
                        await undo(args)
                    return result
            return await inner(args)

        return dataclasses.replace(tool, fn=call)

    # -- models -----------------------------------------------------------------------

    def model(self, model: Model, *, tier: str) -> Model:
        """``model`` with the plan's hallucination and malformed-argument faults for ``tier``."""
        faults = self.plan.targeting(f"tier:{tier}", _MODEL_KINDS)
        return model if not faults else _FaultyModel(model, faults, self)

    def api_plan(self, tier: str) -> Callable[[int, Any], str | None]:
        """The fake Messages API's per-attempt plan for ``tier``'s rate-limit and overload faults."""
        faults = self.plan.targeting(f"tier:{tier}", _API_KINDS)

        def decide(number: int, request: Any) -> str | None:
            for fault in faults:
                if self._fires(fault):
                    self._record(fault, f"HTTP attempt {number} answered {fault.kind}")
                    return fault.kind
            return None

        return decide

    def api_tiers(self) -> set[str]:
        """Tiers whose faults need the fake Messages API (rate limits, overload)."""
        return {f.target.partition(":")[2] for f in self.plan.faults if f.kind in _API_KINDS}

    # -- humans -----------------------------------------------------------------------

    def human(self, human: _Reviewer) -> _Reviewer:
        """``human`` with the plan's slow, absent and wrong faults."""
        faults = self.plan.targeting("humans")
        return human if not faults else _FaultyHuman(human, faults, self)

    # -- the run ----------------------------------------------------------------------

    @property
    def observes(self) -> bool:
        """Whether the injector must see the trace (as a sink): for crashes and ``after`` triggers."""
        return any(f.kind == "crash" or f.trigger.after is not None for f in self.plan.faults)

    def write(self, event: EventBase) -> None:
        """Trace sink: note the event's kind; stop the run dead at a planned crash."""
        kind = event.kind  # type: ignore[attr-defined]
        self._seen.add(kind)
        if kind != "transition":
            return
        count = self._transitions[event.run_id] = self._transitions.get(event.run_id, 0) + 1
        for fault in self.plan.targeting("run", {"crash"}):
            if fault.at_transition == count and self._fires(fault):
                self._record(fault, f"run {event.run_id} killed at transition {count}")
                raise SimulatedCrash(
                    f"run {event.run_id!r} crashed at transition {count} (fault {fault.id!r})"
                )

    def flush(self) -> None:
        """Nothing buffered."""

    def close(self) -> None:
        """Nothing to release."""


class _FaultyModel:
    """A model whose tool calls are sometimes hallucinated or mangled."""

    def __init__(self, inner: Model, faults: Sequence[Fault], injector: FaultInjector) -> None:
        self._inner = inner
        self._faults = faults
        self._injector = injector

    @property
    def name(self) -> str:
        return self._inner.name

    async def create(self, request: ModelRequest) -> ModelResponse:
        response = await self._inner.create(request)
        content = list(response.content)
        uses = [i for i, block in enumerate(content) if isinstance(block, ToolUseBlock)]
        if not uses:
            return response
        index = uses[0]
        use = content[index]
        assert isinstance(use, ToolUseBlock)
        for fault in self._faults:
            if not self._injector._fires(fault):
                continue
            if fault.kind == "hallucinated_tool_call":
                name = HALLUCINATED_TOOLS[self._injector._rng(f"faults/{fault.id}/name").randrange(4)]
                self._injector._record(fault, f"call of {use.name!r} replaced by a call of {name!r}")
                use = dataclasses.replace(use, name=name)
            else:
                self._injector._record(fault, f"arguments of {use.name!r} mangled")
                use = dataclasses.replace(use, input=_mangle(use.input))
        content[index] = use
        return dataclasses.replace(response, content=tuple(content))


class _FaultyHuman:
    """A human who is sometimes slow, absent or wrong."""

    def __init__(self, inner: _Reviewer, faults: Sequence[Fault], injector: FaultInjector) -> None:
        self._inner = inner
        self._faults = faults
        self._injector = injector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def review(self, *, proposal: str, truth: Any) -> Any:
        wrong = False
        for fault in self._faults:
            if not self._injector._fires(fault):
                continue
            if fault.kind == "human_absent":
                self._injector._record(fault, "the approver never answers")
                await asyncio.Event().wait()
            elif fault.kind == "human_slow":
                self._injector._record(fault, f"the approver answers {fault.seconds:g}s late")
                await asyncio.sleep(fault.seconds or 0.0)
            else:
                self._injector._record(fault, "the approver decides the opposite")
                wrong = True
        decision = await self._inner.review(proposal=proposal, truth=truth)
        if wrong:
            flipped = "reject" if decision.decision == "approve" else "approve"
            verdict = "benign" if decision.verdict == "malicious" else "malicious"
            decision = dataclasses.replace(
                decision, decision=flipped, verdict=verdict, correct=not decision.correct
            )
        return decision


def _later(delay: float, undo: Callable[[Any], Any], args: Any) -> None:
    """Run ``undo(args)`` ``delay`` simulated seconds from now, as another actor would."""
    asyncio.get_running_loop().call_later(delay, lambda: asyncio.ensure_future(undo(args)))


def _empty(result: Any) -> Any:
    if isinstance(result, list):
        return []
    if isinstance(result, Mapping):
        return {}
    return ""


def _partial(result: Any, fraction: float) -> Any:
    if isinstance(result, list):
        return {"partial": True, "result": result[: int(len(result) * fraction)]}
    return {"partial": True, "result": result}


def _mangle(arguments: Any) -> Any:
    # Drop every argument the model meant to send and put in one nobody asked for.
    if isinstance(arguments, Mapping) and arguments:
        return {"unexpected": next(iter(arguments.values()))}
    return {"unexpected": True}
