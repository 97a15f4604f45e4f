"""Gates: thresholds on the metrics of a results directory, and no regression against a baseline.

A gate is one line of a tiny grammar::

    gate   := METRIC [ "." ("lower" | "upper") ] OP NUMBER  |  "no_significant_regression"
    OP     := ">=" | "<=" | ">" | "<" | "==" | "!="

``METRIC`` is a name of the metrics table (`metrics_table`; `METRICS` lists the fixed
names, plus ``pass^K``, ``pass@K`` and ``tier_*[T]``); ``.lower`` and ``.upper`` gate the
bound of its 95% interval (the ``_low`` and ``_high`` columns) instead of its point
estimate. ``==`` and ``!=`` compare with a relative tolerance of 1e-9. A gate holds for
one config or, without one, for each config run: one `GateResult` per config.

A measured value of NaN fails its gate, saying there was nothing to measure.
``no_significant_regression`` compares each config with the same config of a
baseline's runs (`windtunnel.evals.compare`, paired on shared cells): it fails when
the candidate's accuracy is lower and McNemar's test finds the drop significant, and
lists the cells that went from pass to fail. A config the baseline lacks passes it
(nothing to regress from), unless the gate names that config or no config is shared.

Example:
    >>> gate = parse_gate("escalation_recall.lower >= 0.95", config="small")
    >>> (gate.metric, gate.bound, gate.op, gate.threshold, gate.config)
    ('escalation_recall', 'lower', '>=', 0.95, 'small')
"""

from __future__ import annotations

import difflib
import math
import operator
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pandas as pd

from windtunnel.evals import ErrorPrices, compare, read_runs
from windtunnel.orchestrator import InvalidArgument

from .table import METRICS, metric_info, metrics_table, pass_k_of

__all__ = ["Gate", "GateResult", "evaluate", "parse_gate"]

Op = Literal[">=", "<=", ">", "<", "==", "!="]
Bound = Literal["value", "lower", "upper"]

REGRESSION = "no_significant_regression"

_GATE = re.compile(
    r"^(?P<metric>[A-Za-z_]\w*(?:[\^@]\w+|\[[^\[\]]+\])?)(?:\.(?P<bound>\w+))?"
    r"\s*(?P<op>>=|<=|==|!=|>|<)\s*"
    r"(?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)$"
)
_OPS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge,
    "<=": operator.le,
    ">": operator.gt,
    "<": operator.lt,
    "==": lambda a, b: math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
    "!=": lambda a, b: not math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12),
}
_SUFFIX = {"value": "", "lower": "_low", "upper": "_high"}
_SHAPE = (
    "a gate reads METRIC[.lower|.upper] OP NUMBER with OP one of >=, <=, >, <, ==, != "
    f"(e.g. 'escalation_recall.lower >= 0.95'), or {REGRESSION}"
)


@dataclass(frozen=True, slots=True, kw_only=True)
class Gate:
    """One parsed gate; build it with `parse_gate`."""

    text: str
    """The gate as written, e.g. ``escalation_recall.lower >= 0.95``."""
    metric: str
    """A metric of the table, or ``no_significant_regression``."""
    bound: Bound = "value"
    op: Op | None = None
    threshold: float | None = None
    config: str | None = None
    """The config it holds for; None: each config run."""

    @property
    def regression(self) -> bool:
        """Whether this is the ``no_significant_regression`` gate."""
        return self.metric == REGRESSION


@dataclass(frozen=True, slots=True, kw_only=True)
class GateResult:
    """A gate checked on one config: what was measured, against what, and the verdict."""

    gate: str
    config: str
    passed: bool
    measured: float
    """The gated value; for a regression gate, the accuracy change (candidate - baseline)."""
    low: float
    high: float
    """The metric's 95% interval (NaN when it has none)."""
    bound: float | None
    """The gate's number; None for a regression gate."""
    message: str
    flipped: tuple[tuple[str, int], ...] = ()
    """Regression gate: the ``(scenario, seed_index)`` cells that went from pass to fail."""


def _closest(name: str, choices: Iterable[str]) -> list[str]:
    return difflib.get_close_matches(name, list(choices), n=3, cutoff=0.6)


