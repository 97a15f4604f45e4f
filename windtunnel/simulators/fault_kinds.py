"""The built-in fault kinds: each one's parameters (a model) beside its behaviour.

| kind                     | family | what it does                                               |
|--------------------------|--------|------------------------------------------------------------|
| timeout                  | tool   | the call never answers; the tool's timeout ends it         |
| latency_spike            | tool   | the call takes ``seconds`` longer                          |
| error                    | tool   | the call raises ``message``                                |
| empty_result             | tool   | the call answers with nothing                              |
| partial_result           | tool   | the call answers with the first ``fraction`` of its list   |
| stale_read               | write  | for ``seconds`` after the write, readers see the old state |
| silent_failure           | write  | the write is acknowledged but not applied                  |
| conflicting_actor        | write  | another actor undoes the write ``seconds`` after it        |
| hallucinated_tool_call   | tier   | a tool call names a tool that does not exist               |
| malformed_arguments      | tier   | a tool call's arguments are mangled                        |
| rate_limit, overloaded   | api    | the Messages API answers 429 / 529 (fake API needed)       |
| human_slow               | humans | the human answers ``seconds`` later                        |
| human_absent             | humans | the human never answers                                    |
| human_wrong              | humans | the human picks a wrong option                             |
| crash                    | run    | the run stops dead at transition ``at_transition``         |

Each is registered with :func:`~windtunnel.simulators.faults.register_fault_kind`
when this module loads, exactly as a domain registers its own.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, ClassVar, Literal, Protocol, runtime_checkable

from pydantic import Field

from windtunnel.orchestrator.model import ToolUseBlock

from . import evidence
from .faults import Family, Fault, Hit, ToolCall, register_fault_kind
from .humans import HumanDecision, Review
from .loop import sleep
from .model import HALLUCINATED_TOOLS

__all__ = [
    "ConflictingActor",
    "Crash",
    "EmptyResult",
    "Error",
    "HallucinatedToolCall",
    "HumanAbsent",
    "HumanSlow",
    "HumanWrong",
    "LatencySpike",
    "MalformedArguments",
    "Overloaded",
    "PartialResult",
    "RateLimit",
    "SilentFailure",
    "SimulatedCrash",
    "StaleRead",
    "StaleWorld",
    "Timeout",
]


class SimulatedCrash(BaseException):
    """The run was stopped dead by a ``crash`` fault, as a killed process would be.

    Like ``SystemExit``, a ``BaseException``: no handler's ``except Exception``, no
    tool retry and no error policy may catch a process's death.
    """


async def _proceed(call: ToolCall) -> Any:
    assert call.proceed is not None  # the injector always hands one to a firing
    return await call.proceed(call.args)


# --- tools -------------------------------------------------------------------------------------


class Timeout(Fault):
    """The call never answers; the tool's timeout ends it."""

    kind: Literal["timeout"] = "timeout"
    family: ClassVar[Family] = "tool"


async def _timeout(hit: Hit, call: ToolCall) -> Any:
    hit.record(f"{call.tool.name} hangs")
    await asyncio.Event().wait()


class LatencySpike(Fault):
    """The call takes ``seconds`` longer."""

    kind: Literal["latency_spike"] = "latency_spike"
    family: ClassVar[Family] = "tool"
    seconds: float = Field(gt=0, description="Extra simulated seconds the call takes.")


async def _latency_spike(hit: Hit, call: ToolCall) -> Any:
    hit.record(f"{call.tool.name} {hit.fault.seconds:g}s slower")
    await sleep(hit.fault.seconds)
    return await _proceed(call)


class Error(Fault):
    """The call raises ``message`` (as a ``ConnectionError``)."""

    kind: Literal["error"] = "error"
    family: ClassVar[Family] = "tool"
    message: str = Field("simulated failure", description="The error the call raises.")


async def _error(hit: Hit, call: ToolCall) -> Any:
    hit.record(f"{call.tool.name} raises: {hit.fault.message}")
    raise ConnectionError(hit.fault.message)


class EmptyResult(Fault):
    """The call answers with nothing (of its result's shape)."""

    kind: Literal["empty_result"] = "empty_result"
    family: ClassVar[Family] = "tool"


async def _empty_result(hit: Hit, call: ToolCall) -> Any:
    hit.record(f"{call.tool.name} answers empty")
    return evidence.empty(await _proceed(call))


class PartialResult(Fault):
    """The call answers in part: the first ``fraction`` of its list, marked partial."""

    kind: Literal["partial_result"] = "partial_result"
    family: ClassVar[Family] = "tool"
    fraction: float = Field(0.5, ge=0, le=1, description="Share of a list the answer keeps.")


