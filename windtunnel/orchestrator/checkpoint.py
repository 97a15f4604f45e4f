"""Durable runs: checkpoints, the ledger, leases, approvals and events in one SQLite file.

The engine saves a checkpoint at every transition, together with the events the
run recorded since the last one, in one transaction. A run killed between two
transitions resumes from the last checkpoint: the interrupted step runs again,
its lost events are recorded again, and the ledger — committed the moment an
action is applied — keeps it from applying anything twice.

SQLite runs in WAL mode with ``synchronous=NORMAL``: a committed transition
survives a killed process (not a power cut; pass ``synchronous="FULL"`` for that).
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Protocol, TypeAlias, runtime_checkable

import pydantic_core

from .errors import RunError
from .events import Event, event_adapter
from .store import ActionStore, Lease, LedgerEntry
from .trace import Record

__all__ = ["Approval", "Checkpoint", "CheckpointStatus", "CheckpointStore", "SqliteStore"]

CheckpointStatus: TypeAlias = Literal[
    "running", "paused", "completed", "budget_exceeded", "failed", "cancelled"
]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS checkpoints (run_id TEXT PRIMARY KEY, body TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS events (
    run_id TEXT NOT NULL, seq INTEGER NOT NULL, kind TEXT NOT NULL, sim_time REAL NOT NULL,
    wall_time REAL NOT NULL, state TEXT, body TEXT NOT NULL, PRIMARY KEY (run_id, seq)
);
CREATE TABLE IF NOT EXISTS ledger (
    key TEXT PRIMARY KEY, run_id TEXT NOT NULL, incarnation INTEGER NOT NULL, body TEXT NOT NULL,
    committed INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS leases (
    resource TEXT NOT NULL, holder TEXT NOT NULL, intent TEXT NOT NULL, at REAL NOT NULL,
    PRIMARY KEY (resource, holder)
);
CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, run_id TEXT NOT NULL, body TEXT NOT NULL);
"""


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Approval:
    """A request for a human decision, and the decision once made."""

    id: str
    run_id: str
    state: str
    proposal: str
    requested_at: float
    deadline: float
    decision: str | None = None
    """approve, reject, modify; timeout once the fail-safe was taken; None while pending."""
    by: str | None = None
    decided_at: float | None = None
    note: str = ""


@runtime_checkable
class CheckpointStore(ActionStore, Protocol):
    """A store that also keeps checkpoints, events and approvals (durable runs)."""

    def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
        """Commit ``checkpoint`` and the run's ``records`` since the last save, atomically."""
        ...

    def load(self, run_id: str) -> Checkpoint | None:
        """The run's last checkpoint."""
        ...

    def events(self, run_id: str) -> list[Event]:
        """The run's committed events, in order."""
        ...

    def claim(self, run_id: str, incarnation: int) -> bool:
        """Take the run for its next life if its checkpoint is still at ``incarnation``;
        False when another resume took it first."""
        ...

    def approval(self, approval_id: str) -> Approval | None:
        """An approval request, decided or not."""
        ...

    def put_approval(self, approval: Approval) -> None:
        """Record (or update) an approval request."""
        ...

    def pending(self) -> list[Approval]:
        """Approval requests still waiting for a decision."""
        ...


