"""The metrics table and gates: parsing, per-config checks, NaN, and regressions against a baseline."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from tests.evals.runs_kit import runs
from windtunnel.evals import read_runs, wilson
from windtunnel.orchestrator import InvalidArgument
from windtunnel.reports import METRICS, Gate, evaluate, metric_info, metrics_table, parse_gate


def hand_runs() -> pd.DataFrame:
    """Config a: 3 runs and a harness error; config b: one run that needed no human."""
    return runs(
        {
            "config": "a",
            "scenario": "s1",
            "seed_index": 0,
            "escalated": True,
            "needs_human": True,
            "actions_applied": 2,
            "actions_verified": 2,
            "model_cost": 0.01,
        },
        {
            "config": "a",
            "scenario": "s1",
            "seed_index": 1,
            "correct": False,
            "check_escalation": False,
            "needs_human": True,
            "model_cost": 0.03,
            "invariant_violations": 2,
        },
        {
            "config": "a",
            "scenario": "s2",
            "seed_index": 0,
            "actions_applied": 1,
            "silent_failures_injected": 1,
            "silent_failures_caught": 1,
            "model_cost": 0.02,
            "by_tier": '{"small": {"calls": 2, "cost": 0.02, "input_tokens": 5, "output_tokens": 1}}',
        },
        {"config": "a", "scenario": "s2", "seed_index": 1, "harness_error": "RuntimeError: boom"},
        {"config": "b", "scenario": "s1", "seed_index": 0, "model_cost": 0.5},
    )


def test_metrics_table_by_hand() -> None:
    table = metrics_table(hand_runs()).set_index("config")
    a = table.loc["a"]
    expected = {
        "runs": 3,
        "harness_errors": 1,
        "correct": 2,
        "accuracy": 2 / 3,
        "check_escalation": 2 / 3,
        "escalation_accuracy": 2 / 3,  # tp=1 (s1/0), fn=1 (s1/1), tn=1 (s2/0)
        "escalation_precision": 1.0,
        "escalation_recall": 0.5,
        "under_escalation": 0.5,
        "over_escalation": 0.0,
        "missed_escalations": 1,
        "verification_coverage": 2 / 3,  # 2 of 3 applied actions verified
        "silent_failure_catch_rate": 1.0,
        "invariant_violations": 2,
        "violating_runs": 1 / 3,
        "cost_per_run": 0.02,
        "total_cost": 0.06,
        "cost_per_correct": 0.03,
        "pass^1": 0.75,  # s1: 1 of 2, s2: 1 of 1 (its harness error is not a try)
        "pass@1": 0.75,
        "tier_calls[small]": 2,
        "tier_cost[small]": 0.02,
        "tier_cost_per_run[small]": 0.02 / 3,
    }
    assert {name: a[name] for name in expected} == pytest.approx(expected)
    assert (a["escalation_recall_low"], a["escalation_recall_high"]) == pytest.approx(wilson(1, 2)[1:])
    assert "pass^2" not in table  # no scenario of either config ran twice without a harness error
    assert math.isnan(table.loc["b", "escalation_recall"])  # nothing needed a human
    assert math.isnan(table.loc["b", "tier_calls[small]"])
    assert list(table.index) == ["a", "b"]


def test_every_fixed_metric_is_a_column_and_documented() -> None:
    table = metrics_table(hand_runs())
    for name, metric in METRICS.items():
        assert name in table
        assert (f"{name}_low" in table) == metric.interval, name
    pass_3 = metric_info("pass^3")
    assert pass_3 is not None
    assert pass_3.interval
    assert metric_info("tier_cost[mid]") is not None
    assert metric_info("pass^0") is None
    assert metric_info("nonsense") is None


@pytest.mark.parametrize(
    ("text", "gate"),
    [
        (
            "escalation_recall.lower >= 0.95",
            Gate(
                text="escalation_recall.lower >= 0.95",
                metric="escalation_recall",
                bound="lower",
                op=">=",
                threshold=0.95,
            ),
        ),
        (
            "verification_coverage==1.0",
            Gate(text="verification_coverage==1.0", metric="verification_coverage", op="==", threshold=1.0),
        ),
        ("pass^3 >= 0.8", Gate(text="pass^3 >= 0.8", metric="pass^3", op=">=", threshold=0.8)),
        (
            "tier_cost_per_run[claude-haiku-4.5].upper < 1e-2",
            Gate(
                text="tier_cost_per_run[claude-haiku-4.5].upper < 1e-2",
                metric="tier_cost_per_run[claude-haiku-4.5]",
                bound="upper",
                op="<",
                threshold=0.01,
            ),
        ),
        (
            "  invariant_violations   != 0 ",
            Gate(text="invariant_violations != 0", metric="invariant_violations", op="!=", threshold=0.0),
        ),
        (
            " no_significant_regression",
            Gate(text="no_significant_regression", metric="no_significant_regression"),
        ),
    ],
)
def test_parse(text: str, gate: Gate) -> None:
    assert parse_gate(text) == gate


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "escalation_recal >= 0.9",
            "unknown metric 'escalation_recal' in the gate 'escalation_recal >= 0.9'; "
            "the closest: 'escalation_recall', 'escalation_precision', 'escalation_accuracy'",
        ),
        ("zzz >= 1", "unknown metric 'zzz' in the gate 'zzz >= 1'; the metrics: runs, harness_errors,"),
        (
            "accuracy => 0.9",
            "cannot read the gate 'accuracy => 0.9': a gate reads METRIC[.lower|.upper] OP NUMBER",
        ),
        ("accuracy >= high", "cannot read the gate 'accuracy >= high'"),
        (
            "accuracy.low >= 0.9",
            "the gate 'accuracy.low >= 0.9' reads .low; the bounds are .lower and .upper",
        ),
        (
            "cost_per_correct.upper <= 0.08",
            "the gate 'cost_per_correct.upper <= 0.08' gates .upper, but 'cost_per_correct' has no interval",
        ),
        ("no_significant_regression > 0", "unknown metric 'no_significant_regression'"),
    ],
)
def test_parse_errors(text: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        parse_gate(text)
    assert str(caught.value).startswith(message)


def test_evaluate_each_config_and_one() -> None:
    results = evaluate(
        [
            "accuracy >= 0.6",
            parse_gate("cost_per_correct <= 0.1", config="b"),
            "escalation_recall.lower >= 0.2",
        ],
        hand_runs(),
    )
    low, high = wilson(2, 3)[1:]
    recall_low, recall_high = wilson(1, 2)[1:]
    assert [(r.gate, r.config, r.passed, r.message) for r in results] == [
        (
            "accuracy >= 0.6",
            "a",
            True,
            f"accuracy >= 0.6 passed for config 'a': measured 0.6667 (interval {low:.4g}–{high:.4g})",
        ),
        (
            "accuracy >= 0.6",
            "b",
            True,
            "accuracy >= 0.6 passed for config 'b': measured 1 (interval 0.2065–1)",
        ),
        (
            "cost_per_correct <= 0.1",
            "b",
            False,
            "cost_per_correct <= 0.1 failed for config 'b': measured 0.5",
        ),
        (
            "escalation_recall.lower >= 0.2",
            "a",
            False,
            f"escalation_recall.lower >= 0.2 failed for config 'a': measured {recall_low:.4g} "
            f"(interval {recall_low:.4g}–{recall_high:.4g})",
        ),
        (
            "escalation_recall.lower >= 0.2",
            "b",
            False,
            "escalation_recall.lower >= 0.2 failed for config 'b': "
            "nothing to measure (no run needed a human)",
        ),
    ]
    assert results[3].measured == pytest.approx(recall_low)
    assert (results[2].bound, results[2].low) == (0.1, pytest.approx(math.nan, nan_ok=True))


def test_nan_fails_saying_why() -> None:
    frame = hand_runs()
    [pass3, tier, interval] = evaluate(
        [
            parse_gate("pass^3 >= 0", config="a"),
            parse_gate("tier_calls[large] >= 0", config="a"),
            parse_gate("cost_per_run.upper <= 1", config="b"),
        ],
        frame,
    )
    assert pass3.message.endswith("nothing to measure (fewer than 3 tries of some scenario)")
    assert tier.message.endswith("nothing to measure (no run of the config called tier 'large')")
    assert interval.message.endswith(
        "nothing to measure (the point estimate is 0.5 but its interval needs two scenarios or more)"
    )
    assert not any(r.passed for r in (pass3, tier, interval))


def test_equality_tolerates_rounding() -> None:
    frame = runs(*({"config": "a", "scenario": f"s{i}", "model_cost": 0.1} for i in range(3)))
    [equal] = evaluate(["cost_per_run == 0.1"], frame)  # the mean is 0.10000000000000002
    assert equal.passed


def test_unknown_config_is_an_error() -> None:
    with pytest.raises(
        InvalidArgument, match=r"is for config 'c', which has no runs\. The configs run: a, b\."
    ):
        evaluate([parse_gate("accuracy >= 0", config="c")], hand_runs())
    with pytest.raises(InvalidArgument, match="the closest: 'a'"):
        evaluate([parse_gate("accuracy >= 0", config="aa")], hand_runs())


def cells(config: str, correct: list[bool]) -> pd.DataFrame:
    return runs(*({"config": config, "scenario": f"s{i}", "correct": ok} for i, ok in enumerate(correct)))


def test_significant_drop_fails_listing_flips() -> None:
    baseline = cells("a", [True] * 8)
    candidate = cells("a", [False] * 6 + [True] * 2)  # 6 discordant pairs: p = 2 / 2**6
    [result] = evaluate(["no_significant_regression"], candidate, baseline)
    assert not result.passed
    assert result.measured == pytest.approx(-0.75)
    assert result.flipped == tuple((f"s{i}", 0) for i in range(6))
    assert result.message.startswith(
        "no_significant_regression failed for config 'a': accuracy 1.000 -> 0.250 (-0.750, 95% CI "
    )
    assert (
        "McNemar p = 0.0312 < alpha = 0.05; pass -> fail: s0 (seed index 0), s1 (seed index 0)"
        in result.message
    )


def test_small_drop_passes_but_names_its_flips() -> None:
    [result] = evaluate(
        ["no_significant_regression"], cells("a", [False, False, True]), cells("a", [True] * 3)
    )
    assert result.passed
    assert result.message.endswith(
        "McNemar p = 0.5 >= alpha = 0.05; pass -> fail: s0 (seed index 0), s1 (seed index 0)"
    )


def test_regression_configs_missing_from_the_baseline() -> None:
    baseline = cells("a", [True, True])
    candidate = pd.concat([cells("a", [True, True]), cells("new", [True, True])])
    by_config = {r.config: r for r in evaluate(["no_significant_regression"], candidate, baseline)}
    assert by_config["a"].passed
    assert by_config["new"].passed
    assert by_config["new"].message.endswith("a new config, nothing to regress from")
    [named] = evaluate([parse_gate("no_significant_regression", config="new")], candidate, baseline)
    assert not named.passed
    assert named.message.endswith("the baseline has no runs of config 'new'; nothing to compare")
    [unshared] = evaluate(["no_significant_regression"], cells("new", [True]), baseline)
    assert not unshared.passed


def test_regression_needs_shared_cells_and_a_baseline() -> None:
    other = runs({"config": "a", "scenario": "elsewhere"})
    [result] = evaluate(["no_significant_regression"], cells("a", [True]), other)
    assert not result.passed
    assert "nothing to measure (no cell" in result.message
    with pytest.raises(InvalidArgument, match="needs a baseline results directory"):
        evaluate(["no_significant_regression"], cells("a", [True]))


def test_real_results_against_themselves(results_dir: Path) -> None:
    frame = read_runs(results_dir)
    results = evaluate(
        ["invariant_violations == 0", "accuracy.upper >= 0.5", "no_significant_regression"],
        frame,
        results_dir,
    )
    assert [(r.gate, r.config, r.passed) for r in results] == [
        ("invariant_violations == 0", "large", True),
        ("invariant_violations == 0", "small", True),
        ("accuracy.upper >= 0.5", "large", True),
        ("accuracy.upper >= 0.5", "small", True),
        ("no_significant_regression", "large", True),
        ("no_significant_regression", "small", True),
    ]
    assert results[-1].measured == 0.0
    assert results[-1].flipped == ()
