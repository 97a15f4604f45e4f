"""The readable trace summary."""

from __future__ import annotations

from windtunnel.reports import summarize_trace
from windtunnel.scenarios import run_demo


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
