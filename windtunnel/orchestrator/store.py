"""The store behind verified actions: the idempotency ledger and resource leases.

:class:`MemoryStore` keeps them in dicts; it is what concurrent runs on one event
loop share when no store is given, so that leases span them. A durable store
(:class:`~windtunnel.orchestrator.SqliteStore`) implements the same protocol, adds
checkpoints, and refuses the writes of a run's stale owner (fencing).
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias

__all__ = ["ActionStore", "Lease", "LedgerEntry", "LedgerStatus", "MemoryStore", "conflicts", "default_store"]

LedgerStatus: TypeAlias = Literal[
    "pending", "applied", "unverified", "noop", "failed", "compensating", "compensated", "undo_failed"
]
"""Where an action stands; what the executor does with it when a later life finds it:

========================  =================================================================
``pending``               about to be applied: the outcome is unknown; the precheck decides
``applied``               applied; verified once ``verified`` is True, else verify it
``unverified``            applied, but verification failed for good (or its step was
                          cut short before it verified, or before the outcome of the
                          application was known): escalate
``noop``                  the precheck found it done; nothing was applied
``failed``                the tool reported an error; its answer is ``output``
``compensating``          about to be undone: the outcome is unknown; reading back decides
``compensated``           undone after verification failed: escalate
``undo_failed``           the undo itself failed (or its step was cut short while undoing):
                          the change may still be there; escalate
========================  =================================================================
"""


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    """One action, by idempotency key: where it stands and what it recorded."""

    key: str
    run_id: str
    tool: str
    resource: str
    intent: str
    status: LedgerStatus
    verified: bool
    at: float
    seq: int = 0
    """The run's sequence number when the action started."""
    incarnation: int = 0
    """Which life of the run recorded it last: 0, then one more at every resume."""
    attempt: int = 1
    """Which application: 2 and up after a failed verification."""
    output: str = ""
    """What the tool answered, returned again when the action is found here."""
    events: tuple[tuple[str, dict[str, Any]], ...] = ()
    """Every event of the action so far (kind, fields): recorded again if a crash lost them."""
    committed: bool = False
    """True once a checkpoint has committed the action's events with the run."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Lease:
    """A run's hold on a resource, with what it intends to do to it."""

    resource: str
    intent: str
    holder: str
    """The run id holding the lease."""
    at: float
    incarnation: int = 0
    """The life of the holding run that took it (a durable store refuses a stale life's lease)."""
    unsettled: bool = False
    """True while the holding run left an action on the resource with an unknown outcome
    (it died mid-way): then no other run may act on it, whatever its intent."""


def conflicts(held: Lease, wanted: Lease, opposite: str | None) -> bool:
    """Whether ``held`` conflicts with taking ``wanted``: another run holds the resource
    with another intent — the opposite one, when the action declares its opposite — or
    left an action on it unsettled."""
    if held.holder == wanted.holder:
        return False
    return held.unsettled or (held.intent != wanted.intent and (opposite is None or held.intent == opposite))


class ActionStore(Protocol):
    """Where the ledger and the leases live."""

    def ledger_get(self, key: str) -> LedgerEntry | None:
        """The entry for ``key``, if the action was recorded."""
        ...

    def ledger_put(self, entry: LedgerEntry) -> None:
        """Record (or update) an entry; durable stores commit it at once."""
        ...

    def leases(self, resource: str) -> list[Lease]:
        """The live leases on ``resource``."""
        ...

    def acquire(self, lease: Lease, *, opposite: str | None) -> Lease | None:
        """Take (or renew) ``lease`` unless a live lease :func:`conflicts` with it, as one
        atomic step; return the conflicting lease, or None once taken."""
        ...

    def release(self, holder: str) -> None:
        """Drop every lease ``holder`` holds."""
        ...


class MemoryStore:
    """Ledger and leases in memory.

    Args:
        forget_finished: drop a run's ledger entries when its leases are released
            (it finished): what the store that runs share on one event loop does,
            so that a simulation of a million runs does not keep a million ledgers.
    """

    def __init__(self, *, forget_finished: bool = False) -> None:
        self._ledger: dict[str, LedgerEntry] = {}
        self._leases: dict[str, dict[str, Lease]] = {}
        self._held: dict[str, set[str]] = {}  # holder -> resources, so release is cheap
        self._keys: dict[str, list[str]] | None = {} if forget_finished else None

    def ledger_get(self, key: str) -> LedgerEntry | None:
        """The entry for ``key``, if any."""
        return self._ledger.get(key)

    def ledger_put(self, entry: LedgerEntry) -> None:
        """Record ``entry``."""
        if self._keys is not None and entry.key not in self._ledger:
            self._keys.setdefault(entry.run_id, []).append(entry.key)
        self._ledger[entry.key] = entry

    @property
    def ledger(self) -> list[LedgerEntry]:
        """Every entry, in the order first recorded."""
        return list(self._ledger.values())

    def leases(self, resource: str) -> list[Lease]:
        """The leases held on ``resource``."""
        held = self._leases.get(resource)
        return [] if held is None else list(held.values())

    def acquire(self, lease: Lease, *, opposite: str | None) -> Lease | None:
        """Take ``lease`` unless another lease conflicts (atomic: no await in between)."""
        held = self._leases.get(lease.resource)
        if held is not None:
            for other in held.values():
                if conflicts(other, lease, opposite):
                    return other
        self._leases.setdefault(lease.resource, {})[lease.holder] = lease
        self._held.setdefault(lease.holder, set()).add(lease.resource)
        return None

    def release(self, holder: str) -> None:
        """Drop ``holder``'s leases (and, when forgetting finished runs, its ledger)."""
        for resource in self._held.pop(holder, ()):
            held = self._leases[resource]
            held.pop(holder, None)
            if not held:
                del self._leases[resource]
        if self._keys is not None:
            for key in self._keys.pop(holder, ()):
                del self._ledger[key]


_DEFAULTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MemoryStore] = weakref.WeakKeyDictionary()


def default_store(loop: asyncio.AbstractEventLoop) -> MemoryStore:
    """The store runs on ``loop`` share when given none: leases span them, and a
    finished run's ledger entries are dropped."""
    store = _DEFAULTS.get(loop)
    if store is None:
        store = _DEFAULTS[loop] = MemoryStore(forget_finished=True)
    return store
