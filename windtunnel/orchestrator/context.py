"""`StepContext`: what a handler sees of its run, and the `_Run` record behind it."""

from __future__ import annotations

import asyncio
import random
import time
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from types import MappingProxyType
from typing import Any, TypeVar, cast

from pydantic import ValidationError

from .actions import ActionPolicy
from .budget import Budget
from .checkpoint import CheckpointStore, Grant
from .errors import BudgetExhausted, TraceError
from .events import EVENT_TYPES
from .runtime import Runtime
from .store import ActionStore
from .trace import Trace
from .validation import check_non_empty_str, check_number

__all__ = ["StepContext", "current_step"]

T = TypeVar("T")


_DURABLE: dict[type, bool] = {}


def _durable(store: ActionStore) -> bool:
    """Whether ``store`` keeps checkpoints; a runtime protocol check costs microseconds,
    so the answer is kept per type."""
    kind = type(store)
    answer = _DURABLE.get(kind)
    if answer is None:
        answer = _DURABLE[kind] = isinstance(store, CheckpointStore)
    return answer


class _Run:
    """The mutable state of one run; the engine's and the handlers' shared record."""

    __slots__ = (
        "__weakref__",
        "action_policy",
        "append",
        "budget",
        "cancelled",
        "case",
        "cost",
        "data",
        "durable",
        "env",
        "fingerprint",
        "grants",
        "incarnation",
        "local",
        "loop",
        "resumed_seq",
        "run_id",
        "saved",
        "seq",
        "started",
        "state",
        "step",
        "steps",
        "store",
        "trace",
        "workflow",
    )

    def __init__(
        self,
        *,
        run_id: str,
        case: Any,
        env: Runtime,
        trace: Trace,
        budget: Budget,
        loop: asyncio.AbstractEventLoop,
        state: str,
        store: ActionStore,
        action_policy: ActionPolicy,
    ) -> None:
        self.run_id = run_id
        self.case = case
        self.env = env
        self.trace = trace
        self.append = trace.append
        self.budget = budget
        self.loop = loop
        self.state = state
        self.started = loop.time()
        self.data: dict[str, Any] = {}
        self.local: dict[str, Any] = {}
        self.store = store
        self.action_policy = action_policy
        self.step: StepContext | None = None
        # Durable runs checkpoint at every transition; `saved` is how far into the
        # trace's records the last checkpoint took this run's events.
        self.durable = cast("CheckpointStore", store) if _durable(store) else None
        self.saved = 0
        self.workflow = ""
        self.fingerprint = ""
        # A resumed run's life number, and the first sequence number after the
        # checkpoint it resumed from (events from there on were lost with a crash).
        self.incarnation = 0
        self.resumed_seq = 0
        self.cancelled = False
        # What approvals granted the run: (resource, intent) pairs; checkpointed.
        self.grants: frozenset[Grant] = frozenset()
        self.seq = 0
        self.steps = 0
        self.cost = 0.0

    def emit(self, kind: str, state: str | None, fields: dict[str, Any]) -> None:
        """Record one event with the next sequence number and both clocks."""
        seq = self.seq
        self.seq = seq + 1
        self.append((kind, self.run_id, seq, self.loop.time(), time.time(), state, fields))

    def elapsed(self) -> float:
        """Simulated seconds since the run started."""
        return self.loop.time() - self.started

    def over_cost(self) -> bool:
        limit = self.budget.max_cost
        return limit is not None and self.cost > limit


# The run in progress in this task, set once per run; its `step` is the step being
# handled. A weak reference: every timer handle copies the context, and a strong one
# would keep finished runs alive until their cancelled timers leave the heap, which
# tripled the garbage collector's work.
_CURRENT: ContextVar[weakref.ref[_Run] | None] = ContextVar("windtunnel_run", default=None)


def current_step() -> StepContext | None:
    """The step being handled in this task, or None outside a run.

    Lets code that a handler calls — a tool, a model, a simulator wrapping them —
    record events in the right run without being handed the context.
    """
    ref = _CURRENT.get()
    run = None if ref is None else ref()
    return None if run is None else run.step


