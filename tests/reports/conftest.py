"""Small real results directories, each run once for the report tests, and a hostile copy."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa  # type: ignore[import-untyped]
import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from windtunnel.evals import RUNS_SCHEMA, Experiment, run_experiment

SOC_CORE = "windtunnel/scenarios/soc/scenarios/soc-core.yaml"
IDS = ["soc-c2-beacon", "soc-backup-siem-partial", "soc-c2-block-silent-failure", "soc-login-intel-error"]
CONFIGS = ["small", "large", "ladder:small@0.85,mid@0.6,large"]
HOSTILE = '<script>alert("pwned")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="session")
def results_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two scenarios x two seeds x small and large: soc-c2-beacon fails on some seeds."""
    out = tmp_path_factory.mktemp("results")
    experiment = Experiment(
        name="t",
        scenarios=["windtunnel/scenarios/soc/scenarios"],
        ids=["soc-c2-beacon", "soc-benign-scanner"],
        seeds=2,
        configs=["small", "large"],
    )
    run_experiment(experiment, out)
    return out


@pytest.fixture(scope="session")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four soc scenarios x 3 seeds x 3 configs, run for real: 36 runs, some failing."""
    out = tmp_path_factory.mktemp("results")
    run_experiment(
        Experiment(name="report-test", scenarios=[SOC_CORE], ids=IDS, seeds=3, configs=CONFIGS), out
    )
    return out


@pytest.fixture(scope="session")
def hostile(results: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same results, with markup in a scenario id and config name, and a harness
    error whose message is markup."""
    out = tmp_path_factory.mktemp("hostile")
    runs = pq.read_table(results / "runs.parquet", schema=RUNS_SCHEMA).to_pandas()
    first = runs["scenario"] == IDS[0]
    runs.loc[first, "scenario"] = HOSTILE
    runs.loc[first, "cell"] = runs.loc[first, "cell"].str.replace(IDS[0], HOSTILE, regex=False)
    runs.loc[runs["config"] == "small", "config"] = f"small{HOSTILE}"
    runs.loc[runs.index[-1], "harness_error"] = f"RuntimeError: {HOSTILE}"
    (out / "runs.parquet").mkdir()
    pq.write_table(
        pa.Table.from_pandas(runs, schema=RUNS_SCHEMA, preserve_index=False),
        out / "runs.parquet" / "part-00000-00000.parquet",
    )
    (out / "events.parquet").symlink_to(results / "events.parquet")
    (out / "manifest.json").write_text((results / "manifest.json").read_text())
    return out
