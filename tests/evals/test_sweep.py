"""The ladder sweep: the grid's ladders, one experiment, accuracy and cost per point, the frontier."""

from __future__ import annotations

from pathlib import Path

import pytest

from windtunnel.evals import ladder_grid, read_runs, sweep, sweep_points
from windtunnel.orchestrator import InvalidArgument

from .runs_kit import runs

SOC = "windtunnel/scenarios/soc/scenarios"


def test_the_grid_is_every_combination_of_rung_thresholds() -> None:
    assert ladder_grid(["small", "mid", "large"], {"small": [0.8, 0.9], "mid": [0.6]}) == [
        "ladder:small@0.8,mid@0.6,large",
        "ladder:small@0.9,mid@0.6,large",
    ]
    assert len(ladder_grid(["small", "mid", "large"], [0.5, 0.7, 0.9])) == 9
    with pytest.raises(InvalidArgument, match="no grid for the rungs \\['mid'\\]"):
        ladder_grid(["small", "mid", "large"], {"small": [0.8]})
    with pytest.raises(InvalidArgument, match="numbers in \\[0, 1\\]"):
        ladder_grid(["small", "large"], [1.5])
    with pytest.raises(InvalidArgument, match="at least two tiers"):
        ladder_grid(["small"], [0.5])
    with pytest.raises(InvalidArgument, match="'huge'"):
        ladder_grid(["small", "huge"], [0.5])


def test_points_carry_intervals_thresholds_and_the_pareto_frontier() -> None:
    def point(config: str, correct: list[bool], cost: float) -> list[dict[str, object]]:
        return [
            {"config": config, "scenario": f"s{i}", "correct": ok, "model_cost": cost}
            for i, ok in enumerate(correct)
        ]

    frame = runs(
        *point("ladder:small@0.5,large", [True, False, False, False], 0.01),  # cheap, bad
        *point("ladder:small@0.9,large", [True, True, True, False], 0.02),  # dearer, better
        *point("ladder:small@0.7,large", [True, False, False, False], 0.03),  # dominated
        *point("small", [True] * 4, 0.0),  # not a ladder: left out
    )
    points = sweep_points(frame).set_index("config")
    assert list(points.index) == [
        "ladder:small@0.5,large",
        "ladder:small@0.7,large",
        "ladder:small@0.9,large",
    ]
    assert points["pareto"].to_dict() == {
        "ladder:small@0.5,large": True,
        "ladder:small@0.7,large": False,
        "ladder:small@0.9,large": True,
    }
    assert points.loc["ladder:small@0.9,large", "threshold_small"] == 0.9
    assert points.loc["ladder:small@0.9,large", "accuracy"] == 0.75
    assert points.loc["ladder:small@0.9,large", "cost_per_run"] == pytest.approx(0.02)
    for name in ("accuracy", "cost_per_run", "escalation_rate"):
        assert (points[f"{name}_low"] <= points[name]).all()
        assert (points[name] <= points[f"{name}_high"]).all()
    with pytest.raises(InvalidArgument, match="no ladder config"):
        sweep_points(runs(*point("small", [True], 0.0)))


def test_a_real_sweep_buys_accuracy_with_escalations(tmp_path: Path) -> None:
    points = sweep(
        [SOC],
        ids=["soc-c2-beacon", "soc-benign-scanner", "soc-suspicious-login"],
        tiers=["small", "large"],
        thresholds=[0.0, 1.0],
        seeds=4,
        out=tmp_path,
    ).set_index("threshold_small")
    assert len(read_runs(tmp_path)) == 2 * 3 * 4
    # Threshold 0 keeps every small answer; threshold 1 climbs past small on every call.
    assert points.loc[0.0, "escalation_rate"] <= points.loc[1.0, "escalation_rate"]
    assert points.loc[0.0, "cost_per_run"] < points.loc[1.0, "cost_per_run"]
    assert points["pareto"].any()
