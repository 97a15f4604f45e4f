"""Over a few hundred seeded investigations (the three first case templates in turn:
``c2-beacon``, ``critical-host-c2``, ``benign-scanner``): the larger tier is more
accurate and costs more, and evidence lost to faults lowers accuracy."""

from __future__ import annotations

from dataclasses import dataclass, replace

import pytest

from windtunnel.scenarios import LoadedScenario, ScenarioRun, load_file, run_scenario
from windtunnel.scenarios.soc import DOMAIN
from windtunnel.simulators import Fault, derive_seed

RUNS = 300
LOST_EVIDENCE = [
    Fault(id="intel-down", kind="error", target="tool:threat_intel"),
    Fault(id="edr-down", kind="error", target="tool:edr_process_tree"),
]
assert DOMAIN.scenarios is not None
TEMPLATES = [
    load_file(DOMAIN.scenarios / f"{name}.yaml")[0]
    for name in ("c2-beacon", "critical-host-c2", "benign-scanner")
]


def investigation(index: int, play: str, faults: list[Fault] | None = None) -> ScenarioRun:
    """The ``index``-th run: the templates in turn, each with a seed of its own."""
    loaded: LoadedScenario = TEMPLATES[index % len(TEMPLATES)]
    if faults is not None:
        loaded = replace(loaded, scenario=loaded.scenario.model_copy(update={"faults": faults}))
    return run_scenario(loaded, seed=derive_seed(index, loaded.scenario.id), play=play)


@dataclass(frozen=True)
class Tally:
    accuracy: float
    model_cost: float


def tally(tier: str, faults: list[Fault] | None = None) -> Tally:
    runs = [investigation(index, tier, faults) for index in range(RUNS)]
    model_cost = sum(e.cost for run in runs for e in run.trace.query(kind="model_called"))  # type: ignore[union-attr]
    return Tally(accuracy=sum(run.verdict.correct for run in runs) / RUNS, model_cost=model_cost / RUNS)


@pytest.fixture(scope="module")
def tallies() -> dict[tuple[str, bool], Tally]:
    return {
        (tier, lost): tally(tier, LOST_EVIDENCE if lost else None)
        for tier in ("small", "large")
        for lost in (False, True)
    }


def test_larger_tier_is_more_accurate_and_more_expensive(tallies: dict[tuple[str, bool], Tally]) -> None:
    small, large = tallies["small", False], tallies["large", False]
    assert large.accuracy >= small.accuracy + 0.1
    assert large.model_cost > 10 * small.model_cost


@pytest.mark.parametrize("tier", ["small", "large"])
def test_lost_evidence_lowers_accuracy(tallies: dict[tuple[str, bool], Tally], tier: str) -> None:
    assert tallies[tier, True].accuracy <= tallies[tier, False].accuracy - 0.05


def test_a_ladder_beats_its_cheapest_tier_for_less_than_the_next() -> None:
    runs = [investigation(index, "ladder:small@0.85,mid@0.6,large") for index in range(RUNS)]
    accuracy = sum(run.verdict.correct for run in runs) / RUNS
    model_cost = sum(e.cost for run in runs for e in run.trace.query(kind="model_called")) / RUNS  # type: ignore[union-attr]
    climbs = [e for run in runs for e in run.trace.query(kind="escalated", trigger="low_confidence")]
    assert climbs  # decisions did go up the ladder
    assert {e.from_tier for e in climbs} <= {"small", "mid", "large"}  # type: ignore[union-attr]
    assert accuracy > tally("small").accuracy
    assert model_cost < tally("mid").model_cost
