"""The fuzzer's parts: independent fault decisions, shrinking, coverage, campaigns."""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from windtunnel.evals.fuzz import Failure, Outcome, fuzz
from windtunnel.evals.fuzz.coverage import Coverage
from windtunnel.evals.fuzz.generate import fault_id
from windtunnel.evals.fuzz.shrink import shrink
from windtunnel.orchestrator import InvalidArgument
from windtunnel.scenarios import LoadedScenario, Suite, load_file, load_suite, run_scenario
from windtunnel.scenarios.strategies import fault_plans, targets_of
from windtunnel.simulators import Fault, FaultInjector, FaultPlan, Trigger

from .planted_bugs import plain_paths

SOC = Path("windtunnel/scenarios/soc/scenarios")


@functools.cache
def beacon() -> LoadedScenario:
    return load_file(SOC / "c2-beacon.yaml")[0]


# -- fault decisions are independent ---------------------------------------------------------------


def test_each_fault_decides_alone_from_a_hash() -> None:
    """Removing a fault from a plan leaves every other fault's decision on every
    opportunity unchanged: the shrinker depends on it."""
    chances = [
        Fault(id=f"f{i}", kind="error", target="tool:t", trigger=Trigger(probability=p))
        for i, p in enumerate((0.3, 0.5, 0.7, 0.2))
    ]

    def decisions(plan: list[Fault]) -> dict[str, list[bool]]:
        injector = FaultInjector(FaultPlan(faults=plan), seed=42)
        return {fault.id: [injector._fires(fault) for _ in range(200)] for fault in plan}

    whole = decisions(chances)
    assert all(any(d) and not all(d) for d in whole.values())  # each both fires and holds
    for left_out in range(len(chances)):
        rest = [fault for index, fault in enumerate(chances) if index != left_out]
        assert decisions(rest) == {fault.id: whole[fault.id] for fault in rest}


@settings(max_examples=25, deadline=None)
@given(data=st.data(), seed=st.integers(0, 2**32 - 1))
def test_a_fault_that_never_fired_changed_nothing(data: st.DataObject, seed: int) -> None:
    """A run is the same, byte for byte, without a fault of its plan that never fired — but
    for one label: a planned API fault puts the fake Messages API in the tier's path, and its
    answers carry request ids (``req_fake_N``) where the bare simulated tier has none."""
    loaded = beacon()
    targets, writes = targets_of(loaded, ["large"])
    plan = data.draw(fault_plans(targets=targets, writes=writes, max_faults=4))
    with_plan = _run(loaded, plan.faults, seed)
    idle = [f for f in plan.faults if not with_plan.injector.counts()[f.id].fired]
    if not idle:
        return
    kept = [f for f in plan.faults if f not in idle]
    without = _run(loaded, kept, seed)
    expected, got = without.trace.dumps(), with_plan.trace.dumps()
    if any(f.family == "api" for f in idle) and not any(f.family == "api" for f in kept):
        got = re.sub(r'"request_id":"req_fake_\d+"', '"request_id":null', got)
    assert got == expected


def _run(loaded: LoadedScenario, faults: Sequence[Fault], seed: int) -> object:
    scenario = loaded.scenario.model_copy(update={"faults": list(faults)})
    return run_scenario(dataclasses.replace(loaded, scenario=scenario), seed=seed, play="large")


# -- shrinking --------------------------------------------------------------------------------------

BROKEN = Failure(oracle="invariant:x", state="contain", event="action_applied", message="broken")


def _outcome(faults: Sequence[Fault], fired: dict[str, tuple[int, ...]]) -> Outcome:
    return Outcome(failures=(BROKEN,), fired_on={f.id: fired.get(f.id, ()) for f in faults})


