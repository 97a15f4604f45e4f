"""Simulated human approvers: slow, sometimes absent, sometimes wrong, and paid by the minute.

A :class:`SimulatedHuman` reviews a proposed verdict: it waits for its next
availability window (time 0 of the simulation is midnight of day 0), then for its
response time, then approves the proposal if its own judgement agrees with it.
Its judgement matches the truth with the profile's accuracy. What a review costs
is the reviewer's effort (``review_minutes``), not the time the request waited. A
response that runs past the end of a window still comes: the human finishes what
they started.

ASSUMPTIONS, not measurements. :data:`DEFAULT_APPROVERS`:

| approver | available  | response (median) | accuracy | rate      | review effort (median) |
|----------|------------|-------------------|----------|-----------|------------------------|
| oncall   | 24 h       | 15 min            | 0.95     | $1.5/min  | 8 min                  |
| lead     | 09-17 h    | 45 min            | 0.98     | $2.5/min  | 15 min                 |

The on-call analyst answers fast at any hour (a paged SOC analyst, ~$90/h
loaded); the day-shift lead is more often right but only in office hours and
after a queue (~$150/h loaded).
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from windtunnel.orchestrator.errors import InvalidArgument
from windtunnel.orchestrator.validation import check_choice

from .tiers import LogNormal
from .world import Truth, Verdict

__all__ = ["DAY", "DEFAULT_APPROVERS", "HumanDecision", "HumanProfile", "SimulatedHuman"]

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
    accuracy: float = Field(ge=0, le=1, description="Probability that the human's verdict is the true one.")
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
class HumanDecision:
    """What a human decided on a proposal, how long it took and what it cost."""

    decision: Literal["approve", "reject"]
    verdict: Verdict
    """The verdict as the human judges it."""
    correct: bool
    """Whether the human's verdict is the true one (and so whether the decision is right)."""
    waited: float
    """Simulated seconds from the request to the answer."""
    review_minutes: float
    cost: float
    """USD: review minutes times the approver's rate."""
    approver: str


class SimulatedHuman:
    """An approver that answers a proposed verdict in simulated time.

    Example::

        human = SimulatedHuman(DEFAULT_APPROVERS["oncall"], rng=sim.rng("humans/oncall"))
        decision = await human.review(proposal="malicious", truth=truth)
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

    async def review(self, *, proposal: Verdict, truth: Truth) -> HumanDecision:
        """Wait for the human, then approve ``proposal`` iff the human's verdict agrees with it.

        Raises:
            InvalidArgument: when ``proposal`` is not ``"malicious"`` or ``"benign"``.
        """
        check_choice("proposal", proposal, ("malicious", "benign"))
        profile, rng = self.profile, self.rng
        # Every draw before the first wait, so that reviews running side by side on
        # one stream draw in the order they were asked, not the order they finish.
        response = profile.response_time.draw(rng) * 60
        minutes = profile.review_minutes.draw(rng)
        correct = rng.random() < profile.accuracy
        loop = asyncio.get_running_loop()
        asked = loop.time()
        await asyncio.sleep(profile.next_available(asked) - asked + response)
        verdict: Verdict = (
            truth.verdict if correct else ("benign" if truth.verdict == "malicious" else "malicious")
        )
        return HumanDecision(
            decision="approve" if verdict == proposal else "reject",
            verdict=verdict,
            correct=correct,
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
"""An on-call analyst and a day-shift lead, as in the module docstring: assumptions."""
