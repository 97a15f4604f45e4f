"""Fault plans: which faults a run meets, where, when and how — and the registry of fault kinds.

A :class:`FaultPlan` is data — scenario files hold it, the fuzzer generates it —
and each :class:`Fault` in it names what it hits (``tool:<name>``, ``tier:<name>``,
``humans``, ``run``), when it fires (a :class:`Trigger`) and how. ``Fault`` is a
union discriminated by ``kind``: validating a dict, or calling
``Fault(kind=..., ...)``, gives the model of that kind, which has exactly that
kind's parameters. The built-in kinds live in :mod:`~windtunnel.simulators.fault_kinds`,
each model beside its behaviour; the injector in ``injection.py`` applies a plan.

Adding a kind (from a user's domain) takes a model and its behaviour::

    class SlowDns(Fault):
        kind: Literal["slow_dns"] = "slow_dns"
        family: ClassVar[Family] = "tool"
        seconds: float = Field(gt=0)

    async def slow_dns(hit: Hit, call: ToolCall) -> Any:
        hit.record(f"{call.tool.name} waits {hit.fault.seconds:g}s for DNS")
        await asyncio.sleep(hit.fault.seconds)
        return await call.proceed(call.args)

    register_fault_kind(SlowDns, slow_dns)

From then on ``{"kind": "slow_dns", ...}`` validates in any plan and the injector
applies it. What a behaviour is called with depends on the kind's ``family``:

| family | target        | behaviour                                                          |
|--------|---------------|--------------------------------------------------------------------|
| tool   | ``tool:<n>``  | ``async (hit, call: ToolCall) -> result``; ``call.proceed(args)`` runs the tool |
| write  | ``tool:<n>``  | the same, aimed at write tools only                                |
| tier   | ``tier:<n>``  | ``(hit, use: ToolUseBlock) -> ToolUseBlock``: rewrites a model's tool call |
| api    | ``tier:<n>``  | ``(hit, attempt: int) -> HttpFault``: answers one HTTP attempt (fake API) |
| humans | ``humans``    | ``async (hit, review, proceed) -> HumanDecision``                  |
| run    | ``run``       | ``(hit, transition: int, run_id: str) -> None``: may raise ``SimulatedCrash`` |

A tool or write kind may also say where it is ``not_applicable`` (a conflicting
actor on a tool without a compensation): such a fault is recorded as not
applicable, never counted as fired.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, TypeAlias

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    model_validator,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import InitErrorDetails, PydanticCustomError, ValidationError, core_schema

from windtunnel.orchestrator.errors import InvalidArgument
from windtunnel.orchestrator.tools import Tool
from windtunnel.orchestrator.validation import check_choice, reason

__all__ = [
    "Family",
    "Fault",
    "FaultBehaviour",
    "FaultPlan",
    "Hit",
    "ToolCall",
    "Trigger",
    "behaviour_of",
    "fault_kinds",
    "register_fault_kind",
]

Family: TypeAlias = Literal["tool", "write", "tier", "api", "humans", "run"]
"""What a kind of fault hits; decides its target and how its behaviour is called (see the table)."""

_TARGETS: dict[Family, str] = {
    "tool": "a tool, e.g. target='tool:block_ip'",
    "write": "a tool, e.g. target='tool:block_ip'",
    "tier": "a model tier, e.g. target='tier:small'",
    "api": "a model tier, e.g. target='tier:small'",
    "humans": "target='humans'",
    "run": "target='run'",
}


class Trigger(BaseModel):
    """When a fault fires. Every condition given must hold; none given: every time.

    An opportunity is one call of the target (a tool call, a model call, an HTTP
    attempt, a review) or, for a crash, one transition.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    probability: float | None = Field(
        None,
        ge=0,
        le=1,
        description="Chance per opportunity, from a hash of (seed, fault id, target, opportunity number).",
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


def _kind_required(schema: dict[str, Any]) -> None:
    """A kind's JSON Schema requires ``kind``: the discriminator of the union (it has a default in Python)."""
    required = set(schema.get("required", ())) | {"kind"}
    schema["required"] = [name for name in schema.get("properties", {}) if name in required]


def _is_union(cls: type) -> bool:
    """Whether ``cls`` is :class:`Fault` itself (the union), not one of its kinds."""
    return cls.__qualname__ == "Fault" and cls.__module__ == __name__


class Fault(BaseModel):
    """One fault: what it hits, when it fires, and its kind's parameters.

    ``Fault`` itself is the union of the registered kinds: ``Fault(kind="timeout", ...)``
    and validating ``{"kind": "timeout", ...}`` both give a
    :class:`~windtunnel.simulators.fault_kinds.Timeout`. A kind subclasses it with a
    ``kind`` literal, a ``family`` and its own fields (see the module docstring).

    Example:
        >>> fault = Fault(id="slow", kind="latency_spike", target="tool:siem_search", seconds=30)
        >>> type(fault).__name__, fault.seconds
        ('LatencySpike', 30.0)
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_kind_required)

    family: ClassVar[Family]
    """What the kind hits; set by each kind."""

    id: str = Field(min_length=1, description="Unique within the plan; named by every event it causes.")
    kind: str = Field(description="The kind of fault; its parameters follow.")
    target: str = Field(description="'tool:<name>', 'tier:<name>', 'humans' or 'run'.")
    trigger: Trigger = Field(default_factory=Trigger, description="When it fires.")

    def __new__(cls, *args: Any, **data: Any) -> Any:
        # `Fault(kind=..., ...)` builds the model of that kind; its __init__ validates.
        if _is_union(cls):
            behaviour = _KINDS.get(data.get("kind"))  # type: ignore[arg-type]
            if behaviour is None:
                _validate(data)  # raises the ValidationError that names the known kinds
                raise AssertionError("unreachable")
            return super().__new__(behaviour.model)
        return super().__new__(cls)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        if not _is_union(cls):
            return handler(source)
        # Dispatched when validating, not fixed when the schema is built, so that a kind
        # registered later validates in every model that holds a Fault.
        return core_schema.no_info_plain_validator_function(
            lambda value: _validate(value),
            serialization=core_schema.plain_serializer_function_ser_schema(
                lambda fault, info: fault.model_dump(
                    mode=info.mode,
                    by_alias=bool(info.by_alias),
                    exclude_none=info.exclude_none,
                    exclude_defaults=info.exclude_defaults,
                ),
                info_arg=True,
            ),
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        if not _is_union(cls):
            return handler(schema)
        # The kinds registered when the schema is generated, as a discriminated union.
        choices = {
            kind: behaviour.model.__pydantic_core_schema__ for kind, behaviour in sorted(_KINDS.items())
        }
        return handler(core_schema.tagged_union_schema(choices, discriminator="kind"))

    @model_validator(mode="after")
    def _fits(self) -> Fault:
        prefix, _, name = self.target.partition(":")
        family = self.family
        if family in ("tool", "write"):
            fits = prefix == "tool" and bool(name)
        elif family in ("tier", "api"):
            fits = prefix == "tier" and bool(name)
        else:
            fits = self.target == family
        if not fits:
            raise InvalidArgument(
                f"target={self.target!r} does not fit kind={self.kind!r}: it needs {_TARGETS[family]}"
            )
        return self


@dataclass(slots=True, kw_only=True)
class Hit:
    """One firing of a fault, handed to its kind's behaviour."""

    fault: Any
    """The fault that fired (typed as its kind's model by the behaviour)."""
    occurrence: int
    """The opportunity it fired on (1 = its target's first call)."""
    record: Callable[[str], None]
    """Record that the fault took effect, with a detail; emits ``fault_injected``."""
    uniform: Callable[[str], float]
    """A number in [0, 1) fixed by the seed, the fault, this occurrence and a salt: the
    behaviour's only source of chance, so that faults never shift each other."""


@dataclass(slots=True, kw_only=True)
class ToolCall:
    """A call of a tool, as a tool or write kind's behaviour sees it (and, without
    ``args`` and ``proceed``, as its ``not_applicable`` sees the tool)."""

    tool: Tool
    """The tool called (its ``action`` holds the write's resource and compensation)."""
    world: Any | None
    """The world handed to the injector, if any (stale reads need one)."""
    args: Any = None
    """The call's arguments."""
    proceed: Callable[[Any], Awaitable[Any]] | None = None
    """Runs the call (and the faults inside this one): ``await call.proceed(call.args)``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FaultBehaviour:
    """A registered kind: its model and what it does (see the module docstring's table)."""

    model: type[Fault]
    apply: Callable[..., Any]
    """Called as the kind's family says, once per firing."""
    not_applicable: Callable[[Any, Any], str | None] | None = None
    """For tool and write kinds: ``(fault, ToolCall site) -> why it cannot act there, or None``."""
    opportunity: Callable[[Any, Any], bool] | None = None
    """Whether a call (a transition number, for a run kind) is an opportunity at all; default: all."""

    @property
    def family(self) -> Family:
        """The model's family."""
        return self.model.family


_KINDS: dict[str, FaultBehaviour] = {}


def register_fault_kind(
    model: type[Fault],
    apply: Callable[..., Any],
    *,
    not_applicable: Callable[[Any, Any], str | None] | None = None,
    opportunity: Callable[[Any, Any], bool] | None = None,
    replace: bool = False,
) -> None:
    """Make ``model``'s kind valid in every fault plan, applied by ``apply``.

    Raises:
        InvalidArgument: when ``model`` has no ``kind`` literal or ``family``, or its
            kind is registered already (and ``replace`` is False).
    """
    field = model.model_fields.get("kind")
    kind = None if field is None else field.default
    if not isinstance(kind, str) or not kind or _is_union(model):
        raise InvalidArgument(
            f"{model.__name__} needs a default kind, e.g. kind: Literal['slow_dns'] = 'slow_dns'"
        )
    family = getattr(model, "family", None)
    if family not in _TARGETS:
        raise InvalidArgument(f"{model.__name__}.family={family!r} must be one of {sorted(_TARGETS)}")
    if kind in _KINDS and not replace and _KINDS[kind].model is not model:
        raise InvalidArgument(f"kind={kind!r} is registered already (by {_KINDS[kind].model.__name__})")
    _KINDS[kind] = FaultBehaviour(
        model=model, apply=apply, not_applicable=not_applicable, opportunity=opportunity
    )


def fault_kinds() -> dict[str, FaultBehaviour]:
    """The registered kinds, by name: the built-in ones and any a domain added."""
    return dict(_KINDS)


def behaviour_of(kind: str) -> FaultBehaviour:
    """The registered behaviour of ``kind``."""
    return _KINDS[kind]


def _validate(value: Any) -> Fault:
    """``value`` (a fault or a dict) as the model of its kind."""
    if isinstance(value, Fault) and not _is_union(type(value)):
        return value
    kind = value.get("kind") if isinstance(value, dict) else None
    behaviour = _KINDS.get(kind) if isinstance(kind, str) else None
    if behaviour is None:
        if not isinstance(value, dict):
            raise PydanticCustomError("model_type", "a fault must be a mapping with a 'kind'")
        problem = (
            reason(check_choice, "kind", kind, sorted(_KINDS))
            if isinstance(kind, str)
            else f"kind is missing; choose one of {sorted(_KINDS)}"
        )
        # Located at the kind, so that a file's error names `faults[2].kind`.
        error = PydanticCustomError("union_tag_invalid", problem or "unknown kind")
        raise ValidationError.from_exception_data(
            "Fault", [InitErrorDetails(type=error, loc=("kind",), input=kind)]
        )
    return behaviour.model.model_validate(value)


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

    faults: list[Fault] = Field(default_factory=list, description="The faults, each with a unique id.")

    @model_validator(mode="after")
    def _unique_ids(self) -> FaultPlan:
        seen: set[str] = set()
        for fault in self.faults:
            if fault.id in seen:
                raise InvalidArgument(f"two faults have id={fault.id!r}; ids must be unique")
            seen.add(fault.id)
        return self

    def targeting(self, target: str, families: frozenset[str] | None = None) -> list[Fault]:
        """The faults aimed at ``target`` (and of one of ``families``, if given)."""
        return [f for f in self.faults if f.target == target and (families is None or f.family in families)]