def test_shrinking_keeps_the_faults_that_matter_and_simplifies_them() -> None:
    """A failure that needs a slow spike on `a` and any error on `c` shrinks to those
    two, each firing on the call it fired on, the spike just slow enough."""
    faults = [
        Fault(
            id="fuzz-1", kind="latency_spike", target="tool:a", trigger=Trigger(probability=0.5), seconds=900
        ),
        Fault(id="fuzz-2", kind="timeout", target="tool:b"),
        Fault(id="fuzz-3", kind="error", target="tool:c", trigger=Trigger(times=3), message="HTTP 503"),
        Fault(id="fuzz-4", kind="empty_result", target="tool:d", trigger=Trigger(nth=2)),
    ]
    fired = {"fuzz-1": (2, 5), "fuzz-2": (1,), "fuzz-3": (1, 2, 3), "fuzz-4": ()}
    tried: list[list[Fault]] = []

    def still_fails(candidate: Sequence[Fault]) -> Outcome | None:
        tried.append(list(candidate))
        spike = next((f for f in candidate if f.id == "fuzz-1"), None)
        slow = spike is not None and spike.seconds >= 100 and (spike.trigger.nth in (None, 2, 5))
        if slow and any(f.id == "fuzz-3" for f in candidate):
            return _outcome(candidate, fired)
        return None

    shrunk = shrink(faults, _outcome(faults, fired), still_fails)
    assert [f.id for f in shrunk.faults] == ["fuzz-1", "fuzz-3"]
    spike, error = shrunk.faults
    assert spike.trigger == Trigger(nth=2)  # "a 50% chance" became "the 2nd call"
    assert 100 <= spike.seconds < 200  # lowered by halving while it still failed
    assert error.trigger == Trigger(nth=1)
    assert shrunk.runs == len(tried) <= 300


def test_shrinking_to_no_fault_when_the_failure_needs_none() -> None:
    faults = [Fault(id="fuzz-1", kind="timeout", target="tool:a")]
    shrunk = shrink(faults, _outcome(faults, {"fuzz-1": (1,)}), lambda c: _outcome(c, {}))
    assert shrunk.faults == []


def test_shrinking_stops_at_its_run_budget() -> None:
    faults = [Fault(id=f"fuzz-{i}", kind="timeout", target="tool:a") for i in range(1, 9)]
    calls = []

    def never(candidate: Sequence[Fault]) -> Outcome | None:
        calls.append(candidate)
        return None

    shrunk = shrink(faults, _outcome(faults, {f.id: (1,) for f in faults}), never, max_runs=5)
    assert shrunk.faults == faults
    assert shrunk.runs == len(calls) == 5


# -- coverage ---------------------------------------------------------------------------------------


def test_coverage_counts_reactions_and_names_what_was_never_reached() -> None:
    run = _run(beacon(), [Fault(id="fuzz-1", kind="timeout", target="tool:threat_intel")], seed=3)
    coverage = Coverage(lambda target: ["timeout", "error"] if target.startswith("tool:") else [])
    coverage.observe(run.trace.events, scenario="beacon")  # type: ignore[attr-defined]
    reached = {(state, kind) for state, kind, _ in coverage.reached}
    assert ("investigate", "timeout") in reached
    reactions = {reaction for _, kind, reaction in coverage.reached if kind == "timeout"}
    assert reactions
    assert "fault_injected" not in reactions
    assert ("investigate", "error") in coverage.unreached()
    assert ("investigate", "timeout") not in coverage.unreached()
    assert 0 < coverage.ratio() < 1
    # Faults there were never reached: the threat_intel target leans toward `error` now.
    assert coverage.weight("error", "tool:threat_intel", scenario="beacon") > coverage.weight(
        "timeout", "tool:threat_intel", scenario="beacon"
    )
    # A tool the scenario's trials never called is picked a tenth as often; humans
    # leave no event of their own, so only a fault that found no call there says so.
    assert coverage.weight("error", "tool:unblock_ip", scenario="beacon") < 1
    assert coverage.weight("human_absent", "humans", scenario="beacon") == 1
    coverage.observe([], scenario="beacon", calls={"humans": 0})
    assert coverage.weight("human_absent", "humans", scenario="beacon") < 1


# -- campaigns --------------------------------------------------------------------------------------


@functools.cache
def core() -> Suite:
    return load_suite([SOC / "soc-core.yaml"])


def _signature(report: object) -> list[object]:
    return [
        (f.failure.signature, f.scenario, f.seed, [x.model_dump() for x in f.faults], f.trial)
        for f in report.findings  # type: ignore[attr-defined]
    ]


