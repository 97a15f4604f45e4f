"""One live owner per durable run: two resumers (threads, processes; together and
staggered) never both act, a stale owner's writes are refused before it touches the
world, and the leases of a dead run lapse and can be released."""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
import textwrap
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from windtunnel.evals import trace_complete
from windtunnel.orchestrator import (
    Checkpoint,
    LedgerEntry,
    RunError,
    RunResult,
    RunTakenOver,
    SqliteStore,
    resume,
    run,
)
from windtunnel.orchestrator.trace import Record
from windtunnel.simulators import Sim, SimulatedCrash

from .crash_kit import LARGE, SMALL, TTL, Firewall, Reaper, _Clock, uninterrupted, workflow

RUN = "run-3-1"


def crashed_run(path: Path, firewall: Firewall, *, at: int = 12) -> None:
    """A run of SMALL killed at write ``at``, released as an operator would after its
    process was found dead."""

    class Dying(SqliteStore):
        def ledger_put(self, entry: LedgerEntry) -> None:
            reaper.point("ledger")
            super().ledger_put(entry)

        def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
            reaper.point("save")
            super().save(checkpoint, records)

    reaper = Reaper(at)
    store = Dying(path)
    sim = Sim(seed=3)
    with pytest.raises(SimulatedCrash):
        sim.run(run(workflow(firewall, SMALL), env=sim, store=store, run_id=RUN))
    SqliteStore(path).release_run(RUN, force=True)


class Gate(SqliteStore):
    """A store that opens ``gate`` once it has made ``after`` ledger writes: the moment a
    second resumer is let go, staggered without sleeping."""

    def __init__(self, path: Path, gate: threading.Event, after: int) -> None:
        super().__init__(path)
        self.gate, self.after = gate, after

    def ledger_put(self, entry: LedgerEntry) -> None:
        self.after -= 1
        if self.after == 0:
            self.gate.set()
        super().ledger_put(entry)


def resumer(
    make: Callable[[], SqliteStore], firewall: Firewall, start: threading.Event, out: list[Any]
) -> None:
    store = make()  # in its thread: a SQLite connection belongs to one
    start.wait()
    sim = Sim(seed=3)
    try:
        out.append(sim.run(resume(workflow(firewall, SMALL), RUN, env=sim, store=store)))
    except RunError as exc:
        out.append(exc)
    finally:
        store.close()


@pytest.mark.parametrize("stagger", [None, 1, 3, 6])
def test_two_resumers_in_threads_never_both_act(tmp_path: Path, stagger: int | None) -> None:
    clean = uninterrupted(tmp_path, SMALL)
    trials = 60
    for trial in range(trials):
        path = tmp_path / f"t{trial}.sqlite"
        firewall = Firewall()
        crashed_run(path, firewall)
        before = firewall.writes
        go, second_go, out = threading.Event(), threading.Event(), []  # type: ignore[var-annotated]

        def first(path: Path = path, gate: threading.Event = second_go) -> SqliteStore:
            return Gate(path, gate, stagger) if stagger else SqliteStore(path)

        def second(path: Path = path) -> SqliteStore:
            return SqliteStore(path)

        threads = [
            threading.Thread(target=resumer, args=(first, firewall, go, out)),
            threading.Thread(target=resumer, args=(second, firewall, second_go if stagger else go, out)),
        ]
        for thread in threads:
            thread.start()
        go.set()
        threads[0].join()
        second_go.set()  # whatever happened, let the second one try
        threads[1].join()

        won = [r for r in out if isinstance(r, RunResult)]
        lost = [r for r in out if isinstance(r, RunError)]
        assert len(won) == 1, out
        assert len(lost) == 1, out
        assert any(why in str(lost[0]) for why in ("is owned by", "resumed elsewhere", "already ended"))
        assert won[0].status == "completed"
        assert firewall.blocked == clean.blocked
        # Exactly the writes the crash left undone, once: the loser touched nothing.
        assert firewall.writes - before == clean.writes - before
        assert trace_complete(won[0].trace.events) == []


RESUMER = """
import json, sys
sys.path.insert(0, {root!r})
from pathlib import Path
from tests.orchestrator.crash_kit import SMALL, Firewall, workflow
from windtunnel.orchestrator import RunError, SqliteStore, resume
from windtunnel.simulators import Sim

class Telling(SqliteStore):
    said = False
    def ledger_put(self, entry):
        super().ledger_put(entry)
        if not self.said and {hold!r}:  # tell the test this process is acting, and hold
            print("acting", flush=True)
            self.said = True
            sys.stdin.readline()

sys.stdin.readline()  # wait until the test says go
sim = Sim(seed=3)
store = Telling(Path({path!r}))
try:
    result = sim.run(resume(workflow(Firewall(log=Path({log!r})), SMALL), {run!r}, env=sim, store=store))
    print(json.dumps({{"won": result.status}}))
except RunError as exc:
    print(json.dumps({{"lost": str(exc)}}))
"""


