"""Transitions per second with a durable checkpoint at every transition: windtunnel vs LangGraph.

The 4-state linear workflow of ``bench_engine.py`` (triage -> investigate -> decide
-> execute, then done) with trivial handlers, run N times by each engine:

- windtunnel in memory (its default store), inside a simulation;
- windtunnel with a ``SqliteStore`` file: run state and the run's new events are
  committed in one transaction at the start, at every transition and at the end;
- LangGraph's StateGraph with ``SqliteSaver`` (langgraph-checkpoint-sqlite), one
  ``thread_id`` per run, ``durability="sync"`` so that every step is committed
  before the next one starts, as windtunnel does; its default ``"async"`` is
  printed for reference;
- LangGraph with ``InMemorySaver``, for reference.

Both SQLite files use WAL with ``synchronous=NORMAL``: a committed step survives a
killed process, not a power cut. Each measurement gets a fresh database file in a
temporary directory. Before timing, the script checks once, through a second
connection, that both durable setups committed what they claim. Prints one line
per setup and, last, one JSON object. Not a test: it asserts nothing about timings.

    python benchmarks/bench_durable.py [N]
"""

from __future__ import annotations

import json
import sqlite3
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any, Literal

from bench_engine import TRANSITIONS, langgraph_graph, windtunnel_workflow

from windtunnel import RunResult, Sim, run
from windtunnel.orchestrator import SqliteStore

EVENTS = 2 + 2 * TRANSITIONS  # run_started, state_entered + transition per step, run_finished
SYNCHRONOUS: Literal["NORMAL", "FULL"] = "NORMAL"
SYNCHRONOUS_LEVELS = {0: "OFF", 1: "NORMAL", 2: "FULL", 3: "EXTRA"}


def run_windtunnel(n: int, store: SqliteStore | None) -> tuple[float, list[RunResult]]:
    """Seconds for ``n`` runs in one simulation, and the results."""
    wf = windtunnel_workflow()
    sim = Sim(seed=0)

    async def many() -> list[RunResult]:
        return [await run(wf, env=sim, store=store) for _ in range(n)]

    started = time.perf_counter()
    results = sim.run(many())
    elapsed = time.perf_counter() - started
    last = results[-1]
    if last.status != "completed" or len(last.trace) != EVENTS:
        raise SystemExit(f"benchmark workflow misbehaved: {last}")
    return elapsed, results


def time_windtunnel(n: int, *, durable: bool) -> float:
    if not durable:
        return run_windtunnel(n, None)[0]
    with tempfile.TemporaryDirectory() as tmp:
        store = SqliteStore(Path(tmp) / "runs.db", synchronous=SYNCHRONOUS)
        try:
            return run_windtunnel(n, store)[0]
        finally:
            store.close()


def check_windtunnel_durable() -> str:
    """Run a few durable runs, then read them back through a new connection; say how
    the file is set up. Raises SystemExit if a checkpoint or an event is missing."""
    runs = 3
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "runs.db"
        store = SqliteStore(path, synchronous=SYNCHRONOUS)
        try:
            _, results = run_windtunnel(runs, store)
        finally:
            store.close()
        reopened = SqliteStore(path)
        try:
            for result in results:
                checkpoint = reopened.load(result.run_id)
                if checkpoint is None or checkpoint.status != "completed" or checkpoint.steps != TRANSITIONS:
                    raise SystemExit(
                        f"windtunnel: no completed checkpoint for {result.run_id!r}: {checkpoint}"
                    )
                events = len(reopened.events(result.run_id))
                if events != EVENTS:
                    raise SystemExit(
                        f"windtunnel: {events} committed events for {result.run_id!r}, expected {EVENTS}"
                    )
            if len(reopened.runs()) != runs:
                raise SystemExit(f"windtunnel: {len(reopened.runs())} checkpointed runs, expected {runs}")
        finally:
            reopened.close()
        with closing(sqlite3.connect(path)) as db:
            journal = db.execute("PRAGMA journal_mode").fetchone()[0]
    # Commits per run, from the engine: the start, each transition into a handled
    # state, and the end (the transition into the terminal state commits with it).
    return f"SqliteStore, journal_mode={journal}, synchronous={SYNCHRONOUS}; {TRANSITIONS + 1} commits/run"


def has_sqlite_saver() -> bool:
    try:
        import langgraph.checkpoint.sqlite  # noqa: F401
    except ImportError:
        return False
    return True


