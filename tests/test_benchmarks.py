"""The benchmark scripts still run and end with their JSON line (timings are not checked)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"


@pytest.mark.parametrize(
    ("script", "args", "keys"),
    [
        ("bench_engine.py", ["20"], {"windtunnel_us", "floor_us", "langgraph_us", "speedup_vs_langgraph"}),
        ("bench_clock.py", ["3"], {"wall_ms", "compression"}),
        ("bench_agent.py", ["10"], {"direct_us", "sdk_us"}),
        ("bench_durable.py", ["20"], {"windtunnel_tps", "langgraph_tps", "ratio_vs_langgraph"}),
        ("bench_store_contention.py", ["0.2", "2"], {"levels"}),
        ("bench_scenarios.py", [], {"load_s", "scenarios", "per_scenario_ms"}),
        (
            "bench_matrix.py",
            ["--seeds", "1", "--matrix-runs", "132", "--rss-runs", "200", "--ray-runs", "0"],
            {"runs_per_s_per_core", "matrix_10k_wall_s", "rss_growth_mb", "ray_over_pool"},
        ),
        ("bench_report.py", ["--seeds", "1", "--runs", "1000"], {"render_s", "html_mb", "runs"}),
        (
            "bench_fuzz.py",
            ["--trials", "20"],
            {"trials_per_s_per_core", "planted_bug_s", "planted_bug_faults"},
        ),
    ],
)
def test_benchmark_prints_its_summary(script: str, args: list[str], keys: set[str]) -> None:
    done = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.splitlines()[-1])
    assert keys <= set(summary)
    for key, value in summary.items():
        if key == "rss_growth_mb":  # a difference: may be negative when memory is given back
            assert isinstance(value, int | float)
            continue
        assert value is None or (value > 0 if isinstance(value, int | float) else len(value) > 0)