def _suggest(name: str, choices: Iterable[str]) -> str:
    close = _closest(name, choices)
    return f"; the closest: {', '.join(repr(c) for c in close)}." if close else "."


def parse_gate(text: str, *, config: str | None = None) -> Gate:
    """Read one gate, for ``config`` or (None) for each config.

    Raises:
        InvalidArgument: the text does not parse, names an unknown metric (the closest
            names suggested), or gates a bound of a metric that has no interval.
    """
    written = " ".join(text.split())
    if written == REGRESSION:
        return Gate(text=written, metric=REGRESSION, config=config)
    found = _GATE.match(written)
    if found is None:
        raise InvalidArgument(f"cannot read the gate {text!r}: {_SHAPE}")
    metric, bound = found.group("metric"), found.group("bound") or "value"
    info = metric_info(metric)
    if info is None:
        close = _closest(metric, [*METRICS, "pass^1", "pass@1", REGRESSION])
        known = (
            f"the closest: {', '.join(repr(c) for c in close)}"
            if close
            else f"the metrics: {', '.join(METRICS)}, pass^K, pass@K, tier_calls[T], tier_input_tokens[T], "
            "tier_output_tokens[T], tier_cost[T], tier_cost_per_run[T]"
        )
        raise InvalidArgument(f"unknown metric {metric!r} in the gate {text!r}; {known}")
    if bound not in ("value", "lower", "upper"):
        raise InvalidArgument(f"the gate {text!r} reads .{bound}; the bounds are .lower and .upper")
    if bound != "value" and not info.interval:
        raise InvalidArgument(f"the gate {text!r} gates .{bound}, but {metric!r} has no interval")
    op: Op = found.group("op")  # type: ignore[assignment]  # the regex admits only these
    return Gate(
        text=written,
        metric=metric,
        bound=bound,  # type: ignore[arg-type]  # checked just above
        op=op,
        threshold=float(found.group("number")),
        config=config,
    )


def _configs(gate: Gate, configs: list[str]) -> list[str]:
    if gate.config is None:
        return configs
    if gate.config not in configs:
        raise InvalidArgument(
            f"the gate {gate.text!r} is for config {gate.config!r}, which has no runs"
            f"{_suggest(gate.config, configs)} The configs run: {', '.join(configs)}."
        )
    return [gate.config]


