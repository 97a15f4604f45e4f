"""compare: hand-built pairs, a planted difference found, identical configs not."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from windtunnel.evals.comparison import Comparison, compare
from windtunnel.evals.stats import mcnemar_exact
from windtunnel.orchestrator import InvalidArgument

from .runs_kit import paired_experiment, runs

SOC_CORE = "windtunnel/scenarios/soc/scenarios/soc-core.yaml"
PLANTED = [
    "soc-c2-beacon",
    "soc-benign-scanner",
    "soc-suspicious-login",
    "soc-benign-backup",
    "soc-critical-host-c2",
    "soc-privileged-login",
    "soc-c2-siem-partial",
    "soc-scanner-intel-empty",
    "soc-login-intel-error",
    "soc-critical-host-approval-waits",
]


def cell(config: str, scenario: str, seed_index: int, correct: bool, **extra: object) -> dict[str, object]:
    return {"config": config, "scenario": scenario, "seed_index": seed_index, "correct": correct, **extra}


# 12 shared cells: 8 only a right, 2 only b right, 2 both right; one harness error, one unmatched.
OUTCOMES = [(True, False)] * 8 + [(False, True)] * 2 + [(True, True)] * 2
FRAME = runs(
    *(
        row
        for i, (ok_a, ok_b) in enumerate(OUTCOMES)
        for row in (
            cell("a", f"s{i % 4}", i // 4, ok_a, model_cost=0.02),
            cell("b", f"s{i % 4}", i // 4, ok_b, model_cost=0.01),
        )
    ),
    cell("a", "s9", 0, True, harness_error="worker died"),
    cell("b", "s9", 0, False),
    cell("a", "s8", 0, True),
)


def test_hand_built_pairs() -> None:
    result = compare(FRAME, config_a="a", config_b="b")
    assert (result.pairs, result.scenarios, result.harness_errors, result.unmatched) == (12, 4, 1, 1)
    assert (result.only_a_correct, result.only_b_correct) == (8, 2)
    assert result.p_value == pytest.approx(112 / 1024)
    assert not result.significant
    assert (result.accuracy_a, result.accuracy_b) == (10 / 12, 4 / 12)
    assert result.accuracy_diff[0] == pytest.approx(0.5)
    assert result.cost_diff[0] == pytest.approx(0.01)
    assert result.fail_to_pass == (("s0", 2), ("s1", 2))
    assert len(result.pass_to_fail) == 8
    assert "not significant at alpha = 0.05" in result.verdict
    assert math.isfinite(result.seeds_needed)
    assert result.seeds_needed > 3


def test_two_frames_with_the_same_config_are_named_by_experiment() -> None:
    first = runs(
        cell("mid", "s", 0, True, experiment="before"), cell("mid", "s", 1, True, experiment="before")
    )
    second = runs(
        cell("mid", "s", 0, True, experiment="after"), cell("mid", "s", 1, False, experiment="after")
    )
    result = compare(first, second)
    assert (result.a, result.b, result.pass_to_fail) == ("before/mid", "after/mid", (("s", 1),))


def test_no_difference_says_so() -> None:
    frame = runs(cell("a", "s", 0, True), cell("b", "s", 0, True))
    result = compare(frame, config_a="a", config_b="b")
    assert result.p_value == 1.0
    assert math.isinf(result.seeds_needed)
    assert "not significant" in str(result)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({}, "expected runs of one config"),
        ({"config_a": "a", "config_b": "a"}, "both 'a'"),
        ({"config_a": "a", "config_b": "zzz"}, "config='zzz' has no runs"),
    ],
)
def test_ambiguous_requests_are_refused(kwargs: dict[str, str], match: str) -> None:
    with pytest.raises(InvalidArgument, match=match):
        compare(FRAME, **kwargs)  # type: ignore[arg-type]


def test_a_cell_twice_is_refused() -> None:
    frame = runs(cell("a", "s", 0, True), cell("a", "s", 0, False), cell("b", "s", 0, True))
    with pytest.raises(InvalidArgument, match="appears more than once"):
        compare(frame, config_a="a", config_b="b")


def test_a_planted_difference_is_found_at_the_seeds_compare_asks_for() -> None:
    rng = np.random.default_rng(2026)
    pilot = compare(
        paired_experiment(rng, p_a=0.9, p_b=0.6, scenarios=10, seeds=3), config_a="a", config_b="b"
    )
    seeds = int(pilot.seeds_needed)
    assert 2 <= seeds <= 10
    found = [
        compare(
            paired_experiment(rng, p_a=0.9, p_b=0.6, scenarios=10, seeds=seeds),
            config_a="a",
            config_b="b",
            n_resamples=200,
        ).significant
        for _ in range(60)
    ]
    # Asked-for power is 80%; McNemar's exact test is conservative, so allow some slack.
    assert np.mean(found) >= 0.65
    big = compare(
        paired_experiment(rng, p_a=0.9, p_b=0.6, scenarios=10, seeds=10), config_a="a", config_b="b"
    )
    assert big.significant
    assert "significant at alpha = 0.05" in big.verdict
    assert big.accuracy_diff[1] > 0


def test_identical_configs_are_rarely_significant_mcnemar_alone() -> None:
    # 4,000 experiments of 50 pairs, both configs right 70% of the time, independently.
    rng = np.random.default_rng(5)
    a = rng.random((4000, 50)) < 0.7
    b = rng.random((4000, 50)) < 0.7
    only_a, only_b = (a & ~b).sum(axis=1), (~a & b).sum(axis=1)
    rate = np.mean([mcnemar_exact(int(x), int(y)) < 0.05 for x, y in zip(only_a, only_b, strict=True)])
    # The exact test is conservative: its size is at most alpha, here about 3%.
    assert 0.015 <= rate <= 0.06


@pytest.mark.slow
def test_identical_configs_are_not_significant_about_95_percent_of_the_time() -> None:
    rng = np.random.default_rng(11)
    verdicts = [
        compare(
            paired_experiment(rng, p_a=0.7, p_b=0.7, scenarios=10, seeds=5),
            config_a="a",
            config_b="b",
            n_resamples=100,
        )
        for _ in range(400)
    ]
    false_positives = np.mean([v.significant for v in verdicts])
    assert 0.01 <= false_positives <= 0.07
    assert all("not significant" in v.verdict for v in verdicts if not v.significant)


def test_a_tier_made_worse_is_found_at_the_seeds_compare_asks_for_on_real_runs(tmp_path: Path) -> None:
    """Real graded runs: the large tier against itself made worse (skill 0.2, floor 0).
    A pilot of 2 seeds says how many seeds the difference needs; experiments of that
    many seeds (new experiment seeds, so new cases) find it significant about as often
    as asked."""
    from windtunnel.evals import Experiment, read_runs, run_experiment
    from windtunnel.simulators import DEFAULT_TIERS

    large = DEFAULT_TIERS["large"]
    worse = large.model_copy(update={"name": "worse", "skill": 0.2, "floor": 0.0})

    def experiment(seed: int, seeds: int) -> Comparison:
        exp = Experiment(
            name=f"planted-{seed}", scenarios=[SOC_CORE], ids=PLANTED, seeds=seeds, seed=seed,
            configs=[large, worse], recheck=0.0,
        )  # fmt: skip
        run_experiment(exp, tmp_path / f"{seed}-{seeds}")
        return compare(read_runs(tmp_path / f"{seed}-{seeds}"), config_a="large", config_b="worse")

    pilot = experiment(0, 2)
    assert pilot.accuracy_a > pilot.accuracy_b
    seeds = math.ceil(pilot.seeds_needed)
    assert 1 <= seeds <= 12, pilot.verdict
    found = [experiment(seed, seeds).significant for seed in range(1, 9)]
    # 80% power asked for; McNemar's exact test is conservative: allow some slack.
    assert sum(found) >= 5, (seeds, found)
    print(f"pilot: {pilot.verdict}\nseeds asked for: {seeds}; significant in {sum(found)} of 8")
