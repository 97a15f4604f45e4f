"""Is the difference between two configs real? Paired on the cells both ran.

Two configs of one experiment, or one config from each of two experiments, saw the
same cases and the same faults cell by cell (the same scenario and seed index), so
they are compared pair by pair: McNemar's exact test on correctness, paired
bootstrap intervals (clustered by scenario) for the differences in accuracy and
cost, and the seeds a difference of the observed size would need.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from windtunnel.orchestrator import InvalidArgument

from .stats import Estimate, mcnemar_exact, paired_bootstrap, seeds_needed

__all__ = ["Comparison", "compare"]

PAIR_ON = ("scenario", "seed_index")


@dataclass(frozen=True, slots=True, kw_only=True)
class Comparison:
    """Config ``a`` against config ``b`` on their shared cells; differences are ``a - b``."""

    a: str
    b: str
    pairs: int
    """Cells both ran, harness errors on either side left out."""
    scenarios: int
    harness_errors: int
    """Shared cells dropped because the harness failed on either side."""
    unmatched: int
    """Cells only one side ran; not compared."""
    accuracy_a: float
    accuracy_b: float
    only_a_correct: int
    """Discordant pairs where ``a`` was right and ``b`` wrong (McNemar's b)."""
    only_b_correct: int
    """Discordant pairs where ``b`` was right and ``a`` wrong (McNemar's c)."""
    p_value: float
    """McNemar's exact two-sided p-value on the discordant pairs."""
    accuracy_diff: Estimate
    cost_diff: Estimate
    """Mean cost per run of ``a`` minus ``b``, USD, with its paired bootstrap interval."""
    alpha: float
    power: float
    seeds_needed: float
    """Seeds per scenario for McNemar's test to see the observed accuracy difference
    at ``power`` (Connor 1987, with the observed discordant share); ``inf`` when the
    observed difference is zero."""
    pass_to_fail: tuple[tuple[str, int], ...]
    """``(scenario, seed_index)`` cells ``a`` got right and ``b`` got wrong."""
    fail_to_pass: tuple[tuple[str, int], ...]
    """``(scenario, seed_index)`` cells ``a`` got wrong and ``b`` got right."""

    @property
    def significant(self) -> bool:
        """Whether McNemar's test rejects "same accuracy" at ``alpha``."""
        return self.p_value < self.alpha

    @property
    def verdict(self) -> str:
        """One paragraph a person can act on; says "not significant" when it is not."""
        if self.pairs == 0:
            return f"{self.a} vs {self.b}: no shared cells without harness errors; nothing to compare"
        d, lo, hi = self.accuracy_diff
        c, clo, chi = self.cost_diff
        head = (
            f"{self.a} vs {self.b} on {self.pairs} paired runs of {self.scenarios} scenarios: "
            f"accuracy {self.accuracy_a:.3f} vs {self.accuracy_b:.3f}, difference {d:+.3f} "
            f"(95% CI {lo:+.3f} to {hi:+.3f}); McNemar exact p = {self.p_value:.3g} "
            f"({self.only_a_correct} cells only {self.a} got right, {self.only_b_correct} only {self.b})"
        )
        if self.significant:
            judged = f": significant at alpha = {self.alpha:g}"
        elif math.isinf(self.seeds_needed):
            judged = f": not significant at alpha = {self.alpha:g}; no difference in accuracy was observed"
        else:
            judged = (
                f": not significant at alpha = {self.alpha:g}; seeing a difference of {abs(d):.3f} "
                f"at {self.power:.0%} power would need about {self.seeds_needed:.0f} seeds per scenario"
            )
        return f"{head}{judged}. Cost per run differs by {c:+.4f} USD (95% CI {clo:+.4f} to {chi:+.4f})."

    def __str__(self) -> str:
        return self.verdict


def _side(frame: pd.DataFrame, config: str | None, name: str, pair_on: list[str]) -> tuple[pd.DataFrame, str]:
    missing = [c for c in ("config", *PAIR_ON, "correct", "cost", "harness_error") if c not in frame]
    if missing:
        raise InvalidArgument(f"{name}: the runs frame lacks the columns {missing!r}")
    if config is not None:
        frame = frame[frame["config"] == config]
        if frame.empty:
            raise InvalidArgument(f"{name}: config={config!r} has no runs")
    configs = sorted(frame["config"].astype(str).unique())
    if len(configs) != 1:
        raise InvalidArgument(
            f"{name}: expected runs of one config, found {configs!r}; name the config to compare"
        )
    duplicated = frame.duplicated(pair_on)
    if duplicated.any():
        cell = tuple(frame.loc[duplicated, pair_on].iloc[0])
        raise InvalidArgument(
            f"{name}: the cell ({', '.join(pair_on)})={cell!r} appears more than once; "
            "compare runs of one experiment per side"
        )
    return frame, configs[0]


def compare(
    a: pd.DataFrame,
    b: pd.DataFrame | None = None,
    *,
    config_a: str | None = None,
    config_b: str | None = None,
    alpha: float = 0.05,
    power: float = 0.80,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Comparison:
    """Compare config ``a`` with config ``b`` cell by cell.

    ``compare(runs, config_a="small", config_b="large")`` compares two configs of one
    frame; ``compare(runs_a, runs_b)`` compares two frames (say two experiments), each
    holding one config or narrowed to one by ``config_a`` / ``config_b``. Cells pair on
    ``(scenario, seed_index)``; a pair is dropped when the harness failed on either
    side (counted in ``harness_errors``). The accuracy difference is the mean of
    ``correct_a - correct_b`` over pairs, the cost difference the mean of ``cost_a -
    cost_b``, both with a percentile bootstrap that resamples scenarios (``seed``-ed).
    """
    other = a if b is None else b
    # With extra fault plans a cell is (scenario, seed index, plan): each plan pairs with itself.
    pair_on = [*PAIR_ON, *(["fault_plan"] if "fault_plan" in a and "fault_plan" in other else [])]
    side_a, name_a = _side(a, config_a, "a", pair_on)
    side_b, name_b = _side(other, config_b, "b", pair_on)
    if b is None and name_a == name_b:
        raise InvalidArgument(f"config_a and config_b are both {name_a!r}; name two configs of the frame")
    if name_a == name_b and "experiment" in side_a and "experiment" in side_b:
        name_a = f"{side_a['experiment'].iloc[0]}/{name_a}"
        name_b = f"{side_b['experiment'].iloc[0]}/{name_b}"
    seeded = "seed" in side_a and "seed" in side_b
    keep = [*pair_on, "correct", "cost", "harness_error", *(["seed"] if seeded else [])]
    joined = side_a[keep].merge(side_b[keep], on=pair_on, how="outer", suffixes=("_a", "_b"), indicator=True)
    shared = joined[joined["_merge"] == "both"]
    if seeded and (shared["seed_a"] != shared["seed_b"]).any():
        cell = shared[shared["seed_a"] != shared["seed_b"]].iloc[0]
        raise InvalidArgument(
            f"cell {cell['scenario']}/{cell['seed_index']} ran simulation seed {cell['seed_a']} in a and "
            f"{cell['seed_b']} in b: the experiments differ in their seed, so their cells are different "
            "cases and cannot be paired"
        )
    failed = (shared["harness_error_a"].fillna("").astype(str) != "") | (
        shared["harness_error_b"].fillna("").astype(str) != ""
    )
    pairs = shared[~failed].sort_values(pair_on)
    ok_a, ok_b = pairs["correct_a"].astype(bool), pairs["correct_b"].astype(bool)
    n = len(pairs)
    only_a, only_b = int((ok_a & ~ok_b).sum()), int((~ok_a & ok_b).sum())
    acc_a = float(ok_a.mean()) if n else math.nan
    acc_b = float(ok_b.mean()) if n else math.nan
    scenarios = int(pairs["scenario"].nunique())
    # Seeds are per task: a scenario under each extra fault plan is a task of its own.
    tasks = len(pairs.drop_duplicates([key for key in pair_on if key != "seed_index"]))
    needed = (
        seeds_needed(
            acc_a, acc_b, discordant=(only_a + only_b) / n, scenarios=tasks, alpha=alpha, power=power
        )
        if n
        else math.inf
    )

    def cells(mask: pd.Series[bool]) -> tuple[tuple[str, int], ...]:
        # With extra plans the scenario is named with its plan, 'scenario/+plan', as in cell ids.
        chosen = pairs.loc[mask]
        plans = chosen["fault_plan"] if "fault_plan" in pair_on else pd.Series("", index=chosen.index)
        return tuple(
            (f"{s}/+{p}" if p else str(s), int(i))
            for s, i, p in zip(chosen["scenario"], chosen["seed_index"], plans, strict=True)
        )

    boot = {"n_resamples": n_resamples, "seed": seed}
    return Comparison(
        a=name_a,
        b=name_b,
        pairs=n,
        scenarios=scenarios,
        harness_errors=int(failed.sum()),
        unmatched=int((joined["_merge"] != "both").sum()),
        accuracy_a=acc_a,
        accuracy_b=acc_b,
        only_a_correct=only_a,
        only_b_correct=only_b,
        p_value=mcnemar_exact(only_a, only_b),
        accuracy_diff=paired_bootstrap(ok_a.astype(float), ok_b.astype(float), pairs["scenario"], **boot),
        cost_diff=paired_bootstrap(pairs["cost_a"], pairs["cost_b"], pairs["scenario"], **boot),
        alpha=alpha,
        power=power,
        seeds_needed=needed,
        pass_to_fail=cells(ok_a & ~ok_b),
        fail_to_pass=cells(~ok_a & ok_b),
    )
