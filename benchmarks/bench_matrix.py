"""The run matrix: graded runs per second per core, a 10,000-run experiment, memory, Ray.

1. ``runs_per_s_per_core``: in-process, every soc-core scenario x seeds on the
   ``small`` tier, each run graded and turned into its row and event rows (trace
   digest included) by ``run_cell``, no disk; after one warm run of every scenario
   (first-use imports and caches are start-up, not throughput);
   ``trials_per_s_per_core``: the same runs as a fuzzer's trials, ``run_scenario``
   (graded) and ``check_all``, with no row, event rows or digest.
2. ``matrix_10k_wall_s``: ``run_experiment`` on soc-core x seeds x 3 tiers (10,032
   runs by default) on a process pool of 2 workers, writing the results directory;
   pool start-up and suite loading included.
3. ``rss_growth_mb``: RSS of the whole process tree (this process and the pool's
   workers) after 100,000 runs minus after 1,000, while a 100,000-run experiment
   streams its results to disk on 2 workers; ``rss_growth_after_warmup_mb``: the
   same from 10% of the runs.
4. ``ray_over_pool``: the Ray executor's wall time over the process pool's on the same
   ~1,000-run experiment, 2 workers each, Ray's local start-up included (null when Ray
   is not installed).

Not a test: it asserts nothing about timings. Last line: one JSON object.
Targets (issue 10): >= 1,000 graded runs/s per core (the fuzzer: >= 500 trials/s per core);
10,000 runs <= 10 s on 2 cores; RSS growth < 100 MB from 1,000 to 100,000 runs; Ray within 2x of the pool.

    python benchmarks/bench_matrix.py [--seeds N] [--matrix-runs N] [--rss-runs N] [--ray-runs N]
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import os
import tempfile
import time
from importlib.util import find_spec
from pathlib import Path

from windtunnel.evals import Cell, Experiment, Progress, check_all, run_cell, run_experiment
from windtunnel.scenarios import run_scenario

SOC_CORE = "windtunnel/scenarios/soc/scenarios/soc-core.yaml"
TIERS = ["small", "mid", "large"]


def rss_mb(pid: int) -> float:
    """Resident set size of ``pid`` in MB, from /proc (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_rss_mb() -> float:
    """RSS of this process and its live children (the pool's workers)."""
    pids = [os.getpid(), *(child.pid for child in multiprocessing.active_children() if child.pid)]
    total = 0.0
    for pid in pids:
        try:
            total += rss_mb(pid)
        except OSError:  # a worker that just exited
            continue
    return total


def in_process(seeds: int) -> float:
    experiment = Experiment(name="bench", scenarios=[SOC_CORE], seeds=seeds, configs=["small"], recheck=0)
    suite = experiment.load()
    scenarios = experiment.scenarios_by_plan(suite)
    cells = experiment.cells(suite)
    for cell in cells[:: experiment.seeds]:  # warm: one run of every scenario
        run_cell(experiment, scenarios[(cell.scenario, cell.plan)], cell)
    started = time.perf_counter()
    for cell in cells:
        run_cell(experiment, scenarios[(cell.scenario, cell.plan)], cell)
    elapsed = time.perf_counter() - started
    per_core = len(cells) / elapsed
    print(f"in-process: {len(cells)} graded runs of soc-core in {elapsed:.2f} s = {per_core:.0f} runs/s/core")
    return per_core


def trials(seeds: int) -> float:
    experiment = Experiment(name="bench", scenarios=[SOC_CORE], seeds=seeds, configs=["small"], recheck=0)
    suite = experiment.load()
    scenarios = experiment.scenarios_by_plan(suite)
    cells = experiment.cells(suite)

    def trial(cell: Cell) -> None:
        run = run_scenario(scenarios[(cell.scenario, cell.plan)], seed=cell.seed, play="small")
        check_all(run.trace.events, run.workflow)

    for cell in cells[:: experiment.seeds]:  # warm, as in_process()
        trial(cell)
    started = time.perf_counter()
    for cell in cells:
        trial(cell)
    elapsed = time.perf_counter() - started
    per_core = len(cells) / elapsed
    print(
        f"fuzzer trials: {len(cells)} of soc-core (run, grade, invariants) in {elapsed:.2f} s "
        f"= {per_core:.0f} trials/s/core"
    )
    return per_core


def tiers_experiment(name: str, runs: int) -> Experiment:
    scenarios = len(Experiment(name=name, scenarios=[SOC_CORE], configs=["small"]).load())
    seeds = max(1, math.ceil(runs / (scenarios * len(TIERS))))
    return Experiment(name=name, scenarios=[SOC_CORE], seeds=seeds, configs=TIERS)  # type: ignore[arg-type]


def matrix(runs: int) -> float:
    experiment = tiers_experiment("bench-matrix", runs)
    with tempfile.TemporaryDirectory() as out:
        summary = run_experiment(experiment, out, executor="process", workers=2)
    print(
        f"matrix: {summary.ran} runs (soc-core x {experiment.seeds} seeds x 3 tiers, "
        f"{experiment.recheck:.0%} rechecked) on 2 process workers, results written: {summary.wall_s:.1f} s"
    )
    return summary.wall_s


def rss_growth(runs: int) -> tuple[float, float]:
    """Tree RSS growth from 1,000 runs to the end, and from 10% of the runs to the end.

    Cells run seed by seed, so the first 1,000 runs (7 seeds of soc-core x 3 tiers)
    have met every scenario: what each uses (the SDK, SQLite) is loaded by then."""
    experiment = tiers_experiment("bench-rss", runs)
    first, tenth = min(1000, runs // 2), max(runs // 10, min(1000, runs // 2) + 1)
    marks: dict[str, float] = {}

    def sample(progress: Progress) -> None:
        if progress.done == first:
            marks["first"] = tree_rss_mb()
        if progress.done == tenth:
            marks["tenth"] = tree_rss_mb()
        if progress.done == progress.total:
            marks["last"] = tree_rss_mb()

    with tempfile.TemporaryDirectory() as out:
        summary = run_experiment(experiment, out, executor="process", workers=2, progress=sample)
    growth, later = marks["last"] - marks["first"], marks["last"] - marks.get("tenth", marks["first"])
    print(
        f"memory: process tree RSS {marks['first']:.0f} MB after {first} runs, "
        f"{marks.get('tenth', 0):.0f} MB after {tenth}, {marks['last']:.0f} MB after {summary.ran} runs "
        f"({summary.wall_s:.0f} s): growth "
        f"{growth:+.1f} MB from {first}, {later:+.1f} MB from {tenth}"
    )
    return growth, later


def ray_over_pool(runs: int) -> float | None:
    if runs == 0:
        print("ray: --ray-runs 0; not measured")
        return None
    if find_spec("ray") is None:
        print("ray: not installed (pip install 'windtunnel[ray]'); not measured")
        return None
    experiment = tiers_experiment("bench-ray", runs)
    walls = {}
    for executor in ("process", "ray"):
        with tempfile.TemporaryDirectory() as out:
            walls[executor] = run_experiment(experiment, out, executor=executor, workers=2).wall_s  # type: ignore[arg-type]
    ratio = walls["ray"] / walls["process"]
    print(
        f"ray: {len(experiment.cells())} runs on 2 workers in {walls['ray']:.1f} s (local Ray started "
        f"and stopped) vs the process pool's {walls['process']:.1f} s: {ratio:.2f}x"
    )
    return ratio


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seeds", type=int, default=5, help="seeds per scenario for runs/s/core")
    parser.add_argument("--matrix-runs", type=int, default=10_000, help="runs of the timed matrix")
    parser.add_argument("--rss-runs", type=int, default=100_000, help="runs of the memory measurement")
    parser.add_argument("--ray-runs", type=int, default=1_000, help="runs of the Ray vs pool comparison")
    args = parser.parse_args()
    summary = {
        "runs_per_s_per_core": round(in_process(args.seeds), 1),
        "trials_per_s_per_core": round(trials(args.seeds), 1),
        "matrix_10k_wall_s": round(matrix(args.matrix_runs), 2),
    }
    growth, later = rss_growth(args.rss_runs)
    summary["rss_growth_mb"] = round(growth, 1)
    summary["rss_growth_after_warmup_mb"] = round(later, 1)
    ratio = ray_over_pool(args.ray_runs)
    summary["ray_over_pool"] = None if ratio is None else round(ratio, 2)
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
