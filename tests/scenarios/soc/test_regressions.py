"""Scenario files the fuzzer wrote for bugs it found: each runs on its pinned seed,
on the tier that found it, graded correct and breaking no invariant."""

from __future__ import annotations

from pathlib import Path

import pytest

from windtunnel.evals.invariants import check_all
from windtunnel.scenarios import load_file, run_scenario

FILES = sorted((Path(__file__).parent / "regressions").glob("*.yaml"))


@pytest.mark.parametrize("path", FILES, ids=[path.stem for path in FILES])
def test_a_fuzzer_regression_stays_fixed(path: Path) -> None:
    [loaded] = load_file(path)
    assert loaded.scenario.seed is not None
    outcome = run_scenario(loaded, seed=loaded.scenario.seed, play="large")
    assert outcome.verdict.correct, outcome.verdict
    assert check_all(outcome.trace.events, outcome.workflow) == []
