"""Trace sinks across a killed process, and a reader that tolerates what a kill leaves:
a torn last line, and events a resumed run recorded again."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from windtunnel.orchestrator import (
    JsonlSink,
    SqliteSink,
    SqliteStore,
    Trace,
    TraceError,
    load_trace,
    read_trace,
    resume,
    run,
)
from windtunnel.simulators import Sim

from .durable_kit import FileFirewall, durable_workflow

SEED = 11
ROOT = Path(__file__).resolve().parents[2]

# Where the first life dies: entering a state (os._exit inside its handler), or right
# after the k-th event reached the sinks (os._exit inside the recording itself: after a
# tool call, a transition not yet checkpointed, the very last run_finished).
KILLS: list[tuple[str, Any]] = [("state", "s1"), ("state", "s4"), ("event", 5), ("event", 14), ("event", -1)]

_SCRIPT = """
import os, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.orchestrator.durable_kit import FileFirewall, durable_workflow
from windtunnel.orchestrator import JsonlSink, SqliteSink, SqliteStore, Trace, run
from windtunnel.simulators import Sim

class Killer:
    '''A sink that kills the process once it has seen its k-th event.'''
    def __init__(self, at):
        self.seen, self.at = 0, at
    def write(self, event):
        self.seen += 1
        if self.seen == self.at:
            os._exit(17)
    def flush(self):
        pass
    def close(self):
        pass

tmp = Path({tmp!r})
how, where = {kill!r}
sim = Sim(seed={seed})
store = SqliteStore(tmp / "store.sqlite")
sinks = [JsonlSink(tmp / "trace.jsonl"), SqliteSink(tmp / "trace.sqlite", batch=4)]
if how == "event":
    sinks.append(Killer(where))
