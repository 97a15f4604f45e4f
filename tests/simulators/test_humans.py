"""SimulatedHuman: availability windows, response time, accuracy over the options, cost, determinism."""

from __future__ import annotations

import asyncio

import pydantic
import pytest

from windtunnel.orchestrator import InvalidArgument
from windtunnel.simulators import Sim
from windtunnel.simulators.humans import (
    DAY,
    DEFAULT_APPROVERS,
    Human,
    HumanDecision,
    HumanProfile,
    Review,
    SimulatedHuman,
)
from windtunnel.simulators.profiles import LogNormal

HOUR = 3600.0
ROLLBACK = Review(proposal="rollback", options=("rollback", "leave"), right="rollback")
LEAD = DEFAULT_APPROVERS["lead"].model_copy(update={"response_time": LogNormal(median=30, sigma=0)})


def review(
    profile: HumanProfile, *, seed: int = 0, start: float = 0.0, request: Review = ROLLBACK
) -> tuple[HumanDecision, float]:
    sim = Sim(seed=seed, start=start)
    human: Human = SimulatedHuman(profile, rng=sim.rng(f"humans/{profile.name}"))
    decision = sim.run(human.review(request))
    return decision, sim.now


def test_outside_its_window_the_approver_answers_after_it_opens() -> None:
    decision, now = review(LEAD, start=3 * HOUR)
    assert decision.waited == 6 * HOUR + 30 * 60
    assert now == 9 * HOUR + 30 * 60
    assert decision.approver == "lead"


def test_inside_its_window_only_the_response_time_passes() -> None:
    decision, now = review(LEAD, start=DAY + 10 * HOUR)
    assert (decision.waited, now) == (30 * 60, DAY + 10.5 * HOUR)


def test_an_always_available_approver_never_waits_for_a_window() -> None:
    oncall = DEFAULT_APPROVERS["oncall"].model_copy(update={"response_time": LogNormal(median=12)})
    decision, _ = review(oncall, start=3 * HOUR)
    assert decision.waited == 12 * 60


@pytest.mark.parametrize(
    ("windows", "at", "available"),
    [
        (((9, 17),), 3 * HOUR, 9 * HOUR),
        (((9, 17),), 9 * HOUR, 9 * HOUR),
        (((9, 17),), 16.99 * HOUR, 16.99 * HOUR),
        (((9, 17),), 17 * HOUR, DAY + 9 * HOUR),  # the end hour is closed
        (((9, 17),), 2 * DAY + 23 * HOUR, 3 * DAY + 9 * HOUR),
        (((0, 6), (22, 24)), 7 * HOUR, 22 * HOUR),
        (((0, 6), (22, 24)), 23.5 * HOUR, 23.5 * HOUR),
        (((9, 12), (13, 17)), 12.5 * HOUR, 13 * HOUR),
        ((), 12345.0, 12345.0),
    ],
)
def test_next_available(windows: tuple[tuple[float, float], ...], at: float, available: float) -> None:
    profile = LEAD.model_copy(update={"availability": windows})
    assert profile.next_available(at) == pytest.approx(available)


@pytest.mark.parametrize(
    "request_",
    [
        ROLLBACK,
        Review(proposal="leave", options=("rollback", "leave"), right="rollback"),
        Review(proposal="b", options=("a", "b", "c", "d"), right="c"),
    ],
)
def test_choices_are_right_at_the_profiles_accuracy(request_: Review) -> None:
    profile = DEFAULT_APPROVERS["oncall"].model_copy(update={"accuracy": 0.8})
    sim = Sim(seed=5)
    human = SimulatedHuman(profile, rng=sim.rng("humans/oncall"))

    async def many() -> list[HumanDecision]:
        return list(await asyncio.gather(*(human.review(request_) for _ in range(3000))))

    decisions = sim.run(many())
    assert sum(d.correct for d in decisions) / len(decisions) == pytest.approx(0.8, abs=0.03)
    for d in decisions:
        assert d.correct == (d.choice == request_.right)
        assert d.choice in request_.options
    # A wrong human picks each wrong option about as often as another.
    wrong = [d.choice for d in decisions if not d.correct]
    others = [option for option in request_.options if option != request_.right]
    for option in others:
        assert wrong.count(option) / len(wrong) == pytest.approx(1 / len(others), abs=0.06)


def test_a_review_with_one_option_is_always_answered_right() -> None:
    only = Review(proposal="page", options=("page",), right="page")
    profile = DEFAULT_APPROVERS["oncall"].model_copy(update={"accuracy": 0.0})
    decisions = [review(profile, seed=seed, request=only)[0] for seed in range(20)]
    assert {(d.choice, d.correct) for d in decisions} == {("page", True)}


def test_cost_is_review_minutes_times_the_rate() -> None:
    decision, _ = review(DEFAULT_APPROVERS["lead"], seed=3, start=10 * HOUR)
    assert decision.cost == pytest.approx(decision.review_minutes * 2.5)
    assert decision.review_minutes > 0
    # What is charged is the effort, not the wait.
    assert decision.review_minutes * 60 != decision.waited


def test_same_seed_same_decisions() -> None:
    def decisions(seed: int) -> list[HumanDecision]:
        return [review(DEFAULT_APPROVERS["lead"], seed=seed, start=s * HOUR)[0] for s in range(5)]

    assert decisions(1) == decisions(1)
    assert decisions(1) != decisions(2)


def test_a_review_names_its_right_option_among_the_options() -> None:
    with pytest.raises(InvalidArgument) as raised:
        Review(proposal="rollback", options=("rollback", "leave"), right="restart")
    assert str(raised.value) == "unknown right='restart'; choose one of ['rollback', 'leave']"
    with pytest.raises(InvalidArgument, match=r"options=\(\) must list at least one option"):
        Review(proposal="rollback", options=(), right="rollback")


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"availability": [(17, 9)]}, r"window \(17, 9\) must have 0 <= start < end <= 24"),
        ({"availability": [(9, 25)]}, r"window \(9, 25\) must have 0 <= start < end <= 24"),
        ({"accuracy": 1.2}, "accuracy\n  Input should be less than or equal to 1"),
        ({"cost_per_minute": -1}, "cost_per_minute\n  Input should be greater than or equal to 0"),
        ({"response_time": {"median": -3}}, "response_time.median\n  Input should be greater than 0"),
        ({"shift": "night"}, "shift\n  Extra inputs are not permitted"),
    ],
)
def test_invalid_profiles_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        HumanProfile.model_validate({**DEFAULT_APPROVERS["lead"].model_dump(), **changes})


def test_default_approvers() -> None:
    oncall, lead = DEFAULT_APPROVERS["oncall"], DEFAULT_APPROVERS["lead"]
    assert (oncall.availability, lead.availability) == ((), ((9, 17),))
    assert oncall.accuracy < lead.accuracy
    assert oncall.cost_per_minute < lead.cost_per_minute
    assert oncall.response_time.median < lead.response_time.median
