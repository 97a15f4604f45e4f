"""The scenario file, as pydantic models: what a scenario states, with its ground truth.

A scenario names its domain and states the world, the workflow's input, the truth
(what a correct run does) and the faults it meets; ``vary`` draws details from the
seed so that one file stands for a family of cases. Every model forbids unknown
keys; the published JSON Schema (``windtunnel schema``) is generated from them.

Example (YAML)::

    id: soc-c2-beacon
    description: A plain C2 beacon on an ordinary host is blocked and verified.
    domain: soc
    vary:
      attacker: {ip: 203.0.113.0/24}
    world: {...}
    input: {...}
    truth:
      verdict: malicious
      needs_human: false
      final_states: [close]
      required_actions: [{tool: block_ip, args: {ip: "${attacker}"}}]
    faults:
      - {id: slow-intel, kind: timeout, target: "tool:threat_intel", trigger: {nth: 1}}
"""

from __future__ import annotations

import ipaddress
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from windtunnel.orchestrator import Budget, InvalidArgument
from windtunnel.orchestrator.validation import check_unique
from windtunnel.simulators import Fault, FaultPlan

__all__ = ["ActionRef", "Placeholder", "Scenario", "Truth", "Vary"]

_ID = r"^[a-z0-9][a-z0-9._-]*$"

Placeholder = Annotated[str, Field(pattern=r"^\$\{[A-Za-z_][A-Za-z0-9_]*\}$")]
"""``${name}``: a value drawn by ``vary``, where the field would otherwise need a number."""


class ActionRef(BaseModel):
    """A write action by its tool and arguments, e.g. ``{tool: block_ip, args: {ip: 203.0.113.9}}``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    tool: str = Field(min_length=1, description="The write tool.")
    args: dict[str, Any] = Field(default_factory=dict, description="Its arguments, as the tool takes them.")

    def __str__(self) -> str:
        args = ", ".join(f"{key}={value}" for key, value in sorted(self.args.items()))
        return f"{self.tool}({args})"


class Truth(BaseModel):
    """What a correct run does in this scenario's world — faults included.

    When a fault makes the right action impossible (a write that never lands), the
    grader also accepts an escalation to a human, and says which faults decided it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    verdict: str | None = Field(
        None, description="The domain's verdict, e.g. 'malicious'; None if it has none."
    )
    needs_human: bool = Field(description="Whether a correct run reaches a human.")
    final_states: list[str] = Field(min_length=1, description="The final states a correct run may end in.")
    required_actions: list[ActionRef] = Field(
        default_factory=list, description="Actions a correct run applies and verifies, in effect at the end."
    )
    forbidden_actions: list[ActionRef] = Field(
        default_factory=list, description="Actions that must not be in effect in the final world."
    )
    difficulty: Annotated[float, Field(ge=0, le=1)] | Placeholder = Field(
        0.3, description="How hard the case is, 0 (obvious) to 1; or a ${name} drawn by vary."
    )
    evidence: list[str] = Field(
        default_factory=list, description="The read tools whose answers decide the case (its key evidence)."
    )


class Vary(BaseModel):
    """A value drawn from the seed: exactly one of ``choice``, ``integer``, ``number``, ``ip``.

    Referenced as ``${name}`` anywhere in ``world``, ``input`` and ``truth`` (a whole
    value keeps its type; inside a longer string it is written in).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    choice: list[Any] | None = Field(None, min_length=1, description="One of these values.")
    integer: tuple[int, int] | None = Field(None, description="An integer in [low, high].")
    number: tuple[float, float] | None = Field(None, description="A number in [low, high], to 2 decimals.")
    ip: str | None = Field(None, description="An address in this IPv4 network, e.g. '203.0.113.0/24'.")

    @model_validator(mode="after")
    def _exactly_one(self) -> Vary:
        given = [name for name in ("choice", "integer", "number", "ip") if getattr(self, name) is not None]
        if len(given) != 1:
            raise InvalidArgument(f"give exactly one of choice, integer, number, ip; got {given or 'none'}")
        for name in ("integer", "number"):
            bounds = getattr(self, name)
            if bounds is not None and bounds[0] > bounds[1]:
                raise InvalidArgument(f"{name}={list(bounds)} must have low <= high")
        if self.ip is not None:
            try:
                ipaddress.IPv4Network(self.ip, strict=False)
            except ValueError as exc:
                raise InvalidArgument(
                    f"ip={self.ip!r} is not an IPv4 network, e.g. 203.0.113.0/24: {exc}"
                ) from None
        return self


class Scenario(BaseModel):
    """One scenario: a world, an input, the truth, the faults; checked when loaded."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(pattern=_ID, description="Unique in its suite: lowercase letters, digits, '.', '_', '-'.")
    description: str = Field(min_length=1, description="One line: what happens and why the scenario exists.")
    domain: str = Field(min_length=1, description="The domain: a built-in name, or 'package.module:DOMAIN'.")
    workflow: str | None = Field(
        None, description="The workflow factory, 'package.module:factory'; the domain's default otherwise."
    )
    tags: list[str] = Field(default_factory=list, description="Labels to select scenarios by.")
    vary: dict[str, Vary] = Field(default_factory=dict, description="Values drawn from the seed, by name.")
    world: dict[str, Any] = Field(
        default_factory=dict, description="The world, as the domain's model takes it."
    )
    input: dict[str, Any] = Field(
        default_factory=dict, description="What the workflow starts on, as the domain's model takes it."
    )
    truth: Truth = Field(description="What a correct run does.")
    faults: list[Fault] = Field(
        default_factory=list,
        description="The fault plan: each fault with id, kind, target, trigger, parameters.",
    )
    budget: Budget | None = Field(None, description="Limits on the run; the domain's default otherwise.")
    seed: int | None = Field(
        None,
        ge=0,
        description=(
            "Run on this simulation seed only (a regression the fuzzer found): 'scenario run' uses it "
            "unless given --seed; an experiment runs the scenario once per config, on this seed."
        ),
    )

    @field_validator("faults")
    @classmethod
    def _unique_fault_ids(cls, faults: list[Fault]) -> list[Fault]:
        check_unique("fault ids", [fault.id for fault in faults])
        return faults

    @property
    def plan(self) -> FaultPlan:
        """The scenario's faults as a plan."""
        return FaultPlan(faults=self.faults)
