"""`FaultInjector`: applies a fault plan to one simulation's tools, models and humans.

It wraps them so that the orchestrator never knows, and records every fault that
fires as a ``fault_injected`` event with the fault's id (in the step it fired in),
so that an outcome can always be tied to the faults behind it. As a trace sink it
also sees the run's events: for ``after`` triggers, and to stop a run dead at a
planned crash. What each kind does is registered beside its model
(:mod:`~windtunnel.simulators.fault_kinds`); the injector only decides when.

Each fault decides alone: whether it fires on an opportunity comes from a hash of
(seed, fault id, target, opportunity number), never from a shared random stream,
so removing a fault from a plan leaves every other fault's decisions unchanged.
Every fault aimed at a target counts each of its calls as an opportunity.

A plan is validated on its own, without the world it will meet; before a run,
:meth:`FaultInjector.check_targets` checks that each of its faults can fire there.
A fault whose kind cannot act where it is aimed (a conflicting actor on a tool
without a compensation) is recorded in :attr:`FaultInjector.not_applicable`,
never counted as fired; :meth:`FaultInjector.counts` gives, per fault, its
opportunities, firings and whether it was not applicable.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Awaitable, Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
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

from .fault_kinds import SimulatedCrash
from .faults import Fault, FaultPlan, Hit, ToolCall, behaviour_of
from .humans import Human, HumanDecision, Review
from .sim import derive_seed

__all__ = ["FaultCounts", "FaultInjector", "SimulatedCrash"]

_TOOLS = frozenset({"tool", "write"})


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultCounts:
    """How one fault of a plan fared in a run."""

    opportunities: int
    """Calls (or transitions) of its target it could have fired on."""
    fired: int
    """Opportunities its trigger fired on (it then acts, unless a fault around it ends the call first)."""
    not_applicable: str | None
    """Why its kind cannot act where it is aimed, or None: then it never fires."""
    fired_on: tuple[int, ...] = ()
    """The opportunities it fired on (1 = its target's first call), in order."""


class FaultInjector:
    """Applies a :class:`FaultPlan` to one simulation's tools, models and humans.

    Args:
        plan: the faults.
        seed: the simulation's seed (``sim.seed``); with each fault's id, target and
            opportunity number it decides every firing.

    Example::

        injector = FaultInjector(plan, seed=sim.seed)
        tools = injector.tools(registry, world=world)
    """

    def __init__(self, plan: FaultPlan, *, seed: int) -> None:
        self.plan = plan
        self.seed = seed
        self._opportunities: dict[str, int] = {}
        self._fired: dict[str, list[int]] = {}
        self._seen: set[str] = set()
        self._transitions: dict[str, int] = {}
        self.log: list[tuple[str, str, str]] = []
        """(fault id, kind, detail) of every fault that fired, in order."""
        self.not_applicable: list[tuple[str, str, str]] = []
        """(fault id, kind, why) of every fault that cannot act where it is aimed."""

    # -- deciding ---------------------------------------------------------------------

    def _uniform(self, fault: Fault, occurrence: int, salt: str = "") -> float:
        """A number in [0, 1) that only the seed, the fault, the occurrence and ``salt`` decide."""
        name = f"fault\x00{fault.id}\x00{fault.target}\x00{occurrence}\x00{salt}"
        return derive_seed(self.seed, name) / 2.0**64

    def _fires(self, fault: Fault) -> bool:
        """Count one opportunity for ``fault``; True when its trigger fires on it."""
        count = self._opportunities[fault.id] = self._opportunities.get(fault.id, 0) + 1
        trigger = fault.trigger
        if trigger.times is not None and len(self._fired.get(fault.id, ())) >= trigger.times:
            return False
        if trigger.nth is not None and count != trigger.nth:
            return False
        if trigger.window is not None:
            now = asyncio.get_running_loop().time()
            if not trigger.window[0] <= now < trigger.window[1]:
                return False
        if trigger.after is not None and trigger.after not in self._seen:
            return False
        if trigger.probability is not None and self._uniform(fault, count) >= trigger.probability:
            return False
        self._fired.setdefault(fault.id, []).append(count)
        return True

    def _hit(self, fault: Fault) -> Hit:
        occurrence = self._opportunities.get(fault.id, 0)
        return Hit(
            fault=fault,
            occurrence=occurrence,
            record=lambda detail: self._record(fault, detail),
            uniform=lambda salt: self._uniform(fault, occurrence, salt),
        )

    def _record(self, fault: Fault, detail: str) -> None:
        self.log.append((fault.id, fault.kind, detail))
        ctx = current_step()
        if ctx is not None:
            ctx.emit(
                "fault_injected", fault_id=fault.id, fault_kind=fault.kind, target=fault.target, detail=detail
            )

    def _not_applicable(self, fault: Fault, why: str) -> None:
        if all(entry[0] != fault.id for entry in self.not_applicable):
            self.not_applicable.append((fault.id, fault.kind, why))

    def counts(self) -> dict[str, FaultCounts]:
        """Per fault id of the plan: its opportunities, firings, and why it is not applicable."""
        why = {fault_id: reason_ for fault_id, _, reason_ in self.not_applicable}
        return {
            fault.id: FaultCounts(
                opportunities=self._opportunities.get(fault.id, 0),
                fired=len(self._fired.get(fault.id, ())),
                not_applicable=why.get(fault.id),
                fired_on=tuple(self._fired.get(fault.id, ())),
            )
            for fault in self.plan.faults
        }

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
            family = fault.family
            if family == "write":
                noun, valid = "write tools", sorted(f"tool:{t.name}" for t in tools if t.kind == "write")
                if fault.target in reads and valid:
                    problems.append(
                        (
                            fault.id,
                            f"kind={fault.kind!r} needs a write tool, and target={fault.target!r} is a "
                            f"read tool; choose one of {valid}",
                        )
                    )
                    continue
            elif family == "tool":
                noun, valid = "tools", [f"tool:{tool.name}" for tool in tools]
            elif family in ("tier", "api") and tiers is not None:
                noun, valid = "tiers", [f"tier:{tier}" for tier in tiers]
            elif family == "humans" and humans is not None:
                noun, valid = "humans", ["humans"] if humans else []
            else:
                continue  # a crash (every run has transitions to stop at), or a family not checked
            if not valid:
                problems.append((fault.id, f"target={fault.target!r}, and this run has no {noun}"))
            elif problem := reason(check_choice, "target", fault.target, sorted(set(valid))):
                problems.append((fault.id, problem))
        return problems

    # -- tools ------------------------------------------------------------------------

    def tools(self, registry: ToolRegistry, *, world: Any | None = None) -> ToolRegistry:
        """A copy of ``registry`` whose targeted tools misbehave as planned.

        A fault whose kind cannot act on its tool (see :attr:`not_applicable`) is left out.

        Raises:
            InvalidArgument: for a fault aimed at a tool the registry lacks, or a
                write-only fault aimed at a read tool.
        """
        _refuse(self._unreachable(list(registry), tiers=None, humans=None))
        # Only the tools some fault aims at are looked at again: a copy per run is the rest.
        aimed = {fault.target for fault in self.plan.faults if fault.family in _TOOLS}
        wrapped = [
            new
            for tool in registry
            if f"tool:{tool.name}" in aimed and (new := self._wrap_tool(tool, world)) is not tool
        ]
        return registry.replacing(wrapped)

    def _wrap_tool(self, tool: Tool, world: Any | None) -> Tool:
        faults = []
        for fault in self.plan.targeting(f"tool:{tool.name}", _TOOLS):
            check = behaviour_of(fault.kind).not_applicable
            why = None if check is None else check(fault, ToolCall(tool=tool, world=world))
            if why is None:
                faults.append(fault)
            else:
                self._not_applicable(fault, why)
        if not faults:
            return tool
        inner = tool.fn

        async def call(args: Any) -> Any:
            # Every fault decides first (each counts this call), then the firing ones
            # wrap the call in plan order: the first is outermost.
            firing = [fault for fault in faults if self._fires(fault)]
            proceed: Callable[[Any], Awaitable[Any]] = inner
            for fault in reversed(firing):
                proceed = self._tool_layer(fault, tool, world, proceed)
            return await proceed(args)

        return dataclasses.replace(tool, fn=call)

    def _tool_layer(
        self, fault: Fault, tool: Tool, world: Any | None, proceed: Callable[[Any], Awaitable[Any]]
    ) -> Callable[[Any], Awaitable[Any]]:
        apply = behaviour_of(fault.kind).apply
        hit = self._hit(fault)

        async def layer(args: Any) -> Any:
            return await apply(hit, ToolCall(tool=tool, world=world, args=args, proceed=proceed))

        return layer

    # -- models -----------------------------------------------------------------------

    def model(self, model: Model, *, tier: str) -> Model:
        """``model`` with the plan's faults of ``tier``'s tool calls (hallucinated, malformed)."""
        faults = self.plan.targeting(f"tier:{tier}", frozenset({"tier"}))
        return model if not faults else _FaultyModel(model, faults, self)

    def api_plan(self, tier: str) -> Callable[[int, Any], Any]:
        """The fake Messages API's per-attempt plan for ``tier``'s rate-limit and overload faults."""
        faults = self.plan.targeting(f"tier:{tier}", frozenset({"api"}))

        def decide(number: int, request: Any) -> Any:
            firing = [fault for fault in faults if self._fires(fault)]
            for fault in firing:
                return behaviour_of(fault.kind).apply(self._hit(fault), number)
            return None

        return decide

    def api_tiers(self) -> set[str]:
        """Tiers whose faults need the fake Messages API (rate limits, overload)."""
        return {f.target.partition(":")[2] for f in self.plan.faults if f.family == "api"}

    # -- humans -----------------------------------------------------------------------

    def human(self, human: Human) -> Human:
        """``human`` with the plan's faults of the approvers (slow, absent, wrong)."""
        faults = self.plan.targeting("humans")
        return human if not faults else _FaultyHuman(human, faults, self)

    # -- the run ----------------------------------------------------------------------

    @property
    def observes(self) -> bool:
        """Whether the injector must see the trace (as a sink): for run faults and ``after`` triggers."""
        return any(f.family == "run" or f.trigger.after is not None for f in self.plan.faults)

    def write(self, event: EventBase) -> None:
        """Trace sink: note the event's kind; stop the run dead at a planned crash."""
        kind = event.kind  # type: ignore[attr-defined]
        self._seen.add(kind)
        if kind != "transition":
            return
        count = self._transitions[event.run_id] = self._transitions.get(event.run_id, 0) + 1
        for fault in self.plan.targeting("run"):
            behaviour = behaviour_of(fault.kind)
            if behaviour.opportunity is not None and not behaviour.opportunity(fault, count):
                continue
            if self._fires(fault):
                behaviour.apply(self._hit(fault), count, event.run_id)

    def flush(self) -> None:
        """Nothing buffered."""

    def close(self) -> None:
        """Nothing to release."""


class _FaultyModel:
    """A model whose tool calls are sometimes rewritten by the plan's tier faults."""

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
        injector = self._injector
        firing = [fault for fault in self._faults if injector._fires(fault)]
        if not firing:
            return response  # as it came: a copy costs more than the rest of this call
        for fault in firing:
            use = behaviour_of(fault.kind).apply(injector._hit(fault), use)
        content[index] = use
        return dataclasses.replace(response, content=tuple(content))


class _FaultyHuman:
    """A human whom the plan's human faults make slow, absent or wrong."""

    def __init__(self, inner: Human, faults: Sequence[Fault], injector: FaultInjector) -> None:
        self._inner = inner
        self._faults = faults
        self._injector = injector

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    async def review(self, request: Review) -> HumanDecision:
        injector = self._injector
        firing = [fault for fault in self._faults if injector._fires(fault)]
        proceed: Callable[[Review], Awaitable[HumanDecision]] = self._inner.review
        for fault in reversed(firing):
            proceed = _human_layer(behaviour_of(fault.kind).apply, injector._hit(fault), proceed)
        return await proceed(request)


def _human_layer(
    apply: Callable[..., Any], hit: Hit, proceed: Callable[[Review], Awaitable[HumanDecision]]
) -> Callable[[Review], Awaitable[HumanDecision]]:
    async def layer(request: Review) -> HumanDecision:
        decision: HumanDecision = await apply(hit, request, proceed)
        return decision

    return layer


def _refuse(problems: Sequence[tuple[str, str]]) -> None:
    """Raise one :class:`InvalidArgument` for every (fault id, why) that can never fire, if any."""
    if len(problems) == 1:
        fault_id, detail = problems[0]
        raise InvalidArgument(f"fault {fault_id!r} can never fire: {detail}")
    if problems:
        lines = [f"{len(problems)} faults can never fire:"]
        lines.extend(f"  - fault {fault_id!r}: {detail}" for fault_id, detail in problems)
        raise InvalidArgument("\n".join(lines))
