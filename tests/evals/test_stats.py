"""The statistics agree with hand computation and with their textbook formulas."""

from __future__ import annotations

import math

import numpy as np
import pytest

from windtunnel.evals.stats import (
    cluster_bootstrap,
    mcnemar_exact,
    paired_bootstrap,
    pairs_needed,
    seeds_needed,
    wilson,
)


def wilson_by_hand(k: int, n: int, z: float = 1.959963984540054) -> tuple[float, float]:
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return centre - half, centre + half


@pytest.mark.parametrize(("k", "n"), [(8, 10), (0, 5), (5, 5), (1, 3), (37, 120)])
def test_wilson_matches_the_hand_formula(k: int, n: int) -> None:
    estimate, low, high = wilson(k, n)
    assert estimate == k / n
    assert (low, high) == pytest.approx(wilson_by_hand(k, n), abs=1e-12)


def test_wilson_8_of_10_is_the_published_interval() -> None:
    assert wilson(8, 10) == pytest.approx((0.8, 0.4902, 0.9433), abs=1e-4)


def test_wilson_of_nothing_is_nan() -> None:
    assert all(math.isnan(v) for v in wilson(0, 0))


@pytest.mark.parametrize(("k", "n"), [(-1, 3), (4, 3), (0, -1)])
def test_wilson_rejects_impossible_counts(k: int, n: int) -> None:
    with pytest.raises(ValueError, match="successes"):
        wilson(k, n)


def test_mcnemar_exact_8_2_is_twice_the_binomial_tail() -> None:
    # 2 * P(X <= 2), X ~ Bin(10, 1/2) = 2 * (1 + 10 + 45) / 1024
    assert mcnemar_exact(8, 2) == pytest.approx(112 / 1024)
    assert mcnemar_exact(2, 8) == mcnemar_exact(8, 2)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(6, 0) == pytest.approx(2 / 64)


def test_cluster_bootstrap_weights_rows_not_clusters() -> None:
    estimate, low, high = cluster_bootstrap([0.0, 0.0, 0.0, 1.0], ["a", "a", "a", "b"])
    assert estimate == 0.25
    # Drawing {a,a} gives 0, {b,b} gives 1, {a,b} gives 1/4; the interval spans them.
    assert low == 0.0
    assert high == 1.0


def test_cluster_bootstrap_is_deterministic_and_covers_the_mean() -> None:
    rng = np.random.default_rng(7)
    values = rng.normal(10.0, 2.0, size=200)
    clusters = np.repeat(np.arange(20), 10)
    first = cluster_bootstrap(values, clusters, seed=3)
    assert first == cluster_bootstrap(values, clusters, seed=3)
    assert first[1] < first[0] < first[2]
    assert first[0] == pytest.approx(values.mean())


def test_cluster_bootstrap_degenerate_cases() -> None:
    one = cluster_bootstrap([1.0, 2.0], ["a", "a"])
    assert one[0] == 1.5
    assert math.isnan(one[1])
    assert math.isnan(one[2])
    assert cluster_bootstrap([2.0, 2.0], ["a", "b"]) == (2.0, 2.0, 2.0)
    assert all(math.isnan(v) for v in cluster_bootstrap([], []))
    assert cluster_bootstrap([1.0, math.nan, 3.0], ["a", "b", "c"])[0] == 2.0
    with pytest.raises(ValueError, match="differ in length"):
        cluster_bootstrap([1.0], ["a", "b"])


def test_paired_bootstrap_is_the_mean_difference() -> None:
    estimate, low, high = paired_bootstrap([1, 1, 1, 0], [0, 1, 0, 0], ["a", "b", "c", "d"])
    assert estimate == 0.5
    assert low <= 0.5 <= high


def test_pairs_needed_is_connors_formula() -> None:
    # p1 = 0.9, p2 = 0.6, independent errors: psi = 0.9*0.4 + 0.6*0.1 = 0.42, delta = 0.3
    by_hand = (1.959963984540054 * math.sqrt(0.42) + 0.8416212335729143 * math.sqrt(0.42 - 0.09)) ** 2 / 0.09
    assert pairs_needed(0.36, 0.06) == pytest.approx(by_hand)
    assert seeds_needed(0.9, 0.6) == math.ceil(by_hand) == 35
    assert seeds_needed(0.9, 0.6, scenarios=10) == 4
    assert seeds_needed(0.9, 0.6, discordant=0.35) < seeds_needed(0.9, 0.6)
    assert math.isinf(seeds_needed(0.7, 0.7))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"p1": 0.9, "p2": 0.6, "discordant": 0.1}, "discordant"),
        ({"p1": 0.9, "p2": 0.6, "scenarios": 0}, "scenarios"),
    ],
)
def test_seeds_needed_rejects_impossible_inputs(kwargs: dict[str, float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        seeds_needed(**kwargs)  # type: ignore[arg-type]
