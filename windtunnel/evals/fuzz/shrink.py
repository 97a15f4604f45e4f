"""Shrinking a failing trial's faults to a minimal plan that still fails the same way.

Three passes, each keeping a candidate only when it still fails with the same
signature (same oracle, state and event kind):

1. faults that never fired are dropped together (a fault decides alone, from a
   hash, so one that never fired changed nothing);
2. delta debugging (Zeller and Hildebrandt, "Simplifying and isolating
   failure-inducing input", 2002) over the rest, ending 1-minimal: no single fault
   can be removed;
3. each fault is simplified until nothing simpler fails: its trigger becomes "the
   n-th call" (an earlier call than it fired on, or one it fired on; a probability,
   a window, an ``after`` dropped), then its parameters are lowered toward their
   ranges' bottoms (the bottom, then a half, three quarters, seven eighths of the
   value, round after round), optional ones dropped; then pass 2 again, since a
   simpler fault may make another unnecessary.

Why not Hypothesis's shrinker: measured, this module leaves as few faults, reaches
the simplest plan more often, and takes less than half the runs.
``python benchmarks/bench_shrink.py`` (under two minutes) takes the new failures of
fuzz campaigns (seeds 1-3, 250 trials each) of the four planted-bug workflows of
``tests/evals/planted_bugs.py`` on the SOC scenarios without faults of their own —
39 trials of 2-4 faults — and shrinks each with this module and with
``hypothesis.find`` over the plan encoded as draws (each fault kept or not; a
trigger rewrite or its own trigger with each condition kept or not; each parameter
from its range's bottom up to its value), started from the failure saved in its
example database, so that only its shrinker works. "Hypothesis" may make a trigger
any call of its target; "Hypothesis, same rewrites" only the ones this module tries:

=======================================  =========  ==========  =================
per trial                                this       Hypothesis  Hypothesis, same
                                                                rewrites
=======================================  =========  ==========  =================
faults left, mean                        1.15       1.21        1.15
reaches the fewest faults any found      100%       97%         100%
reaches the simplest plan any found      90%        85%         77%
runs, mean (median)                      5.9 (5)    13.2 (11)   12.2 (10)
seconds, all 39 (two runs)               2.9-3.6    11.8-13.8   10.0-11.1
a trigger made "the n-th call"           17 trials  19 trials   15 trials
a parameter lowered or dropped           0 trials   4 trials    3 trials
=======================================  =========  ==========  =================

(Simplest: fewest faults, then :func:`_cost`. Runs: distinct plans run; counting a
plan asked for twice twice, 7.6, 16.7 and 15.8. Every final plan, re-run, fails the
same way.) Head to head, this module's plan is the simpler in 6 trials and
Hypothesis's in 4 (5 and 0 with the same rewrites); the rest tie. Hypothesis's
search is finer where it wins: it moves "the 3rd call" to "the 1st" and bisects a
parameter (a crash's transition 4 to 1), where this module tries only the calls a
fault fired on, and halving. It loses because the encoding is fixed before the
search: it lowers the first draws first, so "89% of calls" ends as "the first 6
calls" (a rewrite) rather than "always" (its chance dropped), and a fault simplified
early can stay needed (3 faults left where 1 suffices); and the calls a fault fired
on are the original run's, not the smaller plan's. Since the measurement, this module
also tries earlier calls and lowers a number by finer steps, the two things
Hypothesis did better.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from windtunnel.scenarios.fault_space import PARAMETERS
from windtunnel.simulators import Fault, Trigger

from .trial import Outcome

__all__ = ["Shrunk", "shrink"]

MAX_RUNS = 300
"""The most runs one shrink makes; it returns the smallest failing plan found by then."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Shrunk:
    """A shrunk plan, the outcome of its last failing run, and the runs it took."""

    faults: list[Fault]
    outcome: Outcome
    runs: int


def shrink(
    faults: Sequence[Fault],
    outcome: Outcome,
    still_fails: Callable[[Sequence[Fault]], Outcome | None],
    *,
    max_runs: int = MAX_RUNS,
) -> Shrunk:
    """The smallest plan found that ``still_fails`` (which runs a candidate and returns
    its outcome when it fails the same way, else None), starting from ``faults``,
    whose failing run is ``outcome``."""
    shrinker = _Shrinker(still_fails, max_runs)
    current, best = list(faults), outcome
    fired = [fault for fault in current if best.fired_on.get(fault.id)]
    if len(fired) < len(current):
        current, best = shrinker.keep(current, best, fired)
    current, best = shrinker.ddmin(current, best)
    changed = True
    while changed:
        changed = False
        for index, fault in enumerate(current):
            for simpler in _simpler(fault, best.fired_on.get(fault.id, ())):
                candidate = [*current[:index], simpler, *current[index + 1 :]]
                found = shrinker.test(candidate)
                if found is not None:
                    current, best, changed = candidate, found, True
                    break
    current, best = shrinker.ddmin(current, best)
    return Shrunk(faults=current, outcome=best, runs=shrinker.runs)


