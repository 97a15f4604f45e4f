"""Wall time of simulated waiting: 100 concurrent tasks each sleep 2700 simulated
seconds (a 45-minute investigation) in 60 s steps on windtunnel's virtual clock.

Prints the median wall time over repeats and, last, one JSON object with
``wall_ms`` and ``compression`` (simulated seconds per wall second). Not a test.

    python benchmarks/bench_clock.py [TASKS]
"""

from __future__ import annotations

import asyncio
import json
import statistics
import sys
import time

from windtunnel import Sim

SIMULATED = 2700.0
STEP = 60.0


async def investigation() -> None:
    for _ in range(int(SIMULATED / STEP)):
        await asyncio.sleep(STEP)


async def all_of(tasks: int) -> None:
    await asyncio.gather(*(investigation() for _ in range(tasks)))


def once(tasks: int) -> float:
    sim = Sim(seed=0)
    started = time.perf_counter()
    sim.run(all_of(tasks))
    wall = time.perf_counter() - started
    if sim.now != SIMULATED:
        raise SystemExit(f"clock ended at {sim.now!r}, expected {SIMULATED}")
    return wall


def main() -> None:
    tasks = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    repeats = 7
    once(tasks)  # warm-up
    wall = statistics.median(once(tasks) for _ in range(repeats))
    sleeps = tasks * int(SIMULATED / STEP)
    print(f"python {sys.version.split()[0]}, {tasks} tasks x {int(SIMULATED / STEP)} sleeps of {STEP:g} s")
    print(f"wall time (median of {repeats}): {wall * 1e3:.2f} ms for {SIMULATED:g} simulated seconds")
    print(f"per task: {wall / tasks * 1e3:.3f} ms; per sleep: {wall / sleeps * 1e6:.2f} us")
    print(f"compression: {SIMULATED / wall:,.0f} simulated seconds per wall second")
    print(json.dumps({"wall_ms": round(wall * 1e3, 3), "compression": round(SIMULATED / wall)}))


if __name__ == "__main__":
    main()