wf = durable_workflow(FileFirewall(tmp / "firewall.json"), kill_at=where if how == "state" else None)
sim.run(run(wf, env=sim, store=store, trace=Trace(*sinks)))
"""


def dumps(events: Any) -> list[dict[str, Any]]:
    return [event.model_dump(exclude={"wall_time"}) for event in events]


def test_jsonl_trace_across_a_killed_process_matches_the_store(tmp_path: Path) -> None:
    # The whole run, never killed, tells how many events the last kill point is at.
    clean = Sim(seed=SEED)
    total = len(clean.run(run(durable_workflow(FileFirewall(tmp_path / "clean.json")), env=clean)).trace)
    kills = [(how, total if where == -1 else where) for how, where in KILLS]

    # The first lives, killed at their kill points, run side by side to keep the test quick.
    dirs = [tmp_path / f"kill-{how}-{where}" for how, where in kills]
    processes = []
    for tmp, kill in zip(dirs, kills, strict=True):
        tmp.mkdir()
        script = _SCRIPT.format(root=str(ROOT), tmp=str(tmp), kill=kill, seed=SEED)
        processes.append(
            subprocess.Popen(
                [sys.executable, "-c", textwrap.dedent(script)],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
            )
        )
    for process in processes:
        _, stderr = process.communicate(timeout=120)
        assert process.returncode == 17, stderr.decode()

    for tmp, (how, where) in zip(dirs, kills, strict=True):
        store = SqliteStore(tmp / "store.sqlite")
        [checkpoint] = [info.checkpoint for info in store.runs()]
        run_id = checkpoint.run_id
        committed = store.events(run_id)
        # Every event the dead life recorded is in the file, committed or not...
        written = read_trace(tmp / "trace.jsonl")
        assert written.torn is None
        assert dumps(written.trace)[: len(committed)] == dumps(committed)
        if how == "event":
            assert len(written.trace) == where
        # ...and the SQLite sink kept the whole batches it had committed, no more.
        assert len(load_trace(tmp / "trace.sqlite")) == len(written.trace) // 4 * 4

        # The second life appends to the same file what it records from the checkpoint on.
        trace = Trace.from_events(committed)
        with JsonlSink(tmp / "trace.jsonl") as sink:
            trace.attach(sink)
            sim = Sim(seed=SEED)
            wf = durable_workflow(FileFirewall(tmp / "firewall.json"))
            result = sim.run(resume(wf, run_id, env=sim, store=store, trace=trace))
        assert result.status == "completed"

        read = read_trace(tmp / "trace.jsonl")
        assert dumps(load_trace(tmp / "trace.jsonl")) == dumps(read.trace) == dumps(store.events(run_id))
        # What the dead life recorded past its last checkpoint was recorded again, and superseded.
        assert (read.torn, read.superseded) == (None, len(written.trace) - len(committed))


def lines(*events: dict[str, Any]) -> str:
    return "".join(json.dumps(event) + "\n" for event in events)


def entered(run_id: str, seq: int, state: str, *, attempt: int = 1) -> dict[str, Any]:
    return {
        "kind": "state_entered",
        "run_id": run_id,
        "seq": seq,
        "sim_time": float(seq),
        "wall_time": 0.0,
        "state": state,
        "step": seq,
        "attempt": attempt,
    }


def resumed(run_id: str, seq: int, state: str) -> dict[str, Any]:
    return {
        "kind": "run_resumed",
        "run_id": run_id,
        "seq": seq,
        "sim_time": float(seq),
        "wall_time": 0.0,
        "state": state,
        "status": "running",
        "attempt": 1,
        "steps": seq,
    }


def test_a_torn_last_line_is_reported_and_what_is_whole_is_read(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text(lines(entered("r", 0, "a"), entered("r", 1, "b")) + json.dumps(entered("r", 2, "c"))[:30])
    read = read_trace(path)
    assert [(e.seq, e.state) for e in read.trace] == [(0, "a"), (1, "b")]
    assert read.torn is not None
    assert read.torn.startswith(f"{path}:3: not valid JSON")
    assert "torn last line" in read.torn
    assert read.superseded == 0
    # load_trace is the strict reader: a torn line is an error, naming read_trace.
    with pytest.raises(TraceError, match=r"trace\.jsonl:3: not valid JSON.*read_trace"):
        load_trace(path)


def test_a_torn_multibyte_character_on_the_last_line_is_a_torn_line(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    whole = json.dumps(entered("r", 1, "é"), ensure_ascii=False).encode()
    path.write_bytes(lines(entered("r", 0, "a")).encode() + whole[: whole.index("é".encode()) + 1])
    read = read_trace(path)
    assert [e.seq for e in read.trace] == [0]
    assert read.torn is not None
    assert read.torn.startswith(f"{path}:2: ")


def test_a_later_line_supersedes_an_earlier_one_of_the_same_run_and_seq(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text(
        lines(
            entered("r", 0, "a"),
            entered("other", 0, "x"),
            entered("r", 1, "b"),  # the dead life's: never committed
            entered("r", 2, "c"),  # the dead life's, and no later life reached seq 2 again
            resumed("r", 1, "b"),  # the next life goes on from the checkpoint's seq
            entered("other", 1, "y"),
            entered("other", 1, "z"),  # same run and seq again: the later line wins
        )
    )
    read = read_trace(path)
    assert [(e.run_id, e.seq, e.kind, e.state) for e in read.trace] == [
        ("r", 0, "state_entered", "a"),
        ("other", 0, "state_entered", "x"),
        ("r", 1, "run_resumed", "b"),
        ("other", 1, "state_entered", "z"),
    ]
    assert (read.torn, read.superseded) == (None, 3)
    assert dumps(load_trace(path)) == dumps(read.trace)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        # A torn line anywhere but last is damage, not a kill.
        (
            lines(entered("r", 0, "a"))[:20] + "\n" + lines(entered("r", 1, "b")),
            r"trace\.jsonl:1: not valid JSON",
        ),
        (
            lines(entered("r", 0, "a")).encode()
            + b'{"kind": "\xff"}\n'
            + lines(entered("r", 2, "b")).encode(),
            r"trace\.jsonl:2: not valid UTF-8",
        ),
        (
            lines(entered("r", 0, "a"), {**entered("r", 1, "b"), "kind": "teleported"}),
            r"trace\.jsonl:2: invalid event: unknown kind='teleported' \(run 'r', seq 1\); known: \[",
        ),
        (
            lines({**entered("r", 0, "a"), "attempt": "first"}),
            r"trace\.jsonl:1: invalid event: .*attempt",
        ),
        (lines([1, 2]), r"trace\.jsonl:1: invalid event"),
    ],
)
def test_damage_is_an_error_naming_file_and_line(tmp_path: Path, content: str | bytes, message: str) -> None:
    path = tmp_path / "trace.jsonl"
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    for read in (read_trace, load_trace):
        with pytest.raises(TraceError, match=message):
            read(path)


def test_an_unknown_kind_in_a_sqlite_trace_names_row_run_and_seq(tmp_path: Path) -> None:
    path = tmp_path / "trace.sqlite"
    with SqliteSink(path) as sink:
        Trace(sink).append(("state_entered", "r", 0, 0.0, 0.0, "a", {"step": 1, "attempt": 1}))
    import sqlite3

    with sqlite3.connect(path) as db:
        db.execute("UPDATE events SET body = replace(body, 'state_entered', 'teleported')")
    with pytest.raises(
        TraceError, match=r"trace\.sqlite row 1: invalid event: unknown kind='teleported' \(run 'r', seq 0\)"
    ):
        load_trace(path)


def test_appending_to_a_file_with_a_torn_tail_cuts_the_torn_line_off(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text(lines(entered("r", 0, "a")) + json.dumps(entered("r", 1, "b"))[:25])
    with JsonlSink(path) as sink:
        Trace(sink).append(
            ("run_resumed", "r", 1, 1.0, 0.0, "b", {"status": "running", "attempt": 1, "steps": 1})
        )
    read = read_trace(path)
    assert [(e.seq, e.kind) for e in read.trace] == [(0, "state_entered"), (1, "run_resumed")]
    assert (read.torn, read.superseded) == (None, 0)


def test_appending_to_a_whole_line_without_a_newline_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text(json.dumps(entered("r", 0, "a")))  # written by hand, say: whole, unterminated
    with JsonlSink(path) as sink:
        Trace(sink).append(("state_entered", "r", 1, 1.0, 0.0, "b", {"step": 2, "attempt": 1}))
    assert [e.seq for e in load_trace(path)] == [0, 1]


def test_the_jsonl_sink_flushes_every_event(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    sink = JsonlSink(path)
    trace = Trace(sink)
    trace.append(("state_entered", "r", 0, 0.0, 0.0, "a", {"step": 1, "attempt": 1}))
    # Readable at once, before any flush or close: a process killed now has lost nothing.
    assert [e.seq for e in load_trace(path)] == [0]
    sink.close()


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("absent/trace.jsonl", r"cannot write a trace to '.*absent/trace\.jsonl': No such file or directory"),
        ("absent/trace.sqlite", r"cannot write a trace to '.*absent/trace\.sqlite': unable to open database"),
        ("text.sqlite", r"cannot write a trace to '.*text\.sqlite': file is not a database"),
    ],
)
def test_a_sink_that_cannot_open_its_file_says_which(tmp_path: Path, name: str, message: str) -> None:
    (tmp_path / "text.sqlite").write_text("not a database, " * 100)
    with pytest.raises(TraceError, match=message):
        JsonlSink(tmp_path / name) if name.endswith(".jsonl") else SqliteSink(tmp_path / name)


def test_a_file_that_cannot_be_read_is_a_trace_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text("")

    def refuse(self: Path, *args: Any, **kwargs: Any) -> Any:
        raise PermissionError(13, "Permission denied", str(self))

    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(TraceError, match=r"cannot read '.*trace\.jsonl': Permission denied"):
        read_trace(path)
