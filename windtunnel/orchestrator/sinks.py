"""Trace sinks that write events to files — JSON Lines and SQLite — and their readers.

What each keeps when the process writing it is killed (``kill -9``, ``os._exit``, the
out-of-memory killer):

- :class:`JsonlSink` writes and flushes every event as it is recorded, one line each,
  so the file holds every event recorded before the kill; at worst its last line is
  torn (cut short mid-write). It does not fsync: a machine that loses power may lose
  the last events the operating system had not yet written out.
- :class:`SqliteSink` commits in batches, when a batch fills and when a run ends, so a
  kill loses the events of the batch not yet committed.

Neither is a durable run's record of itself: that is its checkpoint store
(``SqliteStore.events``), which a resumed run goes on from. A resumed run records
again, with the same sequence numbers, the events its dead life recorded after the
last checkpoint; appended to the same JSON Lines file, the later line supersedes
the earlier one when the file is read.

Reading: :func:`read_trace` reads what is whole and reports what it left out (a torn
last line, superseded lines) in a :class:`TraceFile`; :func:`load_trace` returns the
trace alone and refuses a torn file. Anything else wrong with a file — a bad line that
is not the last, bytes that are not UTF-8, an event of unknown kind — is a
:class:`TraceError` naming the file and the line (or row).
"""

from __future__ import annotations

import json
import os
import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType

from pydantic import ValidationError

from .errors import TraceError
from .events import EVENT_TYPES, Event, EventBase, event_adapter
from .trace import Trace

__all__ = ["JsonlSink", "SqliteSink", "TraceFile", "load_trace", "read_trace"]

_SQLITE_SUFFIXES = frozenset({".sqlite", ".sqlite3", ".db"})
_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    run_id    TEXT    NOT NULL,
    seq       INTEGER NOT NULL,
    kind      TEXT    NOT NULL,
    sim_time  REAL    NOT NULL,
    wall_time REAL    NOT NULL,
    state     TEXT,
    body      TEXT    NOT NULL,
    PRIMARY KEY (run_id, seq)
)
"""


class _SinkBase:
    def flush(self) -> None:
        """Make everything written so far visible to readers."""

    def close(self) -> None:
        """Flush and release the file."""

    def __enter__(self) -> _SinkBase:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


class JsonlSink(_SinkBase):
    """Appends each event to a JSON Lines file, one event per line, flushed as it is written.

    Every event recorded before the process is killed is in the file; only the last
    line may be torn. A file whose last line was torn by a killed writer is mended
    before anything is appended: the torn line is cut off (its event was never
    committed: the resumed run records it again), so the file stays readable. One
    writer at a time per file.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "trace.jsonl"
        >>> with JsonlSink(path) as sink:
        ...     trace = Trace(sink)
        >>> load_trace(path).events
        []
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            _mend_tail(self.path)
            self._file = self.path.open("a", encoding="utf-8")
        except OSError as exc:
            raise TraceError(f"cannot write a trace to {str(self.path)!r}: {exc.strerror or exc}") from exc

    def write(self, event: EventBase) -> None:
        """Append one event as a line of JSON, and flush it to the file."""
        # One write of the whole line, then a flush: a kill between events loses
        # nothing, and one during the write tears this line only.
        self._file.write(event.model_dump_json(fallback=repr) + "\n")
        self._file.flush()

    def flush(self) -> None:
        """Flush the file (every event is flushed as it is written already)."""
        self._file.flush()

    def close(self) -> None:
        """Close the file."""
        if not self._file.closed:
            self._file.close()


def _mend_tail(path: Path) -> None:
    """Make ``path`` end with a whole line before it is appended to: cut off a torn
    last line; end a whole one that lacks its newline (written by hand, say)."""
    if not path.is_file():
        return
    with path.open("r+b") as file:
        size = file.seek(0, os.SEEK_END)
        if size == 0:
            return
        file.seek(size - 1)
        if file.read(1) == b"\n":
            return
        start = size
        while start > 0:
            step = min(start, 1 << 16)
            file.seek(start - step)
            newline = file.read(step).rfind(b"\n")
            start -= step
            if newline >= 0:
                start += newline + 1
                break
        file.seek(start)
        if _is_json(file.read()):
            file.write(b"\n")
        else:
            file.truncate(start)


