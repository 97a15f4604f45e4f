"""The space generated faults are drawn from: what a scenario's faults can hit, and
the range of each parameter a kind may take.

Shared by the Hypothesis strategies (:mod:`.strategies`) and the fuzzer
(:mod:`windtunnel.evals.fuzz`), so that both generate the same faults. A kind
registered by a user's domain is generated too when its required parameters are
among :data:`PARAMETERS` (or it has none).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from windtunnel.simulators import DEFAULT_TIERS, Sim, fault_kinds

from .loader import LoadedScenario, resolve

__all__ = ["COMMON_FIELDS", "PARAMETERS", "Param", "family_targets", "generable", "targets_of"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Param:
    """How a generated fault's parameter is drawn: one of ``choices``, or a number in
    [low, high] (an integer when ``integer``); ``None`` too when ``optional``."""

    low: float = 0.0
    high: float = 0.0
    integer: bool = False
    choices: tuple[Any, ...] = ()
    optional: bool = False


PARAMETERS: dict[str, Param] = {
    # Up to four hours: past the review timeouts and run budgets humans and long runs meet.
    "seconds": Param(low=0.5, high=14400.0),
    "message": Param(choices=("connection reset", "HTTP 503", "simulated failure")),
    "fraction": Param(low=0.0, high=1.0),
    "at_transition": Param(low=1, high=8, integer=True),
    "retry_after": Param(low=0.0, high=60.0, optional=True),
}
"""The parameters a generated fault may take, by field name, with their ranges."""

COMMON_FIELDS = frozenset({"id", "kind", "target", "trigger"})
"""The fields every fault has; the rest are its kind's parameters."""


def generable(kind: str) -> bool:
    """Whether faults of ``kind`` can be generated: each required parameter has a range."""
    model = fault_kinds()[kind].model
    return all(
        not info.is_required() or name in COMMON_FIELDS or name in PARAMETERS
        for name, info in model.model_fields.items()
    )


def family_targets(kind: str, targets: Sequence[str], writes: Collection[str] | None = None) -> list[str]:
    """The ones of ``targets`` a fault of ``kind`` can hit: a write kind only the
    ``writes`` (write tools' targets) when given, a tool kind any tool, a tier or API
    kind a tier, a human kind ``humans``, a crash ``run``."""
    family = fault_kinds()[kind].model.family
    if family == "write" and writes is not None:
        return [t for t in targets if t in writes]
    if family in ("tool", "write"):
        return [t for t in targets if t.startswith("tool:")]
    if family in ("tier", "api"):
        return [t for t in targets if t.startswith("tier:")]
    return [t for t in targets if t == ("humans" if family == "humans" else "run")]


def targets_of(scenario: LoadedScenario, tiers: Collection[str] | None = None) -> tuple[list[str], list[str]]:
    """What faults can hit in a scenario — its domain's tools, the ``tiers`` (the
    default tiers when None), humans, the run — and which of those are write tools."""
    case = resolve(scenario.scenario, scenario.domain, seed=0)
    tools = scenario.domain.tools(case.world, Sim(seed=0))
    targets = [
        *(f"tool:{tool.name}" for tool in tools),
        *(f"tier:{name}" for name in (DEFAULT_TIERS if tiers is None else tiers)),
        *scenario.domain.humans,
        "run",
    ]
    return targets, [f"tool:{tool.name}" for tool in tools if tool.action is not None]
