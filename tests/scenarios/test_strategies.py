"""The Hypothesis strategies: generated plans and scenarios validate, and any scenario
with any plan runs to a terminal state and gets a verdict."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from windtunnel.scenarios import Scenario, run_scenario
from windtunnel.scenarios import strategies as wt
from windtunnel.simulators import FaultPlan, fault_kinds

TARGETS = ["tool:siem_search", "tool:block_ip", "tier:small", "humans", "run"]


@given(plan=wt.fault_plans(targets=TARGETS, writes=["tool:block_ip"]))
def test_generated_plans_validate(plan: FaultPlan) -> None:
    assert FaultPlan.model_validate(plan.model_dump(mode="json")) == plan
    for fault in plan.faults:
        assert fault.target in TARGETS
        if fault.family == "write":
            assert fault.target == "tool:block_ip"  # write faults only on write tools


@given(data=st.data())
def test_every_registered_kind_can_be_generated(data: st.DataObject) -> None:
    kind = data.draw(st.sampled_from(sorted(fault_kinds())))
    fault = data.draw(wt.faults(kind, targets=TARGETS, writes=["tool:block_ip"]))
    assert fault.kind == kind


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenario=wt.scenarios("soc"), seed=wt.seeds())
def test_any_scenario_with_any_plan_ends_and_is_graded(scenario: wt.LoadedScenario, seed: int) -> None:
    assert Scenario.model_validate(scenario.scenario.model_dump(mode="json", exclude_unset=True))
    outcome = run_scenario(scenario, seed=seed, play="small")
    assert outcome.result.status in ("completed", "budget_exceeded")
    assert outcome.result.final_state in scenario.domain.terminal_states
    assert len(outcome.verdict.checks) >= 6
