"""A damaged, foreign or outdated store is a named StoreError — with the file, the run
and the seq — never a raw sqlite3 error, a traceback from json, or a silent repair;
and what a durable run is given comes back unchanged, or is refused at once."""

from __future__ import annotations

import datetime
import math
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from windtunnel.orchestrator import (
    JsonlSink,
    Outcome,
    RunError,
    SqliteStore,
    StepContext,
    StoreError,
    Trace,
    Workflow,
    resume,
    run,
)
from windtunnel.simulators import Sim

from .crash_kit import SMALL, Firewall, Reaper, workflow

RUN = "run-3-1"


def paused_store(path: Path) -> None:
    """A store holding one run killed mid-way (checkpoints, events, ledger, leases)."""
    firewall = Firewall()
    firewall.reaper = Reaper(4)  # dies on the fourth world write
    store = SqliteStore(path)
    sim = Sim(seed=3)
    with pytest.raises(BaseException, match="killed at point 4"):
        sim.run(run(workflow(firewall, SMALL), env=sim, store=store, run_id=RUN))
    store.release_run(RUN, force=True)
    store.close()  # the -wal file is checkpointed into the main file on close


def sql(statement: str) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        with sqlite3.connect(path) as db:
            db.execute(statement)
        db.close()

    return damage