def sqlite_saver(path: Path) -> Any:
    """A SqliteSaver on ``path``, with the same journal and sync settings as windtunnel's."""
    from langgraph.checkpoint.sqlite import SqliteSaver

    # check_same_thread=False as LangGraph documents: it may write from a worker
    # thread, and the saver serialises access with its own lock.
    conn = sqlite3.connect(path, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute(f"PRAGMA synchronous={SYNCHRONOUS}")
    saver = SqliteSaver(conn)
    saver.setup()  # sets journal_mode=WAL again; leaves synchronous alone
    return saver


def run_langgraph(graph: Any, n: int, saver: Any, durability: str) -> float:
    """Seconds for ``n`` invocations, each on its own thread."""
    app = graph.compile(checkpointer=saver)
    configs = [{"configurable": {"thread_id": f"run-{i}"}} for i in range(n)]
    started = time.perf_counter()
    for config in configs:
        out = app.invoke({"steps": 0}, config, durability=durability)
    elapsed = time.perf_counter() - started
    if out != {"steps": TRANSITIONS}:
        raise SystemExit(f"benchmark graph misbehaved: {out}")
    return elapsed


def time_langgraph(graph: Any, n: int, *, sqlite: bool, durability: str = "sync") -> float:
    if not sqlite:
        from langgraph.checkpoint.memory import InMemorySaver

        return run_langgraph(graph, n, InMemorySaver(), durability)
    with tempfile.TemporaryDirectory() as tmp:
        saver = sqlite_saver(Path(tmp) / "checkpoints.db")
        try:
            return run_langgraph(graph, n, saver, durability)
        finally:
            saver.conn.close()


def check_langgraph_durable(graph: Any) -> str:
    """Run one durable invocation, then read its rows back through a new connection;
    say how the file is set up. Raises SystemExit if nothing was committed."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "checkpoints.db"
        saver = sqlite_saver(path)
        try:
            run_langgraph(graph, 1, saver, "sync")
            level = saver.conn.execute("PRAGMA synchronous").fetchone()[0]
        finally:
            saver.conn.close()
        with closing(sqlite3.connect(path)) as db:
            journal = db.execute("PRAGMA journal_mode").fetchone()[0]
            checkpoints = db.execute("SELECT COUNT(*) FROM checkpoints WHERE thread_id = 'run-0'").fetchone()[
                0
            ]
            # put_writes commits once per task and checkpoint.
            writes = db.execute(
                "SELECT COUNT(DISTINCT checkpoint_id || task_id) FROM writes WHERE thread_id = 'run-0'"
            ).fetchone()[0]
    if checkpoints < TRANSITIONS or writes < TRANSITIONS:
        raise SystemExit(f"langgraph: only {checkpoints} checkpoints and {writes} write batches committed")
    sync = SYNCHRONOUS_LEVELS.get(level, level)
    return (
        f"SqliteSaver, journal_mode={journal}, synchronous={sync}, durability=sync; "
        f"{checkpoints + writes} commits/run ({checkpoints} checkpoints + {writes} write batches)"
    )


def transitions_per_second(seconds: float, n: int) -> float:
    return n * TRANSITIONS / seconds


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    """Median of ``repeats`` timings after one warm-up."""
    measure()
    return statistics.median(measure() for _ in range(repeats))


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_langgraph = max(1, n // 5)  # LangGraph is slow enough that fewer runs give a stable figure
    repeats = 5

    wt_setup = check_windtunnel_durable()
    wt_memory = transitions_per_second(median_of(repeats, lambda: time_windtunnel(n, durable=False)), n)
    wt_durable = transitions_per_second(median_of(repeats, lambda: time_windtunnel(n, durable=True)), n)

    graph = langgraph_graph()
    lg_memory = lg_durable = lg_async = None
    lg_setup = None
    if graph is not None:
        lg_memory = transitions_per_second(
            median_of(repeats, lambda: time_langgraph(graph, n_langgraph, sqlite=False)), n_langgraph
        )
        if has_sqlite_saver():
            lg_setup = check_langgraph_durable(graph)
            lg_durable = transitions_per_second(
                median_of(repeats, lambda: time_langgraph(graph, n_langgraph, sqlite=True)), n_langgraph
            )
            lg_async = transitions_per_second(
                median_of(
                    repeats, lambda: time_langgraph(graph, n_langgraph, sqlite=True, durability="async")
                ),
                n_langgraph,
            )

    print(
        f"python {sys.version.split()[0]}, sqlite {sqlite3.sqlite_version}, {n} windtunnel runs / "
        f"{n_langgraph} langgraph runs x {TRANSITIONS} transitions, median of {repeats}"
    )
    print(f"windtunnel, in-memory store:               {wt_memory:10,.0f} transitions/s")
    print(f"windtunnel, durable:                       {wt_durable:10,.0f} transitions/s  [{wt_setup}]")
    if graph is None:
        print("langgraph: not installed (pip install -e '.[bench]')")
    else:
        print(f"langgraph, InMemorySaver (durability=sync): {lg_memory:10,.0f} transitions/s")
    if graph is not None and lg_durable is None:
        print("langgraph SqliteSaver: not installed (pip install langgraph-checkpoint-sqlite)")
    if lg_durable is not None and lg_async is not None:
        print(f"langgraph, durable:                        {lg_durable:10,.0f} transitions/s  [{lg_setup}]")
        print(f"langgraph, SqliteSaver, durability=async:  {lg_async:10,.0f} transitions/s  (its default)")
        print(f"durable windtunnel vs durable langgraph:   {wt_durable / lg_durable:10.1f}x")

    summary = {
        "windtunnel_tps": round(wt_durable),
        "windtunnel_memory_tps": round(wt_memory),
        "langgraph_tps": None if lg_durable is None else round(lg_durable),
        "langgraph_memory_tps": None if lg_memory is None else round(lg_memory),
        "ratio_vs_langgraph": None if lg_durable is None else round(wt_durable / lg_durable, 2),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
