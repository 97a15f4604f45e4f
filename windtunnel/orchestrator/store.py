"""The store behind verified actions: the idempotency ledger and resource leases.

:class:`MemoryStore` keeps them in dicts; it is what concurrent runs on one event
loop share when no store is given, so that leases span them. A durable store
(SQLite) implements the same protocol and adds checkpoints.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass
from typing import Any, Literal, Protocol, TypeAlias

__all__ = ["ActionStore", "Lease", "LedgerEntry", "LedgerStatus", "MemoryStore", "default_store"]

LedgerStatus: TypeAlias = Literal["applied", "noop", "compensated"]


@dataclass(frozen=True, slots=True, kw_only=True)
class LedgerEntry:
    """One action, by idempotency key: what was done and when."""

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
    """Which life of the run recorded it: 0, then one more at every resume."""
    output: str = ""
    """What the tool answered, returned again when the action is found here."""
    events: tuple[tuple[str, dict[str, Any]], ...] = ()
    """The action's events (kind, fields): recorded again if a crash lost them."""
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


class ActionStore(Protocol):
    """Where the ledger and the leases live."""

    def ledger_get(self, key: str) -> LedgerEntry | None:
        """The entry for ``key``, if the action was recorded."""
        ...

    def ledger_put(self, entry: LedgerEntry) -> None:
        """Record (or update) an entry; durable stores commit it at once."""
        ...

    def leases(self, resource: str) -> list[Lease]:
        """The leases held on ``resource``."""
        ...

    def lease(self, lease: Lease) -> None:
        """Take (or renew) ``lease``."""
        ...

    def release(self, holder: str) -> None:
        """Drop every lease ``holder`` holds."""
        ...


class MemoryStore:
    """Ledger and leases in memory."""

    def __init__(self) -> None:
        self._ledger: dict[str, LedgerEntry] = {}
        self._leases: dict[str, dict[str, Lease]] = {}
        self._held: dict[str, set[str]] = {}  # holder -> resources, so release is cheap

    def ledger_get(self, key: str) -> LedgerEntry | None:
        """The entry for ``key``, if any."""
        return self._ledger.get(key)

    def ledger_put(self, entry: LedgerEntry) -> None:
        """Record ``entry``."""
        self._ledger[entry.key] = entry

    @property
    def ledger(self) -> list[LedgerEntry]:
        """Every entry, in the order first recorded."""
        return list(self._ledger.values())

    def leases(self, resource: str) -> list[Lease]:
        """The leases held on ``resource``."""
        return list(self._leases.get(resource, {}).values())

    def lease(self, lease: Lease) -> None:
        """Take ``lease``."""
        self._leases.setdefault(lease.resource, {})[lease.holder] = lease
        self._held.setdefault(lease.holder, set()).add(lease.resource)

    def release(self, holder: str) -> None:
        """Drop ``holder``'s leases."""
        for resource in self._held.pop(holder, ()):
            self._leases[resource].pop(holder, None)


_DEFAULTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, MemoryStore] = weakref.WeakKeyDictionary()


def default_store(loop: asyncio.AbstractEventLoop) -> MemoryStore:
    """The store runs on ``loop`` share when given none: leases span them."""
    store = _DEFAULTS.get(loop)
    if store is None:
        store = _DEFAULTS[loop] = MemoryStore()
    return store
