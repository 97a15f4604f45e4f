"""The store file: its tables and version, opening it safely, and the JSON rows.

Opening a path creates a store only where no file is; an existing file must be a
windtunnel store of this schema version with every table in place, or opening it
is a :class:`StoreError` that names the file — a damaged store is never repaired
silently, since a run resumed from it would have gaps.
"""

from __future__ import annotations

import dataclasses
import json
import sqlite3
import threading
from pathlib import Path
from typing import Any, Literal

import pydantic_core
from pydantic import TypeAdapter, ValidationError

from .budget import Budget
from .checkpoint import Approval, Checkpoint
from .errors import RunError, StoreBusy, StoreError
from .events import EVENT_TYPES
from .store import LedgerEntry
from .trace import Record

__all__ = [
    "RUN_TABLES",
    "SCHEMA_VERSION",
    "approval_from_row",
    "checkpoint_from_row",
    "checkpoint_row",
    "connect",
    "event_rows",
    "ledger_from_row",
    "ledger_row",
    "store_error",
    "to_json",
]

# Rows are validated as they are read: a damaged row is a StoreError, never a wrong
# value carried on (a ledger status nobody knows, a step count that is a string).
_CHECKPOINT = TypeAdapter(Checkpoint)
_LEDGER = TypeAdapter(LedgerEntry)
_APPROVAL = TypeAdapter(Approval)

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
CREATE INDEX IF NOT EXISTS leases_by_holder ON leases (holder)
"""
_TABLES = ("meta", "checkpoints", "cases", "events", "ledger", "leases", "approvals")
RUN_TABLES = _TABLES[1:]
"""The tables that hold runs: all but ``meta``."""


def connect(path: str, *, synchronous: Literal["NORMAL", "FULL"], busy_timeout: float) -> sqlite3.Connection:
    """Open the store at ``path`` (creating it where no file is), checked.

    Raises:
        StoreError: the file is empty, not a store, of another version, or damaged.
    """
    existed = path != ":memory:" and Path(path).exists()
    if existed and Path(path).is_file() and Path(path).stat().st_size == 0:
        raise StoreError(
            f"{path!r} is an empty file, not a windtunnel store; delete it to start a new store", path=path
        )
    try:
        db = sqlite3.connect(path, isolation_level=None, timeout=busy_timeout)
        if path == ":memory:":
            _copy_empty_store(db)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={synchronous}")
        if not existed and path != ":memory:":
            _create(db)
        _check(db, path)
    except sqlite3.Error as exc:
        raise store_error(exc, path, busy_timeout, "cannot open it") from exc
    return db


def _create(db: sqlite3.Connection) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        if db.execute("PRAGMA user_version").fetchone()[0] == 0:  # unless another process made it
            for statement in _SCHEMA.split(";"):
                db.execute(statement)
            db.execute("INSERT OR REPLACE INTO meta VALUES ('format', 'windtunnel store')")
            db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# A simulation with crashes opens a store in memory per run: copying an empty one made
# once is a quarter of the cost of running the schema's statements again.
_EMPTY: sqlite3.Connection | None = None
_EMPTY_LOCK = threading.Lock()


def _copy_empty_store(db: sqlite3.Connection) -> None:
    """Make ``db``, a new database in memory, an empty store of this schema version."""
    global _EMPTY
    with _EMPTY_LOCK:
        if _EMPTY is None:
            empty = sqlite3.connect(":memory:", isolation_level=None, check_same_thread=False)
            _create(empty)
            _EMPTY = empty
        _EMPTY.backup(db)


def _check(db: sqlite3.Connection, path: str) -> None:
    version = db.execute("PRAGMA user_version").fetchone()[0]
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if version == 0 and "meta" not in tables:
        what = "an empty SQLite database" if not tables else f"a SQLite database of tables {sorted(tables)}"
        raise StoreError(f"{path!r} is {what}, not a windtunnel store", path=path)
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"{path!r} is a windtunnel store of schema version {version}; this windtunnel reads "
            f"version {SCHEMA_VERSION} only",
            path=path,
        )
    missing = [table for table in _TABLES if table not in tables]
    if missing:
        raise StoreError(
            f"{path!r} is damaged: table(s) {missing} are missing; it is not repaired silently, since "
            "a run resumed from it would have gaps",
            path=path,
        )


def store_error(
    exc: sqlite3.Error, path: str, busy_timeout: float, doing: str, run_id: str | None = None
) -> StoreError:
    """The store error for a failed SQLite call: :class:`StoreBusy` for a lock held
    past the busy timeout, else a :class:`StoreError` naming the file and the run."""
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError) and ("locked" in text or "busy" in text):
        return StoreBusy(
            f"{path!r} stayed locked by other processes for more than busy_timeout={busy_timeout:g}s "
            f"({doing}); fewer processes per store, or a longer busy_timeout",
            path=path,
            run_id=run_id,
        )
    run = "" if run_id is None else f" (run {run_id!r})"
    return StoreError(f"{path!r}{run}: {doing}: {text}", path=path, run_id=run_id)


def to_json(value: Any) -> str:
    """``value`` as JSON text.

    Raises:
        RunError: it is not JSON-able.
    """
    try:
        return pydantic_core.to_json(value).decode()
    except pydantic_core.PydanticSerializationError as exc:
        raise RunError(
            f"cannot checkpoint a value that is not JSON: {exc}; keep run data and cases JSON values"
        ) from exc


def event_rows(records: list[Record]) -> list[tuple[str, int, str, float, float, str | None, str]]:
    """Rows of the ``events`` table for trace records: the columns SQL queries use,
    and the whole event as JSON."""
    return [
        (
            run_id,
            seq,
            kind,
            sim_time,
            wall,
            state,
            # A value in an event that is not JSON is written as its repr, as the trace
            # sinks do: an event is a record of what happened, not state to resume from.
            pydantic_core.to_json(
                {"kind": kind, "run_id": run_id, "seq": seq, "sim_time": sim_time, "wall_time": wall}
                | {"state": state}
                | fields,
                fallback=repr,
            ).decode(),
        )
        for kind, run_id, seq, sim_time, wall, state, fields in records
    ]


def checkpoint_row(checkpoint: Checkpoint) -> str:
    """A checkpoint's row body: everything but the case (stored once, in its own
    table) and the incarnation (a column, for fencing)."""
    return to_json(
        {
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
            "fingerprint": checkpoint.fingerprint,
        }
    )


def checkpoint_from_row(path: str, run_id: str, incarnation: int, body: str, case: str | None) -> Checkpoint:
    """The checkpoint a row holds.

    Raises:
        StoreError: the row (or the run's case) is damaged.
    """
    try:
        data = json.loads(body)
        data["grants"] = [{"resource": r, "intent": i} for r, i in data["grants"]]
        Budget.model_validate(data["budget"])  # resumed from it: a damaged budget is damage
        return _CHECKPOINT.validate_python({**data, "case": json.loads(case), "incarnation": incarnation})  # type: ignore[arg-type]
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(
            f"{path!r}: the checkpoint of run {run_id!r} is damaged ({_why(exc)}); it cannot be resumed",
            path=path,
            run_id=run_id,
        ) from exc


def ledger_row(entry: LedgerEntry) -> str:
    """A ledger entry's row body (``committed`` is a column of its own)."""
    return to_json(
        {
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
    )


def ledger_from_row(path: str, body: str, committed: int, run_id: str) -> LedgerEntry:
    """The ledger entry a row holds.

    Raises:
        StoreError: the row is damaged.
    """
    try:
        entry = _LEDGER.validate_json(body)
        for kind, _ in entry.events:
            if kind not in EVENT_TYPES:
                raise ValueError(f"an event of unknown kind {kind!r}")
        return dataclasses.replace(entry, committed=bool(committed))
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(
            f"{path!r}: a ledger entry of run {run_id!r} is damaged ({_why(exc)})",
            path=path,
            run_id=run_id,
        ) from exc


def approval_from_row(path: str, body: str) -> Approval:
    """The approval request a row holds.

    Raises:
        StoreError: the row is damaged.
    """
    try:
        return _APPROVAL.validate_json(body)
    except (ValueError, TypeError, KeyError) as exc:
        raise StoreError(f"{path!r}: an approval request is damaged ({_why(exc)})", path=path) from exc


def _why(exc: Exception) -> str:
    """What is wrong with a row, in a line: the first field a validation error names."""
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "the row"
        more = exc.error_count() - 1
        return f"{where}: {first['msg']}" + (f"; and {more} more" if more else "")
    return f"{type(exc).__name__}: {exc}"
