"""What a config costs: per run, per correct decision, per 1,000 cases with errors priced.

Means carry a 95% percentile bootstrap interval that resamples scenarios whole
(`cluster_bootstrap`), since runs of one scenario are not independent.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pandas as pd

from windtunnel.orchestrator import InvalidArgument

from ._frame import By, add_estimate, grouped, require, rows_frame
from .stats import cluster_bootstrap

__all__ = ["ErrorPrices", "cost", "pareto"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ErrorPrices:
    """What an error costs the user, in USD, for the total cost of ownership.

    The defaults are ASSUMPTIONS, round numbers for a security-operations desk, not
    measurements: set your own.

    >>> ErrorPrices(missed_escalation=2000.0).wrong_action
    200.0
    """

    missed_escalation: float = 500.0
    """A case that needed a human and never reached one (an under-escalation)."""
    wrong_action: float = 200.0
    """A run that applied a forbidden action (``check_forbidden_actions`` failed)."""

    def __post_init__(self) -> None:
        for name in ("missed_escalation", "wrong_action"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise InvalidArgument(f"{name}={value!r} must be a finite price >= 0")


DEFAULT_PRICES = ErrorPrices()


def cost(
    frame: pd.DataFrame, *, prices: ErrorPrices = DEFAULT_PRICES, by: By = (), seed: int = 0
) -> pd.DataFrame:
    """Cost per run, per correct decision, and total cost of ownership per 1,000 cases.

    - ``cost_per_run`` = mean of ``cost`` (model + human review), with its cluster
      bootstrap interval; ``total_cost`` = its sum.
    - ``cost_per_correct`` = ``total_cost / correct`` (NaN when nothing was correct):
      what one correct decision costs, the wrong ones paid for too.
    - ``tco_per_1000`` = ``1000 · mean(model_cost + human_cost + missed_i ·
      prices.missed_escalation + wrong_i · prices.wrong_action)``, where ``missed_i`` is
      1 when run i needed a human and did not escalate and ``wrong_i`` is 1 when it
      applied a forbidden action; with its cluster bootstrap interval. Equivalently
      ``1000 · (mean cost + P(missed) · price + P(wrong) · price)`` — the error rates
      here are per case (``fn / runs``), not the conditional under-escalation rate
      ``fn / (fn + tp)``, because a thousand cases contain only some that need a human.
    """
    require(frame, "cost", "model_cost", "human_cost", "correct", "escalated", "needs_human")
    rows = []
    for keys, agent, errors in grouped(frame, by):
        missed = agent["needs_human"].astype(bool) & ~agent["escalated"].astype(bool)
        wrong = (
            ~agent["check_forbidden_actions"].astype(bool)
            if "check_forbidden_actions" in agent
            else pd.Series(False, agent.index)
        )
        priced = (
            agent["model_cost"].astype(float)
            + agent["human_cost"].astype(float)
            + missed.astype(float) * prices.missed_escalation
            + wrong.astype(float) * prices.wrong_action
        )
        total = float(agent["cost"].sum())
        correct = int(agent["correct"].astype(bool).sum())
        row: dict[str, Any] = {**keys, "runs": len(agent), "harness_errors": errors}
        add_estimate(row, "cost_per_run", cluster_bootstrap(agent["cost"], agent["scenario"], seed=seed))
        row |= {
            "model_cost_per_run": float(agent["model_cost"].mean()),
            "human_cost_per_run": float(agent["human_cost"].mean()),
            "total_cost": total,
            "correct": correct,
            "cost_per_correct": total / correct if correct else math.nan,
            "missed_escalations": int(missed.sum()),
            "wrong_actions": int(wrong.sum()),
        }
        low_high = cluster_bootstrap(priced, agent["scenario"], seed=seed)
        add_estimate(row, "tco_per_1000", (1000 * low_high[0], 1000 * low_high[1], 1000 * low_high[2]))
        rows.append(row)
    return rows_frame(rows, by)


def pareto(points: pd.DataFrame, *, x: str = "cost_per_run", y: str = "accuracy") -> pd.DataFrame:
    """``points`` with a ``pareto`` column: True where no other point is as cheap and as good.

    A point is dominated when another has ``x`` no larger and ``y`` no smaller, one of
    them strictly; the frontier is what is not dominated (lower ``x`` is better, higher
    ``y`` is better). Points with a NaN in ``x`` or ``y`` are never on it. Typical use:
    ``pareto(cost(runs).merge(decisions(runs), on="config"))``.

    >>> table = pd.DataFrame({"config": ["s", "m", "l"], "cost_per_run": [1.0, 2.0, 3.0],
    ...                       "accuracy": [0.7, 0.9, 0.85]})
    >>> list(pareto(table).pareto)
    [True, True, False]
    """
    for column in (x, y):
        if column not in points:
            raise InvalidArgument(
                f"{column!r} is not a column of the points; they have {list(points.columns)!r}"
            )
    xs, ys = points[x].astype(float).to_numpy(), points[y].astype(float).to_numpy()
    frontier = []
    for xi, yi in zip(xs, ys, strict=True):
        if math.isnan(xi) or math.isnan(yi):
            frontier.append(False)
            continue
        dominated = ((xs <= xi) & (ys >= yi) & ((xs < xi) | (ys > yi))).any()
        frontier.append(not bool(dominated))
    return points.assign(pareto=frontier)
