"""Cost metrics and the Pareto frontier against hand-computed values."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from windtunnel.evals.metrics import decisions
from windtunnel.evals.pricing import ErrorPrices, cost, pareto
from windtunnel.orchestrator import InvalidArgument

from .runs_kit import runs

FRAME = runs(
    {"config": "a", "scenario": "s1", "model_cost": 0.10},
    {"config": "a", "scenario": "s2", "model_cost": 0.20, "human_cost": 5.0, "escalated": True,
     "needs_human": True},
    {"config": "a", "scenario": "s3", "model_cost": 0.30, "needs_human": True, "correct": False},
    {"config": "a", "scenario": "s4", "model_cost": 0.40, "check_forbidden_actions": False, "correct": False},
    {"config": "a", "scenario": "s5", "model_cost": 9.00, "harness_error": "worker died"},
)  # fmt: skip


def test_cost_per_run_per_correct_and_tco_by_hand() -> None:
    row = cost(FRAME).iloc[0]
    assert (row.runs, row.harness_errors) == (4, 1)
    assert row.total_cost == pytest.approx(6.0)
    assert row.cost_per_run == pytest.approx(1.5)
    assert row.cost_per_run_low <= 1.5 <= row.cost_per_run_high
    assert row.correct == 2
    assert row.cost_per_correct == pytest.approx(3.0)
    assert (row.missed_escalations, row.wrong_actions) == (1, 1)
    # (0.1 + 5.2 + 0.3 + 500 + 0.4 + 200) / 4 * 1000
    assert row.tco_per_1000 == pytest.approx(176_500.0)


def test_tco_uses_the_users_prices() -> None:
    row = cost(FRAME, prices=ErrorPrices(missed_escalation=1000.0, wrong_action=0.0)).iloc[0]
    assert row.tco_per_1000 == pytest.approx((6.0 + 1000.0) / 4 * 1000)


def test_nothing_correct_has_no_cost_per_correct() -> None:
    frame = runs({"config": "a", "scenario": "s1", "model_cost": 1.0, "correct": False})
    assert math.isnan(cost(frame).iloc[0].cost_per_correct)


@pytest.mark.parametrize("price", [-1.0, math.inf, math.nan])
def test_error_prices_must_be_finite_and_not_negative(price: float) -> None:
    with pytest.raises(InvalidArgument, match="missed_escalation="):
        ErrorPrices(missed_escalation=price)


def test_pareto_marks_the_cheaper_or_better_configs() -> None:
    points = pd.DataFrame(
        {
            "config": ["small", "mid", "large", "ladder", "twin", "broken"],
            "cost_per_run": [0.01, 0.05, 0.20, 0.04, 0.05, math.nan],
            "accuracy": [0.70, 0.85, 0.90, 0.85, 0.85, 0.99],
        }
    )
    # mid and twin are dominated by ladder (cheaper, as accurate); broken has no cost.
    assert list(pareto(points).pareto) == [True, False, True, True, False, False]


def test_pareto_over_the_metrics_tables() -> None:
    frame = runs(
        {"config": "cheap", "scenario": "s1", "model_cost": 0.1, "correct": False},
        {"config": "cheap", "scenario": "s2", "model_cost": 0.1},
        {"config": "dear", "scenario": "s1", "model_cost": 1.0},
        {"config": "dear", "scenario": "s2", "model_cost": 1.0},
        {"config": "waste", "scenario": "s1", "model_cost": 2.0},
        {"config": "waste", "scenario": "s2", "model_cost": 2.0, "correct": False},
    )
    table = pareto(cost(frame).merge(decisions(frame), on=["config", "runs", "harness_errors", "correct"]))
    assert dict(zip(table.config, table.pareto, strict=True)) == {"cheap": True, "dear": True, "waste": False}
    with pytest.raises(InvalidArgument, match="'price'"):
        pareto(table, x="price")