class StepContext:
    """What a state's handler gets: the case, the run's data so far, feedback from
    earlier attempts, the clock, its own random stream, and the trace.

    Example:
        >>> async def triage(ctx: StepContext) -> Outcome:
        ...     severity = ctx.case["severity"]
        ...     return Outcome(next="investigate" if severity == "high" else "close")
    """

    __slots__ = ("_actions", "_rng", "_run", "_writes", "allowed", "attempt", "feedback", "state")

    def __init__(
        self, run: _Run, state: str, allowed: frozenset[str], attempt: int, feedback: tuple[str, ...]
    ) -> None:
        self._run = run
        self._rng: random.Random | None = None
        self._actions: dict[tuple[str, str], int] | None = None
        # The step's write actions not settled yet, by key (the executor's; the step
        # loop settles what a timeout or an error leaves here: executor.cut_short).
        self._writes: dict[str, Any] | None = None
        # The state being handled, and the next states the transition table allows.
        self.state = state
        self.allowed = allowed
        # 1 on first entry; higher when a policy re-runs the state, with `feedback`
        # saying why earlier attempts were refused or failed, oldest first.
        self.attempt = attempt
        self.feedback = feedback

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._run.run_id

    @property
    def case(self) -> Any:
        """The case the run works on, as given to ``run()``."""
        return self._run.case

    @property
    def data(self) -> Mapping[str, Any]:
        """Data the run's earlier outcomes produced (read-only)."""
        return MappingProxyType(self._run.data)

    @property
    def trace(self) -> Trace:
        """The trace this run records into."""
        return self._run.trace

    @property
    def store(self) -> ActionStore:
        """The idempotency ledger and leases the run's actions use."""
        return self._run.store

    @property
    def action_policy(self) -> ActionPolicy:
        """How the run's write actions are verified, recovered and de-conflicted."""
        return self._run.action_policy

    @property
    def step(self) -> int:
        """Steps taken in this run, this one included."""
        return self._run.steps

    @property
    def incarnation(self) -> int:
        """Which life of the run this is: 0, then one more at every resume."""
        return self._run.incarnation

    @property
    def seq(self) -> int:
        """The sequence number the run's next event gets."""
        return self._run.seq

    @property
    def grants(self) -> frozenset[Grant]:
        """What approvals have granted the run so far."""
        return self._run.grants

    def _grant(self, grants: frozenset[Grant]) -> None:
        """Record what an approval granted (for the approval gate)."""
        run = self._run
        run.grants = run.grants | grants

    @property
    def cost(self) -> float:
        """USD charged to the run so far."""
        return self._run.cost

    def now(self) -> float:
        """The event loop's clock, in (simulated) seconds."""
        return self._run.loop.time()

    def elapsed(self) -> float:
        """Seconds since the run started."""
        return self._run.elapsed()

    @property
    def rng(self) -> random.Random:
        """This step's random stream, from the runtime: named by run, state and step
        number, so that a step run again after a crash draws what it drew before."""
        if self._rng is None:
            run = self._run
            # Not a cached stream: one per step would pile up in the runtime.
            self._rng = random.Random(run.env.seed_for(f"{run.run_id}/{self.state}/{run.steps}"))
        return self._rng

    def occurrence(self, name: str, arguments: str) -> int:
        """How many times this step has made this call before (0 the first time);
        a step that runs again makes its calls in the same order."""
        seen = self._actions
        if seen is None:
            seen = self._actions = {}
        count = seen.get((name, arguments), 0)
        seen[name, arguments] = count + 1
        return count

    def stream(self, name: str) -> random.Random:
        """The run's random stream ``name`` (e.g. ``"tools/siem"``), from the runtime."""
        return self._run.env.rng(f"{self._run.run_id}/{name}")

    def shared(self, key: str, factory: Callable[[], T]) -> T:
        """Per-run state shared across steps (e.g. circuit breakers), made on first use."""
        local = self._run.local
        if key not in local:
            local[key] = factory()
        value: T = local[key]
        return value

    def new_id(self, prefix: str) -> str:
        """A new id from the runtime (deterministic under simulation)."""
        return self._run.env.new_id(prefix)

    def charge(self, usd: float, *, source: str, detail: str = "") -> None:
        """Charge ``usd`` to the run for ``source`` (e.g. ``"human:analyst"``),
        recorded as a ``cost_charged`` event: every cost in a run has its event.

        Raises:
            InvalidArgument: ``usd`` is not a finite number >= 0, or ``source`` is empty.
            BudgetExhausted: when the total passes the run's cost budget.
        """
        check_number("usd", usd, low=0, finite=True)
        check_non_empty_str("source", source)
        self._run.emit("cost_charged", self.state, {"cost": usd, "source": source, "detail": detail})
        self._add_cost(usd)

    def _add_cost(self, usd: float) -> None:
        """Add a cost already recorded on its own event (a model call's) to the run."""
        run = self._run
        run.cost += usd
        if run.over_cost():
            raise BudgetExhausted(
                f"run {run.run_id!r} spent ${run.cost:.6f} of max_cost=${run.budget.max_cost}"
            )

    def emit(self, kind: str, **fields: Any) -> None:
        """Record an event of ``kind`` in this state, e.g. ``ctx.emit("tool_called", ...)``.

        Raises:
            TraceError: for an unknown kind, or fields that do not fit it (checked now,
                not when the trace is read).
        """
        model = EVENT_TYPES.get(kind)
        if model is None:
            raise TraceError(f"unknown event kind={kind!r}; known: {sorted(EVENT_TYPES)}")
        run = self._run
        try:
            model.model_validate(
                {"run_id": run.run_id, "seq": run.seq, "sim_time": 0.0, "wall_time": 0.0, "state": self.state}
                | fields
            )
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(map(str, error['loc'])) or '(event)'}: {error['msg']}" for error in exc.errors()
            )
            raise TraceError(f"malformed {kind!r} event in state {self.state!r}: {problems}") from exc
        run.emit(kind, self.state, fields)

    def _record(self, kind: str, **fields: Any) -> None:
        """Record an event the orchestrator itself builds: its fields are right by
        construction, and checking them would cost the hot path."""
        self._run.emit(kind, self.state, fields)
