"""Each planted bug shows under a small fault plan, and only under it.

For each bug, one soc-core scenario, seed and config (found by hand) where the
SOC workflow passes every oracle with and without the plan, the buggy workflow
passes every oracle without it, and fails exactly the named oracle checks with it.
An oracle failure is named ``grader:<check>`` or ``invariant:<check>``.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import pytest

from windtunnel.evals.invariants import check_all
from windtunnel.scenarios import LoadedScenario, ScenarioRun, load_file, overlay, run_scenario
from windtunnel.scenarios.domain import load_factory
from windtunnel.scenarios.oracle import oracle
from windtunnel.scenarios.soc import soc_workflow
from windtunnel.simulators import Fault, Trigger

from . import planted_bugs

SOC = Path(planted_bugs.__file__).parents[2] / "windtunnel/scenarios/soc/scenarios"
BUGS = ("never_escalates", "retry_without_key", "timeout_approves", "unverified_write")


@dataclass(frozen=True, slots=True, kw_only=True)
class Planted:
    """Where a bug shows: the scenario, seed and config, the extra plan, and what fails."""

    scenario: str
    seed: int
    play: str
    faults: tuple[Fault, ...]
    fails: frozenset[str]


PLANTED = {
    # The firewall acknowledges every block and applies none: the engine's read-back
    # catches it (reapply, undo, escalate); the trusting verifier closes the case.
    "unverified_write": Planted(
        scenario="soc-c2-beacon",
        seed=0,
        play="large",
        faults=(Fault(id="silent-block", kind="silent_failure", target="tool:block_ip"),),
        fails=frozenset({"grader:final_state", "grader:escalation"}),
    ),
    # Another actor undoes every block at once: verification fails, the block is undone
    # and the engine escalates — to `close`, in the buggy workflow.
    "never_escalates": Planted(
        scenario="soc-c2-beacon",
        seed=1,
        play="ladder:small@0.85,mid@0.6,large",
        faults=(Fault(id="unblocker", kind="conflicting_actor", target="tool:block_ip"),),
        fails=frozenset({"grader:final_state", "grader:escalation"}),
    ),
    # Nobody answers the review of a critical host: the fail-safe leaves the case to
    # people; the buggy workflow takes the silence for approval and closes it.
    "timeout_approves": Planted(
        scenario="soc-critical-host-c2",
        seed=0,
        play="large",
        faults=(Fault(id="nobody-home", kind="human_absent", target="humans"),),
        fails=frozenset({"grader:final_state"}),
    ),
    # The first block fails: the SOC workflow reads back, rolls back and escalates; the
    # buggy one blocks again around the executor, so the block is never verified.
    "retry_without_key": Planted(
        scenario="soc-c2-beacon",
        seed=0,
        play="large",
        faults=(Fault(id="block-down", kind="error", target="tool:block_ip", trigger=Trigger(times=1)),),
        fails=frozenset({"grader:required_actions"}),
    ),
}


@functools.cache
def scenario(name: str) -> LoadedScenario:
    """Scenario ``name`` of soc-core (the suite includes every file of its folder)."""
    [loaded] = load_file(SOC / f"{name.removeprefix('soc-')}.yaml")
    assert loaded.scenario.id == name
    return loaded


def failures(run: ScenarioRun) -> frozenset[str]:
    """Both oracles' failures of ``run``: its grader's failed checks and its invariant violations."""
    violations = check_all(run.trace.events, run.workflow)
    return frozenset(
        [f"grader:{check.name}" for check in run.verdict.failed]
        + [f"invariant:{violation.check}" for violation in violations]
    )


def test_every_bug_has_a_planted_case() -> None:
    factories = set(planted_bugs.__all__) - {"correct", "PLAIN", "plain_paths"}
    assert sorted(PLANTED) == sorted(BUGS) == sorted(factories)
    assert all(len(case.faults) <= 2 for case in PLANTED.values())


def test_correct_is_the_soc_workflow() -> None:
    assert load_factory("tests.evals.planted_bugs:correct") is soc_workflow


@pytest.mark.parametrize("bug", BUGS)
def test_bug_shows_under_its_faults(bug: str) -> None:
    case = PLANTED[bug]
    faulty = overlay(scenario(case.scenario), case.faults, plan="planted")
    # Named as the fuzzer and its regression files name them.
    buggy = run_scenario(faulty, seed=case.seed, play=case.play, workflow=f"tests.evals.planted_bugs:{bug}")
    right = run_scenario(faulty, seed=case.seed, play=case.play, workflow="tests.evals.planted_bugs:correct")
    assert all(buggy.injector.counts()[f"planted/{fault.id}"].fired for fault in case.faults)
    assert (failures(buggy), failures(right)) == (case.fails, frozenset())


@pytest.mark.parametrize("bug", BUGS)
def test_bug_hidden_without_faults(bug: str) -> None:
    case = PLANTED[bug]
    plain = scenario(case.scenario)
    buggy = run_scenario(plain, seed=case.seed, play=case.play, workflow=getattr(planted_bugs, bug))
    right = run_scenario(plain, seed=case.seed, play=case.play, workflow=planted_bugs.correct)
    assert (failures(buggy), failures(right)) == (frozenset(), frozenset())


@pytest.mark.parametrize("bug", BUGS)
def test_bug_shows_on_every_seed_without_model_noise(bug: str) -> None:
    # Played without model noise, the plan shows the bug on every seed, and only the bug.
    case = PLANTED[bug]
    plain = scenario(case.scenario)
    faulty = overlay(plain, case.faults, plan="planted")
    found = {
        (
            failures(run_scenario(faulty, seed=seed, models=oracle(), workflow=getattr(planted_bugs, bug))),
            failures(run_scenario(faulty, seed=seed, models=oracle(), workflow=planted_bugs.correct)),
            failures(run_scenario(plain, seed=seed, models=oracle(), workflow=getattr(planted_bugs, bug))),
        )
        for seed in range(10)
    }
    assert found == {(case.fails, frozenset(), frozenset())}
