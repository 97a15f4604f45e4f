"""The HTML report of 100,000 runs: how long it takes to render, how big it is.

A real experiment runs first (soc-core x ``--seeds`` x small, mid, large and a
ladder: a few hundred runs), then its rows are replicated into a results directory
of ``--runs`` runs: each copy is the same runs under new seed indices and cell ids,
its events copied with them (the events' JSON as the real runs wrote it), in row
groups of one copy and part files of ten, as ``Results`` lays them out. Then
``write_report`` renders it, timed alone (imports are timed apart).

Not a test: it asserts nothing about timings. Last line: one JSON object.
Targets (issue 11): < 10 s to render 100,000 runs, HTML < 5 MB.

    python benchmarks/bench_report.py [--runs N] [--seeds N] [--source DIR]
"""

from __future__ import annotations

import argparse
import json
import math
import tempfile
import time
from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.compute as pc  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]

from windtunnel.evals import EVENTS_SCHEMA, RUNS_SCHEMA, Experiment, run_experiment

SOC_CORE = "windtunnel/scenarios/soc/scenarios/soc-core.yaml"
CONFIGS = ["small", "mid", "large", "ladder:small@0.85,mid@0.6,large"]


def replicate(source: Path, out: Path, runs: int) -> int:
    """Write ``out`` holding ``runs`` runs copied from ``source``; return how many."""
    real_runs = pq.read_table(source / "runs.parquet", schema=RUNS_SCHEMA)
    real_events = pq.read_table(source / "events.parquet", schema=EVENTS_SCHEMA)
    per_copy = real_runs.num_rows
    copies = math.ceil(runs / per_copy)
    seeds = int(pc.max(real_runs["seed_index"]).as_py()) + 1
    cells = real_runs["cell"]
    where = pc.index_in(real_events["cell"], value_set=cells)  # each event's row in the runs table
    (out / "runs.parquet").mkdir(parents=True)
    (out / "events.parquet").mkdir()
    (out / "manifest.json").write_text((source / "manifest.json").read_text())
    writers: tuple[pq.ParquetWriter, pq.ParquetWriter] | None = None
    written = 0
    for copy in range(copies):
        keep = min(per_copy, runs - written)
        index = pc.add(real_runs["seed_index"], copy * seeds)
        new_cells = pa.array(
            [
                f"{scenario}/{i}/{config}"
                for scenario, i, config in zip(
                    real_runs["scenario"].to_pylist(),
                    index.to_pylist(),
                    real_runs["config"].to_pylist(),
                    strict=True,
                )
            ]
        )
        table = (
            real_runs.set_column(real_runs.schema.get_field_index("cell"), "cell", new_cells)
            .set_column(real_runs.schema.get_field_index("seed_index"), "seed_index", index)
            .set_column(
                real_runs.schema.get_field_index("seed"),
                "seed",
                pc.add(real_runs["seed"], pa.scalar(copy, pa.uint64())),
            )
            .slice(0, keep)
        )
        events = real_events.set_column(
            real_events.schema.get_field_index("cell"), "cell", new_cells.take(where)
        ).filter(pc.less(where, keep))
        if writers is None:
            name = f"part-00000-{copy // 10:05d}.parquet"
            writers = (
                pq.ParquetWriter(out / "events.parquet" / name, EVENTS_SCHEMA),
                pq.ParquetWriter(out / "runs.parquet" / name, RUNS_SCHEMA),
            )
        writers[0].write_table(events)
        writers[1].write_table(table)
        written += keep
        if copy % 10 == 9 or copy == copies - 1:
            writers[0].close()
            writers[1].close()
            writers = None
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100_000, help="runs in the report")
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the real experiment copied")
    parser.add_argument("--source", type=Path, help="a results directory to copy instead of running one")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        real, big = Path(tmp) / "real", Path(tmp) / "big"
        if args.source is None:
            started = time.perf_counter()
            experiment = Experiment(
                name="bench-report", scenarios=[SOC_CORE], seeds=args.seeds, configs=CONFIGS
            )
            run_experiment(experiment, real)
            print(f"real experiment: {time.perf_counter() - started:.1f} s")
        else:
            real = args.source
        started = time.perf_counter()
        runs = replicate(real, big, args.runs)
        size = sum(path.stat().st_size for path in big.rglob("*.parquet")) / 1e6
        print(
            f"replicated to {runs} runs ({size:.0f} MB of parquet) in {time.perf_counter() - started:.1f} s"
        )

        started = time.perf_counter()
        from windtunnel.reports import write_report

        import_s = time.perf_counter() - started
        started = time.perf_counter()
        report = write_report(big, Path(tmp) / "report.html")
        render_s = time.perf_counter() - started
        html_mb = report.stat().st_size / 1e6
    print(f"imports: {import_s:.2f} s")
    print(f"render {runs} runs: {render_s:.2f} s (target < 10 s)")
    print(f"html: {html_mb:.2f} MB (target < 5 MB)")
    print(
        json.dumps(
            {
                "render_s": round(render_s, 3),
                "html_mb": round(html_mb, 3),
                "runs": runs,
                "import_s": round(import_s, 3),
            }
        )
    )


if __name__ == "__main__":
    main()