@pytest.mark.parametrize("staggered", [False, True])
def test_two_resumers_in_processes_never_both_act(tmp_path: Path, staggered: bool) -> None:
    root = str(Path(__file__).resolve().parents[2])
    log = tmp_path / "world.log"
    clean = uninterrupted(tmp_path, SMALL)
    for trial in range(3):
        path = tmp_path / f"p{trial}.sqlite"
        log.unlink(missing_ok=True)
        firewall = Firewall(log=log)
        crashed_run(path, firewall)
        before = firewall.writes
        scripts = [
            textwrap.dedent(RESUMER.format(root=root, path=str(path), log=str(log), run=RUN, hold=hold))
            for hold in (staggered, False)
        ]
        stack = contextlib.ExitStack()
        procs = [
            stack.enter_context(
                subprocess.Popen(
                    [sys.executable, "-c", script],
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
            for script in scripts
        ]
        results: list[dict[str, str]] = []
        with stack:  # closes the pipes
            if staggered:
                # The first takes the run and holds; the second tries while it is live.
                say(procs[0], "go")
                assert procs[0].stdout.readline().strip() == "acting"  # type: ignore[union-attr]
                say(procs[1], "go")
                second = finish(procs[1])
                say(procs[0], "continue")
                results = [finish(procs[0]), second]
            else:
                for proc in procs:
                    say(proc, "go")
                results = [finish(proc) for proc in procs]
        assert sorted(next(iter(r)) for r in results) == ["lost", "won"], results
        if staggered:
            assert "is owned by" in results[1]["lost"]
        assert firewall.blocked == clean.blocked
        assert firewall.writes - before == clean.writes - before


def say(proc: subprocess.Popen[str], line: str) -> None:
    assert proc.stdin is not None
    proc.stdin.write(line + "\n")
    proc.stdin.flush()


def finish(proc: subprocess.Popen[str]) -> dict[str, str]:
    """The process's verdict. Not communicate(): it would skip what readline buffered."""
    assert proc.stdout is not None
    assert proc.stderr is not None
    out, err = proc.stdout.read(), proc.stderr.read()
    assert proc.wait(timeout=120) == 0, err
    verdict: dict[str, str] = json.loads(out.strip().splitlines()[-1])
    return verdict


def test_a_stale_owner_is_fenced_before_it_touches_the_world(tmp_path: Path) -> None:
    """The owner stalls past its lease; another process takes the run over; the stale
    owner's next write is refused and it applies nothing more."""
    path = tmp_path / "stale.sqlite"
    clock = _Clock()
    firewall = Firewall()
    taker = SqliteStore(path, owner_ttl=TTL, clock=clock)
    took = []

    class Stalling(SqliteStore):
        def ledger_put(self, entry: LedgerEntry) -> None:
            if entry.status == "pending" and entry.resource == "ip:c" and not took:
                # The owner stalls here past its lease; another process takes the run.
                clock.now += TTL + 1
                taker.claim(RUN, self.load(RUN).incarnation)  # type: ignore[union-attr]
                took.append(firewall.writes)
            super().ledger_put(entry)

    stale = Stalling(path, owner_ttl=TTL, clock=clock)
    sim = Sim(seed=3)
    with pytest.raises(RunTakenOver, match="lost the run") as info:
        sim.run(run(workflow(firewall, LARGE), env=sim, store=stale, run_id=RUN))
    assert "ledger entry" in str(info.value)
    assert firewall.writes == took[0]  # not one write after the takeover
    assert stale.load(RUN).incarnation == 1  # type: ignore[union-attr]
    # Every other write of the stale life is refused too.
    with pytest.raises(RunTakenOver):
        stale.save(stale.load(RUN), [])  # type: ignore[arg-type]

    # The new owner finishes the run: the same world as a run never interrupted.
    done = sim.run(resume(workflow(firewall, LARGE), RUN, env=sim, store=taker))
    assert done.status == "completed"
    assert firewall.blocked == uninterrupted(tmp_path, LARGE).blocked


def test_a_dead_runs_resource_leases_lapse_with_its_owner(tmp_path: Path) -> None:
    path = tmp_path / "leases.sqlite"
    clock = _Clock()
    firewall = Firewall()

    class Dying(SqliteStore):
        def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
            if checkpoint.state == "s2":
                raise SimulatedCrash("killed")
            super().save(checkpoint, records)

    sim = Sim(seed=3)
    with pytest.raises(SimulatedCrash):
        sim.run(
            run(workflow(firewall, SMALL), env=sim, store=Dying(path, owner_ttl=TTL, clock=clock), run_id=RUN)
        )
    other = SqliteStore(path, owner_ttl=TTL, clock=clock)
    assert [lease.resource for lease in other.leases("ip:a")] == ["ip:a"]  # live: its owner may be alive
    [info] = other.runs()
    assert (info.owner_alive, info.checkpoint.state) == (True, "s1")
    assert sorted(lease.resource for lease in info.leases) == ["ip:a", "ip:b"]
    clock.now += TTL + 1
    assert other.leases("ip:a") == []  # lapsed with the owner's lease
    assert not other.runs()[0].owner_alive
    with pytest.raises(RunError, match="no run 'nope'"):
        other.release_run("nope")
    released = other.release_run(RUN)
    assert released.checkpoint.run_id == RUN
    assert other.runs()[0].leases == ()


def test_a_live_owner_is_not_released_without_force(tmp_path: Path) -> None:
    path = tmp_path / "live.sqlite"
    store = SqliteStore(path)
    sim = Sim(seed=3)
    firewall = Firewall()

    class Dying(SqliteStore):
        def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
            if checkpoint.state == "s2":
                raise SimulatedCrash("killed")
            super().save(checkpoint, records)

    with pytest.raises(SimulatedCrash):
        sim.run(run(workflow(firewall, SMALL), env=sim, store=Dying(path), run_id=RUN))
    with pytest.raises(
        RunError, match=r"is owned by .* which is live; release it only if that process is gone"
    ):
        store.release_run(RUN)
    store.release_run(RUN, force=True)
    assert not store.runs()[0].owner_alive
