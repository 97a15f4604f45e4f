"""Two results directories side by side: what changed from a baseline to a candidate.

For each config both ran, the cells they share are paired (same scenario and seed
index, so the same case): the accuracy change comes with its paired bootstrap
interval and McNemar's exact test, the cost change with its paired interval, and
the cells that went from pass to fail are listed by scenario. Every other metric of
:func:`~windtunnel.reports.table.metrics_table` is shown on each side with its own
interval, and its change as a point difference.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from windtunnel.evals import Comparison, compare
from windtunnel.orchestrator import InvalidArgument

from .markdown import markdown_text
from .table import metrics_table

__all__ = ["ConfigDiff", "ResultsDiff", "diff_results"]

SHOWN = (
    "accuracy",
    "escalation_recall",
    "escalation_precision",
    "verification_coverage",
    "silent_failure_catch_rate",
    "cost_per_run",
    "cost_per_correct",
    "invariant_violations",
)
"""The metrics a diff shows, in this order."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConfigDiff:
    """One config of both directories: the paired comparison and the metrics of each side."""

    config: str
    comparison: Comparison
    """Baseline as ``a``, candidate as ``b``: its differences are baseline - candidate."""
    metrics: pd.DataFrame
    """One row per metric over the paired cells: ``baseline``, ``baseline_low``,
    ``baseline_high``, the same for ``candidate``, and ``change`` (candidate - baseline)."""
    unpaired: int = 0
    """Runs of this config that only one side ran: left out of everything."""

    @property
    def regressed(self) -> bool:
        """Accuracy dropped, and McNemar's test says the drop is not noise."""
        c = self.comparison
        return c.significant and c.accuracy_b < c.accuracy_a

    @property
    def regressions(self) -> dict[str, int]:
        """Scenario -> cells that passed in the baseline and fail in the candidate."""
        return dict(Counter(scenario for scenario, _ in self.comparison.pass_to_fail))


@dataclass(frozen=True, slots=True, kw_only=True)
class ResultsDiff:
    """The configs both directories ran, and those only one did."""

    configs: list[ConfigDiff]
    only_baseline: list[str] = field(default_factory=list)
    only_candidate: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        """Any config regressed significantly."""
        return any(diff.regressed for diff in self.configs)

    def markdown(self) -> str:
        """For a pull request comment."""
        lines = ["## windtunnel compare: baseline → candidate", ""]
        for diff in self.configs:
            c = diff.comparison
            change, low, high = (0.0 - c.accuracy_diff[i] for i in (0, 2, 1))
            verdict = (
                "**regressed**"
                if diff.regressed
                else ("changed" if c.significant else "no significant change")
            )
            lines += [
                f"### {markdown_text(diff.config)}: {verdict}",
                "",
                f"Accuracy {c.accuracy_a:.3f} → {c.accuracy_b:.3f}: {change:+.3f} (95% CI {low:+.3f} to "
                f"{high:+.3f}) on {c.pairs} paired runs of {c.scenarios} scenarios; McNemar exact p = "
                f"{c.p_value:.3g}. {_seeds_note(c)}"
                + (f" {diff.unpaired} runs ran on one side only and are left out." if diff.unpaired else ""),
                "",
                "| metric | baseline | candidate | change |",
                "|---|---|---|---|",
                *(
                    f"| {metric} | {_value(row, 'baseline')} | {_value(row, 'candidate')} | "
                    f"{_change(row['change'])} |"
                    for metric, row in diff.metrics.to_dict("index").items()
                ),
                "",
            ]
            if diff.regressions:
                cells = ", ".join(f"{markdown_text(s)} ×{n}" for s, n in sorted(diff.regressions.items()))
                lines += [f"Pass → fail: {cells}", ""]
        for label, names in (("baseline", self.only_baseline), ("candidate", self.only_candidate)):
            if names:
                lines += [f"Only in the {label}, not compared: {', '.join(map(markdown_text, names))}", ""]
        return "\n".join(lines)

    def text(self) -> str:
        """For a terminal: per config, the change candidate - baseline and its verdict,
        and the scenarios that went from pass to fail."""
        lines = []
        for diff in self.configs:
            c = diff.comparison
            change, low, high = (0.0 - c.accuracy_diff[i] for i in (0, 2, 1))
            cost, cost_low, cost_high = (0.0 - c.cost_diff[i] for i in (0, 2, 1))
            verdict = (
                "REGRESSED"
                if diff.regressed
                else ("changed significantly" if c.significant else "no significant change")
            )
            lines.append(
                f"{diff.config}: {verdict}: accuracy {c.accuracy_a:.3f} -> {c.accuracy_b:.3f}, "
                f"{change:+.3f} (95% CI {low:+.3f} to {high:+.3f}) on {c.pairs} paired runs of {c.scenarios} "
                f"scenarios, McNemar exact p = {c.p_value:.3g}; cost per run {cost:+.4f} USD "
                f"(95% CI {cost_low:+.4f} to {cost_high:+.4f}). {_seeds_note(c)}".rstrip()
            )
            if diff.unpaired:
                lines.append(f"    {diff.unpaired} runs ran on one side only and are left out")
            for scenario, cells in sorted(diff.regressions.items()):
                lines.append(f"    pass -> fail: {scenario} ({cells} cell{'s' if cells > 1 else ''})")
        for label, names in (("baseline", self.only_baseline), ("candidate", self.only_candidate)):
            if names:
                lines.append(f"only in the {label}, not compared: {', '.join(names)}")
        return "\n".join(lines)