async def _partial_result(hit: Hit, call: ToolCall) -> Any:
    hit.record(f"{call.tool.name} answers {hit.fault.fraction:.0%} of its result")
    return evidence.partial(await _proceed(call), hit.fault.fraction)


# --- writes ------------------------------------------------------------------------------------


@runtime_checkable
class StaleWorld(Protocol):
    """A world whose recent changes can be hidden from readers for a while."""

    @property
    def changes(self) -> list[Any]:
        """Every change, in order."""
        ...

    def make_stale(self, since: int, *, until: float) -> int:
        """Hide the changes from index ``since`` on until ``until``; how many that covers."""
        ...


class StaleRead(Fault):
    """For ``seconds`` after the write, readers still see the old state."""

    kind: Literal["stale_read"] = "stale_read"
    family: ClassVar[Family] = "write"
    seconds: float = Field(gt=0, description="Simulated seconds readers see the old state.")


async def _stale_read(hit: Hit, call: ToolCall) -> Any:
    world = call.world
    assert isinstance(world, StaleWorld)  # checked by _stale_read_not_applicable
    since = len(world.changes)
    result = await _proceed(call)
    until = asyncio.get_running_loop().time() + hit.fault.seconds
    count = world.make_stale(since, until=until)
    hit.record(f"{count} change(s) by {call.tool.name} unseen by readers until t={until:g}s")
    return result


def _stale_read_not_applicable(fault: StaleRead, site: ToolCall) -> str | None:
    if not isinstance(site.world, StaleWorld):
        return (
            "a stale read needs a world that can hide changes (changes, make_stale); "
            "call tools(registry, world=world)"
        )
    return None


class SilentFailure(Fault):
    """The write is acknowledged but not applied."""

    kind: Literal["silent_failure"] = "silent_failure"
    family: ClassVar[Family] = "write"


async def _silent_failure(hit: Hit, call: ToolCall) -> Any:
    hit.record(f"{call.tool.name} acknowledged, not applied")
    return {"status": "ok"}


class ConflictingActor(Fault):
    """Another actor undoes the write (by its compensation) ``seconds`` after it."""

    kind: Literal["conflicting_actor"] = "conflicting_actor"
    family: ClassVar[Family] = "write"
    seconds: float | None = Field(None, gt=0, description="Simulated seconds after the write; none: at once.")


async def _conflicting_actor(hit: Hit, call: ToolCall) -> Any:
    action = call.tool.action
    # Checked by _conflicting_actor_not_applicable before the tool was wrapped.
    assert action is not None
    assert action.compensate is not None
    result = await _proceed(call)
    undo, args, delay = action.compensate, call.args, hit.fault.seconds or 0.0
    hit.record(
        f"another actor does {action.opposite or 'the opposite'} on {action.resource(args)} "
        f"{delay:g}s after {call.tool.name}"
    )
    if delay:
        asyncio.get_running_loop().call_later(delay, lambda: asyncio.ensure_future(undo(args)))
    else:
        await undo(args)
    return result


def _conflicting_actor_not_applicable(fault: ConflictingActor, site: ToolCall) -> str | None:
    action = site.tool.action
    if action is None or action.compensate is None:
        return f"{site.tool.name} has no compensation for another actor to undo it with"
    return None


# --- model tiers -------------------------------------------------------------------------------


class HallucinatedToolCall(Fault):
    """A tool call of the tier names a tool that does not exist."""

    kind: Literal["hallucinated_tool_call"] = "hallucinated_tool_call"
    family: ClassVar[Family] = "tier"


def _hallucinated_tool_call(hit: Hit, use: ToolUseBlock) -> ToolUseBlock:
    name = HALLUCINATED_TOOLS[int(hit.uniform("name") * len(HALLUCINATED_TOOLS))]
    hit.record(f"call of {use.name!r} replaced by a call of {name!r}")
    return dataclasses.replace(use, name=name)


class MalformedArguments(Fault):
    """A tool call of the tier has its arguments mangled."""

    kind: Literal["malformed_arguments"] = "malformed_arguments"
    family: ClassVar[Family] = "tier"


def _malformed_arguments(hit: Hit, use: ToolUseBlock) -> ToolUseBlock:
    hit.record(f"arguments of {use.name!r} mangled")
    # Drop every argument the model meant to send and put in one nobody asked for.
    arguments = use.input
    if isinstance(arguments, Mapping) and arguments:
        mangled: Any = {"unexpected": next(iter(arguments.values()))}
    else:
        mangled = {"unexpected": True}
    return dataclasses.replace(use, input=mangled)


