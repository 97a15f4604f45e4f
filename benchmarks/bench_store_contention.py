"""Many processes on one SqliteStore file: checkpoint latency and throughput.

Each of N processes runs durable runs of ``bench_engine``'s 4-state workflow
against the same store file for a fixed wall time, timing every checkpoint
(``save``: one write transaction). SQLite has one write lock per file, so writers
queue for it; past ``busy_timeout`` a writer gets ``StoreBusy`` instead of
stalling. Prints, per N: checkpoints per second over all processes, the latency's
p50 / p99 / max, and how many writes hit the busy timeout; last, one JSON line.
Not a test: it asserts nothing about timings.

    python benchmarks/bench_store_contention.py [SECONDS_PER_LEVEL] [MAX_PROCESSES]
"""

from __future__ import annotations

import json
import multiprocessing
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_engine import windtunnel_workflow

from windtunnel import Sim, run
from windtunnel.orchestrator import Checkpoint, SqliteStore, StoreBusy
from windtunnel.orchestrator.trace import Record

LEVELS = (1, 2, 4, 8)


class TimedStore(SqliteStore):
    """Times every checkpoint."""

    def __init__(self, path: Path) -> None:
        super().__init__(path, busy_timeout=5.0)
        self.latencies: list[float] = []

    def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
        started = time.perf_counter()
        super().save(checkpoint, records)
        self.latencies.append(time.perf_counter() - started)


def worker(path: str, seconds: float, index: int, ready: Any, start: Any, out: Any) -> None:
    store = TimedStore(Path(path))
    wf = windtunnel_workflow()
    sim = Sim(seed=index)
    busy = 0
    ready.put(index)
    start.wait()
    deadline = time.perf_counter() + seconds

    async def many() -> None:
        nonlocal busy
        n = 0
        while time.perf_counter() < deadline:
            n += 1
            try:
                await run(wf, env=sim, store=store, run_id=f"p{index}-{n}")
            except StoreBusy:
                busy += 1

    sim.run(many())
    out.put((store.latencies, busy))


def level(processes: int, seconds: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "shared.sqlite")
        SqliteStore(path).close()
        context = multiprocessing.get_context("spawn")
        ready, start, out = context.Queue(), context.Event(), context.Queue()
        procs = [
            context.Process(target=worker, args=(path, seconds, i, ready, start, out))
            for i in range(processes)
        ]
        for proc in procs:
            proc.start()
        for _ in procs:  # every process has imported and opened the store: the clock starts
            ready.get(timeout=120)
        start.set()
        results = [out.get(timeout=seconds + 120) for _ in procs]
        for proc in procs:
            proc.join()
    latencies = sorted(x for lat, _ in results for x in lat)
    busy = sum(b for _, b in results)
    p99 = latencies[int(0.99 * (len(latencies) - 1))]
    return {
        "processes": processes,
        "checkpoints_per_s": round(len(latencies) / seconds),
        "p50_ms": round(statistics.median(latencies) * 1000, 3),
        "p99_ms": round(p99 * 1000, 3),
        "max_ms": round(latencies[-1] * 1000, 1),
        "busy_errors": busy,
    }


def main() -> None:
    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 3.0
    most = int(sys.argv[2]) if len(sys.argv) > 2 else LEVELS[-1]
    rows = []
    for processes in (n for n in LEVELS if n <= most):
        row = level(processes, seconds)
        rows.append(row)
        print(
            f"{processes} process(es): {row['checkpoints_per_s']:>7,} checkpoints/s in all; "
            f"latency p50 {row['p50_ms']} ms, p99 {row['p99_ms']} ms, max {row['max_ms']} ms; "
            f"{row['busy_errors']} StoreBusy"
        )
    print(json.dumps({"levels": rows}))


if __name__ == "__main__":
    main()