def diff_results(
    baseline: pd.DataFrame, candidate: pd.DataFrame, *, alpha: float = 0.05, seed: int = 0
) -> ResultsDiff:
    """Compare every config the two runs frames share, on the cells both ran: every
    metric of the table is computed over those cells only, so that the table and the
    verdict speak of the same runs.

    Raises:
        InvalidArgument: a config shares no cell, or paired cells ran different
            simulation seeds (the experiments differ in their seed: different cases).
    """
    base_configs = set(baseline["config"].astype(str))
    cand_configs = set(candidate["config"].astype(str))
    shared = sorted(base_configs & cand_configs)
    keys = [
        key
        for key in ("config", "scenario", "seed_index", "fault_plan")
        if key in baseline and key in candidate
    ]
    cells = baseline[keys].merge(candidate[keys], on=keys)
    cells = cells[cells["config"].isin(shared)]
    index = pd.MultiIndex.from_frame(cells[keys])
    base = baseline[pd.MultiIndex.from_frame(baseline[keys]).isin(index)]
    cand = candidate[pd.MultiIndex.from_frame(candidate[keys]).isin(index)]
    comparisons = {}
    for config in shared:
        mine_base, mine_cand = base[base["config"] == config], cand[cand["config"] == config]
        if mine_base.empty:
            raise InvalidArgument(
                f"config {config!r} shares no cell (scenario and seed index) between the two directories; "
                "nothing to compare"
            )
        # compare() refuses paired cells that ran different simulation seeds.
        comparisons[config] = compare(mine_base, mine_cand, alpha=alpha, seed=seed)
    configs = []
    if comparisons:
        base_table = metrics_table(base, seed=seed).set_index("config")
        cand_table = metrics_table(cand, seed=seed).set_index("config")
    for config, comparison in comparisons.items():
        rows = {
            metric: {
                f"{side}{suffix}": _get(table, config, f"{metric}{suffix}")
                for side, table in (("baseline", base_table), ("candidate", cand_table))
                for suffix in ("", "_low", "_high")
            }
            for metric in SHOWN
        }
        metrics = pd.DataFrame.from_dict(rows, orient="index")
        metrics["change"] = metrics["candidate"] - metrics["baseline"]
        unpaired = (
            int((baseline["config"] == config).sum()) + int((candidate["config"] == config).sum())
            - int((base["config"] == config).sum()) - int((cand["config"] == config).sum())
        )  # fmt: skip
        configs.append(ConfigDiff(config=config, comparison=comparison, metrics=metrics, unpaired=unpaired))
    return ResultsDiff(
        configs=configs,
        only_baseline=sorted(base_configs - cand_configs),
        only_candidate=sorted(cand_configs - base_configs),
    )


def _get(table: pd.DataFrame, config: str, column: str) -> float:
    if column not in table.columns:
        return math.nan
    return float(table.loc[config, column])  # type: ignore[arg-type]  # one cell: a number


def _value(row: Mapping[Hashable, Any], side: str) -> str:
    value, low, high = (float(row[f"{side}{suffix}"]) for suffix in ("", "_low", "_high"))
    if math.isnan(value):
        return "n/a"
    if math.isnan(low):
        return f"{value:.4g}"
    return f"{value:.4g} ({low:.4g}–{high:.4g})"


def _change(value: Any) -> str:
    return "n/a" if math.isnan(float(value)) else f"{float(value):+.4g}"


def _seeds_note(c: Comparison) -> str:
    if c.significant or math.isinf(c.seeds_needed):
        return ""
    return f"Seeing a difference this size at {c.power:.0%} power needs about {c.seeds_needed:.0f} seeds."
