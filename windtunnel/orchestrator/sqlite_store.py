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
before applying anything more. The limit, as with any fencing the world itself does
not check: a write already in flight when its owner loses the run still lands. The
lease is renewed before every application, so that takes one application slower
than ``owner_ttl``; keep ``owner_ttl`` well above the slowest write. A run's
resource leases live as long as its owner's lease — or while it left an action on
the resource unsettled, or is paused — until it is resumed or released.

**Damage.** A file that is not a store (empty, truncated, overwritten, of another
schema version, missing a table), an unreadable row, or a run whose events do not
cover its checkpoint raises :class:`StoreError` naming the file, the run and the
sequence number — never a raw ``sqlite3`` error, never a silent repair.

**Many processes.** Writers take SQLite's single write lock in turn and wait for it
up to ``busy_timeout`` seconds (5 by default), then raise :class:`StoreBusy` — never
a silent stall. Measured on 2 cores (``benchmarks/bench_store_contention.py``), the
file took about 13,000-16,000 checkpoints per second in all from 1 to 8 processes;
p99 latency 0.15 ms with 1 process, 0.8 ms with 2, 3.3 ms with 4, 9 ms with 8, the
worst single wait 0.2-0.4 s. Up to about 4 processes per store file is the supported
range; beyond it, give each group of processes its own store.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

from pydantic import ValidationError

from .checkpoint import Approval, Checkpoint, RunInfo
from .errors import RunError, RunTakenOver, StoreError
from .events import Event, event_adapter
from .owners import iso, new_owner, owner_alive, unclaimable
from .sqlite_schema import (
    RUN_TABLES,
    SCHEMA_VERSION,
    approval_from_row,
    checkpoint_from_row,
    checkpoint_row,
    connect,
    event_rows,
    ledger_from_row,
    ledger_row,
    store_error,
    to_json,
)
from .store import Lease, LedgerEntry, conflicts
from .trace import Record

