"""pass^k and pass@k against hand-computed binomial ratios."""

from __future__ import annotations

from math import comb

import pytest

from windtunnel.evals.reliability import pass_k
from windtunnel.orchestrator import InvalidArgument

from .runs_kit import runs


def tries(config: str, scenario: str, *outcomes: bool) -> list[dict[str, object]]:
    return [
        {"config": config, "scenario": scenario, "seed_index": i, "correct": ok}
        for i, ok in enumerate(outcomes)
    ]


def test_three_of_four_correct() -> None:
    table = pass_k(runs(*tries("a", "s", True, True, False, True)))
    assert list(table.k) == [1, 2, 3, 4]
    assert list(table.pass_hat_k) == [0.75, 0.5, 0.25, 0.0]
    assert list(table.pass_at_k) == [0.75, 1.0, 1.0, 1.0]


def test_averaged_over_scenarios_with_a_bootstrap_interval() -> None:
    frame = runs(
        *tries("a", "s1", True, True, False, True),
        *tries("a", "s2", True, False, False, False),
        *tries("a", "s3", True, True, True, True),
        *tries("b", "s1", False, False, False, False),
        {"config": "a", "scenario": "s2", "seed_index": 9, "correct": True, "harness_error": "x"},
    )
    table = pass_k(frame, k_max=2).set_index(["config", "k"])
    row = table.loc[("a", 2)]
    assert row.pass_hat_k == pytest.approx((comb(3, 2) / comb(4, 2) + 0 + 1) / 3)
    assert row.pass_at_k == pytest.approx((1 + (1 - comb(3, 2) / comb(4, 2)) + 1) / 3)
    assert row.pass_hat_k_low <= row.pass_hat_k <= row.pass_hat_k_high
    assert (row.scenarios, row.tries, row.harness_errors) == (3, 4, 1)
    assert list(table.index) == [("a", 1), ("a", 2), ("b", 1), ("b", 2)]
    assert table.loc[("b", 1)].pass_at_k == 0.0


def test_k_stops_at_the_fewest_tries() -> None:
    frame = runs(*tries("a", "s1", True, True, True), *tries("a", "s2", True, False))
    assert list(pass_k(frame).k) == [1, 2]


def test_k_max_must_be_positive() -> None:
    with pytest.raises(InvalidArgument, match="k_max=0"):
        pass_k(runs(*tries("a", "s", True)), k_max=0)
