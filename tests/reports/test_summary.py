"""The readable trace summary."""

from __future__ import annotations

import pytest

from windtunnel.orchestrator import Trace, query_events
from windtunnel.reports import summarize_trace
from windtunnel.scenarios import ScenarioRun, load_file, run_demo, run_scenario
from windtunnel.scenarios.soc import DOMAIN
from windtunnel.simulators import Sim


def test_summary_of_a_confused_run() -> None:
    text = summarize_trace(run_demo(seed=0, variant="confused").trace)
    lines = text.splitlines()
    assert lines[0] == "run run-0-1  workflow demo-investigation[confused]"
    assert lines[3] == (
        "  t=   360.4s  decide       REFUSED next='block_ip' "
        "(allowed ['close', 'escalate', 'execute', 'investigate']); retrying"
    )
    assert lines[4] == "  t=   360.4s  decide       re-entered (attempt 2)"
    assert lines[-1] == "  => completed in 'close' after 6 steps, 423.2 s simulated, $0.0000"


def test_summary_shows_timeouts_and_budget_stops() -> None:
    slow = summarize_trace(run_demo(seed=0, variant="slow_source").trace)
    assert "FAILED TimeoutError: 'investigate' timed out after 300s; routing to 'escalate'" in slow
    endless = summarize_trace(run_demo(seed=0, variant="endless").trace).splitlines()
    assert endless[-4] == "  t=  2700.0s  investigate  BUDGET duration exceeded: used 2700 of 2700"
    assert endless[-3].startswith("  t=  2700.0s  investigate  ESCALATED (budget) to escalated:")
    assert endless[-1].startswith("  => budget_exceeded in 'escalated' after 28 steps, 2700.0 s simulated")


def critical_host_run() -> ScenarioRun:
    """The built-in C2 beacon on a critical host, played by the small tier: it reaches a human."""
    assert DOMAIN.scenarios is not None
    [loaded] = load_file(DOMAIN.scenarios / "critical-host-c2.yaml")
    return run_scenario(loaded, seed=0, play="small")


def test_summary_shows_who_was_charged_and_the_total_cost() -> None:
    investigation = critical_host_run()
    lines = summarize_trace(investigation.trace).splitlines()
    assert lines[-3:] == [
        "  t=  1123.6s  escalate     CHARGED $24.7650 for human:oncall: 16.5 minutes of review",
        "  t=  1123.6s  escalate     -> escalated  confidence 1.00",
        "  => completed in 'escalated' after 3 steps, 1123.6 s simulated, $24.7663",
    ]


def test_the_cost_column_adds_up_to_the_runs_total_cost_once() -> None:
    investigation = critical_host_run()
    frame = investigation.trace.to_frame()
    [finished] = investigation.trace.query(kind="run_finished")
    by_kind = frame.groupby("kind")["cost"].sum()
    # Models and the human both cost something, and each cost is on one event only.
    assert by_kind["model_called"] > 0
    assert by_kind["cost_charged"] > 0
    assert frame["cost"].sum() == pytest.approx(finished.total_cost, rel=1e-12)  # type: ignore[union-attr]
    assert investigation.result.cost == finished.total_cost  # type: ignore[union-attr]


def test_a_selection_is_timed_and_judged_against_the_whole_trace() -> None:
    sim = Sim(seed=0)
    trace = Trace()
    run_demo(variant="nominal", sim=sim, trace=trace)
    run_demo(variant="confused", sim=sim, trace=trace)
    cut = trace.events[:-3]  # as a killed process leaves it: the second run never finished
    refused = query_events(cut, kind="transition_refused")
    assert summarize_trace(refused, trace=cut).splitlines() == [
        "  run-0-2  t=   188.5s  decide       REFUSED next='block_ip' "
        "(allowed ['close', 'escalate', 'execute', 'investigate']); retrying",
        "  => run run-0-2 did not finish: its last event is seq 6 (transition_refused) "
        "in 'decide' at t=188.5s",
    ]
    assert "did not finish" not in summarize_trace(trace)
