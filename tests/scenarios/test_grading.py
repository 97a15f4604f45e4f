"""Grading under faults, read off the trace: a right play stays right whatever fault
kind stopped the write, and a forbidden action applied and undone is still wrong."""

from __future__ import annotations

import dataclasses
from typing import Any

from windtunnel.orchestrator import ActionPolicy, Workflow
from windtunnel.scenarios import LoadedScenario, load_file, run_scenario
from windtunnel.scenarios.domain import Kit
from windtunnel.scenarios.oracle import OracleModel, oracle
from windtunnel.scenarios.soc.workflow import soc_workflow
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


def without_undo(kit: Kit) -> Workflow:
    """The SOC workflow with a policy that escalates an unverified write without undoing it."""
    workflow = soc_workflow(kit)
    workflow.actions = ActionPolicy(compensate=False)
    return workflow


def test_a_write_that_could_not_be_verified_makes_escalation_right() -> None:
    """A stale read hides the block for an hour: it never verifies, the run escalates
    and, with no undo, leaves it in effect. It cannot be graded impossible (it is in
    effect), yet escalating is right: nobody could see that it landed."""
    stale = Fault(id="stale-fw", kind="stale_read", target="tool:block_ip", seconds=3600)
    scenario = with_faults("login-block-stale-for-an-hour.yaml", stale)
    outcome = run_scenario(scenario, seed=1, models=oracle(), workflow=without_undo)
    assert outcome.trace.query(kind="action_verified") == []
    assert outcome.trace.query(kind="action_compensated") == []
    assert outcome.result.final_state == "escalated"
    assert outcome.verdict.correct, outcome.verdict
    assert outcome.verdict.decided_by == ("stale-fw",)


@dataclasses.dataclass
class EscalatesInvestigations:
    """A playbook whose investigation escalates, whatever the evidence."""

    playbook: Any

    def calls(self, state: str) -> Any:
        return self.playbook.calls(state)

    def right_choice(self, state: str, allowed: Any) -> str:
        return "escalate" if state == "investigate" else str(self.playbook.right_choice(state, allowed))


def test_an_unfaulted_escalation_of_a_case_that_needs_no_human_is_still_wrong() -> None:
    """Not vacuous: with no fault to excuse it, escalating a block nobody tried is wrong."""
    outcome = run_scenario(
        with_faults("login-block-stale-for-an-hour.yaml"),
        seed=1,
        models=lambda state, playbook: OracleModel(EscalatesInvestigations(playbook)),
        workflow=without_undo,
    )
    assert outcome.result.final_state == "escalated"
    assert not outcome.verdict.correct
    assert outcome.verdict.decided_by == ()
