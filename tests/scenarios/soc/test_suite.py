"""The soc-core suite: what it covers, that it runs on every tier, and the runs its
hardest scenarios exist for."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from windtunnel.scenarios import LoadedScenario, load_suite, overlay, run_scenario
from windtunnel.scenarios.soc import DOMAIN
from windtunnel.simulators import derive_seed
from windtunnel.simulators.faults import Fault, Trigger

assert DOMAIN.scenarios is not None
FOLDER = DOMAIN.scenarios
SUITE = load_suite([FOLDER / "soc-core.yaml"])
BY_ID = {loaded.scenario.id: loaded for loaded in SUITE}
PLAYS = ["small", "mid", "large", "ladder:small@0.85,mid@0.6,large"]
BUILTIN_KINDS = [
    "timeout",
    "latency_spike",
    "error",
    "empty_result",
    "partial_result",
    "stale_read",
    "silent_failure",
    "conflicting_actor",
    "hallucinated_tool_call",
    "malformed_arguments",
    "rate_limit",
    "overloaded",
    "human_slow",
    "human_absent",
    "human_wrong",
    "crash",
]
TEMPLATES = [
    "c2_beacon",
    "critical_host",
    "benign_scanner",
    "suspicious_login",
    "privileged_login",
    "benign_backup",
]


def test_the_suite_file_holds_every_scenario_file_of_the_folder_but_itself() -> None:
    assert len(SUITE) >= 40
    assert len(SUITE) == len(load_suite([FOLDER]))
    files = sorted(p for p in FOLDER.glob("*.yaml") if p.name != "soc-core.yaml")
    assert sorted(Path(name) for name in SUITE.files) == files
    for file in files:
        assert file.read_text().startswith("# yaml-language-server: $schema=../../scenario.schema.json\n")


def test_every_fault_kind_is_in_at_least_two_scenarios_and_tagged() -> None:
    uses = Counter(kind for loaded in SUITE for kind in {fault.kind for fault in loaded.scenario.faults})
    assert {kind: uses[kind] for kind in BUILTIN_KINDS if uses[kind] < 2} == {}
    for loaded in SUITE:
        kinds = {fault.kind for fault in loaded.scenario.faults}
        assert kinds <= set(loaded.scenario.tags), loaded.scenario.id


def test_every_case_template_has_scenarios_and_a_few_are_smoke() -> None:
    templates = Counter(tag for loaded in SUITE for tag in loaded.scenario.tags if tag in TEMPLATES)
    assert sorted(templates) == sorted(TEMPLATES)
    assert all(len(loaded.scenario.tags) >= 1 and loaded.scenario.description for loaded in SUITE)
    assert 4 <= len(load_suite([FOLDER], tags=["smoke"])) <= 6


@pytest.mark.parametrize("loaded", SUITE.scenarios, ids=lambda loaded: loaded.scenario.id)
def test_every_scenario_runs_on_every_play_without_a_harness_error(loaded: LoadedScenario) -> None:
    for play in PLAYS:
        run = run_scenario(loaded, seed=0, play=play)
        assert run.result.final_state in loaded.domain.terminal_states


def test_the_large_tier_is_right_more_often_than_the_small_one() -> None:
    # Each (scenario, index) gets its own seed, as an experiment's cells do: with the
    # same seed everywhere, a tier's draws would be the same in every scenario.
    def share(play: str) -> float:
        runs = [
            run_scenario(loaded, seed=derive_seed(index, loaded.scenario.id), play=play)
            for loaded in SUITE
            for index in range(3)
        ]
        return sum(run.verdict.correct for run in runs) / len(runs)

    small, large = share("small"), share("large")
    assert large > small + 0.15, (small, large)


@pytest.mark.parametrize(
    ("scenario", "fault"),
    [
        ("soc-c2-block-silent-failure", "silent-block"),
        ("soc-c2-conflicting-agent-same-ip", "other-agent"),
        ("soc-login-block-stale-for-an-hour", "stale-fw"),
    ],
)
def test_a_block_that_cannot_land_makes_escalating_right(scenario: str, fault: str) -> None:
    run = run_scenario(BY_ID[scenario], seed=0, play="large")
    path = [event.target for event in run.trace.query(kind="transition")]  # type: ignore[union-attr]
    assert path == ["investigate", "contain", "escalate", "escalated"]
    assert run.verdict.correct
    assert run.verdict.decided_by == (fault,)


def test_lost_evidence_with_a_required_action_is_graded_without_error() -> None:
    # Regression: the grader put actions (whose arguments are a dict) in a set.
    run = run_scenario(BY_ID["soc-login-intel-error"], seed=1, play="mid")
    assert run.result.final_state == "close"
    assert [check.name for check in run.verdict.failed] == ["required_actions"]


def test_the_45_minute_investigation_makes_dozens_of_model_calls_within_its_budget() -> None:
    run = run_scenario(BY_ID["soc-c2-45-minute-investigation"], seed=0, play="large")
    [finished] = run.trace.query(kind="run_finished")
    assert 40 * 60 <= finished.sim_time <= 60 * 60
    assert len(run.trace.query(kind="model_called")) >= 60
    assert run.verdict.correct


def test_a_run_killed_on_its_way_to_a_slow_approver_is_resumed_and_waits() -> None:
    run = run_scenario(BY_ID["soc-critical-host-crash-before-slow-approval"], seed=0, play="large")
    counts = run.injector.counts()
    assert (counts["killed"].fired, counts["slow-approver"].fired) == (1, 1)
    [resumed] = run.trace.query(kind="run_resumed")
    entered = run.trace.query(kind="state_entered", state="escalate")[-1].sim_time
    [finished] = run.trace.query(kind="run_finished")
    assert resumed.sim_time < entered
    assert finished.sim_time - entered >= 1800
    assert run.result.final_state == "escalated"
    assert run.verdict.correct


def test_via_api_sends_every_model_call_through_the_sdk() -> None:
    run = run_scenario(BY_ID["soc-c2-beacon"], seed=0, play="small", via_api=True)
    calls = run.trace.query(kind="model_called")
    assert calls
    assert all(call.request_id is not None for call in calls)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "faults",
    [
        [Fault(id="rl", kind="rate_limit", target="tier:small", trigger=Trigger(probability=0.4))],
        [
            Fault(id="ov", kind="overloaded", target="tier:small", trigger=Trigger(probability=0.3)),
            Fault(id="rl", kind="rate_limit", target="tier:small", trigger=Trigger(nth=3), retry_after=5),
        ],
    ],
    ids=["rate-limits", "overloads-and-a-rate-limit"],
)
def test_only_calls_an_api_fault_fails_need_the_sdk_for_the_same_trace(faults: list[Fault]) -> None:
    # By default a tier with API faults sends a call through the SDK only when its first
    # attempt fails; via_api sends every call. The traces must not tell them apart.
    loaded = overlay(BY_ID["soc-c2-45-minute-investigation"], faults, plan="api")
    for seed in range(3):
        direct = run_scenario(loaded, seed=seed, play="small")
        sdk = run_scenario(loaded, seed=seed, play="small", via_api=True)
        assert direct.trace.dumps() == sdk.trace.dumps()
        assert direct.injector.log == sdk.injector.log
    assert any(kind != "hallucinated_tool_call" for _, kind, _ in direct.injector.log)