class SqliteStore:
    """Checkpoints, events, the ledger, leases and approvals in one SQLite file.

    Example:
        >>> store = SqliteStore(":memory:")
        >>> store.load("run-1") is None
        True
    """

    def __init__(self, path: str | Path, *, synchronous: Literal["NORMAL", "FULL"] = "NORMAL") -> None:
        self.path = str(path)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={synchronous}")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    # -- checkpoints and events -------------------------------------------------------

    def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
        """Commit the checkpoint and the events since the last one in one transaction."""
        rows = [
            (
                run_id,
                seq,
                kind,
                sim_time,
                wall,
                state,
                _json(
                    {
                        "kind": kind,
                        "run_id": run_id,
                        "seq": seq,
                        "sim_time": sim_time,
                        "wall_time": wall,
                        "state": state,
                        **fields,
                    }
                ),
            )
            for kind, run_id, seq, sim_time, wall, state, fields in records
        ]
        body = _json(checkpoint)
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT OR REPLACE INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
            db.execute(
                "INSERT INTO checkpoints VALUES (?, ?) "
                "ON CONFLICT(run_id) DO UPDATE SET body = excluded.body",
                (checkpoint.run_id, body),
            )
            # The actions this life of the run recorded are now committed with their
            # events; those of a life that died stay uncommitted, to be replayed.
            db.execute(
                "UPDATE ledger SET committed = 1 WHERE run_id = ? AND incarnation = ? AND committed = 0",
                (checkpoint.run_id, checkpoint.incarnation),
            )
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def load(self, run_id: str) -> Checkpoint | None:
        """The run's last checkpoint, or None."""
        row = self._db.execute("SELECT body FROM checkpoints WHERE run_id = ?", (run_id,)).fetchone()
        if row is None:
            return None
        data = json.loads(row[0])
        data["feedback"] = tuple(data["feedback"])
        return Checkpoint(**data)

    def runs(self) -> list[Checkpoint]:
        """Every run's last checkpoint."""
        ids = [row[0] for row in self._db.execute("SELECT run_id FROM checkpoints ORDER BY rowid")]
        return [checkpoint for run_id in ids if (checkpoint := self.load(run_id)) is not None]

    def claim(self, run_id: str, incarnation: int) -> bool:
        """Move the run's checkpoint to the next life, atomically, if it is still at
        ``incarnation``: of two processes resuming the run at once, one wins."""
        db = self._db
        db.execute("BEGIN IMMEDIATE")  # takes the write lock before reading
        try:
            row = db.execute("SELECT body FROM checkpoints WHERE run_id = ?", (run_id,)).fetchone()
            data = None if row is None else json.loads(row[0])
            if data is None or data.get("incarnation", 0) != incarnation:
                db.execute("ROLLBACK")
                return False
            data["incarnation"] = incarnation + 1
            db.execute("UPDATE checkpoints SET body = ? WHERE run_id = ?", (json.dumps(data), run_id))
            db.execute("COMMIT")
            return True
        except BaseException:
            db.execute("ROLLBACK")
            raise

    def events(self, run_id: str) -> list[Event]:
        """The run's committed events, in order."""
        rows = self._db.execute("SELECT body FROM events WHERE run_id = ? ORDER BY seq", (run_id,))
        return [event_adapter.validate_json(body) for (body,) in rows]

    # -- ledger and leases ------------------------------------------------------------

    def ledger_get(self, key: str) -> LedgerEntry | None:
        """The ledger entry for ``key``, if any."""
        row = self._db.execute("SELECT body, committed FROM ledger WHERE key = ?", (key,)).fetchone()
        return None if row is None else _entry(*row)

    def ledger_put(self, entry: LedgerEntry) -> None:
        """Commit ``entry`` at once: an applied action must survive a crash that follows.
        (Whether its events are committed is the checkpoint's to say.)"""
        self._db.execute(
            "INSERT INTO ledger VALUES (?, ?, ?, ?, 0) ON CONFLICT(key) "
            "DO UPDATE SET body = excluded.body, incarnation = excluded.incarnation",
            (entry.key, entry.run_id, entry.incarnation, _json(entry)),
        )

    @property
    def ledger(self) -> list[LedgerEntry]:
        """Every entry, in the order first recorded."""
        return [_entry(*row) for row in self._db.execute("SELECT body, committed FROM ledger ORDER BY rowid")]

    def leases(self, resource: str) -> list[Lease]:
        """The leases held on ``resource``."""
        rows = self._db.execute(
            "SELECT resource, intent, holder, at FROM leases WHERE resource = ?", (resource,)
        )
        return [Lease(resource=r, intent=i, holder=h, at=a) for r, i, h, a in rows]

    def lease(self, lease: Lease) -> None:
        """Take ``lease``."""
        self._db.execute(
            "INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?)",
            (lease.resource, lease.holder, lease.intent, lease.at),
        )

    def release(self, holder: str) -> None:
        """Drop ``holder``'s leases."""
        # Most runs hold no lease: a read costs far less than a write transaction.
        if self._db.execute("SELECT 1 FROM leases WHERE holder = ? LIMIT 1", (holder,)).fetchone():
            self._db.execute("DELETE FROM leases WHERE holder = ?", (holder,))

    # -- approvals --------------------------------------------------------------------

    def approval(self, approval_id: str) -> Approval | None:
        """The approval request ``approval_id``, if any."""
        row = self._db.execute("SELECT body FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        return None if row is None else Approval(**json.loads(row[0]))

    def put_approval(self, approval: Approval) -> None:
        """Record (or update) ``approval``."""
        self._db.execute(
            "INSERT INTO approvals VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
            (approval.id, approval.run_id, _json(approval)),
        )

    def pending(self) -> list[Approval]:
        """Approval requests still waiting for a decision."""
        rows = self._db.execute("SELECT body FROM approvals ORDER BY rowid")
        return [a for (body,) in rows if (a := Approval(**json.loads(body))).decision is None]


def _entry(body: str, committed: int) -> LedgerEntry:
    data = json.loads(body)
    data["events"] = tuple((kind, fields) for kind, fields in data["events"])
    data["committed"] = bool(committed)
    return LedgerEntry(**data)


def _json(value: Any) -> str:
    try:
        return pydantic_core.to_json(value).decode()
    except pydantic_core.PydanticSerializationError as exc:
        raise RunError(
            f"cannot checkpoint a value that is not JSON: {exc}; keep run data and cases JSON-able"
        ) from exc