class _Shrinker:
    def __init__(self, still_fails: Callable[[Sequence[Fault]], Outcome | None], max_runs: int) -> None:
        self._still_fails = still_fails
        self._max_runs = max_runs
        self.runs = 0

    def test(self, candidate: Sequence[Fault]) -> Outcome | None:
        if self.runs >= self._max_runs:
            return None
        self.runs += 1
        return self._still_fails(candidate)

    def keep(
        self, current: list[Fault], best: Outcome, candidate: list[Fault]
    ) -> tuple[list[Fault], Outcome]:
        found = self.test(candidate)
        return (candidate, found) if found is not None else (current, best)

    def ddmin(self, items: list[Fault], best: Outcome) -> tuple[list[Fault], Outcome]:
        """Delta debugging down to a 1-minimal list (the empty one included)."""
        if len(items) == 1:
            return self.keep(items, best, [])
        granularity = 2
        while len(items) >= 2:
            size = -(-len(items) // granularity)
            chunks = [items[start : start + size] for start in range(0, len(items), size)]
            complements = [[f for f in items if f not in chunk] for chunk in chunks]
            for candidate in [*chunks, *complements] if granularity > 2 else chunks:
                found = self.test(candidate)
                if found is not None:
                    items, best = candidate, found
                    granularity = max(granularity - 1, 2)
                    break
            else:
                if granularity >= len(items):
                    break
                granularity = min(len(items), 2 * granularity)
        if len(items) == 1:
            items, best = self.keep(items, best, [])
        return items, best


def _simpler(fault: Fault, fired_on: Sequence[int]) -> list[Fault]:
    """Candidates simpler than ``fault`` (by :func:`_cost`), simplest first."""
    trigger = fault.trigger
    # Earlier calls first (the smaller plan may reach the failure sooner), then the
    # calls it fired on.
    calls = [*range(1, min(fired_on[0], 4)), *fired_on[:3]] if fired_on else []
    triggers = [Trigger(nth=occurrence) for occurrence in dict.fromkeys(calls)]
    if len(fired_on) > 1 and tuple(fired_on) == tuple(range(1, len(fired_on) + 1)):
        triggers.append(Trigger(times=len(fired_on)))  # it fired on the first n calls
    conditions = ("probability", "window", "after", "times")
    triggers += [trigger.model_copy(update={name: None}) for name in conditions if getattr(trigger, name)]
    found = [fault.model_copy(update={"trigger": Trigger.model_validate(t.model_dump())}) for t in triggers]
    for name, info in type(fault).model_fields.items():
        value = getattr(fault, name)
        param = PARAMETERS.get(name)
        if param is None or value is None or param.choices:
            continue
        lower: list[Any] = [] if info.is_required() else [info.default]
        # The bottom, then a bisection's steps down from the value: from one round to the
        # next, the lowest that still fails is kept.
        if param.integer:
            lower += [int(param.low), (int(param.low) + value) // 2, value - 1]
        else:
            lower += [param.low, *(round(value * share, 2) for share in (0.5, 0.75, 0.875))]
        found += [fault.model_copy(update={name: v}) for v in lower if v != value and _valid(fault, name, v)]
    cost = _cost(fault)
    return [candidate for candidate in found if _cost(candidate) < cost]


def _valid(fault: Fault, name: str, value: Any) -> bool:
    """Whether ``fault`` with ``name=value`` still validates (a range may exclude its bottom)."""
    try:
        type(fault).model_validate({**fault.model_dump(), name: value})
    except ValueError:
        return False
    return True


def _cost(fault: Fault) -> tuple[int, float, float]:
    """How complex a fault reads: its trigger's conditions (an "n-th call" is the
    simplest, "always" next), the n, then its parameters' size."""
    trigger = fault.trigger
    # A chance reads harder than a condition: "the first 3 calls" is simpler than "40% of calls".
    conditions = 2 * (trigger.probability is not None)
    conditions += sum(1 for name in ("window", "after", "times") if getattr(trigger, name) is not None)
    size = 0.0
    for name in type(fault).model_fields:
        value, param = getattr(fault, name), PARAMETERS.get(name)
        if param is not None and value is not None and not param.choices:
            size += 1.0 + (value - param.low) / ((param.high - param.low) or 1.0)
    return (conditions + (0 if trigger.nth is not None else 1), float(trigger.nth or 0), size)
