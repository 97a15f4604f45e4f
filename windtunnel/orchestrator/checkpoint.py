"""What a durable run keeps: checkpoints, approvals and grants, and the store protocol.

The engine saves a :class:`Checkpoint` at every transition, together with the
events the run recorded since the last one, in one transaction. A run killed
between two transitions resumes from the last checkpoint: the interrupted step
runs again, its lost events are recorded again, and the ledger — written before
an action touches the world and again once it has — keeps it from applying
anything twice. :class:`~windtunnel.orchestrator.SqliteStore` is the store.

**What goes in comes back.** A durable run's case, and the data its outcomes
produce, must be JSON values: dicts with string keys, lists, strings, finite
numbers, booleans and None. Anything else would come back changed after a resume
(a set as a list, a datetime as a string, an int key as a string), so it is
refused where it enters: ``run()`` raises :class:`RunError` for such a case before
the run starts, and an outcome with such data is an invalid outcome, handled by
the workflow's error policy. :func:`json_problem` says what is wrong and where.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

from .events import Event
from .store import ActionStore, Lease
from .trace import Record

__all__ = [
    "Approval",
    "Checkpoint",
    "CheckpointStatus",
    "CheckpointStore",
    "Grant",
    "RunInfo",
    "json_problem",
]

CheckpointStatus: TypeAlias = Literal[
    "running", "paused", "completed", "budget_exceeded", "failed", "cancelled"
]


@dataclass(frozen=True, slots=True)
class Grant:
    """What an approval authorizes: one intent on one resource, e.g.
    ``Grant("host:db-01", "isolate")``. A high-impact action runs without escalating
    only when an approval granted exactly its resource and intent."""

    resource: str
    intent: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Checkpoint:
    """Where a run stands: enough to resume it in another process."""

    run_id: str
    workflow: str
    status: CheckpointStatus
    state: str
    attempt: int
    feedback: tuple[str, ...]
    data: dict[str, Any]
    steps: int
    seq: int
    """The sequence number the next event gets."""
    cost: float
    elapsed: float
    """Simulated seconds the run had taken when saved."""
    case: Any
    budget: dict[str, Any]
    incarnation: int = 0
    """0 for the run's first life; one more at every resume."""
    started: float = 0.0
    """The event loop's clock when the run started."""
    saved_at: float = 0.0
    """The event loop's clock when this checkpoint was saved."""
    grants: tuple[Grant, ...] = ()
    """What approvals granted the run so far."""
    fingerprint: str = ""
    """The workflow's shape when saved (:attr:`Workflow.fingerprint`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    """A request for a human decision, and the decision once made."""

    id: str
    run_id: str
    state: str
    proposal: str
    requested_at: float
    deadline: float
    grants: tuple[Grant, ...] = ()
    """What an approval of this request authorizes."""
    decision: str | None = None
    """approve, reject, modify; timeout once the fail-safe was taken; answered for a
    review awaited in-process (``await_review``); None while pending."""
    by: str | None = None
    decided_at: float | None = None
    note: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    """A run in a durable store, as ``windtunnel runs list`` shows it."""

    checkpoint: Checkpoint
    owner: str | None
    """The process driving the run now (``host:pid:nonce``), if any."""
    owner_expires: float
    """Wall-clock time at which the owner's lease lapses unless renewed."""
    owner_alive: bool
    """Whether the owner's lease is live: not expired, and its process not known dead."""
    leases: tuple[Lease, ...]
    """The resource leases the run holds."""
    pending_approvals: tuple[str, ...]
    """Ids of the run's undecided approval requests."""


@runtime_checkable
class CheckpointStore(ActionStore, Protocol):
    """A store that also keeps checkpoints, events and approvals (durable runs), and
    lets a run have one live owner at a time."""

    def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
        """Commit ``checkpoint`` and the run's ``records`` since the last save, atomically.

        Raises:
            RunTakenOver: another life of the run owns it now.
        """
        ...

    def load(self, run_id: str) -> Checkpoint | None:
        """The run's last checkpoint."""
        ...

    def events(self, run_id: str) -> list[Event]:
        """The run's committed events, in order."""
        ...

    def claim(self, run_id: str, incarnation: int) -> None:
        """Take the run for its next life, if its checkpoint is still at ``incarnation``
        and no live owner holds it.

        Raises:
            RunError: saying who holds it, or that another resume took it first.
        """
        ...

    def release_owner(self, run_id: str, incarnation: int) -> None:
        """Give up ownership of the run at the end of life ``incarnation``."""
        ...

    def approval(self, approval_id: str) -> Approval | None:
        """An approval request, decided or not."""
        ...

    def put_approval(self, approval: Approval, *, if_pending: bool = False) -> bool:
        """Record (or update) an approval request; with ``if_pending``, only if it is
        still undecided (a decision and a timeout cannot both win). True if written."""
        ...

    def pending(self) -> list[Approval]:
        """Approval requests still waiting for a decision."""
        ...


def json_problem(value: Any, where: str) -> str | None:
    """Why ``value`` is not a JSON value that comes back unchanged, naming the path
    to the offending part (``where`` is its name, e.g. ``"case"``); None when it is.

    Example:
        >>> json_problem({"ips": {"10.0.0.1"}}, "case")
        "case['ips'] is of type set; a durable run keeps only JSON values (dict with str keys, list, str, finite number, bool, None)"
        >>> json_problem({"n": 1, "tags": ["a"]}, "case") is None
        True
    """  # noqa: E501
    kind = type(value)
    if value is None or kind is str or kind is bool or kind is int:
        return None
    if kind is float:
        if math.isfinite(value):
            return None
        return f"{where} is {value!r}, which JSON cannot hold; use None or a finite number"
    if kind is list:
        for index, item in enumerate(value):
            problem = json_problem(item, f"{where}[{index}]")
            if problem is not None:
                return problem
        return None
    if kind is dict:
        for key, item in value.items():
            if type(key) is not str:
                return f"{where} has the key {key!r}, a {type(key).__name__}; JSON keys are strings"
            problem = json_problem(item, f"{where}[{key!r}]")
            if problem is not None:
                return problem
        return None
    return (
        f"{where} is of type {kind.__name__}; a durable run keeps only JSON values "
        "(dict with str keys, list, str, finite number, bool, None)"
    )