__all__ = ["SCHEMA_VERSION", "SqliteStore"]


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
        self.owner = new_owner()
        """This store's owner id: the lives of runs driven through it own them under it."""
        self.owner_ttl = owner_ttl
        self.busy_timeout = busy_timeout
        self._clock = clock
        # run id -> wall time after which the owner lease is renewed at the next write
        self._renew: dict[str, float] = {}
        self._lives: dict[str, int] = {}  # run id -> the life of it this store started or claimed
        self._unsaved: set[str] = set()  # runs with ledger entries their next checkpoint commits
        # The last run whose events were read: seq -> (its row's body, the event validated from it).
        self._read: tuple[str, dict[int, tuple[str, Event]]] = ("", {})
        self._db = connect(self.path, synchronous=synchronous, busy_timeout=busy_timeout)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def reset(self) -> None:
        """Empty a store in memory of every run, as if it were new (with a new owner id).

        For a simulation that runs one run after another, each with a store of its
        own: a new connection compiles every statement again, ~1 ms a run.

        Raises:
            StoreError: the store is a file, whose runs are not thrown away.
        """
        if self.path != ":memory:":
            raise StoreError(f"{self!r} is a file: only a store in memory is reset", path=self.path)
        db = self._db
        try:
            if db.in_transaction:  # left open by an exception out of a transaction
                db.execute("ROLLBACK")
            db.execute("BEGIN IMMEDIATE")
            for table in RUN_TABLES:
                db.execute(f"DELETE FROM {table}")
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise self._error(exc, "resetting it") from exc
        self.owner = new_owner()
        self._renew.clear()
        self._lives.clear()
        self._unsaved.clear()
        self._read = ("", {})

    def __repr__(self) -> str:
        return f"SqliteStore({self.path!r})"

    def _error(self, exc: sqlite3.Error, doing: str, run_id: str | None = None) -> StoreError:
        return store_error(exc, self.path, self.busy_timeout, doing, run_id)

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
        rows = event_rows(records)
        body = checkpoint_row(checkpoint)
        status = checkpoint.status
        # A run that paused or ended has no live owner: the next resume needs no wait.
        holds = status == "running"
        now = self._now()
        expires = now + self.owner_ttl if holds else 0.0
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                if run_id not in self._lives and checkpoint.incarnation == 0:
                    db.execute(
                        "INSERT INTO checkpoints VALUES (?, ?, ?, ?, ?, ?)",
                        (run_id, 0, self.owner if holds else None, expires, status, body),
                    )
                    # The case once, in a table of its own: a row is rewritten whole at
                    # every checkpoint, and a case may be megabytes.
                    db.execute("INSERT INTO cases VALUES (?, ?)", (run_id, to_json(checkpoint.case)))
                    self._lives[run_id] = 0
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
        return checkpoint_from_row(self.path, run_id, incarnation, body, case)

    def runs(self) -> list[RunInfo]:
        """Every run in the store, with its owner, leases and pending approvals."""
        return self._infos(None)

    def run_info(self, run_id: str) -> RunInfo | None:
        """One run, with its owner, leases and pending approvals; None if not stored."""
        found = self._infos(run_id)
        return found[0] if found else None

    def _infos(self, run_id: str | None) -> list[RunInfo]:
        where, args = ("WHERE run_id = ?", (run_id,)) if run_id is not None else ("", ())
        try:
            rows = self._db.execute(
                f"SELECT run_id, owner, owner_expires FROM checkpoints {where} ORDER BY rowid", args
            ).fetchall()
            leases = self._db.execute(
                f"SELECT resource, intent, holder, at, incarnation FROM leases "
                f"{where.replace('run_id', 'holder')} ORDER BY rowid",
                args,
            ).fetchall()
            approvals = self._db.execute(
                f"SELECT id, run_id FROM approvals {where} {'AND' if where else 'WHERE'} "
                "json_extract(body, '$.decision') IS NULL ORDER BY rowid",
                args,
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "listing runs") from exc
        pending: dict[str, list[str]] = {}
        for approval_id, holder in approvals:
            pending.setdefault(holder, []).append(approval_id)
        held: dict[str, list[Lease]] = {}
        for resource, intent, holder, at, incarnation in leases:
            held.setdefault(holder, []).append(
                Lease(resource=resource, intent=intent, holder=holder, at=at, incarnation=incarnation)
            )
        now = self._now()
        infos = []
        for found, owner, expires in rows:
            checkpoint = self.load(found)
            assert checkpoint is not None  # listed a moment ago; runs are never deleted
            infos.append(
                RunInfo(
                    checkpoint=checkpoint,
                    owner=owner,
                    owner_expires=expires,
                    owner_alive=owner_alive(owner, expires, now),
                    leases=tuple(held.get(found, ())),
                    pending_approvals=tuple(pending.get(found, ())),
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
                problem = unclaimable(run_id, row, incarnation, self.owner, now)
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
        self._lives[run_id] = incarnation + 1
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
        info = self.run_info(run_id)
        if info is None:
            raise RunError(f"no run {run_id!r} in {self!r}")
        if info.owner_alive and not force:
            raise RunError(
                f"run {run_id!r} is owned by {info.owner} until {iso(info.owner_expires)}, which is "
                "live; release it only if that process is gone (force=True, or --force)"
            )
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                db.execute(
                    "UPDATE checkpoints SET owner = NULL, owner_expires = 0 WHERE run_id = ?", (run_id,)
                )
                db.execute("DELETE FROM leases WHERE holder = ?", (run_id,))
                db.execute("COMMIT")
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc, "releasing a run", run_id) from exc
        return info

    def events(self, run_id: str) -> list[Event]:
        """The run's committed events, in order (frozen; a second read may give the same objects).

        Raises:
            StoreError: an event is unreadable (naming its run and seq).
        """
        try:
            rows = self._db.execute(
                "SELECT seq, body FROM events WHERE run_id = ? ORDER BY seq", (run_id,)
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "reading events", run_id) from exc
        # A resumed run's events are read twice in a row (to go on from, and to check that
        # they cover its checkpoint), and one costs up to 0.1 ms to validate: an event whose
        # row is the same text as at the last read of the same run is the same event.
        last_run, last = self._read
        known = last if last_run == run_id else {}
        read: dict[int, tuple[str, Event]] = {}
        events = []
        for seq, body in rows:
            try:
                seen = known.get(seq)
                event = seen[1] if seen is not None and seen[0] == body else event_adapter.validate_json(body)
                if (event.run_id, event.seq) != (run_id, seq):
                    raise StoreError(
                        f"{self.path!r}: the row of run {run_id!r}, seq {seq} holds the event of run "
                        f"{event.run_id!r}, seq {event.seq}",
                        path=self.path,
                        run_id=run_id,
                        seq=seq,
                    )
                events.append(event)
                read[seq] = (body, event)
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
        self._read = (run_id, read)
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
        return None if row is None else ledger_from_row(self.path, *row)

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
                    ledger_row(entry),
                    run_id,
                    entry.incarnation,
                    self.owner,
                ),
            ).rowcount
            if not written:
                raise self._taken_over(run_id, entry.incarnation, f"ledger entry {entry.key!r}")
            self._unsaved.add(run_id)
            # Renewed before every application: a write in flight outlives its owner's
            # lease only if one application takes longer than owner_ttl.
            if entry.status == "pending" or self._clock() >= self._renew.get(run_id, 0.0):
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
        return [ledger_from_row(self.path, *row) for row in rows]

    def leases(self, resource: str) -> list[Lease]:
        """The live leases on ``resource``: those of runs whose owner is live, that are
        paused, or that left an action on it unsettled (``pending`` or ``compensating``:
        nobody else may act on the resource until that run's outcome is known)."""
        try:
            return self._live_leases(resource)
        except sqlite3.Error as exc:
            raise self._error(exc, "reading leases") from exc

    def _live_leases(self, resource: str) -> list[Lease]:
        rows = self._db.execute(
            "SELECT l.resource, l.intent, l.holder, l.at, l.incarnation, c.owner, c.owner_expires, c.status, "
            "EXISTS (SELECT 1 FROM ledger AS g WHERE g.run_id = l.holder AND g.committed = 0 "
            "AND json_extract(g.body, '$.resource') = l.resource "
            "AND json_extract(g.body, '$.status') IN ('pending', 'compensating')) "
            "FROM leases AS l LEFT JOIN checkpoints AS c ON c.run_id = l.holder WHERE l.resource = ?",
            (resource,),
        ).fetchall()
        now = self._now()
        return [
            Lease(resource=r, intent=i, holder=h, at=a, incarnation=n, unsettled=bool(unsettled))
            for r, i, h, a, n, owner, expires, status, unsettled in rows
            if status is None
            or status == "paused"
            or unsettled
            or owner == self.owner
            or owner_alive(owner, expires, now)
        ]

    def acquire(self, lease: Lease, *, opposite: str | None) -> Lease | None:
        """Take ``lease`` as the holding run's owner unless a live lease conflicts with
        it — checked and taken in one transaction, so two processes cannot both take
        conflicting leases. Returns the conflicting lease, or None once taken.

        Raises:
            RunTakenOver: another life owns the holding run now.
        """
        db = self._db
        try:
            db.execute("BEGIN IMMEDIATE")
            try:
                for held in self._live_leases(lease.resource):
                    if conflicts(held, lease, opposite):
                        db.execute("ROLLBACK")
                        return held
                written = db.execute(
                    "INSERT OR REPLACE INTO leases SELECT ?, ?, ?, ?, ? WHERE EXISTS "
                    "(SELECT 1 FROM checkpoints WHERE run_id = ? AND incarnation = ? AND owner = ?)",
                    (lease.resource, lease.holder, lease.intent, lease.at, lease.incarnation, lease.holder,
                     lease.incarnation, self.owner),
                ).rowcount  # fmt: skip
                if not written:
                    db.execute("ROLLBACK")
                    raise self._taken_over(lease.holder, lease.incarnation, f"the lease on {lease.resource}")
                db.execute("COMMIT")
            except sqlite3.Error:
                db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise self._error(exc, "taking a lease", lease.holder) from exc
        return None

    def release(self, holder: str) -> None:
        """Drop ``holder``'s leases — only while this store still owns the life of the
        run that holds them, so that a stale life cannot drop its successor's leases."""
        life = self._lives.get(holder)
        try:
            # Most runs hold no lease: a read costs far less than a write transaction.
            if not self._db.execute("SELECT 1 FROM leases WHERE holder = ? LIMIT 1", (holder,)).fetchone():
                return
            if life is None:
                self._db.execute("DELETE FROM leases WHERE holder = ?", (holder,))
            else:
                self._db.execute(
                    "DELETE FROM leases WHERE holder = ? AND EXISTS (SELECT 1 FROM checkpoints "
                    "WHERE run_id = ? AND incarnation = ?)",
                    (holder, holder, life),
                )
        except sqlite3.Error as exc:
            raise self._error(exc, "releasing leases", holder) from exc

    # -- approvals --------------------------------------------------------------------

    def approval(self, approval_id: str) -> Approval | None:
        """The approval request ``approval_id``, if any."""
        try:
            row = self._db.execute("SELECT body FROM approvals WHERE id = ?", (approval_id,)).fetchone()
        except sqlite3.Error as exc:
            raise self._error(exc, "reading an approval") from exc
        return None if row is None else approval_from_row(self.path, row[0])

    def put_approval(self, approval: Approval, *, if_pending: bool = False) -> bool:
        """Record (or update) ``approval``; with ``if_pending``, only while the stored
        request is still undecided. True if written."""
        body = to_json(approval)
        try:
            if if_pending:
                return bool(
                    self._db.execute(
                        "UPDATE approvals SET body = ? WHERE id = ? "
                        "AND json_extract(body, '$.decision') IS NULL",
                        (body, approval.id),
                    ).rowcount
                )
            self._db.execute(
                "INSERT INTO approvals VALUES (?, ?, ?) ON CONFLICT(id) DO UPDATE SET body = excluded.body",
                (approval.id, approval.run_id, body),
            )
        except sqlite3.Error as exc:
            raise self._error(exc, "recording an approval", approval.run_id) from exc
        return True

    def pending(self) -> list[Approval]:
        """Approval requests still waiting for a decision."""
        try:
            rows = self._db.execute(
                "SELECT body FROM approvals WHERE json_extract(body, '$.decision') IS NULL ORDER BY rowid"
            ).fetchall()
        except sqlite3.Error as exc:
            raise self._error(exc, "reading approvals") from exc
        return [a for (body,) in rows if (a := approval_from_row(self.path, body)).decision is None]
