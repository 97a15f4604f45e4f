"""`Workflow`: states, their handlers, and the transitions allowed between them.

A workflow is checked when it is built: every problem found — unknown transition
targets, states with neither handler nor terminal status, handlers that are not
async, states unreachable from the initial state, states from which no terminal
state can be reached, a missing initial state, bad policies — is reported at once
in one :class:`WorkflowError`.
"""

from __future__ import annotations

import functools
import hashlib
import inspect
import json
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping
from dataclasses import dataclass, field
from types import FunctionType
from typing import TYPE_CHECKING, Any, TypeAlias

from .actions import ActionPolicy
from .errors import Problem, WorkflowError
from .validation import check_int, check_number, reason

if TYPE_CHECKING:
    from .context import StepContext

__all__ = ["Handler", "Outcome", "Policy", "StateSpec", "Workflow"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What a handler decided: the next state, how sure it is, and data for the run.

    Example:
        >>> Outcome(next="investigate", confidence=0.9, data={"severity": "high"})
        Outcome(next='investigate', confidence=0.9, data={'severity': 'high'})
    """

    next: str
    """The state to move to; it must be allowed from the current state."""
    confidence: float | None = None
    """Confidence in [0, 1] in this choice, when the handler has one."""
    data: Mapping[str, Any] = field(default_factory=dict)
    """Merged into the run's data and recorded in the transition event."""


Handler: TypeAlias = "Callable[[StepContext], Awaitable[Outcome]]"
"""A state handler: an async callable from the step context to an :class:`Outcome`.

The workflow accepts an ``async def`` function or method, a ``functools.partial`` of
one, or an object whose ``__call__`` is ``async def`` (as :class:`LLMAgent` is); a
plain function, even one returning an awaitable, is refused when it is built."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """What the engine does when a state's handler fails or picks an illegal next state.

    The state is re-run up to ``retries`` times, each time with feedback saying what
    went wrong; after that the run moves to ``route_to`` (typically an escalation
    state) or, when ``route_to`` is None, ends with status ``failed``.
    """

    retries: int = 2
    """How many times the state is re-run before giving up."""
    route_to: str | None = None
    """The state to route to once retries are spent; None ends the run as failed."""


@dataclass(frozen=True, slots=True)
class StateSpec:
    """A non-terminal state as the engine runs it."""

    name: str
    handler: Handler
    allowed: frozenset[str]
    """Next states the transition table allows."""
    timeout: float | None
    """Simulated seconds the handler may take; None for no limit."""


class Workflow:
    """A state machine whose transitions are declared up front and enforced.

    Example:
        >>> async def triage(ctx): return Outcome(next="close")
        >>> wf = Workflow(states={"triage": triage}, transitions={"triage": ["close"]},
        ...               initial="triage", terminal=["close"])
        >>> sorted(wf.states)
        ['close', 'triage']
    """

    def __init__(
        self,
        *,
        states: Mapping[str, Handler],
        transitions: Mapping[str, Iterable[str]],
        initial: str,
        terminal: Collection[str],
        name: str = "workflow",
        timeouts: Mapping[str, float] | None = None,
        on_refused: Policy = Policy(retries=2),
        on_error: Policy = Policy(retries=1),
        on_budget: str | None = None,
        escalate_to: str | None = None,
        actions: ActionPolicy | None = None,
    ) -> None:
        """Build and check a workflow.

        Args:
            states: handler of each non-terminal state.
            transitions: the next states each state may choose.
            initial: where every run starts.
            terminal: states that end the run; they take no handler.
            name: shown in errors and traces.
            timeouts: simulated seconds each state's handler may take.
            on_refused: policy for a handler that picks a next state not allowed.
            on_error: policy for a handler that raises, times out or returns a bad outcome.
            on_budget: terminal state recorded as final when a budget runs out;
                None keeps the state the run was in.
            escalate_to: the state a forced escalation (a conflict, a failed
                verification, a high-impact action) routes the run to; None hands
                such a step to ``on_error``.
            actions: how write actions are verified, recovered and de-conflicted.

        Raises:
            WorkflowError: listing every problem found.
        """
        self.name = name
        self.initial = initial
        self.terminal = frozenset(terminal)
        self.handlers = dict(states)
        self.transitions = {source: tuple(dict.fromkeys(targets)) for source, targets in transitions.items()}
        self.timeouts = dict(timeouts or {})
        self.on_refused = on_refused
        self.on_error = on_error
        self.on_budget = on_budget
        self.escalate_to = escalate_to
        self.actions = ActionPolicy() if actions is None else actions
        problems = [] if _known_valid(self) else _check(self)
        if problems:
            raise WorkflowError(problems, name=name)
        self.specs: dict[str, StateSpec] = {
            state: StateSpec(
                state,
                handler,
                frozenset(self.transitions.get(state, ())),
                self.timeouts.get(state),
            )
            for state, handler in self.handlers.items()
        }

    @property
    def states(self) -> frozenset[str]:
        """Every state: handled and terminal."""
        return frozenset(self.handlers) | self.terminal

    @functools.cached_property
    def fingerprint(self) -> str:
        """A digest of the workflow's shape — its states, terminal states and
        transitions — so that a run is not resumed by a changed workflow of the same name."""
        shape = {
            "name": self.name,
            "initial": self.initial,
            "terminal": sorted(self.terminal),
            "transitions": {state: sorted(targets) for state, targets in sorted(self.transitions.items())},
            "handled": sorted(self.handlers),
        }
        return hashlib.sha256(json.dumps(shape, sort_keys=True).encode()).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Workflow(name={self.name!r}, states={len(self.states)}, initial={self.initial!r})"


# Shapes of workflows found valid: a harness builds the same workflow for every run, and
# checking the shape (reachability, policies, timeouts) costs more than the rest of building it.
_VALID_SHAPES: set[tuple[Any, ...]] = set()
_MAX_SHAPES = 1024
_PLAIN = frozenset({str, int, float, bool, type(None)})


def _known_valid(wf: Workflow) -> bool:
    """Whether ``wf`` has a shape already checked valid and async handlers; remember it
    when :func:`_check` finds it valid."""
    shape = _shape(wf)
    if shape is not None and shape in _VALID_SHAPES:
        return all(callable(handler) and _is_async(handler) for handler in wf.handlers.values())
    if shape is not None and not _check(wf):
        if len(_VALID_SHAPES) >= _MAX_SHAPES:
            _VALID_SHAPES.clear()
        _VALID_SHAPES.add(shape)
        return True
    return False


def _shape(wf: Workflow) -> tuple[Any, ...] | None:
    """Everything :func:`_check` reads but the handlers, as flat values (counted, so the
    shape reads back one way) and their types (``1`` is not ``True``, nor ``1.0``); None
    when a value is not a plain string, number or None."""
    values: list[object] = [wf.initial, wf.escalate_to, wf.on_budget, len(wf.handlers), *wf.handlers]
    values += (len(wf.terminal), *wf.terminal, len(wf.transitions))
    for source, targets in wf.transitions.items():
        values += (source, len(targets), *targets)
    values.append(len(wf.timeouts))
    for state, seconds in wf.timeouts.items():
        values += (state, seconds)
    refused, error = wf.on_refused, wf.on_error
    values += (refused.retries, refused.route_to, error.retries, error.route_to)
    types = tuple(map(type, values))
    if not _PLAIN.issuperset(types):
        return None
    return (type(refused), type(error), types, tuple(values))


def _check(wf: Workflow) -> list[Problem]:
    """Every problem with the definition, in a stable order."""
    problems: list[Problem] = []
    handled = set(wf.handlers)
    known = handled | wf.terminal

    if not wf.initial:
        problems.append(Problem(message="no initial state given"))
    elif wf.initial not in known:
        problems.append(Problem(message=f"initial state {wf.initial!r} is not a state", states=(wf.initial,)))
    if not wf.terminal:
        problems.append(Problem(message="no terminal state declared"))

    for state, handler in wf.handlers.items():
        if state in wf.terminal:
            problems.append(
                Problem(message=f"state {state!r} is terminal and also has a handler", states=(state,))
            )
        if not callable(handler):
            problems.append(
                Problem(message=f"state {state!r}: handler {handler!r} is not callable", states=(state,))
            )
        elif not _is_async(handler):
            problems.append(
                Problem(
                    message=f"state {state!r}: handler {_describe(handler)} is not async; define it with "
                    "`async def` (the engine awaits it in simulated time)",
                    states=(state,),
                )
            )

    for source, targets in wf.transitions.items():
        if source in wf.terminal:
            if targets:
                problems.append(
                    Problem(
                        message=f"terminal state {source!r} has transitions to {list(targets)}",
                        states=(source,),
                    )
                )
            continue
        if source not in known:
            problems.append(
                Problem(
                    message=f"transitions declared from {source!r}, which is neither handled nor terminal",
                    states=(source,),
                )
            )
            continue
        for target in targets:
            if target not in known:
                problems.append(
                    Problem(
                        message=f"transition {source!r} -> {target!r}: {target!r} is not a state",
                        states=(source, target),
                    )
                )

    routes: list[str] = []
    for label, policy in (("on_refused", wf.on_refused), ("on_error", wf.on_error)):
        if bad := reason(check_int, f"{label}: retries", policy.retries, low=0):
            problems.append(Problem(message=bad))
        if policy.route_to is not None:
            if policy.route_to in known:
                routes.append(policy.route_to)
            else:
                problems.append(
                    Problem(
                        message=f"{label} routes to {policy.route_to!r}, which is not a state",
                        states=(policy.route_to,),
                    )
                )
    if wf.escalate_to is not None:
        if wf.escalate_to in known:
            routes.append(wf.escalate_to)
        else:
            message = f"escalate_to={wf.escalate_to!r} is not a state"
            problems.append(Problem(message=message, states=(wf.escalate_to,)))
    if wf.on_budget is not None:
        if wf.on_budget in wf.terminal:
            routes.append(wf.on_budget)
        else:
            message = f"on_budget={wf.on_budget!r} must be a terminal state"
            problems.append(Problem(message=message, states=(wf.on_budget,)))

    for state, seconds in wf.timeouts.items():
        if state not in handled:
            problems.append(
                Problem(message=f"timeout given for {state!r}, which is not a handled state", states=(state,))
            )
        elif bad := reason(
            check_number, f"timeout for {state!r}: seconds", seconds, low=0, low_open=True, finite=True
        ):
            problems.append(Problem(message=bad, states=(state,)))

    if wf.initial in known:
        edges = {state: tuple(t for t in wf.transitions.get(state, ()) if t in known) for state in known}
        # Policy and budget routes can be taken from any handled state, so their
        # targets count as reachable; they are not a way out for the "can end" check.
        reached = _reach([wf.initial, *routes], edges)
        for state in sorted(known - reached):
            problems.append(
                Problem(
                    message=f"state {state!r} cannot be reached from the initial state {wf.initial!r}",
                    states=(state,),
                )
            )
        reverse: dict[str, list[str]] = {state: [] for state in known}
        for source, targets in edges.items():
            for target in targets:
                reverse[target].append(source)
        can_end = _reach(wf.terminal, reverse)
        for state in sorted(handled - wf.terminal - can_end):
            if not wf.transitions.get(state):
                message = f"state {state!r} has no transitions and is not terminal"
            else:
                message = f"no terminal state can be reached from {state!r}"
            problems.append(Problem(message=message, states=(state,)))
    return problems


def _is_async(handler: object) -> bool:
    """Whether calling ``handler`` runs an ``async def``: a coroutine function or method,
    a partial of one, or an object whose class defines ``async def __call__``."""
    while isinstance(handler, functools.partial):
        handler = handler.func
    # Every run builds its workflow: an `async def` function, or an object of a class with
    # one as __call__ (an agent), is told by its code's flag, without inspect's layers.
    code = getattr(handler if type(handler) is FunctionType else type(handler).__call__, "__code__", None)
    if code is not None and code.co_flags & inspect.CO_COROUTINE:
        return True
    # iscoroutinefunction(obj) is False for an instance with an async __call__, and
    # getattr(cls, "__call__") on a class finds the instances' method: ask the type.
    return inspect.iscoroutinefunction(handler) or inspect.iscoroutinefunction(type(handler).__call__)


def _describe(handler: object) -> str:
    """A handler's name for a message: stable across runs (no memory address)."""
    if isinstance(handler, functools.partial):
        return f"functools.partial({_describe(handler.func)})"
    name = getattr(handler, "__qualname__", None)
    if isinstance(name, str):
        return name
    return f"{type(handler).__qualname__}()"


def _reach(start: Iterable[str], edges: Mapping[str, Iterable[str]]) -> set[str]:
    seen: set[str] = set()
    stack = list(start)
    while stack:
        state = stack.pop()
        if state not in seen:
            seen.add(state)
            stack.extend(edges.get(state, ()))
    return seen
