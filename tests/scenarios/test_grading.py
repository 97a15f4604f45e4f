"""Grading under faults, read off the trace: a right play stays right whatever fault
kind stopped the write, and a forbidden action applied and undone is still wrong."""

from __future__ import annotations

import dataclasses

from windtunnel.scenarios import LoadedScenario, load_file, run_scenario
from windtunnel.scenarios.oracle import oracle
from windtunnel.simulators import Fault

SOC = "windtunnel/scenarios/soc/scenarios"


def with_faults(file: str, *faults: Fault) -> LoadedScenario:
    [loaded] = load_file(f"{SOC}/{file}")
    return dataclasses.replace(loaded, scenario=loaded.scenario.model_copy(update={"faults": list(faults)}))


def test_a_write_that_times_out_makes_escalation_right() -> None:
    """A latency spike on the write (not a kind the grader knows by name): the block
    never lands, the run escalates, and that is right — the verdict names the fault."""
    slow = Fault(id="slow-block", kind="latency_spike", target="tool:block_ip", seconds=1000)
    outcome = run_scenario(with_faults("c2-beacon.yaml", slow), seed=1, models=oracle())
    assert outcome.result.final_state == "escalated"
    assert outcome.verdict.correct, outcome.verdict
    assert outcome.verdict.decided_by == ("slow-block",)


def test_a_read_back_that_cannot_be_made_makes_escalation_right() -> None:
    """An error on the tool that verifies the block: the block is rolled back and
    escalated. Right, decided by the fault on the verifying tool."""
    broken = Fault(id="rules-down", kind="error", target="tool:firewall_rules")
    outcome = run_scenario(with_faults("c2-beacon.yaml", broken), seed=1, models=oracle())
    assert outcome.result.final_state == "escalated"
    assert outcome.verdict.correct, outcome.verdict
    assert outcome.verdict.decided_by == ("rules-down",)


def test_without_faults_the_same_escalation_is_wrong() -> None:
    """No fault fired: an agent that escalates a plain C2 beacon instead of blocking it is wrong."""
    outcome = run_scenario(with_faults("c2-beacon.yaml"), seed=1, models=oracle(wrong=True))
    assert not outcome.verdict.correct
    assert outcome.verdict.decided_by == ()


def test_a_forbidden_action_applied_then_undone_is_still_wrong() -> None:
    """The benign scanner must not be blocked. A wrong play blocks it; a stale read makes
    verification fail, so the block is undone — the final world is clean, yet the run
    applied a forbidden action and is graded so."""
    stale = Fault(id="stale", kind="stale_read", target="tool:block_ip", seconds=3600)
    outcome = run_scenario(with_faults("benign-scanner.yaml", stale), seed=0, models=oracle(wrong=True))
    applied = [e for e in outcome.trace.query(kind="action_applied") if not e.noop]  # type: ignore[union-attr]
    assert applied, "the wrong play should have blocked the scanner"
    failed = {check.name: check.reason for check in outcome.verdict.failed}
    assert "forbidden_actions" in failed
    assert failed["forbidden_actions"].startswith("applied or in effect: block_ip(")
