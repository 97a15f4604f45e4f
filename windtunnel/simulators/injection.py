"""`FaultInjector`: applies a fault plan to one simulation's tools, models and humans.

It wraps them so that the orchestrator never knows, and records every fault that
fires as a ``fault_injected`` event with the fault's id (in the step it fired in),
so that an outcome can always be tied to the faults behind it. As a trace sink it
also sees the run's events: for ``after`` triggers, and to stop a run dead at a
planned crash.

A plan is validated on its own, without the world it will meet; before a run,
:meth:`FaultInjector.check_targets` checks that each of its faults can fire there:
that the tool, tier or human it targets is in the run.
"""

from __future__ import annotations

import asyncio
import dataclasses
import random
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from typing import Any

from windtunnel.orchestrator import (
    EventBase,
    InvalidArgument,
    Model,
    ModelRequest,
    ModelResponse,
    Tool,
    ToolRegistry,
    ToolUseBlock,
    current_step,
)
from windtunnel.orchestrator.validation import check_choice, reason

from .faults import API_KINDS, HUMAN_KINDS, MODEL_KINDS, TOOL_KINDS, WRITE_KINDS, Fault, FaultPlan
from .tiers import HALLUCINATED_TOOLS
from .world import World

__all__ = ["FaultInjector", "SimulatedCrash"]


class SimulatedCrash(BaseException):
    """The run was stopped dead by a ``crash`` fault, as a killed process would be.

    Like ``SystemExit``, a ``BaseException``: no handler's ``except Exception``, no
    tool retry and no error policy may catch a process's death.
    """


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

    # -- targets ----------------------------------------------------------------------

    def check_targets(self, *, tools: Iterable[Tool], tiers: Iterable[str], humans: Collection[str]) -> None:
        """Check that every fault of the plan can fire in a run with these tools, tiers and humans.

        Args:
            tools: the run's tools (a :class:`ToolRegistry` will do); write faults need write tools.
            tiers: the names of the model tiers that play in the run.
            humans: the names of the run's human approvers (``'humans'`` targets them all).

        Raises:
            InvalidArgument: listing each fault that can never fire, its target, and the
                targets that would fire (the closest suggested).
        """
        _refuse(self._unreachable(list(tools), tiers=list(tiers), humans=humans))

    def _unreachable(
        self, tools: list[Tool], *, tiers: list[str] | None, humans: Collection[str] | None
    ) -> list[tuple[str, str]]:
        """(fault id, why) of each fault whose target is not in the run; tiers or humans
        given as None are not checked."""
        problems: list[tuple[str, str]] = []
        reads = sorted(f"tool:{tool.name}" for tool in tools if tool.kind != "write")
        for fault in self.plan.faults:
            if fault.kind in WRITE_KINDS:
                family, valid = "write tools", sorted(f"tool:{t.name}" for t in tools if t.kind == "write")
                if fault.target in reads and valid:
                    problems.append(
                        (
                            fault.id,
                            f"kind={fault.kind!r} needs a write tool, and target={fault.target!r} is a "
                            f"read tool; choose one of {valid}",
                        )
                    )
                    continue
            elif fault.kind in TOOL_KINDS:
                family, valid = "tools", [f"tool:{tool.name}" for tool in tools]
            elif fault.kind in MODEL_KINDS | API_KINDS and tiers is not None:
                family, valid = "tiers", [f"tier:{tier}" for tier in tiers]
            elif fault.kind in HUMAN_KINDS and humans is not None:
                family, valid = "humans", ["humans"] if humans else []
            else:
                continue  # a crash (every run has transitions to stop at), or a family not checked
            if not valid:
                problems.append((fault.id, f"target={fault.target!r}, and this run has no {family}"))
            elif problem := reason(check_choice, "target", fault.target, sorted(set(valid))):
                problems.append((fault.id, problem))
        return problems

    # -- tools ------------------------------------------------------------------------

    def tools(self, registry: ToolRegistry, *, world: World | None = None) -> ToolRegistry:
        """A copy of ``registry`` whose targeted tools misbehave as planned.

        Raises:
            InvalidArgument: for a fault aimed at a tool the registry lacks, a write-only
                fault aimed at a read tool, or a stale read without ``world``.
        """
        _refuse(self._unreachable(list(registry), tiers=None, humans=None))
        for fault in self.plan.faults:
            if fault.kind == "stale_read" and world is None:
                raise InvalidArgument(
                    f"fault {fault.id!r}: a stale read needs world=; call tools(registry, world=world)"
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
        faults = self.plan.targeting(f"tier:{tier}", MODEL_KINDS)
        return model if not faults else _FaultyModel(model, faults, self)

    def api_plan(self, tier: str) -> Callable[[int, Any], Any]:
        """The fake Messages API's per-attempt plan for ``tier``'s rate-limit and overload faults."""
        faults = self.plan.targeting(f"tier:{tier}", API_KINDS)

        def decide(number: int, request: Any) -> Any:
            from .fake_api import HttpFault  # loads the SDK: only for plans that need it

            for fault in faults:
                if self._fires(fault):
                    self._record(fault, f"HTTP attempt {number} answered {fault.kind}")
                    if fault.kind == "rate_limit":
                        return HttpFault(kind="rate_limit", retry_after=fault.retry_after)
                    return HttpFault(kind="overloaded")
            return None

        return decide

    def api_tiers(self) -> set[str]:
        """Tiers whose faults need the fake Messages API (rate limits, overload)."""
        return {f.target.partition(":")[2] for f in self.plan.faults if f.kind in API_KINDS}

    # -- humans -----------------------------------------------------------------------

    def human(self, human: Any) -> Any:
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
        for fault in self.plan.targeting("run", frozenset({"crash"})):
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
                draw = self._injector._rng(f"faults/{fault.id}/name")
                name = HALLUCINATED_TOOLS[draw.randrange(len(HALLUCINATED_TOOLS))]
                self._injector._record(fault, f"call of {use.name!r} replaced by a call of {name!r}")
                use = dataclasses.replace(use, name=name)
            else:
                self._injector._record(fault, f"arguments of {use.name!r} mangled")
                use = dataclasses.replace(use, input=_mangle(use.input))
        content[index] = use
        return dataclasses.replace(response, content=tuple(content))


class _FaultyHuman:
    """A human who is sometimes slow, absent or wrong."""

    def __init__(self, inner: Any, faults: Sequence[Fault], injector: FaultInjector) -> None:
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
                self._injector._record(fault, "the approver decides wrongly")
                wrong = True
        decision = await self._inner.review(proposal=proposal, truth=truth)
        if wrong and decision.correct:
            flipped = "reject" if decision.decision == "approve" else "approve"
            verdict = "benign" if decision.verdict == "malicious" else "malicious"
            decision = dataclasses.replace(
                decision, decision=flipped, verdict=verdict, correct=not decision.correct
            )
        return decision


def _refuse(problems: Sequence[tuple[str, str]]) -> None:
    """Raise one :class:`InvalidArgument` for every (fault id, why) that can never fire, if any."""
    if len(problems) == 1:
        fault_id, detail = problems[0]
        raise InvalidArgument(f"fault {fault_id!r} can never fire: {detail}")
    if problems:
        lines = [f"{len(problems)} faults can never fire:"]
        lines.extend(f"  - fault {fault_id!r}: {detail}" for fault_id, detail in problems)
        raise InvalidArgument("\n".join(lines))


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
