"""The rate metrics against hand-computed values on small hand-built runs frames."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from windtunnel.evals.metrics import (
    decisions,
    escalation,
    inconclusive,
    inconclusive_warnings,
    tiers,
    verification,
    violations,
)
from windtunnel.evals.stats import wilson
from windtunnel.orchestrator import InvalidArgument

from .runs_kit import runs

# small: tp=2, fp=1, fn=1, tn=3, one harness error (which would have been a tp).
ESCALATIONS = runs(
    *(
        {"config": "small", "scenario": f"s{i}", "escalated": esc, "needs_human": need, "tags": tags}
        for i, (esc, need, tags) in enumerate(
            [
                (True, True, "phish"),
                (True, True, "phish,bec"),
                (True, False, "bec"),
                (False, True, "phish"),
                (False, False, "bec"),
                (False, False, "bec"),
                (False, False, "phish"),
            ]
        )
    ),
    {"config": "small", "scenario": "s9", "escalated": True, "needs_human": True, "harness_error": "crash"},
    {"config": "large", "scenario": "s0", "escalated": True, "needs_human": True},
)


def test_escalation_confusion_matrix_and_rates() -> None:
    table = escalation(ESCALATIONS).set_index("config")
    small = table.loc["small"]
    assert (small.runs, small.harness_errors) == (7, 1)
    assert (small.tp, small.fp, small.fn, small.tn) == (2, 1, 1, 3)
    assert small.accuracy == 5 / 7
    assert small.precision == 2 / 3
    assert small.recall == 2 / 3
    assert small.over_escalation == 1 / 4
    assert small.under_escalation == 1 / 3
    assert (small.under_escalation_low, small.under_escalation_high) == wilson(1, 3)[1:]
    large = table.loc["large"]
    assert (large.tp, large.fp, large.fn, large.tn) == (1, 0, 0, 0)
    assert math.isnan(large.over_escalation)
    assert list(table.index) == ["large", "small"]


def test_escalation_by_tag_counts_a_run_under_each_tag() -> None:
    table = escalation(ESCALATIONS, by="tag").set_index(["config", "tag"])
    phish, bec = table.loc[("small", "phish")], table.loc[("small", "bec")]
    assert (phish.tp, phish.fp, phish.fn, phish.tn) == (2, 0, 1, 1)
    assert (bec.tp, bec.fp, bec.fn, bec.tn) == (1, 1, 0, 2)


def test_decisions_accuracy_and_check_pass_rates() -> None:
    frame = runs(
        {"config": "a", "scenario": "s1", "correct": True},
        {"config": "a", "scenario": "s2", "correct": False, "check_forbidden_actions": False},
        {"config": "a", "scenario": "s3", "correct": False, "check_final_state": False},
        {"config": "a", "scenario": "s4", "correct": True},
        {"config": "a", "scenario": "s5", "correct": False, "harness_error": "timeout in harness"},
    )
    row = decisions(frame).iloc[0]
    assert (row.runs, row.harness_errors, row.correct) == (4, 1, 2)
    assert (row.accuracy, row.accuracy_low, row.accuracy_high) == wilson(2, 4)
    assert row.check_forbidden_actions == 0.75
    assert row.check_final_state == 0.75
    assert row.check_budget == 1.0


def test_verification_coverage_and_catch_rate_count_every_fired_failure() -> None:
    frame = runs(
        {"config": "a", "scenario": "s1", "actions_applied": 3, "actions_verified": 3},
        {"config": "a", "scenario": "s2", "actions_applied": 2, "actions_verified": 1,
         "silent_failures_injected": 2, "silent_failures_caught": 1},
        {"config": "a", "scenario": "s3", "silent_failures_injected": 1, "silent_failures_caught": 0,
         "inconclusive": True},
        {"config": "a", "scenario": "s4", "actions_applied": 5, "actions_verified": 0, "harness_error": "x"},
    )  # fmt: skip
    row = verification(frame).iloc[0]
    assert (row.actions_applied, row.actions_verified) == (5, 4)
    assert row.coverage == 4 / 5
    # s3's silent failure fired and was missed: another fault not firing does not excuse it.
    assert (row.silent_failures_injected, row.silent_failures_caught, row.inconclusive) == (3, 1, 1)
    assert (row.catch_rate, row.catch_rate_low, row.catch_rate_high) == wilson(1, 3)


def test_violations_total_and_share_of_runs() -> None:
    frame = runs(
        {"config": "a", "scenario": "s1", "invariant_violations": 2},
        {"config": "a", "scenario": "s2"},
        {"config": "a", "scenario": "s3", "invariant_violations": 1},
        {"config": "a", "scenario": "s4"},
        {"config": "a", "scenario": "s5", "invariant_violations": 9, "harness_error": "x"},
    )
    row = violations(frame).iloc[0]
    assert (row.violations, row.violations_per_run, row.violating) == (3, 0.75, 0.5)


def test_inconclusive_lists_the_runs_whose_faults_never_fired() -> None:
    frame = runs(
        {"config": "a", "scenario": "s1", "faults_declared": 1, "faults_fired": 1},
        {
            "config": "a",
            "scenario": "s2",
            "faults_declared": 2,
            "faults_fired": 1,
            "inconclusive": True,
            "faults_not_fired": "slow-intel",
        },
        {"config": "a", "scenario": "s3", "faults_declared": 1, "inconclusive": True, "harness_error": "x"},
    )
    expected = pd.DataFrame(
        {
            "config": ["a"],
            "scenario": ["s2"],
            "cell": ["s2/0/a"],
            "seed_index": [0],
            "faults_declared": [2],
            "faults_fired": [1],
            "faults_not_fired": ["slow-intel"],
        }
    )
    pd.testing.assert_frame_equal(inconclusive(frame), expected)
    assert inconclusive_warnings(frame) == [
        "scenario 's2': fault 'slow-intel' never fired in 1 of 1 runs (config a); "
        "those runs say nothing about surviving it"
    ]


def test_tiers_expand_calls_tokens_and_cost_by_tier() -> None:
    frame = runs(
        {
            "config": "ladder",
            "scenario": "s1",
            "by_tier": '{"small": {"calls": 2, "input_tokens": 300, "output_tokens": 30, "cost": 0.002}}',
        },
        {
            "config": "ladder",
            "scenario": "s2",
            "by_tier": '{"small": {"calls": 1, "input_tokens": 100, "output_tokens": 10, "cost": 0.001},'
            ' "large": {"calls": 1, "input_tokens": 200, "output_tokens": 20, "cost": 0.01}}',
        },
        {"config": "ladder", "scenario": "s3", "harness_error": "x", "by_tier": ""},
    )
    table = tiers(frame).set_index("tier")
    assert list(table.index) == ["large", "small"]
    assert table.loc["small", ["calls", "input_tokens", "output_tokens"]].tolist() == [3, 400, 40]
    assert table.loc["small", "cost"] == pytest.approx(0.003)
    assert table.loc["large", "cost_per_run"] == pytest.approx(0.005)  # 0.01 over 2 runs, s1 spent 0
    assert table.loc["large", "cost_per_run_low"] <= 0.005 <= table.loc["large", "cost_per_run_high"]
    assert (table["harness_errors"] == 1).all()


def test_by_fault_kind_and_by_column() -> None:
    frame = runs(
        {
            "config": "a",
            "scenario": "s1",
            "faults_fired_by_kind": '{"timeout": 2, "silent": 0}',
            "correct": False,
        },
        {"config": "a", "scenario": "s2", "faults_fired_by_kind": '{"timeout": 1, "silent": 1}'},
        {"config": "a", "scenario": "s3"},
    )
    by_kind = decisions(frame, by="fault_kind").set_index("fault_kind")
    assert list(by_kind.index) == ["none", "silent", "timeout"]
    assert list(by_kind.runs) == [1, 1, 2]
    assert by_kind.loc["timeout"].accuracy == 0.5
    by_scenario = decisions(frame, by=["scenario"])
    assert list(by_scenario.scenario) == ["s1", "s2", "s3"]


def test_bad_frames_and_keys_say_what_is_wrong() -> None:
    with pytest.raises(InvalidArgument, match="lacks the columns \\['needs_human'\\]"):
        escalation(runs({"config": "a", "scenario": "s"}).drop(columns="needs_human"))
    with pytest.raises(InvalidArgument, match="by='colour'"):
        decisions(runs({"config": "a", "scenario": "s"}), by="colour")


def test_an_empty_frame_gives_an_empty_table() -> None:
    empty = runs({"config": "a", "scenario": "s"}).iloc[0:0]
    assert escalation(empty).empty