def _number(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{value:.4g}"


def _value(row: pd.Series[float], column: str) -> float:
    return float(row[column]) if column in row.index else math.nan


def _check(gate: Gate, config: str, row: pd.Series[float]) -> GateResult:
    # parse_gate gives a metric gate its op, threshold and a known metric.
    assert gate.op is not None
    assert gate.threshold is not None
    info = metric_info(gate.metric)
    assert info is not None
    point = _value(row, gate.metric)
    low, high = (
        (_value(row, f"{gate.metric}_low"), _value(row, f"{gate.metric}_high"))
        if info.interval
        else (math.nan, math.nan)
    )
    measured = _value(row, gate.metric + _SUFFIX[gate.bound])
    head = f"{gate.text} {{}} for config {config!r}"
    if math.isnan(measured):
        why = (
            info.empty
            if math.isnan(point)
            else f"the point estimate is {_number(point)} but its interval needs two scenarios or more"
        )
        passed, message = False, f"{head.format('failed')}: nothing to measure ({why})"
    else:
        passed = _OPS[gate.op](measured, gate.threshold)
        interval = "" if math.isnan(low) else f" (interval {_number(low)}–{_number(high)})"
        message = f"{head.format('passed' if passed else 'failed')}: measured {_number(measured)}{interval}"
    return GateResult(
        gate=gate.text,
        config=config,
        passed=passed,
        measured=measured,
        low=low,
        high=high,
        bound=gate.threshold,
        message=message,
    )


def _flips(cells: tuple[tuple[str, int], ...]) -> str:
    by_scenario: dict[str, list[int]] = {}
    for scenario, index in cells:
        by_scenario.setdefault(scenario, []).append(index)
    return ", ".join(
        f"{scenario} (seed index {', '.join(map(str, sorted(indexes)))})"
        for scenario, indexes in sorted(by_scenario.items())
    )


def _regression(
    gate: Gate, config: str, runs: pd.DataFrame, baseline: pd.DataFrame, *, alpha: float, seed: int
) -> GateResult:
    head = f"{gate.text} {{}} for config {config!r}"
    nan = math.nan
    base = baseline[baseline["config"] == config]
    if base.empty:
        shared = set(baseline["config"].astype(str)) & set(runs["config"].astype(str))
        named = gate.config is not None or not shared
        verdict = "failed" if named else "passed"
        return GateResult(
            gate=gate.text,
            config=config,
            passed=not named,
            measured=nan,
            low=nan,
            high=nan,
            bound=None,
            message=f"{head.format(verdict)}: the baseline has no runs of config {config!r}; "
            + ("nothing to compare" if named else "a new config, nothing to regress from"),
        )
    found = compare(base, runs[runs["config"] == config], alpha=alpha, seed=seed)
    if found.pairs == 0:
        return GateResult(
            gate=gate.text,
            config=config,
            passed=False,
            measured=nan,
            low=nan,
            high=nan,
            bound=None,
            message=f"{head.format('failed')}: nothing to measure (no cell, a scenario and seed index, "
            "ran in both without a harness error)",
        )
    regressed = found.significant and found.accuracy_b < found.accuracy_a
    # compare() gives baseline - candidate; a drop reads better as a negative change (0.0 - x: no -0.000).
    change, low, high = (0.0 - found.accuracy_diff[i] for i in (0, 2, 1))
    significance = (
        f"McNemar p = {found.p_value:.3g}"
        + (" <" if found.significant else " >=")
        + f" alpha = {found.alpha:g}"
    )
    flips = f"; pass -> fail: {_flips(found.pass_to_fail)}" if found.pass_to_fail else ""
    return GateResult(
        gate=gate.text,
        config=config,
        passed=not regressed,
        measured=change,
        low=low,
        high=high,
        bound=None,
        message=f"{head.format('failed' if regressed else 'passed')}: accuracy {found.accuracy_a:.3f} -> "
        f"{found.accuracy_b:.3f} ({change:+.3f}, 95% CI {low:+.3f} to {high:+.3f}) on {found.pairs} "
        f"paired runs, {significance}{flips}",
        flipped=found.pass_to_fail,
    )


def evaluate(
    gates: Iterable[Gate | str],
    runs: pd.DataFrame,
    baseline: pd.DataFrame | str | Path | None = None,
    *,
    prices: ErrorPrices | None = None,
    alpha: float = 0.05,
    seed: int = 0,
) -> list[GateResult]:
    """Check each gate on ``runs``: one result per gate and config, in gate order.

    ``baseline`` is the runs of a baseline (a frame or a results directory), needed by
    ``no_significant_regression``; ``prices`` prices ``tco_per_1000``; ``alpha`` is the
    regression test's level; ``seed`` seeds the bootstraps.

    Raises:
        InvalidArgument: a gate does not parse, names a config with no runs, or asks for
            a regression check without a baseline.
    """
    parsed = [parse_gate(gate) if isinstance(gate, str) else gate for gate in gates]
    configs = sorted(runs["config"].astype(str).unique())
    wanted = [k for gate in parsed if (k := pass_k_of(gate.metric)) is not None]
    table = metrics_table(runs, prices=prices, k_max=max(wanted, default=1), seed=seed)
    rows = {str(row["config"]): row for _, row in table.iterrows()}
    if isinstance(baseline, str | Path):
        baseline = read_runs(baseline)
    results: list[GateResult] = []
    for gate in parsed:
        for config in _configs(gate, configs):
            if not gate.regression:
                results.append(_check(gate, config, rows[config]))
            elif baseline is None:
                raise InvalidArgument(
                    f"the gate {gate.text!r} needs a baseline results directory to compare with "
                    "(baseline = DIR under [tool.windtunnel])"
                )
            else:
                results.append(_regression(gate, config, runs, baseline, alpha=alpha, seed=seed))
    return results