class SqliteSink(_SinkBase):
    """Stores events in the ``events`` table of a SQLite database, committed in batches.

    Columns: run_id, seq, kind, sim_time, wall_time, state (for SQL queries) and
    body (the whole event as JSON).

    A batch is committed when it holds ``batch`` events and when the engine flushes
    the trace at the end of a run. A killed process loses the batch it had not
    committed — with the default batch, every event of a run under 1,000 events —
    so this is a log of finished runs to query, not a durable run's record (its
    checkpoint store is). A run id already in the file is refused, so a resumed run
    whose re-recorded events were committed by its dead life is refused too: give
    it a new file.
    """

    def __init__(self, path: str | Path, *, batch: int = 1000) -> None:
        self.path = Path(path)
        self._batch = batch
        self._rows: list[tuple[str, int, str, float, float, str | None, str]] = []
        db = None
        try:
            db = sqlite3.connect(self.path)
            db.execute(_SCHEMA)
            db.commit()
        except sqlite3.Error as exc:
            if db is not None:
                db.close()
            raise TraceError(f"cannot write a trace to {str(self.path)!r}: {exc}") from exc
        self._db = db

    def write(self, event: EventBase) -> None:
        """Buffer one event; the batch is committed when full or on flush."""
        self._rows.append(
            (
                event.run_id,
                event.seq,
                event.kind,  # type: ignore[attr-defined]
                event.sim_time,
                event.wall_time,
                event.state,
                event.model_dump_json(fallback=repr),
            )
        )
        if len(self._rows) >= self._batch:
            self.flush()

    def flush(self) -> None:
        """Insert and commit the buffered events."""
        if not self._rows:
            return
        try:
            with self._db:
                self._db.executemany("INSERT INTO events VALUES (?, ?, ?, ?, ?, ?, ?)", self._rows)
        except sqlite3.IntegrityError as exc:
            run_id, seq = self._rows[0][:2]
            raise TraceError(
                f"{str(self.path)!r} already holds events of a run in this batch "
                f"(first: run {run_id!r}, seq {seq}); write to a new file or use distinct run ids"
            ) from exc
        finally:
            self._rows.clear()

    def close(self) -> None:
        """Flush and close the database."""
        try:
            self.flush()
        finally:
            self._db.close()


@dataclass(frozen=True, slots=True, kw_only=True)
class TraceFile:
    """A trace read from a file, and what the reader left out of it.

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "trace.jsonl"
        >>> _ = path.write_text('{"kind": "run_sta')  # a writer killed mid-line
        >>> read = read_trace(path)
        >>> len(read.trace), read.superseded, "torn last line" in (read.torn or "")
        (0, 0, True)
    """

    trace: Trace
    """The events, validated, in the order of the file; superseded lines left out."""
    torn: str | None = None
    """What was wrong with the last line, left out because it is torn (a writer
    killed mid-line); None when the file ends with a whole line."""
    superseded: int = 0
    """Lines left out because a later line records the same event of the run again."""


