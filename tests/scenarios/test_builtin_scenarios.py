"""Every built-in scenario: it validates, runs on every default tier and a ladder
without a harness error, and its ground truth is honest — an agent that plays the
playbook's right choices is graded correct, one that plays wrong choices is not."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML

from windtunnel.scenarios import BUILTIN_DOMAINS, LoadedScenario, load_domain, load_suite, run_scenario
from windtunnel.scenarios.json_schema import scenario_schema
from windtunnel.scenarios.oracle import oracle

PLAYS = ["small", "mid", "large", "ladder:small@0.85,mid@0.6,large"]


def _folders() -> list[Path]:
    folders = []
    for name in BUILTIN_DOMAINS:
        domain = load_domain(name)
        assert domain.scenarios is not None, f"built-in domain {name!r} ships no scenarios"
        folders.append(domain.scenarios)
    return folders


LIBRARY = list(load_suite(_folders()))


def _id(item: LoadedScenario) -> str:
    return item.scenario.id


def test_every_built_in_domain_ships_its_suite() -> None:
    counts = {name: sum(1 for item in LIBRARY if item.domain.name == name) for name in BUILTIN_DOMAINS}
    assert counts["soc"] >= 40
    assert counts["oncall"] >= 15


@pytest.mark.parametrize("item", LIBRARY, ids=_id)
def test_the_json_schema_accepts_every_built_in_file(item: LoadedScenario) -> None:
    data = YAML(typ="safe").load(Path(item.file).read_text())
    jsonschema.validate(data, scenario_schema())


@pytest.mark.parametrize("item", LIBRARY, ids=_id)
def test_every_built_in_scenario_runs_on_every_tier(item: LoadedScenario) -> None:
    for play in PLAYS:
        outcome = run_scenario(item, seed=1, play=play)  # a harness error would raise here
        assert outcome.result.final_state in item.domain.terminal_states, (play, outcome.result.reason)


@pytest.mark.parametrize("item", LIBRARY, ids=_id)
def test_the_ground_truth_is_honest(item: LoadedScenario) -> None:
    for seed in (0, 1):
        right = run_scenario(item, seed=seed, models=oracle())
        assert right.verdict.correct, f"seed {seed}: the right play is graded wrong:\n{right.verdict}"
        wrong = run_scenario(item, seed=seed, models=oracle(wrong=True))
        failed = {check.name for check in wrong.verdict.failed}
        assert failed & {"final_state", "escalation", "required_actions", "forbidden_actions"}, (
            f"seed {seed}: a wrong play is graded correct:\n{wrong.verdict}"
        )
