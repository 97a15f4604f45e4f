"""The fuzzer finds each planted bug and shrinks it; it finds nothing in the correct workflow.

Each campaign fuzzes the same trials — the SOC scenarios that meet no fault of their
own, every fault kind, campaign seed 0, decisions played by the oracle model (the
playbook played perfectly, so that only the orchestration can fail) — with one of
the planted-bug workflows of ``planted_bugs``. A bug is found when one regression file it wrote fails when run
(``windtunnel scenario run`` and ``windtunnel run``) and passes with the bug fixed
(the correct workflow), with at most two faults.
"""

from __future__ import annotations

import functools
from pathlib import Path

import pytest
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.evals import Config, Experiment, read_runs, run_experiment
from windtunnel.evals.fuzz import Finding, FuzzReport, fuzz
from windtunnel.scenarios import load_suite
from windtunnel.scenarios.oracle import ORACLE_MODELS

from . import planted_bugs
from .test_fuzz import plain
from .test_planted_bugs import BUGS

TRIALS = 300
PLANTED = planted_bugs.__name__
CORRECT = f"{PLANTED}:correct"


@functools.cache
def campaign(workflow: str, out: Path) -> FuzzReport:
    return fuzz(plain(), trials=TRIALS, seed=0, config="oracle", workflow=f"{PLANTED}:{workflow}", out=out)


@pytest.fixture(scope="module")
def out(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _scenario_run(path: Path, *workflow: str) -> int:
    result = CliRunner().invoke(app, ["scenario", "run", str(path), "--tier", "oracle", *workflow])
    return result.exit_code


def _fixed_by_correct(finding: Finding) -> bool:
    assert finding.path is not None
    return _scenario_run(finding.path) == 1 and _scenario_run(finding.path, "--workflow", CORRECT) == 0


@pytest.mark.parametrize("bug", BUGS)
def test_each_planted_bug_is_found_and_shrunk(bug: str, out: Path) -> None:
    report = campaign(bug, out / bug)
    planted = [f for f in report.findings if len(f.faults) <= 2 and _fixed_by_correct(f)]
    assert planted, [str(f.failure) for f in report.findings]
    first = planted[0]
    assert first.trial is not None
    assert first.trial < TRIALS
    assert first.generated >= len(first.faults)
    # The file is an ordinary scenario: `windtunnel run` runs it, on its own seed.
    assert first.path is not None
    loaded = load_suite([first.path])
    assert [s.scenario.seed for s in loaded] == [first.seed]
    for workflow, wrong in ((f"{PLANTED}:{bug}", True), (CORRECT, False)):
        config = Config(name="oracle", models=ORACLE_MODELS, workflow=workflow)
        experiment = Experiment(name="regression", scenarios=[str(first.path)], configs=[config], seeds=3)
        results = run_experiment(experiment, out / f"run-{bug}-{wrong}").path
        rows = read_runs(results)
        assert len(rows) == 1  # a pinned scenario runs once per config, whatever the seeds
        broken = (not rows["correct"].iloc[0]) or rows["invariant_violations"].iloc[0] > 0
        assert broken == wrong


def test_the_correct_workflow_gives_nothing_to_report(out: Path) -> None:
    report = campaign("correct", out / "correct")
    assert report.findings == [], [str(f.failure) for f in report.findings]
    assert report.harness_errors == 0
    assert report.trials == TRIALS
    assert report.inconclusive < TRIALS / 2
