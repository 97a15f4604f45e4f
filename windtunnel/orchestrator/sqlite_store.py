"""`SqliteStore`: checkpoints, events, the ledger, leases and approvals in one SQLite file.

**Durability.** WAL mode with ``synchronous=NORMAL``: a committed transition
survives a killed process (not a power cut; pass ``synchronous="FULL"`` for that).

**One live owner.** A run is driven by one process at a time: the life that
started or resumed it holds an owner lease (``host:pid:nonce``, expiring
``owner_ttl`` wall-clock seconds after its last renewal; every checkpoint and
ledger write renews it). ``resume()`` refuses a run whose owner is live; a lease
lapses when it expires, at once when its process is known dead (same host), or
when ``windtunnel runs release`` releases it. Every write of a life that lost its
run — checkpoint, events, ledger entry, lease — is refused with
:class:`RunTakenOver` (fencing by the run's incarnation), and since the executor
writes its ledger entry *before* an action touches the world, a stale owner stops
before applying anything. A run's resource leases live as long as its owner's
lease (or, for a paused run, until it is resumed or released).

**Damage.** A file that is not a store (empty, truncated, overwritten, of another
schema version, missing a table), an unreadable row, or a run whose events do not
cover its checkpoint raises :class:`StoreError` naming the file, the run and the
sequence number — never a raw ``sqlite3`` error, never a silent repair.

**Many processes.** Writers take SQLite's single write lock in turn and wait for it
up to ``busy_timeout`` seconds, then raise :class:`StoreBusy`. Measured on 2 cores
(``benchmarks/bench_store_contention.py``): see the README for the figures; a
handful of processes per file is the supported range — more contend for one lock.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal

import pydantic_core
from pydantic import ValidationError

from .checkpoint import Approval, Checkpoint, Grant, RunInfo
from .errors import RunError, RunTakenOver, StoreBusy, StoreError
from .events import Event, event_adapter
from .store import Lease, LedgerEntry
from .trace import Record

__all__ = ["SCHEMA_VERSION", "SqliteStore"]

SCHEMA_VERSION = 1
"""The version of the store's tables; a store of another version is refused."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT PRIMARY KEY, incarnation INTEGER NOT NULL, owner TEXT, owner_expires REAL NOT NULL,
    status TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS cases (run_id TEXT PRIMARY KEY, body TEXT NOT NULL);
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
    incarnation INTEGER NOT NULL, PRIMARY KEY (resource, holder)
);
CREATE TABLE IF NOT EXISTS approvals (id TEXT PRIMARY KEY, run_id TEXT NOT NULL, body TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS ledger_by_run ON ledger (run_id, incarnation, committed);
CREATE INDEX IF NOT EXISTS leases_by_holder ON leases (holder);
"""
_TABLES = ("meta", "checkpoints", "cases", "events", "ledger", "leases", "approvals")
_ENDED = frozenset({"completed", "budget_exceeded", "failed", "cancelled"})
_HOST = socket.gethostname()


class SqliteStore:
    """Checkpoints, events, the ledger, leases and approvals in one SQLite file.

    Args:
        path: the file (created when it does not exist), or ``":memory:"``.
        synchronous: ``"NORMAL"`` survives a killed process; ``"FULL"`` a power cut too.
        busy_timeout: seconds a write waits for another process's lock before
            :class:`StoreBusy`.
        owner_ttl: wall-clock seconds an owner lease lasts without renewal.
        clock: the wall clock that leases are measured on (``time.time``).

    Example:
        >>> store = SqliteStore(":memory:")
        >>> store.load("run-1") is None
        True
    """

    def __init__(
        self,
        path: str | Path,
        *,
        synchronous: Literal["NORMAL", "FULL"] = "NORMAL",
        busy_timeout: float = 5.0,
        owner_ttl: float = 600.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = str(path)
        self.owner = f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"
        """This store's owner id: the lives of runs driven through it own them under it."""
        self.owner_ttl = owner_ttl
        self.busy_timeout = busy_timeout
        self._clock = clock
        # run id -> wall time after which the owner lease is renewed at the next write
        self._renew: dict[str, float] = {}
        self._started: set[str] = set()  # runs whose first checkpoint this store wrote
        self._unsaved: set[str] = set()  # runs with ledger entries their next checkpoint commits
        memory = self.path == ":memory:"
        existed = not memory and Path(self.path).exists()
        if existed and Path(self.path).is_file() and Path(self.path).stat().st_size == 0:
            raise StoreError(
                f"{self.path!r} is an empty file, not a windtunnel store; delete it to start a new store",
                path=self.path,
            )
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, timeout=busy_timeout)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={synchronous}")
            if existed:
                self._check_schema()
            else:
                self._create()
        except sqlite3.DatabaseError as exc:
            raise self._error(exc, "cannot open it") from exc

    def _create(self) -> None:
        db = self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            version = db.execute("PRAGMA user_version").fetchone()[0]
            if version == 0:  # another process may have created it meanwhile
                for statement in _SCHEMA.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT OR REPLACE INTO meta VALUES ('format', 'windtunnel store')")
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self._check_schema()

    def _check_schema(self) -> None:
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        tables = {row[0] for row in self._db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if version == 0 and "meta" not in tables:
            what = (
                "an empty SQLite database" if not tables else f"a SQLite database of tables {sorted(tables)}"
            )
            raise StoreError(f"{self.path!r} is {what}, not a windtunnel store", path=self.path)
        if version != SCHEMA_VERSION:
            raise StoreError(
                f"{self.path!r} is a windtunnel store of schema version {version}; this windtunnel "
                f"reads version {SCHEMA_VERSION} only",
                path=self.path,
            )
        missing = [table for table in _TABLES if table not in tables]
        if missing:
            raise StoreError(
                f"{self.path!r} is damaged: table(s) {missing} are missing; it is not repaired "
                "silently, since a run resumed from it would have gaps",
                path=self.path,
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    def _error(self, exc: sqlite3.Error, doing: str, run_id: str | None = None) -> StoreError:
        """The store error for a failed SQLite call."""
        text = str(exc)
        if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
            return StoreBusy(
                f"{self.path!r} stayed locked by other processes for more than "
                f"busy_timeout={self.busy_timeout:g}s ({doing}); fewer processes per store, or a "
                "longer busy_timeout",
                path=self.path,
                run_id=run_id,
            )
        run = "" if run_id is None else f" (run {run_id!r})"
        return StoreError(f"{self.path!r}{run}: {doing}: {text}", path=self.path, run_id=run_id)

    def _now(self) -> float:
        return self._clock()

    # -- checkpoints and events -------------------------------------------------------

    def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
        """Commit the checkpoint and the events since the last one in one transaction,
        as the run's owner; the first save of a run creates it.

        Raises:
            RunTakenOver: another life owns the run now.
            RunError: a new run whose id the store already holds.
        """
        run_id = checkpoint.run_id
        rows = [
            (
                rid,
                seq,
                kind,
                sim_time,
                wall,
                state,
                _json(
                    {
                        "kind": kind,
                        "run_id": rid,
                        "seq": seq,
                        "sim_time": sim_time,
                        "wall_time": wall,
                        "state": state,
                        **fields,
                    }
                ),
            )
            for kind, rid, seq, sim_time, wall, state, fields in records
        ]
        body = _json(_body(checkpoint))
        status = checkpoint.status
        # A run that paused or ended has no live owner: the next resume needs no wait.
        holds = status == "running"
        now = self._now()
        expires = now + self.owner_ttl if holds else 0.0
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                if run_id not in self._started and checkpoint.incarnation == 0:
                    db.execute(
                        "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
                        (run_id, 0, self.owner if holds else None, expires, status, body),
                    )
                    # The case once, in a table of its own: a row is rewritten whole at
                    # every checkpoint, and a case may be megabytes.
                    db.execute("INSERT INTO cases VALUES (?, ?)", (run_id, _json(checkpoint.case)))
                    self._started.add(run_id)
                else:
                    fenced = db.execute(
                        "UPDATE checkpoints SET status = ?, body = ?, owner = ?, owner_expires = ? "
                        "WHERE run_id = ? AND incarnation = ? AND owner = ?",
                        (
                            status,
                            body,
                            self.owner if holds else None,
                            expires,
                            run_id,
                            checkpoint.incarnation,
                            self.owner,
                        ),
                    ).rowcount
                    if not fenced:
                        raise self._taken_over(run_id, checkpoint.incarnation, "its checkpoint")
                db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", rows)
                if run_id in self._unsaved:
                    # The actions this life recorded are committed with their events;
                    # those of a life that died stay uncommitted, to be replayed.
                    db.execute(
                        "UPDATE ledger SET committed = 1 "
                        "WHERE run_id = ? AND incarnation = ? AND committed = 0",
                        (run_id, checkpoint.incarnation),
                    )
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        except sqlite3.IntegrityError as exc:
            if "checkpoints" in str(exc):
                raise RunError(
                    f"run_id={run_id!r} is already in {self!r}: resume() it, or start the run with another id"
                ) from exc
            seqs = [row[1] for row in rows]
            raise StoreError(
                f"{self.path!r}: events {seqs[0]}..{seqs[-1]} of run {run_id!r} are already stored: "
                "two writers recorded the same events",
                path=self.path,
                run_id=run_id,
                seq=seqs[0] if seqs else None,
            ) from exc
        except sqlite3.Error as exc:
            raise self._error(exc, "saving a checkpoint", run_id) from exc
        self._unsaved.discard(run_id)
        self._renew[run_id] = now + self.owner_ttl / 4 if holds else float("inf")

    def load(self, run_id: str) -> Checkpoint | None:
        """The run's last checkpoint, or None.

        Raises:
            StoreError: the checkpoint row is unreadable.
        """
        try:
            row = self._db.execute(
                "SELECT c.incarnation, c.body, cases.body FROM checkpoints AS c "
                "LEFT JOIN cases ON cases.run_id = c.run_id WHERE c.run_id = ?",
                (run_id,),
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc, "reading a checkpoint", run_id) from exc
        if row is None:
            return None
        incarnation, body, case = row
        try:
            data = json.loads(body)
            data["feedback"] = tuple(data["feedback"])
            data["grants"] = tuple(Grant(resource, intent) for resource, intent in data["grants"])
            return Checkpoint(**data, case=json.loads(case), incarnation=incarnation)
        except (ValueError, TypeError, KeyError) as exc:
            raise StoreError(
                f"{self.path!r}: the checkpoint of run {run_id!r} is damaged ({type(exc).__name__}: {exc}); "
                "it cannot be resumed",
                path=self.path,
                run_id=run_id,
            ) from exc

    def runs(self) -> list[RunInfo]:
        """Every run in the store, with its owner, leases and pending approvals."""
        try:
            rows = self._db.execute(
                "SELECT run_id, owner, owner_expires FROM checkpoints ORDER BY rowid"
            ).fetchall()
            leases = self._db.execute(
                "SELECT resource, intent, holder, at, incarnation FROM leases ORDER BY rowid"
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "listing runs") from exc
        pending: dict[str, list[str]] = {}
        for approval in self.pending():
            pending.setdefault(approval.run_id, []).append(approval.id)
        held: dict[str, list[Lease]] = {}
        for resource, intent, holder, at, incarnation in leases:
            held.setdefault(holder, []).append(
                Lease(resource=resource, intent=intent, holder=holder, at=at, incarnation=incarnation)
            )
        now = self._now()
        infos = []
        for run_id, owner, expires in rows:
            checkpoint = self.load(run_id)
            assert checkpoint is not None  # listed a moment ago; runs are never deleted
            infos.append(
                RunInfo(
                    checkpoint=checkpoint,
                    owner=owner,
                    owner_expires=expires,
                    owner_alive=_alive(owner, expires, now),
                    leases=tuple(held.get(run_id, ())),
                    pending_approvals=tuple(pending.get(run_id, ())),
                )
            )
        return infos

    def claim(self, run_id: str, incarnation: int) -> None:
        """Take the run for its next life, atomically: refused while another owner's
        lease is live, or when another resume took the run first.

        Raises:
            RunError: saying why the run cannot be taken.
        """
        db = self._db
        now = self._now()
        try:
            db.execute("BEGIN IMMEDIATE")  # the write lock first: two claimers serialize here
            try:
                row = db.execute(
                    "SELECT incarnation, owner, owner_expires, status FROM checkpoints WHERE run_id = ?",
                    (run_id,),
                ).fetchone()
                problem = _unclaimable(run_id, row, incarnation, self.owner, now)
                if problem is not None:
                    db.execute("ROLLBACK")
                    raise RunError(problem)
                db.execute(
                    "UPDATE checkpoints SET incarnation = ?, owner = ?, owner_expires = ? WHERE run_id = ?",
                    (incarnation + 1, self.owner, now + self.owner_ttl, run_id),
                )
                db.execute("COMMIT")
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc, "claiming a run", run_id) from exc
        self._started.add(run_id)
        self._renew[run_id] = now + self.owner_ttl / 4

    def release_owner(self, run_id: str, incarnation: int) -> None:
        """Give up ownership of the run at the end of life ``incarnation`` (a no-op if
        another life owns it)."""
        self._renew.pop(run_id, None)
        try:
            self._db.execute(
                "UPDATE checkpoints SET owner = NULL, owner_expires = 0 "
                "WHERE run_id = ? AND incarnation = ? AND owner = ?",
                (run_id, incarnation, self.owner),
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "releasing a run", run_id) from exc

    def release_run(self, run_id: str, *, force: bool = False) -> RunInfo:
        """Release an abandoned run: its owner lease and its resource leases, so that
        it can be resumed and others may act on its resources. Returns the run as it was.

        Raises:
            RunError: no such run, or its owner is live (unless ``force``).
        """
        info = next((info for info in self.runs() if info.checkpoint.run_id == run_id), None)
        if info is None:
            raise RunError(f"no run {run_id!r} in {self!r}")
        if info.owner_alive and not force:
            raise RunError(
                f"run {run_id!r} is owned by {info.owner} until {_iso(info.owner_expires)}, which is "
                "live; release it only if that process is gone (force=True, or --force)"
            )
        try:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute(
                "UPDATE checkpoints SET owner = NULL, owner_expires = 0 WHERE run_id = ?", (run_id,)
            )
            self._db.execute("DELETE FROM leases WHERE holder = ?", (run_id,))
            self._db.execute("COMMIT")
        except sqlite3.Error as exc:
            self._db.execute("ROLLBACK")
            raise self._error(exc, "releasing a run", run_id) from exc
        return info

    def events(self, run_id: str) -> list[Event]:
        """The run's committed events, in order.

        Raises:
            StoreError: an event is unreadable (naming its run and seq).
        """
        try:
            rows = self._db.execute(
                "SELECT seq, body FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "reading events", run_id) from exc
        events = []
        for seq, body in rows:
            try:
                events.append(event_adapter.validate_json(body))
            except ValidationError as exc:
                problem = exc.errors()[0]
                where = ".".join(map(str, problem["loc"])) or "(event)"
                raise StoreError(
                    f"{self.path!r}: event seq {seq} of run {run_id!r} is unreadable: "
                    f"{where}: {problem['msg']}",
                    path=self.path,
                    run_id=run_id,
                    seq=seq,
                ) from exc
        return events

    # -- ledger and leases ------------------------------------------------------------

    def ledger_get(self, key: str) -> LedgerEntry | None:
        """The ledger entry for ``key``, if any."""
        try:
            row = self._db.execute(
                "SELECT body, committed, run_id FROM ledger WHERE key = ?", (key,)
            ).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc, "reading the ledger") from exc
        return None if row is None else self._entry(*row)

    def ledger_put(self, entry: LedgerEntry) -> None:
        """Commit ``entry`` at once, as the run's owner: an action must be on record
        before it touches the world, and its outcome as soon as it has one.

        Raises:
            RunTakenOver: another life owns the run now; the action must not go on.
        """
        run_id = entry.run_id
        try:
            written = self._db.execute(
                "INSERT INTO ledger SELECT ?, ?, ?, ?, 0 WHERE EXISTS (SELECT 1 FROM checkpoints "
                "WHERE run_id = ? AND incarnation = ? AND owner = ?) ON CONFLICT(key) DO UPDATE SET "
                "body = excluded.body, incarnation = excluded.incarnation, committed = 0",
                (
                    entry.key,
                    run_id,
                    entry.incarnation,
                    _json(_ledger_body(entry)),
                    run_id,
                    entry.incarnation,
                    self.owner,
                ),
            ).rowcount
            if not written:
                raise self._taken_over(run_id, entry.incarnation, f"ledger entry {entry.key!r}")
            self._unsaved.add(run_id)
            if self._clock() >= self._renew.get(run_id, 0.0):
                self._renew_owner(run_id, entry.incarnation)
        except sqlite3.Error as exc:
            raise self._error(exc, "writing the ledger", run_id) from exc

    def _renew_owner(self, run_id: str, incarnation: int) -> None:
        now = self._now()
        self._db.execute(
            "UPDATE checkpoints SET owner_expires = ? WHERE run_id = ? AND incarnation = ? AND owner = ?",
            (now + self.owner_ttl, run_id, incarnation, self.owner),
        )
        self._renew[run_id] = now + self.owner_ttl / 4

    def _taken_over(self, run_id: str, incarnation: int, what: str) -> RunTakenOver:
        row = self._db.execute(
            "SELECT incarnation, owner FROM checkpoints WHERE run_id = ?", (run_id,)
        ).fetchone()
        now = "no checkpoint" if row is None else f"life {row[0]}, owner {row[1]}"
        return RunTakenOver(
            f"run {run_id!r}: life {incarnation} of owner {self.owner} lost the run ({now}); "
            f"{what} is refused and this life stops",
            path=self.path,
            run_id=run_id,
        )

    @property
    def ledger(self) -> list[LedgerEntry]:
        """Every entry, in the order first recorded."""
        rows = self._db.execute("SELECT body, committed, run_id FROM ledger ORDER BY rowid").fetchall()
        return [self._entry(*row) for row in rows]

    def _entry(self, body: str, committed: int, run_id: str) -> LedgerEntry:
        try:
            data = json.loads(body)
            data["events"] = tuple((kind, fields) for kind, fields in data["events"])
            return LedgerEntry(**data, committed=bool(committed))
        except (ValueError, TypeError, KeyError) as exc:
            raise StoreError(
                f"{self.path!r}: a ledger entry of run {run_id!r} is damaged ({type(exc).__name__}: {exc})",
                path=self.path,
                run_id=run_id,
            ) from exc

    def leases(self, resource: str) -> list[Lease]:
        """The live leases on ``resource``: those of runs whose owner is live, or paused."""
        try:
            rows = self._db.execute(
                "SELECT l.resource, l.intent, l.holder, l.at, l.incarnation, "
                "c.owner, c.owner_expires, c.status "
                "FROM leases AS l LEFT JOIN checkpoints AS c ON c.run_id = l.holder WHERE l.resource = ?",
                (resource,),
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "reading leases") from exc
        now = self._now()
        return [
            Lease(resource=r, intent=i, holder=h, at=a, incarnation=n)
            for r, i, h, a, n, owner, expires, status in rows
            if status is None or status == "paused" or owner == self.owner or _alive(owner, expires, now)
        ]

    def lease(self, lease: Lease) -> None:
        """Take ``lease`` as the holding run's owner.

        Raises:
            RunTakenOver: another life owns the holding run now.
        """
        try:
            written = self._db.execute(
                "INSERT OR REPLACE INTO leases SELECT ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM checkpoints "
                "WHERE run_id = ? AND incarnation = ? AND owner = ?)",
                (
                    lease.resource,
                    lease.holder,
                    lease.intent,
                    lease.at,
                    lease.incarnation,
                    lease.holder,
                    lease.incarnation,
                    self.owner,
                ),
            ).rowcount
        except sqlite3.Error as exc:
            raise self._error(exc, "taking a lease", lease.holder) from exc
        if not written:
            raise self._taken_over(lease.holder, lease.incarnation, f"the lease on {lease.resource}")

    def release(self, holder: str) -> None:
        """Drop ``holder``'s leases."""
        try:
            # Most runs hold no lease: a read costs far less than a write transaction.
            if self._db.execute("SELECT 1 FROM leases WHERE holder = ? LIMIT 1", (holder,)).fetchone():
                self._db.execute("DELETE FROM leases WHERE holder = ?", (holder,))
        except sqlite3.Error as exc:
            raise self._error(exc, "releasing leases", holder) from exc

    # -- approvals --------------------------------------------------------------------

    def approval(self, approval_id: str) -> Approval | None:
        """The approval request ``approval_id``, if any."""
        try:
            row = self._db.execute("SELECT body FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc, "reading an approval") from exc
        return None if row is None else self._approval(row[0])

    def put_approval(self, approval: Approval) -> None:
        """Record (or update) ``approval``."""
        try:
            self._db.execute(
                "INSERT INTO approvals VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                (approval.id, approval.run_id, _json(approval)),
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "recording an approval", approval.run_id) from exc

    def pending(self) -> list[Approval]:
        """Approval requests still waiting for a decision."""
        try:
            rows = self._db.execute("SELECT body FROM approvals ORDER BY rowid").fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "reading approvals") from exc
        return [a for (body,) in rows if (a := self._approval(body)).decision is None]

    def _approval(self, body: str) -> Approval:
        try:
            data = json.loads(body)
            data["grants"] = tuple(Grant(g["resource"], g["intent"]) for g in data["grants"])
            return Approval(**data)
        except (ValueError, TypeError, KeyError) as exc:
            raise StoreError(
                f"{self.path!r}: an approval request is damaged ({type(exc).__name__}: {exc})", path=self.path
            ) from exc


def _body(checkpoint: Checkpoint) -> dict[str, Any]:
    """A checkpoint's row body: everything but the case (stored once) and the
    incarnation (a column, for fencing)."""
    return {
        "run_id": checkpoint.run_id,
        "workflow": checkpoint.workflow,
        "status": checkpoint.status,
        "state": checkpoint.state,
        "attempt": checkpoint.attempt,
        "feedback": checkpoint.feedback,
        "data": checkpoint.data,
        "steps": checkpoint.steps,
        "seq": checkpoint.seq,
        "cost": checkpoint.cost,
        "elapsed": checkpoint.elapsed,
        "budget": checkpoint.budget,
        "started": checkpoint.started,
        "saved_at": checkpoint.saved_at,
        "grants": [(grant.resource, grant.intent) for grant in checkpoint.grants],
    }


def _ledger_body(entry: LedgerEntry) -> dict[str, Any]:
    return {
        "key": entry.key,
        "run_id": entry.run_id,
        "tool": entry.tool,
        "resource": entry.resource,
        "intent": entry.intent,
        "status": entry.status,
        "verified": entry.verified,
        "at": entry.at,
        "seq": entry.seq,
        "incarnation": entry.incarnation,
        "attempt": entry.attempt,
        "output": entry.output,
        "events": entry.events,
    }


def _unclaimable(run_id: str, row: Any, incarnation: int, me: str, now: float) -> str | None:
    """Why the run cannot be claimed for its next life, or None."""
    if row is None:
        return f"no checkpoint for run_id={run_id!r}"
    current, owner, expires, status = row
    if current != incarnation:
        return f"run {run_id!r} was resumed elsewhere meanwhile (life {current}); it is not resumed twice"
    if status in _ENDED:
        return f"run {run_id!r} already ended ({status}); there is nothing to resume"
    if owner is not None and owner != me and _alive(owner, expires, now):
        return (
            f"run {run_id!r} is owned by {owner} until {_iso(expires)} (renewed while it runs): it is "
            "not resumed twice. If that process is gone, wait for its lease to expire, or release "
            "the run: windtunnel runs release STORE " + run_id
        )
    return None


def _alive(owner: str | None, expires: float, now: float) -> bool:
    """Whether an owner lease is live: not expired, and not of a process known dead."""
    if owner is None or expires <= now:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != _HOST or not pid.isdigit() or int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False  # the process that owned it is gone: a killed process holds nothing
    except PermissionError:
        return True
    return True


def _iso(wall: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))


def _json(value: Any) -> str:
    try:
        return pydantic_core.to_json(value).decode()
    except pydantic_core.PydanticSerializationError as exc:
        raise RunError(
            f"cannot checkpoint a value that is not JSON: {exc}; keep run data and cases JSON values"
        ) from exc
