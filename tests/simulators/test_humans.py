"""SimulatedHuman: availability windows, response time, accuracy, cost, determinism."""

from __future__ import annotations

import asyncio

import pydantic
import pytest

from windtunnel.orchestrator import InvalidArgument
from windtunnel.simulators import Sim
from windtunnel.simulators.humans import DAY, DEFAULT_APPROVERS, HumanDecision, HumanProfile, SimulatedHuman
from windtunnel.simulators.tiers import LogNormal
from windtunnel.simulators.world import Truth, Verdict

HOUR = 3600.0
MALICIOUS = Truth(verdict="malicious", needs_human=True)
LEAD = DEFAULT_APPROVERS["lead"].model_copy(update={"response_time": LogNormal(median=30, sigma=0)})


def review(
    profile: HumanProfile, *, seed: int = 0, start: float = 0.0, proposal: Verdict = "malicious"
) -> tuple[HumanDecision, float]:
    sim = Sim(seed=seed, start=start)
    human = SimulatedHuman(profile, rng=sim.rng(f"humans/{profile.name}"))
    decision = sim.run(human.review(proposal=proposal, truth=MALICIOUS))
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


@pytest.mark.parametrize("proposal", ["malicious", "benign"])
def test_decisions_are_right_at_the_profiles_accuracy(proposal: Verdict) -> None:
    profile = DEFAULT_APPROVERS["oncall"].model_copy(update={"accuracy": 0.8})
    sim = Sim(seed=5)
    human = SimulatedHuman(profile, rng=sim.rng("humans/oncall"))

    async def many() -> list[HumanDecision]:
        return list(
            await asyncio.gather(*(human.review(proposal=proposal, truth=MALICIOUS) for _ in range(2000)))
        )

    decisions = sim.run(many())
    assert sum(d.correct for d in decisions) / len(decisions) == pytest.approx(0.8, abs=0.03)
    for d in decisions:
        assert d.correct == (d.verdict == MALICIOUS.verdict)
        assert d.decision == ("approve" if d.verdict == proposal else "reject")
    # A right call approves a true proposal and rejects a false one.
    right = {d.decision for d in decisions if d.correct}
    assert right == ({"approve"} if proposal == "malicious" else {"reject"})


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


def test_a_proposal_must_be_a_verdict() -> None:
    human = SimulatedHuman(LEAD, rng=Sim().rng("humans/lead"))
    with pytest.raises(InvalidArgument) as raised:
        Sim().run(human.review(proposal="block", truth=MALICIOUS))  # type: ignore[arg-type]
    assert str(raised.value) == "unknown proposal='block'; choose one of ['malicious', 'benign']"


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
