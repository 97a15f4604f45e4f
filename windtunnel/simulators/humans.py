"""Simulated human approvers: slow, sometimes absent, sometimes wrong, and paid by the minute.

A :class:`SimulatedHuman` answers a :class:`Review`: a proposal and the options to
choose from, one of them right (known to the simulation only). It waits for its
next availability window (time 0 of the simulation is midnight of day 0), then
for its response time, then picks the right option with the profile's accuracy,
another one otherwise. A workflow approves its proposal when the human's choice
is the proposal. Anything with the same ``review`` satisfies :class:`Human`, the
fault injector's wrapper included. What a review costs
is the reviewer's effort (``review_minutes``), not the time the request waited. A
response that runs past the end of a window still comes: the human finishes what
they started.

ASSUMPTIONS, not measurements. :data:`DEFAULT_APPROVERS`:

| approver | available  | response (median) | accuracy | rate      | review effort (median) |
|----------|------------|-------------------|----------|-----------|------------------------|
| oncall   | 24 h       | 15 min            | 0.95     | $1.5/min  | 8 min                  |
| lead     | 09-17 h    | 45 min            | 0.98     | $2.5/min  | 15 min                 |

The on-call engineer answers fast at any hour (a paged engineer or analyst, ~$90/h
loaded); the day-shift lead is more often right but only in office hours and
after a queue (~$150/h loaded).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Protocol

from pydantic import BaseModel, ConfigDict, Field, field_validator

from windtunnel.orchestrator.errors import InvalidArgument
from windtunnel.orchestrator.validation import check_choice

from .loop import sleep
from .profiles import LogNormal

__all__ = ["DAY", "DEFAULT_APPROVERS", "Human", "HumanDecision", "HumanProfile", "Review", "SimulatedHuman"]

DAY = 24 * 3600.0
"""Simulated seconds in a day."""


class HumanProfile(BaseModel):
    """How a human approver answers: when, how fast, how well, at what cost.

    Example:
        >>> lead = DEFAULT_APPROVERS["lead"]
        >>> lead.next_available(3 * 3600.0) / 3600  # asked at 03:00: available at 09:00
        9.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="Who approves, e.g. 'oncall'; recorded with each decision.")
    response_time: LogNormal = Field(
        description="Minutes from a request (or the start of an availability window) to the answer."
    )
    availability: tuple[tuple[float, float], ...] = Field(
        (), description="Daily windows (start hour, end hour) in simulated time of day; empty: always."
    )
    accuracy: float = Field(ge=0, le=1, description="Probability that the human picks the right option.")
    cost_per_minute: float = Field(ge=0, description="USD per minute of review effort.")
    review_minutes: LogNormal = Field(description="Minutes of actual review effort: what is charged.")

    @field_validator("availability")
    @classmethod
    def _windows_in_a_day(cls, windows: tuple[tuple[float, float], ...]) -> tuple[tuple[float, float], ...]:
        for start, end in windows:
            if not 0 <= start < end <= 24:
                raise InvalidArgument(
                    f"window ({start:g}, {end:g}) must have 0 <= start < end <= 24; "
                    "split one across midnight in two, e.g. (22, 24) and (0, 6)"
                )
        return windows

    def next_available(self, at: float) -> float:
        """The earliest simulated time from ``at`` on that falls in an availability window."""
        if not self.availability:
            return at
        midnight = at - at % DAY
        since = at - midnight
        opens = []
        for start, end in self.availability:
            if start * 3600 <= since < end * 3600:
                return at
            opens.append(midnight + start * 3600 + (0.0 if start * 3600 > since else DAY))
        return min(opens)


@dataclass(frozen=True, slots=True, kw_only=True)
class Review:
    """What a human is asked: a proposal, the options, and (for the simulation only) the right one.

    Example:
        >>> Review(proposal="rollback", options=("rollback", "leave"), right="rollback").options
        ('rollback', 'leave')
    """

    proposal: str
    """What the workflow proposes; usually one of the options."""
    options: tuple[str, ...]
    """What the human may choose from; at least one."""
    right: str
    """The right option, known to the simulation only: a real human would not be told."""

    def __post_init__(self) -> None:
        if not self.options:
            raise InvalidArgument("options=() must list at least one option")
        check_choice("right", self.right, self.options)


@dataclass(frozen=True, slots=True, kw_only=True)
class HumanDecision:
    """What a human chose on a review, how long it took and what it cost."""

    choice: str
    """The option the human picked."""
    correct: bool
    """Whether ``choice`` is the review's right option."""
    waited: float
    """Simulated seconds from the request to the answer."""
    review_minutes: float
    cost: float
    """USD: review minutes times the approver's rate."""
    approver: str


class Human(Protocol):
    """Who answers reviews: a :class:`SimulatedHuman`, the fault injector's wrapper, a test double."""

    async def review(self, request: Review) -> HumanDecision:
        """Answer ``request``, in the run's (simulated) time."""
        ...


class SimulatedHuman:
    """An approver that answers a review in simulated time.

    Example::

        human = SimulatedHuman(DEFAULT_APPROVERS["oncall"], rng=sim.rng("humans/oncall"))
        decision = await human.review(Review(proposal="rollback", options=("rollback", "leave"),
                                             right="rollback"))
    """

    def __init__(self, profile: HumanProfile, *, rng: random.Random) -> None:
        """Args:
        profile: who the human is.
        rng: the human's random stream, e.g. ``sim.rng("humans/oncall")``.
        """
        self.profile = profile
        self.rng = rng

    @property
    def name(self) -> str:
        """The approver's name."""
        return self.profile.name

    def __repr__(self) -> str:
        return f"SimulatedHuman({self.profile.name!r})"

    async def review(self, request: Review) -> HumanDecision:
        """Wait for the human, then pick the right option with the profile's accuracy, another otherwise."""
        profile, rng = self.profile, self.rng
        # Every draw before the first wait, so that reviews running side by side on
        # one stream draw in the order they were asked, not the order they finish.
        response = profile.response_time.draw(rng) * 60
        minutes = profile.review_minutes.draw(rng)
        draw = rng.random()
        others = [option for option in request.options if option != request.right]
        choice = request.right
        if draw >= profile.accuracy and others:
            # The same draw picks the wrong option, so the number of options never
            # shifts the stream for the reviews that follow.
            share = (draw - profile.accuracy) / (1.0 - profile.accuracy)
            choice = others[min(len(others) - 1, int(share * len(others)))]
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await sleep(profile.next_available(asked) - asked + response)
        return HumanDecision(
            choice=choice,
            correct=choice == request.right,
            waited=loop.time() - asked,
            review_minutes=minutes,
            cost=minutes * profile.cost_per_minute,
            approver=profile.name,
        )


DEFAULT_APPROVERS: dict[str, HumanProfile] = {
    "oncall": HumanProfile(
        name="oncall",
        response_time=LogNormal(median=15, sigma=0.6),
        accuracy=0.95,
        cost_per_minute=1.5,
        review_minutes=LogNormal(median=8, sigma=0.5),
    ),
    "lead": HumanProfile(
        name="lead",
        response_time=LogNormal(median=45, sigma=0.7),
        availability=((9, 17),),
        accuracy=0.98,
        cost_per_minute=2.5,
        review_minutes=LogNormal(median=15, sigma=0.5),
    ),
}
"""An on-call engineer and a day-shift lead, as in the module docstring: assumptions."""