def test_a_campaign_is_decided_by_its_seed(tmp_path: Path) -> None:
    one = fuzz(core(), trials=40, seed=5, workflow="tests.evals.planted_bugs:unverified_write")
    two = fuzz(core(), trials=40, seed=5, workflow="tests.evals.planted_bugs:unverified_write")
    other = fuzz(core(), trials=40, seed=6, workflow="tests.evals.planted_bugs:unverified_write")
    assert _signature(one) == _signature(two)
    assert (one.inconclusive, one.coverage, one.unreached) == (two.inconclusive, two.coverage, two.unreached)
    assert (one.inconclusive, one.coverage) != (other.inconclusive, other.coverage)


def test_inconclusive_trials_are_counted_not_passed() -> None:
    report = fuzz(core(), trials=30, seed=1, oracle="invariants")
    assert 0 < report.inconclusive < report.trials
    assert report.summary()["inconclusive"] == report.inconclusive


@functools.cache
def plain() -> Suite:
    return load_suite(plain_paths())


def test_saved_regressions_are_replayed_first(tmp_path: Path) -> None:
    bug = "tests.evals.planted_bugs:unverified_write"
    first = fuzz(plain(), trials=100, seed=0, config="oracle", workflow=bug, out=tmp_path)
    assert first.findings
    assert all(f.trial is not None for f in first.findings)
    files = sorted((tmp_path / "regressions").glob("*.yaml"))
    assert sorted(str(f.path) for f in first.findings) == [str(f) for f in files]
    again = fuzz(plain(), trials=1, seed=99, config="oracle", workflow=bug, out=tmp_path)
    replayed = [f for f in again.findings if f.trial is None]
    assert {str(f.path) for f in replayed} == {str(f) for f in files}
    # A replay judges the file as `scenario run` does, whatever the campaign's oracle.
    blind = fuzz(plain(), trials=1, seed=99, config="oracle", workflow=bug, out=tmp_path, oracle="invariants")
    assert blind.fixed == []
    assert {str(f.path) for f in blind.findings if f.trial is None} == {str(f) for f in files}
    correct = "tests.evals.planted_bugs:correct"
    fixed = fuzz(plain(), trials=1, seed=99, config="oracle", workflow=correct, out=tmp_path)
    assert sorted(fixed.fixed) == sorted(str(f) for f in files)


def test_a_regression_kept_in_the_suite_is_fuzzed_again_without_id_collisions(tmp_path: Path) -> None:
    """The file's advice — keep it with your scenarios — must not break the next campaign:
    generated ids go past the file's own ``fuzz-N``."""
    bug = "tests.evals.planted_bugs:unverified_write"
    fuzz(plain(), trials=100, seed=0, config="oracle", workflow=bug, out=tmp_path / "first")
    kept = sorted((tmp_path / "first" / "regressions").glob("*.yaml"))
    assert kept
    again = fuzz(kept, trials=20, seed=3, config="oracle", workflow=bug)
    assert again.harness_errors == 0, again.harness_messages
    assert fault_id(1, ["slow", "fuzz-2", "fuzz-x"]) == "fuzz-3"


def test_crashes_count_in_coverage() -> None:
    """A crash stops the run before it can record itself: the resumed life is its trace."""
    crash = Fault(id="fuzz-1", kind="crash", target="run", at_transition=2)
    run = _run(beacon(), [crash], seed=3)
    coverage = Coverage(lambda target: ["crash"] if target == "run" else [])
    coverage.observe(run.trace.events, scenario="beacon")  # type: ignore[attr-defined]
    assert any(kind == "crash" and reaction == "run_resumed" for _, kind, reaction in coverage.reached)


def test_a_campaign_needs_an_end_and_a_known_oracle() -> None:
    with pytest.raises(InvalidArgument, match="trials= or seconds="):
        fuzz(core())
    with pytest.raises(InvalidArgument, match="oracle"):
        fuzz(core(), trials=1, oracle="vibes")  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="tier"):
        fuzz(core(), trials=1, config="huge")
