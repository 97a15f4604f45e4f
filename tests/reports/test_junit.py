"""JUnit XML, read back by junitparser: counts, messages, notes, properties, replay commands."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pandas as pd
from junitparser import Error, Failure, JUnitXml, TestCase, TestSuite
from typer.testing import CliRunner

from tests.evals.runs_kit import runs
from windtunnel.cli import app
from windtunnel.evals import CHECKS, Config, read_runs
from windtunnel.reports import junit_xml, replay_command, replayer


def hand_runs() -> pd.DataFrame:
    return runs(
        {"config": "small", "scenario": "s1", "seed_index": 0, "seed": 11},
        {
            "config": "small",
            "scenario": "s1",
            "seed_index": 1,
            "seed": 12,
            "correct": False,
            "check_escalation": False,
            "check_required_actions": False,
            "final_state": "closed",
        },
        {"config": "small", "scenario": "s2", "seed_index": 0, "seed": 21, "harness_error": "KeyError: 'x'"},
        {
            "config": "small",
            "scenario": "s3",
            "seed_index": 0,
            "seed": 31,
            "inconclusive": True,
            "faults_declared": 1,
            "faults_not_fired": "slow-intel",
        },
        {"config": "large", "scenario": "s1", "seed_index": 0, "seed": 11},
    )


def fake_replay(run: Any) -> str:
    return f"replay {run['scenario']} {run['seed']} {run['config']}"


def parsed(xml: str) -> dict[tuple[str, str], TestCase]:
    document = JUnitXml.fromstring(xml)
    return {(case.classname, case.name): case for suite in document for case in suite}


def test_counts_and_outcomes() -> None:
    xml = junit_xml(hand_runs(), replay=fake_replay)
    document = JUnitXml.fromstring(xml)
    assert (document.tests, document.failures, document.errors) == (4, 1, 1)
    suites: dict[str, TestSuite] = {suite.name: suite for suite in document}
    assert {name: (s.tests, s.failures, s.errors) for name, s in suites.items()} == {
        "large": (1, 0, 0),
        "small": (3, 1, 1),
    }
    cases = parsed(xml)
    assert sorted(cases) == [("large", "s1"), ("small", "s1"), ("small", "s2"), ("small", "s3")]
    assert cases[("large", "s1")].is_passed
    assert cases[("small", "s3")].is_passed  # inconclusive is a note, not a failure


def test_failure_names_checks_seeds_and_the_replay() -> None:
    [failure] = parsed(junit_xml(hand_runs(), replay=fake_replay))[("small", "s1")].result
    assert isinstance(failure, Failure)
    assert (
        failure.message == "failed on 1 of 2 seeds (seed index 1): check_escalation, check_required_actions"
    )
    assert failure.text == (
        "seed index 1 (seed 12): failed check_escalation, check_required_actions; "
        "ended finished in state 'closed'\n  replay: replay s1 12 small"
    )


def test_harness_error_and_inconclusive_note() -> None:
    cases = parsed(junit_xml(hand_runs()))
    [error] = cases[("small", "s2")].result
    assert isinstance(error, Error)
    assert (error.message, error.type, error.text) == (
        "the harness failed on 1 of 1 seeds (seed index 0)",
        "KeyError",
        "seed index 0: KeyError: 'x'",
    )
    assert cases[("small", "s3")].system_out == (
        "inconclusive: seed index 0: fault(s) slow-intel never fired; "
        "the run says nothing about surviving them"
    )


def test_properties_carry_the_metrics() -> None:
    suites = {suite.name: suite for suite in JUnitXml.fromstring(junit_xml(hand_runs()))}
    properties = {p.name: p.value for p in suites["small"].properties()}
    assert properties["runs"] == "3"
    assert properties["harness_errors"] == "1"
    assert properties["accuracy"] == "0.666667"
    assert {"accuracy_low", "accuracy_high", "pass^1"} <= set(properties)
    assert "escalation_recall" not in properties  # NaN: nothing needed a human


def test_replay_command_for_each_kind_of_config() -> None:
    run = {"scenario": "soc-x", "seed": 7, "fault_plan": ""}
    play = Config(name="cheap", play="ladder:small@0.85,large", workflow="mine.flows:build")
    assert replay_command(run, file="a b.yaml", config=play) == (
        "windtunnel scenario run 'a b.yaml' --id soc-x --seed 7 --tier ladder:small@0.85,large "
        "--workflow mine.flows:build"
    )
    own = Config(name="mine", models="mine.models:build")
    assert replay_command({**run, "fault_plan": "storm"}, file="x.yaml", config=own) == (
        "windtunnel scenario run x.yaml --id soc-x --seed 7  # config 'mine' plays its own models "
        "(mine.models:build), which this command cannot take; the run also met the extra fault plan "
        "'storm', which this command does not add"
    )


def test_real_failure_replays_the_same_failure(results_dir: Path) -> None:
    manifest = json.loads((results_dir / "manifest.json").read_text())
    frame = read_runs(results_dir)
    xml = junit_xml(frame, replay=replayer(manifest), name="t")
    cases = parsed(xml)
    wrong = frame[~frame["correct"].astype(bool)].sort_values("cell").iloc[0]
    [failure] = cases[(wrong["config"], wrong["scenario"])].result
    assert isinstance(failure, Failure)
    assert f"seed index {wrong['seed_index']}" in failure.message
    command = next(
        line
        for line in failure.text.splitlines()
        if "replay: windtunnel" in line and str(wrong["seed"]) in line
    )
    argv = shlex.split(command.split("replay: ", 1)[1])
    assert argv[:4] == ["windtunnel", "scenario", "run", "windtunnel/scenarios/soc/scenarios/c2-beacon.yaml"]
    replayed = CliRunner().invoke(app, argv[1:])
    assert replayed.exit_code == 1, replayed.output  # the same run, graded wrong again
    for check in CHECKS:  # the same checks fail again
        assert f"{'pass' if wrong[f'check_{check}'] else 'FAIL'} {check}:" in replayed.output