def truncate(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def overwrite(path: Path) -> None:
    path.write_bytes(b"this is not a database at all\n" * 200)


def empty(path: Path) -> None:
    path.write_bytes(b"")


def foreign(path: Path) -> None:
    path.unlink()
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE users (id INTEGER)")
    db.close()


DAMAGE: list[tuple[str, Callable[[Path], None], str]] = [
    ("empty file", empty, r"is an empty file, not a windtunnel store; delete it to start a new store"),
    ("overwritten", overwrite, r"cannot open it: file is not a database"),
    ("truncated", truncate, r"database disk image is malformed"),
    ("foreign database", foreign, r"is a SQLite database of tables \['users'\], not a windtunnel store"),
    (
        "newer schema",
        sql("PRAGMA user_version = 99"),
        r"schema version 99; this windtunnel reads version 1 only",
    ),
    ("events dropped", sql("DROP TABLE events"), r"is damaged: table\(s\) \['events'\] are missing"),
    ("ledger dropped", sql("DROP TABLE ledger"), r"table\(s\) \['ledger'\] are missing"),
    ("leases dropped", sql("DROP TABLE leases"), r"table\(s\) \['leases'\] are missing"),
    ("approvals dropped", sql("DROP TABLE approvals"), r"table\(s\) \['approvals'\] are missing"),
    ("cases dropped", sql("DROP TABLE cases"), r"table\(s\) \['cases'\] are missing"),
    ("case deleted", sql("DELETE FROM cases"), rf"the checkpoint of run '{RUN}' is damaged"),
    (
        "checkpoint not JSON",
        sql("UPDATE checkpoints SET body = '{not json'"),
        rf"the checkpoint of run '{RUN}' is damaged \(JSONDecodeError",
    ),
    (
        "checkpoint missing a field",
        sql("UPDATE checkpoints SET body = json_remove(body, '$.steps')"),
        rf"the checkpoint of run '{RUN}' is damaged \(steps: Field required\)",
    ),
    (
        "event of unknown kind",
        sql("UPDATE events SET body = json_set(body, '$.kind', 'teleported') WHERE seq = 3"),
        rf"event seq 3 of run '{RUN}' is unreadable: .*teleported",
    ),
    (
        "event of another run",
        sql("UPDATE events SET body = json_set(body, '$.run_id', 'run-9-9') WHERE seq = 2"),
        rf"the row of run '{RUN}', seq 2 holds the event of run 'run-9-9', seq 2",
    ),
    (
        "events deleted",
        sql("DELETE FROM events WHERE seq IN (4, 5, 6)"),
        rf"the events of run '{RUN}' do not cover its checkpoint \(seq 0\.\.\d+\): seq 4\.\.6 missing",
    ),
    (
        "checkpoint field of the wrong type",
        sql("UPDATE checkpoints SET body = json_set(body, '$.steps', 'x')"),
        rf"the checkpoint of run '{RUN}' is damaged \(steps: Input should be a valid integer",
    ),
    (
        "checkpoint budget damaged",
        sql("UPDATE checkpoints SET body = json_set(body, '$.budget.max_steps', 'lots')"),
        rf"the checkpoint of run '{RUN}' is damaged \(max_steps: Input should be a valid integer",
    ),
    (
        "ledger status unknown",
        sql("UPDATE ledger SET body = json_set(body, '$.status', 'bogus')"),
        rf"a ledger entry of run '{RUN}' is damaged \(status: Input should be 'pending'",
    ),
    (
        "ledger event of unknown kind",
        sql("UPDATE ledger SET body = json_set(body, '$.events[0][0]', 'teleported')"),
        rf"a ledger entry of run '{RUN}' is damaged \(ValueError: an event of unknown kind 'teleported'\)",
    ),
    (
        "ledger entry damaged",
        sql("UPDATE ledger SET body = '[]'"),
        rf"a ledger entry of run '{RUN}' is damaged",
    ),
]


def reopen_and_resume(path: Path) -> None:
    sim = Sim(seed=3)
    sim.run(resume(workflow(Firewall(), SMALL), RUN, env=sim, store=SqliteStore(path)))


@pytest.mark.parametrize(("damage", "message"), [(d, m) for _, d, m in DAMAGE], ids=[n for n, _, _ in DAMAGE])
def test_a_damaged_store_is_a_named_error(
    tmp_path: Path, damage: Callable[[Path], None], message: str
) -> None:
    path = tmp_path / "store.sqlite"
    paused_store(path)
    damage(path)
    with pytest.raises(StoreError, match=message) as info:
        reopen_and_resume(path)
    assert str(path) in str(info.value)
    assert info.value.path == str(path)


def test_an_event_damaged_after_it_was_read_is_read_again(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    paused_store(path)
    store = SqliteStore(path)
    first = store.events(RUN)
    assert store.events(RUN) == first  # read twice: the second time, unchanged rows are not validated again
    sql("UPDATE events SET body = json_set(body, '$.kind', 'teleported') WHERE seq = 3")(path)
    with pytest.raises(StoreError, match=rf"event seq 3 of run '{RUN}' is unreadable: .*teleported"):
        store.events(RUN)
    store.close()


def test_a_store_in_memory_is_reset_to_an_empty_one(tmp_path: Path) -> None:
    store = SqliteStore(":memory:")
    sim = Sim(seed=3)
    firewall = Firewall()
    firewall.reaper = Reaper(4)
    with pytest.raises(BaseException, match="killed at point 4"):
        sim.run(run(workflow(firewall, SMALL), env=sim, store=store, run_id=RUN))
    assert store.runs()
    assert store.events(RUN)
    owner = store.owner
    store.reset()
    assert (store.runs(), store.events(RUN), store.pending(), store.owner == owner) == ([], [], [], False)
    sim = Sim(seed=3)
    result = sim.run(run(workflow(Firewall(), SMALL), env=sim, store=store, run_id=RUN))  # the same id again
    assert result.status == "completed"
    file = SqliteStore(tmp_path / "store.sqlite")
    with pytest.raises(StoreError, match="is a file: only a store in memory is reset"):
        file.reset()
    file.close()


def test_a_new_store_file_is_created_and_checked_again_when_reopened(tmp_path: Path) -> None:
    path = tmp_path / "new.sqlite"
    SqliteStore(path).close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA user_version").fetchone() == (1,)
    db.close()
    assert SqliteStore(path).runs() == []


def test_a_store_busy_past_its_timeout_is_a_store_error(tmp_path: Path) -> None:
    path = tmp_path / "busy.sqlite"
    SqliteStore(path).close()
    locker = sqlite3.connect(path, isolation_level=None)
    locker.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    try:
        store = SqliteStore(path, busy_timeout=0.05)
        sim = Sim(seed=3)
        with pytest.raises(
            StoreError, match=r"stayed locked by other processes for more than busy_timeout=0.05s"
        ):
            sim.run(run(workflow(Firewall(), SMALL), env=sim, store=store, run_id=RUN))
    finally:
        locker.execute("ROLLBACK")
        locker.close()


# -- what goes in comes back --------------------------------------------------------


async def done(ctx: StepContext) -> Outcome:
    return Outcome(next="end", data={"case": ctx.case})


ONE_STEP = Workflow(states={"a": done}, transitions={"a": ["end"]}, initial="a", terminal=["end"])

NOT_JSON: list[tuple[Any, str]] = [
    ({"ips": {"10.0.0.1"}}, "case['ips'] is of type set"),
    ({"at": datetime.datetime(2026, 1, 1)}, "case['at'] is of type datetime"),
    ({"hosts": {1: "db-01"}}, "case['hosts'] has the key 1, a int; JSON keys are strings"),
    ({"score": math.nan}, "case['score'] is nan, which JSON cannot hold"),
    ({"pair": (1, 2)}, "case['pair'] is of type tuple"),
    ([object()], "case[0] is of type object"),
]


@pytest.mark.parametrize(("case", "message"), NOT_JSON)
def test_a_durable_run_refuses_a_case_that_would_not_come_back(
    tmp_path: Path, case: Any, message: str
) -> None:
    store = SqliteStore(tmp_path / "cases.sqlite")
    sim = Sim(seed=1)
    with pytest.raises(
        RunError, match=f"cannot run durably: {message}".replace("[", r"\[").replace("(", r"\(")
    ):
        sim.run(run(ONE_STEP, case, env=sim, store=store))
    assert store.runs() == []  # refused before anything was written
    # A run that is not durable keeps the case as it is: nothing is written out.
    assert sim.run(run(ONE_STEP, case, env=sim)).data["case"] is case


@pytest.mark.parametrize(
    ("data", "message"), [(c, m.replace("case", "outcome data", 1)) for c, m in NOT_JSON[:5]]
)
def test_outcome_data_that_would_not_come_back_is_an_invalid_outcome(
    tmp_path: Path, data: Any, message: str
) -> None:
    async def produce(ctx: StepContext) -> Outcome:
        return Outcome(next="end", data=data)

    wf = Workflow(states={"a": produce}, transitions={"a": ["end"]}, initial="a", terminal=["end"])
    sim = Sim(seed=1)
    result = sim.run(run(wf, env=sim, store=SqliteStore(tmp_path / "data.sqlite")))
    assert result.status == "failed"
    failures = result.trace.query(kind="handler_failed")
    assert [f.error for f in failures] == ["InvalidOutcome", "InvalidOutcome"]  # type: ignore[union-attr]
    assert message in failures[0].message  # type: ignore[union-attr]


def test_a_json_case_comes_back_equal_after_a_resume_and_is_stored_once(tmp_path: Path) -> None:
    case = {
        "alert": "A-1",
        "ips": ["10.0.0.1"],
        "n": 3,
        "score": 0.5,
        "ok": True,
        "none": None,
        "blob": "x" * 1_000_000,
    }
    path = tmp_path / "once.sqlite"
    store = SqliteStore(path)
    sim = Sim(seed=3)
    firewall = Firewall(reaper=Reaper(4))
    with pytest.raises(BaseException, match="killed"):
        sim.run(run(workflow(firewall, SMALL), case, env=sim, store=store, run_id=RUN))
    store.release_run(RUN, force=True)
    firewall.reaper = None
    result = sim.run(resume(workflow(firewall, SMALL), RUN, env=sim, store=SqliteStore(path)))
    assert result.status == "completed"
    assert store.load(RUN).case == case  # type: ignore[union-attr]
    with sqlite3.connect(path) as db:
        bodies = db.execute("SELECT length(body) FROM checkpoints").fetchone()[0]
    db.close()
    assert bodies < 10_000  # the case is not rewritten into every checkpoint
    store.close()
    # Once in the run's row, once in its run_started event: not once per checkpoint.
    assert path.stat().st_size < 3 * 1_000_000


# -- events a handler emits are checked when emitted ------------------------------------


@pytest.mark.parametrize("with_sink", [False, True])
def test_a_malformed_event_from_a_handler_fails_the_step_with_or_without_a_sink(
    tmp_path: Path, with_sink: bool
) -> None:
    async def sloppy(ctx: StepContext) -> Outcome:
        ctx.emit("tool_called", tool="siem", status="fine")  # missing fields, bad status
        return Outcome(next="end")

    wf = Workflow(states={"a": sloppy}, transitions={"a": ["end"]}, initial="a", terminal=["end"])
    trace = Trace(JsonlSink(tmp_path / "t.jsonl")) if with_sink else Trace()
    sim = Sim(seed=1)
    result = sim.run(run(wf, env=sim, trace=trace))
    trace.close()
    assert result.status == "failed"
    [first, _] = result.trace.query(kind="handler_failed")
    assert first.error == "TraceError"  # type: ignore[union-attr]
    assert first.message.startswith("malformed 'tool_called' event in state 'a': call_id: Field required")  # type: ignore[union-attr]
    assert "status: Input should be 'ok', 'error', 'timeout' or 'unavailable'" in first.message  # type: ignore[union-attr]
    assert result.trace.query(kind="tool_called") == []


def test_an_unknown_event_kind_from_a_handler_is_refused() -> None:
    async def inventive(ctx: StepContext) -> Outcome:
        ctx.emit("teleported", to="mars")
        return Outcome(next="end")

    wf = Workflow(states={"a": inventive}, transitions={"a": ["end"]}, initial="a", terminal=["end"])
    sim = Sim(seed=1)
    result = sim.run(run(wf, env=sim))
    failed = result.trace.query(kind="handler_failed")[0]
    assert failed.error == "TraceError"  # type: ignore[union-attr]
    assert "unknown event kind='teleported'" in failed.message  # type: ignore[union-attr]
