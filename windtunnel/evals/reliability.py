"""Reliability over repeated tries: pass^k (all k tries succeed) and pass@k (any does).

Both use the unbiased estimators over the n tries of each scenario and config (its
seeds), averaged over scenarios, as τ²-bench (Yao et al., 2024) does for pass^k and
Chen et al. (2021) for pass@k; `math.comb` does the counting. Intervals are 95%
percentile bootstraps over scenarios (`cluster_bootstrap`).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from windtunnel.orchestrator import InvalidArgument

from ._frame import By, add_estimate, grouped, require, rows_frame
from .stats import cluster_bootstrap

__all__ = ["pass_k"]


def pass_k(frame: pd.DataFrame, *, k_max: int | None = None, by: By = (), seed: int = 0) -> pd.DataFrame:
    """pass^k and pass@k for k = 1..n, one row per config (and ``by=`` key) and k.

    For a scenario with c correct of n tries, ``pass^k = C(c, k) / C(n, k)`` (the
    chance that k tries drawn without replacement all succeed) and ``pass@k = 1 -
    C(n - c, k) / C(n, k)`` (the chance at least one does). Columns ``pass_hat_k`` and
    ``pass_at_k`` are their means over scenarios, with ``_low``/``_high`` bootstrap
    bounds. k runs up to the fewest tries of any scenario in the group (``tries``),
    capped by ``k_max``; harness errors are not tries.

    >>> import pandas as pd
    >>> runs = pd.DataFrame({"config": "a", "scenario": "s", "harness_error": "",
    ...                      "correct": [True, True, True, False]})
    >>> pass_k(runs)[["k", "pass_hat_k", "pass_at_k"]]
       k  pass_hat_k  pass_at_k
    0  1        0.75       0.75
    1  2        0.50       1.00
    2  3        0.25       1.00
    3  4        0.00       1.00
    """
    require(frame, "correct")
    if k_max is not None and k_max < 1:
        raise InvalidArgument(f"k_max={k_max!r} must be at least 1")
    rows: list[dict[str, Any]] = []
    for keys, agent, errors in grouped(frame, by):
        # A scenario under an extra fault plan is another task: its runs are not more tries.
        task = (
            ["scenario", "fault_plan"]
            if "fault_plan" in agent and agent["fault_plan"].nunique() > 1
            else ["scenario"]
        )
        tally = agent.groupby(task, sort=True)["correct"].agg(["sum", "count"])
        if tally.empty:
            continue
        # Clustered by scenario: a scenario's tasks under several plans share its fate.
        scenarios = [str(name[0]) if isinstance(name, tuple) else str(name) for name in tally.index]
        correct = [int(c) for c in tally["sum"]]
        tries = [int(n) for n in tally["count"]]
        top = min(tries) if k_max is None else min(min(tries), k_max)
        for k in range(1, top + 1):
            hat = [math.comb(c, k) / math.comb(n, k) for c, n in zip(correct, tries, strict=True)]
            at = [1 - math.comb(n - c, k) / math.comb(n, k) for c, n in zip(correct, tries, strict=True)]
            row: dict[str, Any] = {
                **keys,
                "k": k,
                "scenarios": len(set(scenarios)),
                "tries": min(tries),
                "harness_errors": errors,
            }
            add_estimate(row, "pass_hat_k", cluster_bootstrap(hat, scenarios, seed=seed))
            add_estimate(row, "pass_at_k", cluster_bootstrap(at, scenarios, seed=seed))
            rows.append(row)
    return rows_frame(rows, by)
