"""Trace sinks that write events to files — JSON Lines and SQLite — and their readers.

Both buffer: JSONL through the file's buffer, SQLite in batches of rows committed
when the batch fills and when the engine flushes at the end of a run.
"""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path
from types import TracebackType

from pydantic import ValidationError

from .errors import TraceError
from .events import Event, EventBase, event_adapter
from .trace import Trace

__all__ = ["JsonlSink", "SqliteSink", "load_trace"]

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
    """Appends each event to a JSON Lines file, one event per line.

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
        self._file = self.path.open("a", encoding="utf-8")

    def write(self, event: EventBase) -> None:
        """Append one event as a line of JSON."""
        self._file.write(event.model_dump_json(fallback=repr))
        self._file.write("\n")

    def flush(self) -> None:
        """Push buffered lines to the file."""
        self._file.flush()

    def close(self) -> None:
        """Flush and close the file."""
        if not self._file.closed:
            self._file.close()


class SqliteSink(_SinkBase):
    """Stores events in the ``events`` table of a SQLite database.

    Columns: run_id, seq, kind, sim_time, wall_time, state (for SQL queries) and
    body (the whole event as JSON).
    """

    def __init__(self, path: str | Path, *, batch: int = 1000) -> None:
        self.path = Path(path)
        self._batch = batch
        self._rows: list[tuple[str, int, str, float, float, str | None, str]] = []
        self._db = sqlite3.connect(self.path)
        self._db.execute(_SCHEMA)
        self._db.commit()

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


def load_trace(path: str | Path) -> Trace:
    """Read a trace written by :class:`JsonlSink` (``.jsonl``) or :class:`SqliteSink`
    (``.sqlite``, ``.sqlite3``, ``.db``), validating every event.

    Raises :class:`TraceError` naming the file and line (or row) of a bad event.
    """
    path = Path(path)
    if not path.is_file():
        raise TraceError(f"no trace file at {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return Trace.from_events(_read_jsonl(path))
    if suffix in {".sqlite", ".sqlite3", ".db"}:
        return Trace.from_events(_read_sqlite(path))
    raise TraceError(
        f"cannot tell the format of {str(path)!r} from suffix={suffix!r}; "
        "use .jsonl for JSON Lines or .sqlite/.sqlite3/.db for SQLite"
    )


def _read_jsonl(path: Path) -> list[Event]:
    events: list[Event] = []
    with path.open(encoding="utf-8") as file:
        for number, line in enumerate(file, start=1):
            if line.strip():
                events.append(_parse(line, where=f"{path}:{number}"))
    return events


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
            json.loads(text)
        except ValueError:
            raise TraceError(f"{where}: not valid JSON: {text[:80]!r}") from exc
        raise TraceError(f"{where}: invalid event: {exc}") from exc
