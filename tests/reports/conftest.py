"""One real small experiment, run once for the report tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from windtunnel.evals import Experiment, run_experiment


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
