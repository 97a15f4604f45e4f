"""Fault plans: which faults a run meets, where, when and how.

A :class:`FaultPlan` is data — scenario files hold it, the fuzzer generates it —
and each :class:`Fault` in it names what it hits (``tool:<name>``, ``tier:<name>``,
``humans``, ``run``), when it fires (a :class:`Trigger`) and how. The injector in
``injection.py`` applies a plan; validation errors name the field at fault.

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
| human_wrong              | humans          | the human decides wrongly                               |
| crash                    | run             | the run stops dead at transition ``at_transition``      |
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, model_validator

from windtunnel.orchestrator.errors import InvalidArgument

__all__ = [
    "API_KINDS",
    "HUMAN_KINDS",
    "MODEL_KINDS",
    "TOOL_KINDS",
    "WRITE_KINDS",
    "Fault",
    "FaultKind",
    "FaultPlan",
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

TOOL_KINDS = frozenset({"timeout", "latency_spike", "error", "empty_result", "partial_result"})
"""Faults of any tool's calls."""
WRITE_KINDS = frozenset({"stale_read", "silent_failure", "conflicting_actor"})
"""Faults of a write tool's change."""
MODEL_KINDS = frozenset({"hallucinated_tool_call", "malformed_arguments"})
"""Faults of a tier's answers."""
API_KINDS = frozenset({"rate_limit", "overloaded"})
"""Faults of a tier's HTTP attempts, through the fake Messages API."""
HUMAN_KINDS = frozenset({"human_slow", "human_absent", "human_wrong"})
"""Faults of the approvers."""
_NEEDS_SECONDS = {"latency_spike", "stale_read", "human_slow"}


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
            raise InvalidArgument(f"window={self.window!r} must have start < end")
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
        if self.kind in TOOL_KINDS | WRITE_KINDS:
            expected = "a tool, e.g. target='tool:block_ip'"
            fits = prefix == "tool" and bool(name)
        elif self.kind in MODEL_KINDS | API_KINDS:
            expected, fits = "a model tier, e.g. target='tier:small'", prefix == "tier" and bool(name)
        elif self.kind in HUMAN_KINDS:
            expected, fits = "target='humans'", self.target == "humans"
        else:
            expected, fits = "target='run'", self.target == "run"
        if not fits:
            raise InvalidArgument(
                f"target={self.target!r} does not fit kind={self.kind!r}: it needs {expected}"
            )
        if self.kind in _NEEDS_SECONDS and self.seconds is None:
            raise InvalidArgument(f"kind={self.kind!r} needs seconds=")
        if self.kind == "crash" and self.at_transition is None:
            raise InvalidArgument("kind='crash' needs at_transition=")
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
                raise InvalidArgument(f"two faults have id={fault.id!r}; ids must be unique")
            seen.add(fault.id)
        return self

    def targeting(self, target: str, kinds: frozenset[str] | None = None) -> list[Fault]:
        """The faults aimed at ``target`` (and of one of ``kinds``, if given)."""
        return [f for f in self.faults if f.target == target and (kinds is None or f.kind in kinds)]
