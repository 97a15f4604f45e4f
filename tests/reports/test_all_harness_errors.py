"""A config whose every run is a harness error: every artifact renders and says so."""

from __future__ import annotations

from pathlib import Path
from xml.etree import ElementTree

import pandas as pd
import pytest
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.evals import Config, Experiment, run_experiment

from .conftest import IDS, SOC_CORE

ARTIFACTS = ("metrics.csv", "summary.md", "junit.xml", "report.html")


def broken_models(*args: object) -> object:
    """A ``models=`` factory that raises: every run of its config is a harness error."""
    raise RuntimeError("the model factory broke")


@pytest.fixture(scope="module", params=[["broken"], ["small", "broken"]], ids=["alone", "beside-small"])
def broken_results(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("broken")
    broken = Config(name="broken", models=f"{__name__}:broken_models")
    configs = [broken if name == "broken" else name for name in request.param]
    experiment = Experiment(name="broken", scenarios=[SOC_CORE], ids=IDS[:2], seeds=2, configs=configs)
    summary = run_experiment(experiment, out)
    assert (summary.ran, summary.harness_errors) == (4 * len(configs), 4)
    return out


def test_report_writes_every_artifact_and_exits_2(broken_results: Path) -> None:
    for name in ARTIFACTS:
        (broken_results / name).unlink(missing_ok=True)
    result = CliRunner().invoke(app, ["report", str(broken_results)])
    assert result.exit_code == 2, result.output
    assert "note: 4 runs hit a harness error" in result.output
    assert "the model factory broke" in result.output
    assert "no measured run (4 harness errors)" in result.output  # the printed table
    for name in ARTIFACTS:
        assert (broken_results / name).stat().st_size > 0, name
    summary = (broken_results / "summary.md").read_text()
    assert "| broken | no measured run (4 harness errors) | n/a |" in summary
    assert "the harness failed on 4 of" in summary
    html = (broken_results / "report.html").read_text()
    assert "<td>no measured run (4 harness errors)</td>" in html
    assert "broken: no measured run" in html  # the calibration plot's title
    metrics = pd.read_csv(broken_results / "metrics.csv").set_index("config")
    assert (metrics.loc["broken", "runs"], metrics.loc["broken", "harness_errors"]) == (0, 4)
    assert pd.isna(metrics.loc["broken", "accuracy"])
    suite = ElementTree.parse(broken_results / "junit.xml").getroot().find("testsuite[@name='broken']")
    assert suite is not None
    assert (suite.get("tests"), suite.get("errors"), suite.get("failures")) == ("2", "2", "0")


def test_a_gate_on_the_unmeasured_config_fails_rather_than_crashes(broken_results: Path) -> None:
    result = CliRunner().invoke(app, ["report", str(broken_results), "--gate", "accuracy >= 0.5"])
    assert result.exit_code == 2, result.output
    assert "FAIL accuracy >= 0.5 failed for config 'broken': nothing to measure" in result.output
