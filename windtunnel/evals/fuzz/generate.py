"""Swarm generation of the fuzzer's fault plans.

Each trial switches on a random subset of the fault kinds that can hit its scenario
and leaves the rest off (swarm testing, Groce et al., ISSTA 2012: a trial that
keeps few kinds meets deeper combinations of them than one that spreads thin over
all), then draws one to ``max_faults`` faults of those kinds, each with a target,
a trigger and parameters. Draws come from the trial's own ``random.Random``, so a
trial is decided by the campaign seed, its number and the coverage so far.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from typing import Any

from windtunnel.scenarios import LoadedScenario
from windtunnel.scenarios.fault_space import PARAMETERS, Param, family_targets, generable, targets_of
from windtunnel.simulators import Fault, Trigger, fault_kinds

__all__ = ["KIND_SHARE", "Space", "fault_id", "generate", "space_of"]

KIND_SHARE = 0.3
"""The chance each kind is switched on in a trial (at least one always is)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Space:
    """What generated faults can hit in one scenario: each kind's targets."""

    by_kind: dict[str, tuple[str, ...]]
    """Every generable kind that can hit the scenario, with the targets it can hit."""

    def kinds_for(self, target: str) -> list[str]:
        """The kinds that can hit ``target``."""
        return [kind for kind, targets in self.by_kind.items() if target in targets]


def space_of(loaded: LoadedScenario, *, tiers: Collection[str], kinds: Sequence[str] | None = None) -> Space:
    """The kinds (``kinds``, or every generable registered one) that can hit ``loaded``
    played by ``tiers``, each with its targets there."""
    targets, writes = targets_of(loaded, tiers)
    by_kind: dict[str, tuple[str, ...]] = {}
    for kind in sorted(kinds or fault_kinds()):
        aimed = family_targets(kind, targets, writes) if generable(kind) else []
        if aimed:
            by_kind[kind] = tuple(aimed)
    return Space(by_kind=by_kind)


def fault_id(number: int, taken: Collection[str] = ()) -> str:
    """The id of a trial's ``number``-th generated fault (from 1), past the ``taken``
    ones (a scenario's own, e.g. a regression file's): kept while shrinking, so that
    removing one fault leaves the others' hash-decided firings unchanged."""
    offset = max((int(t[5:]) for t in taken if t.startswith("fuzz-") and t[5:].isdigit()), default=0)
    return f"fuzz-{offset + number}"


def generate(
    rng: random.Random,
    space: Space,
    *,
    max_faults: int,
    weight: Callable[[str, str], float] | None = None,
    taken: Collection[str] = (),
) -> list[Fault]:
    """One trial's faults: a swarm of kinds switched on, then one to ``max_faults``
    faults of them; ``weight(kind, target)`` (default: even) biases each fault's pick;
    their ids avoid the ``taken`` ones."""
    kinds = list(space.by_kind)
    if not kinds:
        return []
    on = [kind for kind in kinds if rng.random() < KIND_SHARE] or [rng.choice(kinds)]
    # A kind first, then its target: a kind that can hit one target (humans, a tier) is
    # as likely as one that can hit every tool.
    aims = {kind: space.by_kind[kind] for kind in on}
    weights = {kind: [weight(kind, t) if weight else 1.0 for t in targets] for kind, targets in aims.items()}
    mean = [sum(weights[kind]) / len(weights[kind]) for kind in on]
    made: list[Fault] = []
    for number in range(1, rng.randint(1, max_faults) + 1):
        kind = rng.choices(on, mean)[0]
        target = rng.choices(aims[kind], weights[kind])[0]
        made.append(_fault(rng, fault_id(number, taken), kind, target))
    return made


def _fault(rng: random.Random, fid: str, kind: str, target: str) -> Fault:
    fields: dict[str, Any] = {"id": fid, "kind": kind, "target": target, "trigger": _trigger(rng)}
    for name, info in fault_kinds()[kind].model.model_fields.items():
        if name in PARAMETERS and (info.is_required() or rng.random() < 0.5):
            fields[name] = _parameter(rng, PARAMETERS[name])
    return Fault(**fields)


def _trigger(rng: random.Random) -> Trigger:
    """Always, on the n-th opportunity, with a probability, at most n times, or both of the last."""
    roll = rng.random()
    if roll < 0.25:
        return Trigger()
    if roll < 0.5:
        return Trigger(nth=rng.choice((1, 1, 2, 3)))
    if roll < 0.7:
        return Trigger(probability=round(rng.uniform(0.1, 0.9), 2))
    if roll < 0.85:
        return Trigger(times=rng.randint(1, 3))
    return Trigger(probability=round(rng.uniform(0.1, 0.9), 2), times=rng.randint(1, 3))


def _parameter(rng: random.Random, param: Param) -> Any:
    if param.optional and rng.random() < 0.3:
        return None
    if param.choices:
        return rng.choice(param.choices)
    if param.integer:
        return rng.randint(int(param.low), int(param.high))
    # Log-uniform over a wide range (seconds: half a second to an hour), two decimals
    # so that a regression file reads well.
    if param.low > 0:
        return round(param.low * (param.high / param.low) ** rng.random(), 2)
    return round(rng.uniform(param.low, param.high), 2)
