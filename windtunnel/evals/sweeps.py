"""A ladder over a grid of thresholds: accuracy and cost per point, and the Pareto frontier.

A ladder ``small@t1,mid@t2,large`` keeps a rung's answer when its stated confidence
reaches the rung's threshold and climbs otherwise; higher thresholds buy accuracy
with escalations and money. :func:`sweep` runs one experiment whose configs are the
grid's ladders (cells paired across points, as in any experiment) and returns
:func:`sweep_points` of its runs: one row per point, with intervals, marked where no
other point is both cheaper and more accurate.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from windtunnel.orchestrator import InvalidArgument
from windtunnel.scenarios import parse_play

from .executors import Executor, run_experiment
from .experiment import Experiment
from .metrics import decisions
from .pricing import cost, pareto
from .results import read_runs
from .stats import Estimate, wilson

__all__ = ["ladder_grid", "sweep", "sweep_points"]


def ladder_grid(
    tiers: Sequence[str], thresholds: Mapping[str, Sequence[float]] | Sequence[float]
) -> list[str]:
    """Every ladder of ``tiers`` over the grid: a threshold for each rung but the last
    (which answers whatever its confidence), from ``thresholds[tier]`` or, given one
    sequence, from it for every rung.

    >>> ladder_grid(["small", "large"], [0.8, 0.9])
    ['ladder:small@0.8,large', 'ladder:small@0.9,large']
    """
    if len(tiers) < 2:
        raise InvalidArgument(f"tiers={list(tiers)!r}: a ladder needs at least two tiers")
    climbing = list(tiers[:-1])
    if isinstance(thresholds, Mapping):
        missing = [tier for tier in climbing if tier not in thresholds]
        if missing:
            raise InvalidArgument(f"thresholds has no grid for the rungs {missing!r}")
        grids = [list(thresholds[tier]) for tier in climbing]
    else:
        grids = [list(thresholds)] * len(climbing)
    for tier, grid in zip(climbing, grids, strict=True):
        if not grid or any(not 0 <= value <= 1 for value in grid):
            raise InvalidArgument(f"thresholds for {tier!r} must be a non-empty list of numbers in [0, 1]")
    ladders = [
        "ladder:" + ",".join([*(f"{t}@{v:g}" for t, v in zip(climbing, point, strict=True)), tiers[-1]])
        for point in itertools.product(*grids)
    ]
    for ladder in ladders:
        parse_play(ladder)  # an unknown tier is named here, before anything runs
    return ladders


def sweep(
    scenarios: Sequence[str],
    *,
    thresholds: Mapping[str, Sequence[float]] | Sequence[float],
    out: str | Path,
    tiers: Sequence[str] = ("small", "mid", "large"),
    seeds: int = 3,
    seed: int = 0,
    tags: Sequence[str] = (),
    ids: Sequence[str] = (),
    executor: Executor = "local",
    workers: int | None = None,
    name: str = "sweep",
) -> pd.DataFrame:
    """Run the ladder of ``tiers`` at every point of the ``thresholds`` grid over the
    scenarios and return :func:`sweep_points`. The results stay in ``out`` (resumable,
    reportable)."""
    experiment = Experiment(
        name=name,
        scenarios=list(scenarios),
        tags=list(tags),
        ids=list(ids),
        seeds=seeds,
        seed=seed,
        configs=ladder_grid(tiers, thresholds),
    )
    run_experiment(experiment, out, executor=executor, workers=workers)
    return sweep_points(read_runs(out))


def sweep_points(runs: pd.DataFrame, *, seed: int = 0) -> pd.DataFrame:
    """One row per ladder config of ``runs``: its thresholds (``threshold_<tier>``),
    ``accuracy`` (Wilson), ``cost_per_run`` (cluster bootstrap), ``escalation_rate``
    (share of runs that reached a human, Wilson), ``cost_per_correct``, and ``pareto``:
    True where no other point is as cheap and as accurate, one of them strictly."""
    ladders = sorted(c for c in runs["config"].astype(str).unique() if c.startswith("ladder:"))
    if not ladders:
        raise InvalidArgument("the runs hold no ladder config ('ladder:...'); nothing to sweep over")
    runs = runs[runs["config"].isin(ladders)]
    accuracy = decisions(runs)[
        ["config", "runs", "harness_errors", "accuracy", "accuracy_low", "accuracy_high"]
    ]
    spent = cost(runs, seed=seed)[
        ["config", "cost_per_run", "cost_per_run_low", "cost_per_run_high", "cost_per_correct"]
    ]
    points = accuracy.merge(spent, on="config")
    reached = [_escalation_rate(runs, config) for config in points["config"]]
    points = points.assign(
        escalation_rate=[r[0] for r in reached],
        escalation_rate_low=[r[1] for r in reached],
        escalation_rate_high=[r[2] for r in reached],
    )
    thresholds: list[dict[str, Any]] = [
        {f"threshold_{profile.name}": t for profile, t in parse_play(c).rungs[:-1]} for c in points["config"]
    ]
    points = pd.concat([points, pd.DataFrame(thresholds, index=points.index)], axis=1)
    return pareto(points, x="cost_per_run", y="accuracy")


def _escalation_rate(runs: pd.DataFrame, config: str) -> Estimate:
    mine = runs[(runs["config"] == config) & (runs["harness_error"].fillna("").astype(str) == "")]
    return wilson(int(mine["escalated"].astype(bool).sum()), len(mine))