class RateLimit(Fault):
    """The Messages API answers an HTTP attempt of the tier with 429."""

    kind: Literal["rate_limit"] = "rate_limit"
    family: ClassVar[Family] = "api"
    retry_after: float | None = Field(None, ge=0, description="Seconds in the retry-after header.")


def _rate_limit(hit: Hit, attempt: int) -> Any:
    from .fake_api import HttpFault  # loads the SDK: only for plans that need it

    hit.record(f"HTTP attempt {attempt} answered rate_limit")
    return HttpFault(kind="rate_limit", retry_after=hit.fault.retry_after)


class Overloaded(Fault):
    """The Messages API answers an HTTP attempt of the tier with 529."""

    kind: Literal["overloaded"] = "overloaded"
    family: ClassVar[Family] = "api"


def _overloaded(hit: Hit, attempt: int) -> Any:
    from .fake_api import HttpFault

    hit.record(f"HTTP attempt {attempt} answered overloaded")
    return HttpFault(kind="overloaded")


# --- humans ------------------------------------------------------------------------------------

ProceedReview = Callable[[Review], Awaitable[HumanDecision]]


class HumanSlow(Fault):
    """The human answers ``seconds`` later."""

    kind: Literal["human_slow"] = "human_slow"
    family: ClassVar[Family] = "humans"
    seconds: float = Field(gt=0, description="Simulated seconds of extra delay.")


async def _human_slow(hit: Hit, review: Review, proceed: ProceedReview) -> HumanDecision:
    hit.record(f"the approver answers {hit.fault.seconds:g}s late")
    await sleep(hit.fault.seconds)
    return await proceed(review)


class HumanAbsent(Fault):
    """The human never answers."""

    kind: Literal["human_absent"] = "human_absent"
    family: ClassVar[Family] = "humans"


async def _human_absent(hit: Hit, review: Review, proceed: ProceedReview) -> HumanDecision:
    hit.record("the approver never answers")
    await asyncio.Event().wait()
    raise AssertionError("unreachable")


class HumanWrong(Fault):
    """The human picks a wrong option (another than the right one)."""

    kind: Literal["human_wrong"] = "human_wrong"
    family: ClassVar[Family] = "humans"


async def _human_wrong(hit: Hit, review: Review, proceed: ProceedReview) -> HumanDecision:
    decision = await proceed(review)
    others = [option for option in review.options if option != review.right]
    if not others:
        hit.record("the approver cannot be wrong: the review has only the right option")
        return decision
    hit.record("the approver decides wrongly")
    if decision.correct:
        choice = others[int(hit.uniform("choice") * len(others))]
        decision = dataclasses.replace(decision, choice=choice, correct=False)
    return decision


# --- the run -----------------------------------------------------------------------------------


class Crash(Fault):
    """The run stops dead at transition ``at_transition``, as a killed process would."""

    kind: Literal["crash"] = "crash"
    family: ClassVar[Family] = "run"
    at_transition: int = Field(ge=1, description="The transition (1 = the first) it stops at.")


def _crash(hit: Hit, transition: int, run_id: str) -> None:
    hit.record(f"run {run_id} killed at transition {transition}")
    raise SimulatedCrash(f"run {run_id!r} crashed at transition {transition} (fault {hit.fault.id!r})")


def _crash_opportunity(fault: Crash, transition: int) -> bool:
    return fault.at_transition == transition


register_fault_kind(Timeout, _timeout)
register_fault_kind(LatencySpike, _latency_spike)
register_fault_kind(Error, _error)
register_fault_kind(EmptyResult, _empty_result)
register_fault_kind(PartialResult, _partial_result)
register_fault_kind(StaleRead, _stale_read, not_applicable=_stale_read_not_applicable)
register_fault_kind(SilentFailure, _silent_failure)
register_fault_kind(ConflictingActor, _conflicting_actor, not_applicable=_conflicting_actor_not_applicable)
register_fault_kind(HallucinatedToolCall, _hallucinated_tool_call)
register_fault_kind(MalformedArguments, _malformed_arguments)
register_fault_kind(RateLimit, _rate_limit)
register_fault_kind(Overloaded, _overloaded)
register_fault_kind(HumanSlow, _human_slow)
register_fault_kind(HumanAbsent, _human_absent)
register_fault_kind(HumanWrong, _human_wrong)
register_fault_kind(Crash, _crash, opportunity=_crash_opportunity)