def read_trace(path: str | Path) -> TraceFile:
    """Read a trace written by :class:`JsonlSink` (``.jsonl``) or :class:`SqliteSink`
    (``.sqlite``, ``.sqlite3``, ``.db``), validating every event, and report what was
    left out.

    A JSON Lines file is read as a killed, then resumed, run leaves it:

    - a torn last line (not valid JSON and no newline) is left out and described in
      :attr:`TraceFile.torn`;
    - each event is identified by its run id and sequence number: when the same one
      appears again, the later line supersedes the earlier. A life of a run begins
      with ``run_started`` (seq 0) or ``run_resumed`` (at its checkpoint's seq), and
      supersedes every earlier line of the run from that seq on, even those it does
      not record again. Superseded lines are counted in :attr:`TraceFile.superseded`.

    Raises :class:`TraceError` naming the file and line (or row) of anything else
    that cannot be read: a bad line that is not the last, bytes that are not UTF-8,
    an event that is malformed or of an unknown kind.
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"no trace file at {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        try:
            events, torn = _read_jsonl(path)
        except OSError as exc:
            raise TraceError(f"cannot read {str(path)!r}: {exc.strerror or exc}") from exc
        kept, superseded = _supersede(events)
        return TraceFile(trace=Trace.from_events(kept), torn=torn, superseded=superseded)
    if suffix in _SQLITE_SUFFIXES:
        # The table's primary key is (run_id, seq): nothing to supersede, nothing torn.
        return TraceFile(trace=Trace.from_events(_read_sqlite(path)))
    raise TraceError(
        f"cannot tell the format of {str(path)!r} from suffix={suffix!r}; "
        "use .jsonl for JSON Lines or .sqlite/.sqlite3/.db for SQLite"
    )


def load_trace(path: str | Path) -> Trace:
    """The trace in a file, as :func:`read_trace` reads it, superseded lines left out;
    a torn last line is an error here (read it with :func:`read_trace`).

    Raises :class:`TraceError` naming the file and line (or row) of a bad event.
    """
    read = read_trace(path)
    if read.torn is not None:
        raise TraceError(f"{read.torn}; read_trace() reads the whole lines before it")
    return read.trace


def _read_jsonl(path: Path) -> tuple[list[Event], str | None]:
    """The events of the whole lines, and the description of a torn last line."""
    events: list[Event] = []
    with path.open("rb") as file:
        for number, line in enumerate(file, start=1):
            where = f"{path}:{number}"
            # Only the last line can lack its newline.
            if not line.endswith(b"\n") and not _is_json(line) and line.strip():
                return events, f"{where}: {_flaw(line)}, and no newline: a torn last line, left out"
            try:
                text = line.decode("utf-8")
            except UnicodeDecodeError as exc:
                raise TraceError(f"{where}: {_flaw(line)}") from exc
            if text.strip():
                events.append(_parse(text, where=where))
    return events, None


def _flaw(line: bytes) -> str:
    """What makes ``line`` unreadable as JSON: its encoding or its syntax."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as exc:
        return f"not valid UTF-8 ({exc.reason} at byte {exc.start}: {line[exc.start : exc.start + 4]!r})"
    return f"not valid JSON: {text.strip()[:80]!r}"


def _is_json(data: bytes) -> bool:
    try:
        json.loads(data)
    except ValueError:  # UnicodeDecodeError included
        return False
    return True


def _supersede(events: list[Event]) -> tuple[list[Event], int]:
    """The events no later line supersedes, in order, and how many were superseded."""
    latest: dict[str, dict[int, int]] = {}  # run id -> seq -> index of the line that holds it
    superseded: set[int] = set()
    for index, event in enumerate(events):
        lines = latest.setdefault(event.run_id, {})
        if event.kind in ("run_started", "run_resumed"):
            # A new life: whatever earlier lives recorded from here on was never committed.
            for seq in [seq for seq in lines if seq >= event.seq]:
                superseded.add(lines.pop(seq))
        elif event.seq in lines:
            superseded.add(lines[event.seq])
        lines[event.seq] = index
    if not superseded:
        return events, 0
    return [event for index, event in enumerate(events) if index not in superseded], len(superseded)


def _read_sqlite(path: Path) -> list[Event]:
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT rowid, body FROM events ORDER BY rowid").fetchall()
    except sqlite3.Error as exc:
        raise TraceError(f"cannot read events from {str(path)!r}: {exc}") from exc
    return [_parse(body, where=f"{path} row {rowid}") for rowid, body in rows]


def _parse(text: str, *, where: str) -> Event:
    try:
        return event_adapter.validate_json(text)
    except ValidationError as exc:
        try:
            data = json.loads(text)
        except ValueError:
            raise TraceError(f"{where}: not valid JSON: {text.strip()[:80]!r}") from exc
        kind = data.get("kind") if isinstance(data, dict) else None
        if isinstance(kind, str) and kind not in EVENT_TYPES:
            raise TraceError(
                f"{where}: invalid event: unknown kind={kind!r} (run {data.get('run_id')!r}, "
                f"seq {data.get('seq')!r}); known: {sorted(EVENT_TYPES)}"
            ) from exc
        raise TraceError(f"{where}: invalid event: {_first_error(exc)}") from exc


def _first_error(exc: ValidationError) -> str:
    """The first of a validation's errors, on one line: the field path and what is wrong."""
    errors = exc.errors(include_url=False)
    first = errors[0]
    path = ".".join(str(part) for part in first["loc"])
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return f"{path}: {first['msg']} (input {first.get('input')!r:.80}){more}"
