"""`Budget`: limits on a run's steps, simulated duration and cost."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["Budget"]


class Budget(BaseModel):
    """Limits on one run; exceeding any of them ends the run with ``budget_exceeded``.

    Example:
        >>> Budget(max_steps=20, max_duration=2700, max_cost=0.50)
        Budget(max_steps=20, max_duration=2700.0, max_cost=0.5)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_steps: int | None = Field(
        100,
        ge=1,
        description="States entered (retries included) before the run is stopped; None for no limit.",
    )
    max_duration: float | None = Field(
        None, gt=0, description="Simulated seconds from the run's start; None for no limit."
    )
    max_cost: float | None = Field(
        None, ge=0, description="USD charged to the run (models, humans); None for no limit."
    )
