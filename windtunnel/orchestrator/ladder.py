"""`Ladder` and `LadderAgent`: confidence-based escalation, declared as data.

A ladder lists tiers from cheapest to strongest, each with the confidence its
decision must reach to stand, and may end with a human rung (no model)::

    ladder = Ladder(
        [Rung(tier="small", model=haiku, threshold=0.85),
         Rung(tier="mid", model=sonnet, threshold=0.6),
         Rung(tier="human")],
        human_state="escalate",
    )

A decision state is played by a :class:`LadderAgent` over a ladder; which states
decide, and with which ladder, is just the workflow's ``states`` mapping (each
decision state gets its own agent, with its own prompt and tools). The agent runs
the first model rung's :class:`LLMAgent`; below the rung's threshold — or when
that agent gives up — it records an ``escalated`` event and makes the decision
again, in a fresh conversation, one tier up. Past the last model rung the decision
goes to the human: to ``human_state`` when the current state may move there, else
the step raises :class:`EscalationRequired` and the engine routes the run to the
workflow's ``escalate_to``.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .agent import LLMAgent
from .context import StepContext
from .errors import AgentError, EscalationRequired, InvalidArgument
from .events import EscalationTrigger
from .model import Model
from .tools import Tool, ToolRegistry
from .validation import check_non_empty_str, check_probability, check_type, reason
from .workflow import Outcome

__all__ = ["HUMAN_TIER", "Ladder", "LadderAgent", "Rung"]

HUMAN_TIER = "human"
"""The tier a ladder without a human rung escalates to once its models are spent."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Rung:
    """One tier of a :class:`Ladder`: a model and the confidence its decision needs.

    Example:
        >>> Rung(tier="human")
        Rung(tier='human', model=None, threshold=0.0)
    """

    tier: str
    """The tier's name, e.g. ``"small"``; labels its model calls and escalations."""
    model: Model | None = None
    """The model that decides at this tier; None for the human rung, which must be last."""
    threshold: float = 0.0
    """The confidence in [0, 1] a decision needs to stand; 0 always stands. Ignored for the human rung."""

    @property
    def human(self) -> bool:
        """Whether this is the human rung (it has no model)."""
        return self.model is None


class Ladder:
    """Ordered tiers, each with a confidence threshold, optionally ending with a human.

    Example:
        >>> Ladder([Rung(tier="human")], human_state="escalate")
        Traceback (most recent call last):
        ...
        windtunnel.orchestrator.errors.InvalidArgument: invalid ladder: it has no rung with a model; \
give at least one Rung a model
    """

    __slots__ = ("human_state", "rungs")

    def __init__(self, rungs: Sequence[Rung], *, human_state: str | None = None) -> None:
        """Args:
        rungs: the tiers from first (cheapest) to last; the last may be a human rung.
        human_state: where a decision that no model rung settled goes; None (or a
            state not allowed from the deciding state) raises
            :class:`EscalationRequired` there instead.

        Raises:
            InvalidArgument: listing every problem: no rungs, no model rung, a threshold out
                of [0, 1], a human rung that is not last, a duplicate or empty tier name.
        """
        self.rungs = tuple(rungs)
        self.human_state = human_state
        problems = _check(self.rungs, human_state)
        if problems:
            raise InvalidArgument("invalid ladder: " + "; ".join(problems))

    @property
    def human_tier(self) -> str:
        """The human rung's tier name, or :data:`HUMAN_TIER` when there is none."""
        last = self.rungs[-1]
        return last.tier if last.human else HUMAN_TIER

    def __repr__(self) -> str:
        tiers = [rung.tier if rung.human else f"{rung.tier}>={rung.threshold:g}" for rung in self.rungs]
        return f"Ladder({tiers}, human_state={self.human_state!r})"


def _check(rungs: tuple[Rung, ...], human_state: str | None) -> list[str]:
    """Every problem with a ladder's definition, in rung order."""
    if not rungs:
        return ["it has no rungs; give at least one Rung with a model"]
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, rung in enumerate(rungs):
        if bad := reason(check_type, f"rungs[{index}]", rung, Rung):
            problems.append(bad)
            continue
        where = f"rung {index} ({rung.tier!r})"
        if bad := reason(check_non_empty_str, f"rung {index}: tier", rung.tier):
            problems.append(bad)
        elif rung.tier in seen:
            problems.append(f"{where} repeats the tier of rung {seen[rung.tier]}; tier names must be unique")
        else:
            seen[rung.tier] = index
        if rung.human:
            if index != len(rungs) - 1:
                problems.append(f"{where} has no model; only the last rung, the human rung, may have none")
            continue
        if bad := reason(check_probability, f"{where}: threshold", rung.threshold):
            problems.append(bad)
    if all(isinstance(rung, Rung) and rung.human for rung in rungs):
        problems.append("it has no rung with a model; give at least one Rung a model")
    if bad := reason(check_non_empty_str, "human_state", human_state, optional=True):
        problems.append(bad)
    return problems


