"""The run matrix: graded runs per second per core, and a ~1,000-run experiment's wall time.

1. In-process: every soc-core scenario x seeds on the ``small`` tier, each run graded
   and turned into its row (trace digest included) by ``run_cell``, no disk: runs/s
   on one core.
2. ``run_experiment`` on soc-core x seeds x 3 tiers (~1,000 runs by default), on a
   process pool of 2 workers, writing the results directory: wall time, start-up
   of the pool included.

Not a test: it asserts nothing about timings. Last line: one JSON object.
Targets (issue 10): >= 1,000 graded runs/s per core; 10,000 runs <= 10 s on 2 cores.
Not measured here yet: the 10,000-run matrix, RSS growth, Ray.

    python benchmarks/bench_matrix.py [SEEDS_IN_PROCESS] [SEEDS_MATRIX]
"""

from __future__ import annotations

import json
import sys
import tempfile
import time

from windtunnel.evals import Experiment, run_cell, run_experiment

SOC_CORE = "windtunnel/scenarios/soc/scenarios/soc-core.yaml"


def main() -> None:
    seeds_in_process = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    seeds_matrix = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    one = Experiment(name="bench", scenarios=[SOC_CORE], seeds=seeds_in_process, configs=["small"], recheck=0)
    suite = one.load()
    scenarios = {loaded.scenario.id: loaded for loaded in suite}
    cells = one.cells(suite)
    run_cell(one, scenarios[cells[0].scenario], cells[0])  # warm: imports, first-use caches
    started = time.perf_counter()
    for cell in cells:
        run_cell(one, scenarios[cell.scenario], cell)
    elapsed = time.perf_counter() - started
    per_core = len(cells) / elapsed
    print(f"in-process: {len(cells)} graded runs of soc-core in {elapsed:.2f} s = {per_core:.0f} runs/s/core")

    matrix = Experiment(
        name="bench-matrix", scenarios=[SOC_CORE], seeds=seeds_matrix, configs=["small", "mid", "large"]
    )
    with tempfile.TemporaryDirectory() as out:
        summary = run_experiment(matrix, out, executor="process", workers=2)
    print(
        f"matrix: {summary.ran} runs (soc-core x {seeds_matrix} seeds x 3 tiers, "
        f"{matrix.recheck:.0%} rechecked) on 2 process workers, results written: {summary.wall_s:.1f} s"
    )
    print(
        json.dumps(
            {
                "runs_per_s_per_core": round(per_core, 1),
                "matrix_runs": summary.ran,
                "matrix_1k_wall_s": round(summary.wall_s, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
