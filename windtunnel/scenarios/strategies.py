"""Hypothesis strategies to compose in your own property tests.

- :func:`seeds` — simulation seeds;
- :func:`triggers` — when a fault fires;
- :func:`faults` — one fault of a kind, aimed at one of the given targets;
- :func:`fault_plans` — swarm-style plans: a random subset of kinds (most left
  off), each fault aimed at a target its kind can hit;
- :func:`scenarios` — a domain's scenarios (its built-in files, or those given)
  with a generated fault plan over them, ready for ``run_scenario``.

Everything generated validates: a plan is a :class:`FaultPlan`, a scenario a
:class:`LoadedScenario` whose faults target the domain's own tools.

Example::

    from hypothesis import given
    from windtunnel.scenarios import run_scenario, strategies as wt

    @given(scenario=wt.scenarios("soc"), seed=wt.seeds())
    def test_my_agent_always_ends(scenario, seed):
        outcome = run_scenario(scenario, seed=seed, workflow=my_workflow)
        assert outcome.result.status in ("completed", "budget_exceeded")
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from hypothesis import strategies as st

from windtunnel.simulators import Fault, FaultPlan, Trigger, fault_kinds

from .domain import Domain, load_domain
from .fault_space import PARAMETERS, Param, family_targets, generable, targets_of
from .loader import LoadedScenario, load_suite

LoadedScenario = LoadedScenario  # re-exported for annotations in tests that use these strategies

__all__ = ["fault_plans", "faults", "scenarios", "seeds", "targets_of", "triggers"]


def _drawn(param: Param) -> st.SearchStrategy[object]:
    """How Hypothesis draws a parameter of :data:`~.fault_space.PARAMETERS`."""
    drawn: st.SearchStrategy[object]
    if param.choices:
        drawn = st.sampled_from(param.choices)
    elif param.integer:
        drawn = st.integers(int(param.low), int(param.high))
    else:
        drawn = st.floats(param.low, param.high, allow_nan=False)
    return st.one_of(st.none(), drawn) if param.optional else drawn


def seeds() -> st.SearchStrategy[int]:
    """Simulation seeds (ints >= 0)."""
    return st.integers(0, 2**32 - 1)


def triggers() -> st.SearchStrategy[Trigger]:
    """When a fault fires: always, with a probability, on the n-th opportunity, at most n times."""
    return st.one_of(
        st.just(Trigger()),
        st.builds(Trigger, probability=st.floats(0.05, 1.0)),
        st.builds(Trigger, nth=st.integers(1, 4)),
        st.builds(Trigger, times=st.integers(1, 3)),
        st.builds(Trigger, probability=st.floats(0.05, 1.0), times=st.integers(1, 3)),
    )


@st.composite
def faults(
    draw: st.DrawFn,
    kind: str,
    *,
    targets: Sequence[str],
    writes: Sequence[str] | None = None,
    fault_id: str | None = None,
) -> Fault:
    """One fault of ``kind`` aimed at one of ``targets`` its kind can hit (e.g.
    ``"tool:block_ip"``, ``"tier:small"``, ``"humans"``, ``"run"``); write faults at
    ``writes`` (the write tools' targets), when given."""
    aimed = family_targets(kind, targets, writes)
    if not aimed:
        raise ValueError(f"no target for kind={kind!r} among {list(targets)}")
    model = fault_kinds()[kind].model
    fields: dict[str, object] = {
        "id": fault_id or f"{kind}-{draw(st.integers(1, 999))}",
        "kind": kind,
        "target": draw(st.sampled_from(aimed)),
        "trigger": draw(triggers()),
    }
    for name, info in model.model_fields.items():
        if name in PARAMETERS and (info.is_required() or draw(st.booleans())):
            fields[name] = draw(_drawn(PARAMETERS[name]))
    return Fault(**fields)


@st.composite
def fault_plans(
    draw: st.DrawFn,
    *,
    targets: Sequence[str],
    writes: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    max_faults: int = 4,
) -> FaultPlan:
    """A plan in the spirit of swarm testing: a random subset of ``kinds`` (all the
    registered ones by default) is switched on, and up to ``max_faults`` faults of
    those kinds are aimed at ``targets`` they can hit. Often empty."""
    usable = sorted(
        k for k in (kinds or fault_kinds()) if generable(k) and family_targets(k, targets, writes)
    )
    if not usable:
        return FaultPlan()
    on = draw(st.lists(st.sampled_from(usable), unique=True, max_size=len(usable)))
    if not on:
        return FaultPlan()
    count = draw(st.integers(0, max_faults))
    chosen = [draw(st.sampled_from(on)) for _ in range(count)]
    made = [
        draw(faults(kind, targets=targets, writes=writes, fault_id=f"f{i}")) for i, kind in enumerate(chosen)
    ]
    return FaultPlan(faults=made)


@st.composite
def scenarios(
    draw: st.DrawFn,
    domain: str | Domain,
    *,
    paths: Sequence[str] | None = None,
    kinds: Sequence[str] | None = None,
    max_faults: int = 3,
) -> LoadedScenario:
    """One of ``domain``'s scenarios (its built-in files, or the files at ``paths``) —
    a world and a truth that belong together — with its faults replaced by a
    generated plan aimed at that scenario's own tools."""
    found = domain if isinstance(domain, Domain) else load_domain(domain)
    where = list(paths) if paths is not None else [str(found.scenarios)] if found.scenarios else []
    if not where:
        raise ValueError(f"domain {found.name!r} has no scenario files; pass paths=")
    suite = [item for item in _suite(tuple(where)) if item.domain.name == found.name]
    base = draw(st.sampled_from(suite))
    targets, writes = targets_of(base)
    plan = draw(fault_plans(targets=targets, writes=writes, kinds=kinds, max_faults=max_faults))
    scenario = base.scenario.model_copy(update={"faults": list(plan.faults)})
    return dataclasses.replace(base, scenario=scenario)


_SUITES: dict[tuple[str, ...], list[LoadedScenario]] = {}


def _suite(paths: tuple[str, ...]) -> list[LoadedScenario]:
    """The scenarios at ``paths``, loaded once per test session."""
    if paths not in _SUITES:
        _SUITES[paths] = list(load_suite(paths))
    return _SUITES[paths]
