"""`Domain`: the one extension point a user implements for their own agent.

A domain is what a family of scenarios needs — a plain dataclass of callables, no
subclassing: its world and input models (pydantic), its simulated read and write
tools over the world (each write tool with its ``ActionSpec``), a default
workflow factory, a playbook for the simulated tiers, how to tell whether an
action is in effect in a world (for grading), and optionally a case builder,
reference checks and extra grader checks. Each built-in domain is a folder under
``windtunnel/scenarios/`` written exactly as a user would write theirs.

A domain is found by name — a built-in one, or one registered under the
``windtunnel.domains`` entry point — or by import path, ``mypkg.domain:DOMAIN``.
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from windtunnel.orchestrator import Budget, Handler, InvalidArgument, ToolRegistry, Workflow
from windtunnel.orchestrator.validation import check_choice
from windtunnel.simulators import Sim

from .schema import ActionRef, Truth

__all__ = [
    "BUILTIN_DOMAINS",
    "Case",
    "Check",
    "Domain",
    "GradeInput",
    "Kit",
    "load_callable",
    "load_domain",
    "load_factory",
    "register_domain",
]

BUILTIN_DOMAINS = {"soc": "windtunnel.scenarios.soc:DOMAIN", "oncall": "windtunnel.scenarios.oncall:DOMAIN"}
"""The built-in domains by name, and where each is defined."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Case:
    """One concrete case of a scenario: the world, the workflow's input, the truth."""

    world: Any
    """An instance of the domain's world model: the environment the tools act on."""
    input: Any
    """An instance of the domain's input model: what the workflow starts on."""
    truth: Truth
    """What a correct run does."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Kit:
    """What the harness hands a workflow factory: build the workflow from these.

    ``agent(state, system=..., allow=[...])`` returns the handler of a decision
    state, played as the experiment's config says (one simulated tier, a ladder of
    tiers, or the user's own models); ``human`` is the simulated approver, faults
    included; ``tools`` are the domain's tools over this case's world, faults included.
    """

    case: Case
    tools: ToolRegistry
    agent: Callable[..., Handler]
    human: Any
    sim: Sim


@dataclass(frozen=True, slots=True, kw_only=True)
class Check:
    """One named grader check: passed or not, and why."""

    name: str
    passed: bool
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GradeInput:
    """What a domain's own grader checks see: the case, the run, and the world after it."""

    case: Case
    final_state: str
    status: str
    data: dict[str, Any]
    events: Sequence[Any]


@dataclass(frozen=True, kw_only=True)
class Domain:
    """A family of scenarios: world, tools, workflow, playbook, grader.

    Example::

        DOMAIN = Domain(
            name="shop",
            description="An order desk: refund or escalate.",
            world=ShopWorld,
            input=Ticket,
            tools=shop_tools,             # (world, sim) -> ToolRegistry
            workflow=shop_workflow,       # (kit) -> Workflow
            playbook=shop_playbook,       # (case) -> Playbook for the simulated tiers
            in_effect=refund_in_effect,   # (world, ActionRef) -> bool
            escalation_states={"escalate"},
            terminal_states={"done", "escalated"},
            escalated_states={"escalated"},
        )
    """

    name: str
    description: str
    world: type[BaseModel]
    input: type[BaseModel]
    tools: Callable[[Any, Sim], ToolRegistry]
    workflow: Callable[[Kit], Workflow]
    playbook: Callable[[Case], Any]
    in_effect: Callable[[Any, ActionRef], bool]
    escalation_states: frozenset[str]
    """States in which the run reaches a human: entering one is an escalation."""
    terminal_states: frozenset[str]
    """The default workflow's terminal states: a truth's final states are among them."""
    escalated_states: frozenset[str]
    """The terminal states of a run that a human took over: right when faults made
    the truth's own outcome impossible."""
    build: Callable[[Case, random.Random], Case] = lambda case, rng: case
    """Expands a case (e.g. generates log lines from a count); the identity by default."""
    check: Callable[[Case], Iterable[tuple[tuple[str | int, ...], str]]] = lambda case: ()
    """References that must exist (a host named by an action is in the world):
    (field path, problem) for each one broken."""
    grade: Callable[[GradeInput], Iterable[Check]] = lambda graded: ()
    """The domain's own checks, added to the generic ones."""
    budget: Budget = field(default_factory=lambda: Budget(max_steps=50, max_duration=4 * 3600.0))
    """The budget of a scenario that states none."""
    scenarios: Path | None = None
    """The folder of the domain's built-in scenario files, if it has one."""
    humans: Sequence[str] = ("humans",)
    """Fault targets of the domain's humans."""


_LOADED: dict[str, Domain] = {}


def load_factory(target: str) -> Callable[[Kit], Workflow]:
    """The workflow factory ``"package.module:function"`` names.

    Raises:
        InvalidArgument: it cannot be imported, or it is not callable.
    """
    factory: Callable[[Kit], Workflow] = load_callable(target, what="workflow")
    return factory


def load_callable(target: str, *, what: str) -> Callable[..., Any]:
    """The function ``"package.module:function"`` names; ``what`` names it in errors
    (``"workflow"``, ``"models"``).

    Raises:
        InvalidArgument: it cannot be imported, or it is not a function.
    """
    module, _, name = target.partition(":")
    if not module or not name:
        raise InvalidArgument(f"{what}={target!r} must be 'package.module:function'")
    try:
        found = getattr(importlib.import_module(module), name)
    except Exception as exc:  # the user's module may raise anything while it imports
        raise InvalidArgument(f"{what}={target!r}: cannot import it: {type(exc).__name__}: {exc}") from None
    if not callable(found) or isinstance(found, type):
        raise InvalidArgument(f"{what}={target!r} is {type(found).__name__}, not a factory function")
    loaded: Callable[..., Any] = found
    return loaded


def register_domain(domain: Domain) -> Domain:
    """Make ``domain`` loadable by its name (for a domain defined in a script or a
    notebook rather than an importable module); returns it.

    Raises:
        InvalidArgument: another domain is registered under that name.
    """
    if not isinstance(domain, Domain):
        raise InvalidArgument(f"register_domain() needs a Domain, got {domain!r}")
    known = _LOADED.get(domain.name)
    if known is not None and known is not domain:
        raise InvalidArgument(f"a different domain is already registered as {domain.name!r}")
    _LOADED[domain.name] = domain
    return domain


def load_domain(name: str) -> Domain:
    """The domain ``name``: built-in, registered under ``windtunnel.domains``, or an
    import path ``package.module:NAME``.

    Raises:
        InvalidArgument: no such domain, or the object found is not a :class:`Domain`.
    """
    domain = _LOADED.get(name)
    if domain is not None:
        return domain
    target = BUILTIN_DOMAINS.get(name)
    if target is None:
        registered = {point.name: point.value for point in entry_points(group="windtunnel.domains")}
        target = registered.get(name)
        if target is None and ":" not in name:
            check_choice("domain", name, sorted({*BUILTIN_DOMAINS, *registered}), alternative="module:NAME")
        target = target or name
    module_name, _, attribute = target.partition(":")
    try:
        found = getattr(importlib.import_module(module_name), attribute or "DOMAIN")
    except Exception as exc:  # the user's module may raise anything while it imports
        raise InvalidArgument(
            f"domain={name!r}: cannot import {target!r}: {type(exc).__name__}: {exc}"
        ) from None
    if not isinstance(found, Domain):
        raise InvalidArgument(f"domain={name!r}: {target!r} is {type(found).__name__}, not a Domain")
    _LOADED[name] = found
    return found
