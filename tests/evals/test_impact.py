"""Fault impact: paired changes against the same cells run without the extra plan."""

from __future__ import annotations

import pandas as pd
import pytest

from windtunnel.evals import fault_impact
from windtunnel.evals.stats import mcnemar_exact
from windtunnel.orchestrator import InvalidArgument

from .runs_kit import runs


def cell(scenario: str, seed_index: int, plan: str, **values: object) -> dict[str, object]:
    cell_id = f"{scenario}/{seed_index}/small" + (f"/+{plan}" if plan else "")
    fired = f"{plan}/f" if plan else ""  # the plan's fault fired, unless a test says otherwise
    return {"config": "small", "scenario": scenario, "seed_index": seed_index, "fault_plan": plan,
            "cell": cell_id, "faults_fired_ids": fired, **values}  # fmt: skip


def test_changes_are_paired_means_with_mcnemar_on_correctness() -> None:
    frame = runs(
        # Without the plan: 4 correct of 4. With it: s1/0 and s2/0 break, s2/1 escalates.
        cell("s1", 0, "", correct=True, sim_duration=10.0, model_cost=0.01),
        cell("s1", 1, "", correct=True, sim_duration=10.0, model_cost=0.01),
        cell("s2", 0, "", correct=True, sim_duration=20.0, model_cost=0.02),
        cell("s2", 1, "", correct=True, sim_duration=20.0, model_cost=0.02),
        cell("s1", 0, "slow", correct=False, sim_duration=40.0, model_cost=0.01),
        cell("s1", 1, "slow", correct=True, sim_duration=10.0, model_cost=0.01),
        cell("s2", 0, "slow", correct=False, sim_duration=60.0, model_cost=0.03),
        cell("s2", 1, "slow", correct=True, sim_duration=20.0, model_cost=0.02, escalated=True),
        cell("s3", 0, "slow", correct=True),  # no partner without the plan: not paired
    )
    row = fault_impact(frame).iloc[0]
    assert (row["config"], row["fault_plan"], row["pairs"], row["scenarios"]) == ("small", "slow", 4, 2)
    assert row["accuracy_without"] == 1.0
    assert row["accuracy_with"] == 0.5
    assert row["accuracy_change"] == pytest.approx(-0.5)
    assert row["duration_change"] == pytest.approx((30 + 0 + 40 + 0) / 4)
    assert row["cost_change"] == pytest.approx(0.01 / 4)
    assert row["escalation_change"] == pytest.approx(0.25)
    assert (row["broke"], row["fixed"]) == (2, 0)
    assert row["p_value"] == pytest.approx(mcnemar_exact(2, 0)) == pytest.approx(0.5)
    assert row["accuracy_change_low"] <= -0.5 <= row["accuracy_change_high"]


def test_a_harness_error_on_either_side_drops_the_pair() -> None:
    frame = runs(
        cell("s1", 0, ""),
        cell("s1", 0, "slow", harness_error="boom"),
        cell("s1", 1, ""),
        cell("s1", 1, "slow", correct=False),
    )
    row = fault_impact(frame).iloc[0]
    assert (row["pairs"], row["harness_errors"], row["broke"]) == (1, 1, 1)


def test_one_row_per_config_and_plan_and_by_column() -> None:
    rows = [cell(s, 0, p) for s in ("s1", "s2") for p in ("", "a", "b")]
    rows += [{**r, "config": "large", "cell": str(r["cell"]).replace("small", "large")} for r in rows]
    table = fault_impact(runs(*rows), by="scenario")
    assert sorted(zip(table["config"], table["fault_plan"], table["scenario"], strict=True)) == [
        (c, p, s) for c in ("large", "small") for p in ("a", "b") for s in ("s1", "s2")
    ]
    assert (table["pairs"] == 1).all()


def test_a_run_in_which_no_fault_of_the_plan_fired_is_left_out_not_survived() -> None:
    frame = runs(
        cell("s1", 0, ""),
        cell("s1", 0, "slow", faults_fired_ids=""),  # the slowed tool was never called
        cell("s1", 1, ""),
        cell("s1", 1, "slow", correct=False),
    )
    row = fault_impact(frame).iloc[0]
    assert (row["pairs"], row["unexercised"], row["broke"]) == (1, 1, 1)
    assert row["accuracy_change"] == -1.0


def test_without_a_baseline_it_says_so() -> None:
    with pytest.raises(InvalidArgument, match="nothing to pair with"):
        fault_impact(runs(cell("s1", 0, "slow")))
    with pytest.raises(InvalidArgument, match="lacks the columns"):
        fault_impact(pd.DataFrame({"config": ["a"], "scenario": ["s"], "harness_error": [""]}))
