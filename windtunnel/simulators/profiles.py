"""Tier profiles: how a simulated model tier decides, fumbles, spends tokens and takes time.

A tier is a :class:`TierProfile`: how often it picks the right next state (by the
case's difficulty and the evidence it actually got), how well its confidence
matches that, how often it calls a tool that does not exist or sends bad
arguments, how many tokens it uses and how long it takes. A
:class:`~windtunnel.simulators.model.SimulatedModel` plays one.

ASSUMPTIONS, not measurements. :data:`DEFAULT_TIERS` is set so that the trade-off
has a realistic shape, not measured from any model:

| tier  | model             | skill | slope | evidence | overconf. | halluc. | malformed | out tok | latency |
|-------|-------------------|-------|-------|----------|-----------|---------|-----------|---------|---------|
| small | claude-haiku-5-5  | 0.86  | 0.35  | 0.35     | +0.12     | 4 %     | 4 %       | 150     | 1.5 s   |
| mid   | claude-sonnet-5-5 | 0.93  | 0.25  | 0.30     | +0.05     | 1.5 %   | 1.5 %     | 220     | 4 s     |
| large | claude-opus-5-5   | 0.97  | 0.15  | 0.25     | +0.01     | 0.5 %   | 0.5 %     | 300     | 8 s     |

Larger tiers are more accurate, lose less to hard cases and missing evidence,
are better calibrated and fumble fewer tool calls; they also write more, answer
more slowly and cost more per token (prices come from ``genai-prices``: $0.1/$0.5,
$2/$10 and $4/$20 per million input/output tokens). Every tier's floor is 0.5:
with the evidence gone, a binary call is a coin toss. Change a field with
:func:`derive_tier` (validated) or ``profile.model_copy(update=...)`` (not).
"""

from __future__ import annotations

import math
import random
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from windtunnel.orchestrator.errors import InvalidArgument
from windtunnel.orchestrator.validation import check_choice

__all__ = ["DEFAULT_TIERS", "LogNormal", "TierProfile", "derive_tier"]


class LogNormal(BaseModel):
    """A log-normal distribution by its median and the sigma of its logarithm.

    Example:
        >>> LogNormal(median=2.0, sigma=0.0).draw(random.Random(1))
        2.0
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    median: float = Field(gt=0, description="The median value.")
    sigma: float = Field(0.0, ge=0, description="Standard deviation of the log; 0 always gives the median.")

    def draw(self, rng: random.Random) -> float:
        """One value; always takes exactly one normal draw from ``rng``."""
        return self.median * math.exp(self.sigma * rng.gauss(0.0, 1.0))


class TierProfile(BaseModel):
    """How a simulated model tier decides, fumbles, spends tokens and takes time.

    The chance of choosing the right next state is
    ``clamp(skill - difficulty_slope * difficulty - evidence_weight * (1 - evidence), floor, 0.99)``
    where ``evidence`` is the share of the case's key evidence the model got.

    Example:
        >>> profile = derive_tier("small", skill=0.7)
        >>> profile.model, profile.skill
        ('claude-haiku-5-5', 0.7)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="The tier's name, e.g. 'small'; used in tool-use ids.")
    model: str = Field(min_length=1, description="A real model id; its price is looked up by it.")
    skill: float = Field(ge=0, le=1, description="Accuracy at difficulty 0 with all key evidence.")
    difficulty_slope: float = Field(ge=0, description="Accuracy lost per unit of the case's difficulty.")
    evidence_weight: float = Field(
        ge=0, le=1, description="Accuracy lost when all key evidence is missing; proportional to the share."
    )
    floor: float = Field(
        0.5, ge=0, le=0.99, description="Minimum accuracy (0.5: a coin toss between two choices)."
    )
    overconfidence: float = Field(
        0.0, ge=-1, le=1, description="Added to the stated confidence; 0 is calibrated, > 0 overconfident."
    )
    confidence_noise: float = Field(
        0.03, ge=0, description="Standard deviation of the normal noise on the stated confidence."
    )
    hallucination_rate: float = Field(
        0.0, ge=0, le=1, description="Chance that a tool call names a tool that does not exist."
    )
    malformed_rate: float = Field(
        0.0,
        ge=0,
        le=1,
        description="Chance that a tool call has invalid arguments (missing key, wrong type).",
    )
    input_tokens: LogNormal = Field(
        description="Input tokens on top of the request's own (its characters / 4): hidden prompt overhead."
    )
    output_tokens: LogNormal = Field(description="Output tokens of one response.")
    latency: LogNormal = Field(description="Simulated seconds one call takes.")

    @model_validator(mode="after")
    def _rates_fit_one_draw(self) -> TierProfile:
        if self.hallucination_rate + self.malformed_rate > 1:
            raise InvalidArgument(
                f"hallucination_rate={self.hallucination_rate} + malformed_rate={self.malformed_rate} "
                "must be <= 1: one draw decides a call's fault"
            )
        return self


DEFAULT_TIERS: dict[str, TierProfile] = {
    "small": TierProfile(
        name="small",
        model="claude-haiku-5-5",
        skill=0.86,
        difficulty_slope=0.35,
        evidence_weight=0.35,
        overconfidence=0.12,
        hallucination_rate=0.04,
        malformed_rate=0.04,
        input_tokens=LogNormal(median=300, sigma=0.1),
        output_tokens=LogNormal(median=150, sigma=0.4),
        latency=LogNormal(median=1.5, sigma=0.4),
    ),
    "mid": TierProfile(
        name="mid",
        model="claude-sonnet-5-5",
        skill=0.93,
        difficulty_slope=0.25,
        evidence_weight=0.30,
        overconfidence=0.05,
        hallucination_rate=0.015,
        malformed_rate=0.015,
        input_tokens=LogNormal(median=300, sigma=0.1),
        output_tokens=LogNormal(median=220, sigma=0.4),
        latency=LogNormal(median=4.0, sigma=0.4),
    ),
    "large": TierProfile(
        name="large",
        model="claude-opus-5-5",
        skill=0.97,
        difficulty_slope=0.15,
        evidence_weight=0.25,
        overconfidence=0.01,
        hallucination_rate=0.005,
        malformed_rate=0.005,
        input_tokens=LogNormal(median=300, sigma=0.1),
        output_tokens=LogNormal(median=300, sigma=0.4),
        latency=LogNormal(median=8.0, sigma=0.4),
    ),
}
"""The three tiers of the module docstring's table: assumptions, not measurements."""


def derive_tier(base: str | TierProfile, **changes: Any) -> TierProfile:
    """A copy of ``base`` (a :data:`DEFAULT_TIERS` name or a profile) with ``changes``, validated.

    Raises:
        InvalidArgument: for an unknown tier name.
        pydantic.ValidationError: for an unknown field or a value out of range.
    """
    if not isinstance(base, TierProfile):
        check_choice("base", base, sorted(DEFAULT_TIERS), alternative="a TierProfile")
        base = DEFAULT_TIERS[base]
    return TierProfile.model_validate({**base.model_dump(), **changes})