class LadderAgent:
    """A state handler that decides with the cheapest tier sure enough, else a human.

    Example::

        investigate = LadderAgent(ladder, system="You investigate alerts.", tools=registry,
                                  allow=["threat_intel", "edr_process_tree"], max_turns=6)
        workflow = Workflow(states={"investigate": investigate, ...}, escalate_to="escalate", ...)

    A decision that stands returns the tier's :class:`Outcome` with ``data["tier"]``
    added. One that goes to the human returns ``Outcome(next=human_state)`` with
    ``data={"tier": <human tier>, "proposed": <the last tier's choice or None>}``.
    """

    def __init__(
        self,
        ladder: Ladder,
        *,
        system: str,
        tools: ToolRegistry | Iterable[Tool] = (),
        allow: Collection[str] | None = None,
        **agent_kwargs: Any,
    ) -> None:
        """Args:
        ladder: the tiers that decide, in order.
        system, tools, allow: as for :class:`LLMAgent`, shared by every tier.
        agent_kwargs: any other :class:`LLMAgent` setting (``max_turns``, ``prices``, ...),
            shared by every tier; ``model`` and ``tier`` come from the rungs.

        Raises:
            InvalidArgument: for a ladder that is not a :class:`Ladder`, ``model`` or ``tier``
                given, or a bad :class:`LLMAgent` setting.
        """
        check_type("ladder", ladder, Ladder)
        clash = sorted({"model", "tier"} & set(agent_kwargs))
        if clash:
            raise InvalidArgument(
                f"LadderAgent takes model and tier from the ladder's rungs; do not pass {clash}"
            )
        registry = tools if isinstance(tools, ToolRegistry) else ToolRegistry(tools)
        self.ladder = ladder
        self.agents: tuple[tuple[Rung, LLMAgent], ...] = tuple(
            (
                rung,
                LLMAgent(
                    model=rung.model,
                    system=system,
                    tools=registry,
                    allow=allow,
                    tier=rung.tier,
                    **agent_kwargs,
                ),
            )
            for rung in ladder.rungs
            if rung.model is not None
        )
        """Each model rung and the agent that plays it."""

    def __repr__(self) -> str:
        return f"LadderAgent({self.ladder!r})"

    async def __call__(self, ctx: StepContext) -> Outcome:
        """Decide at the first tier confident enough; else hand the decision to the human."""
        human = self.ladder.human_tier
        trigger: EscalationTrigger = "low_confidence"
        detail = ""
        proposed: dict[str, Any] | None = None
        for index, (rung, agent) in enumerate(self.agents):
            above = self.agents[index + 1][0].tier if index + 1 < len(self.agents) else human
            confidence: float | None
            try:
                outcome = await agent(ctx)
            except AgentError as exc:
                trigger = exc.trigger
                confidence, detail, proposed = None, f"{rung.tier!r} gave up: {exc}", None
            else:
                confidence = outcome.confidence
                if confidence is not None and confidence >= rung.threshold:
                    return Outcome(
                        next=outcome.next, confidence=confidence, data={**outcome.data, "tier": rung.tier}
                    )
                trigger = "low_confidence"
                detail = (
                    f"{rung.tier!r} chose {outcome.next!r} with confidence {confidence} "
                    f"< threshold {rung.threshold:g}"
                )
                proposed = {"tier": rung.tier, "next": outcome.next, "confidence": confidence, **outcome.data}
            ctx._record(
                "escalated",
                trigger=trigger,
                to=above,
                from_tier=rung.tier,
                confidence=confidence,
                detail=detail,
            )
        state = self.ladder.human_state
        if state is not None and state in ctx.allowed:
            return Outcome(next=state, data={"tier": human, "proposed": proposed})
        why = "no human_state is set" if state is None else f"{state!r} is not allowed from {ctx.state!r}"
        raise EscalationRequired(trigger, f"{detail}; the ladder is spent and {why}")
