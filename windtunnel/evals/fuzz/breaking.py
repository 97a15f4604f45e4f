"""Breaking points: how severe one fault must be before a workflow starts to fail.

``breaking_point("latency_spike@tool:threat_intel")`` raises one fault's severity
step by step — its ``seconds`` when the kind has them (a latency spike, a stale
read, a slow human), else the length of a burst: the fault fires on the first n
calls (a run of 429s, timeouts, silent failures) — over every scenario that calls
the target, on several seeds each. A (scenario, seed) *breaks* at the first
severity at which an oracle fails (as the fuzzer judges a trial), found on a grid of
levels and then by bisection between the last level passed and the first failed; the breaking
point is the median over them, with a distribution-free 95% interval for it
(``scipy.stats.quantile_test``), and the share broken by each severity with
Wilson intervals. Cheap in virtual time, and a number a team can track from one
release to the next.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats  # type: ignore[import-untyped]  # no stubs pinned

from windtunnel.orchestrator import InvalidArgument, Workflow
from windtunnel.orchestrator.validation import check_choice
from windtunnel.scenarios import Kit, LoadedScenario, Suite, load_suite
from windtunnel.scenarios.fault_space import COMMON_FIELDS, family_targets, targets_of
from windtunnel.simulators import Fault, Trigger, derive_seed, fault_kinds

from ..stats import wilson
from .trial import Oracle, Subject

__all__ = ["REFINE_STEPS", "SECONDS_LEVELS", "TIMES_LEVELS", "BreakingPoint", "Level", "breaking_point"]

SECONDS_LEVELS = (1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0, 5000.0, 10000.0)
"""Severities tried for a kind with ``seconds``."""
REFINE_STEPS = 8
"""Bisection steps between the last level a pair passed and the first it failed."""
TIMES_LEVELS = (1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0, 12.0, 16.0)
"""Burst lengths tried for any other kind: it fires on the first n calls."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Level:
    """One severity: how many (scenario, seed) pairs had broken by it."""

    severity: float
    broken: int
    of: int
    low: float
    high: float
    """Wilson 95% interval of ``broken / of``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BreakingPoint:
    """Where one fault starts to break a workflow."""

    kind: str
    target: str
    knob: str
    """``seconds`` or ``times`` (a burst of n calls)."""
    levels: list[Level]
    points: list[float]
    """Per (scenario, seed) pair in which the fault fired: the severity it broke at
    (``inf``: it never broke within the levels tried)."""
    inconclusive: int
    """Pairs in which the fault never fired, even at the highest severity: left out."""
    median: float | None
    low: float | None
    high: float | None
    """The median breaking point and its 95% interval; ``inf`` means beyond the levels
    tried, None too few pairs (fewer than 6 cannot give a 95% interval)."""

    def summary(self) -> dict[str, Any]:
        """As JSON-ready data (``inf`` written as null)."""

        def number(value: float | None) -> float | None:
            return None if value is None or math.isinf(value) else value

        return {
            "fault": f"{self.kind}@{self.target}",
            "knob": self.knob,
            "median": number(self.median),
            "low": number(self.low),
            "high": number(self.high),
            "pairs": len(self.points),
            "never_broke": sum(1 for p in self.points if math.isinf(p)),
            "inconclusive": self.inconclusive,
            "levels": [
                {"severity": lv.severity, "broken": lv.broken, "of": lv.of, "low": lv.low, "high": lv.high}
                for lv in self.levels
            ],
        }


def breaking_point(
    paths: Sequence[str | Path] | Suite,
    fault: str,
    *,
    seeds: int = 10,
    seed: int = 0,
    config: str = "large",
    workflow: Callable[[Kit], Workflow] | str | None = None,
    oracle: Oracle = "both",
    levels: Sequence[float] | None = None,
    tags: Sequence[str] = (),
    ids: Sequence[str] = (),
) -> BreakingPoint:
    """The severity of ``fault`` (``"KIND@TARGET"``, e.g. ``"rate_limit@tier:large"``)
    at which the scenarios at ``paths`` start to fail, over ``seeds`` seeds each.

    Raises:
        InvalidArgument: a malformed ``fault``, an unknown kind, a target no scenario has.
    """
    kind, target = _parse(fault)
    if seeds < 1:
        raise InvalidArgument(f"seeds={seeds} must be at least 1")
    model = fault_kinds()[kind].model
    knob = "seconds" if "seconds" in model.model_fields else "times"
    tried = sorted(levels or (SECONDS_LEVELS if knob == "seconds" else TIMES_LEVELS))
    if not tried or tried[0] <= 0 or (knob == "times" and any(v != int(v) for v in tried)):
        raise InvalidArgument(f"levels={list(tried)} must be positive (whole numbers for a burst)")
    subject = Subject(config=config, workflow=workflow, oracle=oracle)
    suite = []
    for loaded in paths if isinstance(paths, Suite) else load_suite(paths, tags=tags, ids=ids):
        targets, writes = targets_of(loaded, subject.tiers)
        if target in family_targets(kind, targets, writes):
            suite.append(loaded)
    if not suite:
        raise InvalidArgument(f"no scenario has a target {target!r} that a {kind!r} fault can hit")
    points: list[float] = []
    inconclusive = 0
    for loaded in suite:
        for index in range(seeds):
            sim_seed = derive_seed(seed, f"breaking/{loaded.scenario.id}/{index}")
            broke, fired = _break_at(subject, loaded, sim_seed, kind, target, knob, tried)
            if fired or not math.isinf(broke):
                points.append(broke)
            else:
                inconclusive += 1
    found = [_level(severity, points) for severity in tried]
    median = low = high = None
    if points:
        median = float(np.median(points))
        if len(points) >= 2:
            interval = stats.quantile_test(np.array(points), q=median, p=0.5).confidence_interval(0.95)
            # Too few pairs for a 95% interval from order statistics: scipy says NaN; so do we, as None.
            low = None if math.isnan(interval.low) else float(interval.low)
            high = None if math.isnan(interval.high) else float(interval.high)
    return BreakingPoint(
        kind=kind,
        target=target,
        knob=knob,
        levels=found,
        points=points,
        inconclusive=inconclusive,
        median=median,
        low=low,
        high=high,
    )


def _break_at(
    subject: Subject,
    loaded: LoadedScenario,
    sim_seed: int,
    kind: str,
    target: str,
    knob: str,
    tried: Sequence[float],
) -> tuple[float, bool]:
    """The severity ``loaded`` breaks at on ``sim_seed`` (``inf``: none tried), and
    whether the fault fired at all."""
    fired = False

    def fails(severity: float) -> bool:
        nonlocal fired
        outcome = subject.run(loaded, sim_seed, [_fault(kind, target, knob, severity)])
        fired = fired or any(outcome.fired_on.values())
        return bool(outcome.failures)

    passed = 0.0
    for severity in tried:
        if fails(severity):
            return _bisect(fails, passed, severity, whole=knob == "times"), True
        passed = severity
    return math.inf, fired


def _bisect(fails: Callable[[float], bool], passed: float, failed: float, *, whole: bool) -> float:
    """The least severity in (passed, failed] found failing, by bisection: between two
    levels a run is taken to break from one severity on (a whole number of calls, or
    seconds to within 1% or a second)."""
    for _ in range(REFINE_STEPS):
        middle = math.floor((passed + failed) / 2) if whole else (passed + failed) / 2
        if middle <= passed or failed - passed <= (1 if whole else max(1.0, failed / 100)):
            break
        if fails(middle):
            failed = middle
        else:
            passed = middle
    return round(failed, 2)


def _parse(fault: str) -> tuple[str, str]:
    kind, at, target = fault.partition("@")
    if not at or not kind or not target:
        raise InvalidArgument(f"fault={fault!r} must be KIND@TARGET, e.g. 'rate_limit@tier:large'")
    check_choice("fault kind", kind, sorted(fault_kinds()))
    model = fault_kinds()[kind].model
    needs = [n for n, i in model.model_fields.items() if i.is_required() and n not in COMMON_FIELDS]
    if needs not in ([], ["seconds"]):
        raise InvalidArgument(f"a {kind!r} fault needs {needs}: it has no one severity to search")
    return kind, target


def _fault(kind: str, target: str, knob: str, severity: float) -> Fault:
    """The fault at ``severity``: its seconds (from its first opportunity on), or a burst
    of its first ``severity`` opportunities."""
    fields: dict[str, Any] = {"id": "fuzz-1", "kind": kind, "target": target}
    if knob == "seconds":
        fields.update(trigger=Trigger(nth=1), seconds=severity)
    else:
        fields.update(trigger=Trigger(times=int(severity)))
    return Fault(**fields)


def _level(severity: float, points: Sequence[float]) -> Level:
    broken = sum(1 for point in points if point <= severity)
    if not points:
        return Level(severity=severity, broken=0, of=0, low=0.0, high=1.0)
    _, low, high = wilson(broken, len(points))
    # Rounded: the interval's arithmetic leaves 5.6e-17 where it means 0.
    return Level(severity=severity, broken=broken, of=len(points), low=round(low, 6), high=round(high, 6))
