"""Every fault kind, alone, against the investigation: the trace shows the fault and the
orchestrator's reaction to it. A perfect tier plays the models, so that each path is
the fault's doing, not the model's."""

from __future__ import annotations

from typing import Any

import pytest

from windtunnel.orchestrator import Event, InvalidArgument, Trace
from windtunnel.scenarios.investigation import Investigation, make_case, run_investigation
from windtunnel.simulators import DEFAULT_TIERS, Fault, FaultPlan, SimulatedCrash, Trigger, derive_tier

PERFECT = derive_tier(
    DEFAULT_TIERS["large"],
    name="perfect",
    skill=1.0,
    difficulty_slope=0.0,
    evidence_weight=0.0,
    overconfidence=0.0,
    confidence_noise=0.0,
    hallucination_rate=0.0,
    malformed_rate=0.0,
)


def investigate(*faults: Fault, case: str = "c2_beacon", seed: int = 3, **kwargs: Any) -> Investigation:
    return run_investigation(
        seed=seed, tier=PERFECT, plan=FaultPlan(faults=list(faults)), case=case, **kwargs
    )  # type: ignore[arg-type]


def fired(inv: Investigation | Trace, kind: str) -> list[Event]:
    trace = inv if isinstance(inv, Trace) else inv.trace
    found = trace.query(kind="fault_injected", fault_kind=kind)
    assert found, f"no {kind!r} fault in the trace"
    return found


def path(inv: Investigation) -> list[str]:
    return [e.target for e in inv.trace.query(kind="transition")]  # type: ignore[union-attr]


def test_baseline_without_faults_contains_and_verifies() -> None:
    inv = investigate()
    assert path(inv) == ["investigate", "contain", "verify", "close"]
    assert inv.correct
    assert inv.trace.query(kind="fault_injected") == []


def test_timeout() -> None:
    inv = investigate(Fault(id="f", kind="timeout", target="tool:threat_intel", trigger=Trigger(nth=1)))
    fired(inv, "timeout")
    [timed_out] = inv.trace.query(kind="tool_timeout")
    assert (timed_out.tool, timed_out.attempt) == ("threat_intel", 1)  # type: ignore[union-attr]
    [call] = inv.trace.query(kind="tool_called", tool="threat_intel")
    assert (call.status, call.attempts) == ("ok", 2)  # type: ignore[union-attr]  # retried, then answered
    assert call.duration >= 20.0  # type: ignore[union-attr]  # the whole 20 s timeout was waited
    assert inv.correct


def test_latency_spike() -> None:
    inv = investigate(Fault(id="f", kind="latency_spike", target="tool:siem_search", seconds=45))
    fired(inv, "latency_spike")
    [call] = inv.trace.query(kind="tool_called", tool="siem_search")
    assert call.duration >= 45.0  # type: ignore[union-attr]
    assert call.status == "ok"  # type: ignore[union-attr]  # under the 60 s timeout


def test_error() -> None:
    inv = investigate(Fault(id="f", kind="error", target="tool:edr_process_tree", trigger=Trigger(times=1)))
    [fault] = fired(inv, "error")
    assert "raises: simulated failure" in fault.detail  # type: ignore[union-attr]
    [call] = inv.trace.query(kind="tool_called", tool="edr_process_tree")
    assert (call.status, call.attempts) == ("ok", 2)  # type: ignore[union-attr]


def test_error_that_persists_degrades_to_source_unavailable() -> None:
    inv = investigate(Fault(id="f", kind="error", target="tool:edr_process_tree"))
    [call] = inv.trace.query(kind="tool_called", tool="edr_process_tree")
    assert call.status == "error"  # type: ignore[union-attr]
    assert call.output.startswith("source unavailable")  # type: ignore[union-attr]
    assert inv.result.status == "completed"


def test_empty_result() -> None:
    inv = investigate(Fault(id="f", kind="empty_result", target="tool:threat_intel"))
    fired(inv, "empty_result")
    [call] = inv.trace.query(kind="tool_called", tool="threat_intel")
    assert call.output == "{}"  # type: ignore[union-attr]


def test_partial_result() -> None:
    inv = investigate(Fault(id="f", kind="partial_result", target="tool:siem_search", fraction=0.5))
    fired(inv, "partial_result")
    [call] = inv.trace.query(kind="tool_called", tool="siem_search")
    assert '"partial": true' in call.output  # type: ignore[union-attr]


def test_stale_read_is_outwaited_by_verification() -> None:
    inv = investigate(Fault(id="f", kind="stale_read", target="tool:block_ip", seconds=20))
    fired(inv, "stale_read")
    [verified] = inv.trace.query(kind="action_verified")
    assert verified.attempts >= 2  # type: ignore[union-attr]  # the first read-backs were stale
    assert inv.trace.query(kind="verification_failed") == []
    assert path(inv)[-1] == "close"
    assert inv.correct


def test_silent_failure_is_caught_by_verification() -> None:
    inv = investigate(Fault(id="f", kind="silent_failure", target="tool:block_ip"))
    fired(inv, "silent_failure")
    failed = inv.trace.query(kind="verification_failed")
    assert [e.action for e in failed] == ["reapply", "compensate"]  # type: ignore[union-attr]
    assert len(inv.trace.query(kind="action_compensated")) == 1
    [escalated] = inv.trace.query(kind="escalated")
    assert (escalated.trigger, escalated.to) == ("verification_failed", "escalate")  # type: ignore[union-attr]
    assert path(inv)[-2:] == ["escalate", "escalated"]
    assert not inv.case.world.has("blocklist", inv.case.alert.dst_ip)


def test_conflicting_actor_is_caught_by_verification() -> None:
    inv = investigate(Fault(id="f", kind="conflicting_actor", target="tool:block_ip"))
    [fault, *_] = fired(inv, "conflicting_actor")
    assert "another actor does unblock" in fault.detail  # type: ignore[union-attr]
    assert inv.trace.query(kind="verification_failed")
    assert [e.trigger for e in inv.trace.query(kind="escalated")] == ["verification_failed"]  # type: ignore[union-attr]
    assert path(inv)[-2:] == ["escalate", "escalated"]


def test_hallucinated_tool_call_is_rejected() -> None:
    inv = investigate(
        Fault(id="f", kind="hallucinated_tool_call", target="tier:perfect", trigger=Trigger(nth=1))
    )
    [fault] = fired(inv, "hallucinated_tool_call")
    [rejected] = inv.trace.query(kind="tool_rejected")
    assert rejected.reason == "unknown_tool"  # type: ignore[union-attr]
    assert rejected.tool in fault.detail  # type: ignore[union-attr]
    assert inv.correct  # the model went on after being told


def test_malformed_arguments_are_rejected() -> None:
    inv = investigate(
        Fault(id="f", kind="malformed_arguments", target="tier:perfect", trigger=Trigger(nth=1))
    )
    fired(inv, "malformed_arguments")
    [rejected] = inv.trace.query(kind="tool_rejected")
    assert rejected.reason == "invalid_arguments"  # type: ignore[union-attr]
    assert inv.correct


def test_rate_limit_is_retried_by_the_sdk() -> None:
    inv = investigate(
        Fault(id="f", kind="rate_limit", target="tier:perfect", trigger=Trigger(nth=1), retry_after=7)
    )
    fired(inv, "rate_limit")
    first = inv.trace.query(kind="model_called")[0]
    assert (first.retries, first.error) == (1, None)  # type: ignore[union-attr]
    assert first.latency >= 7.0  # type: ignore[union-attr]  # the retry-after, in simulated time
    assert first.request_id is not None  # type: ignore[union-attr]  # it went through the SDK
    assert inv.correct


def test_overload_past_the_sdk_retries_is_handled_by_policy() -> None:
    inv = investigate(Fault(id="f", kind="overloaded", target="tier:perfect", trigger=Trigger(times=3)))
    assert len(fired(inv, "overloaded")) == 3
    first = inv.trace.query(kind="model_called")[0]
    assert first.error is not None
    assert "529" in first.error
    [failed] = inv.trace.query(kind="handler_failed")[:1]
    assert (failed.error, failed.action) == ("ModelOverloaded", "retry")  # type: ignore[union-attr]


def test_human_slow() -> None:
    inv = investigate(Fault(id="f", kind="human_slow", target="humans", seconds=3000), case="critical_host")
    fired(inv, "human_slow")
    assert path(inv)[-1] == "escalated"
    entered = inv.trace.query(kind="state_entered", state="escalate")[0].sim_time
    left = inv.trace.query(kind="transition", state="escalate")[0].sim_time
    assert left - entered >= 3000
    assert inv.result.data["human"] in {"approve", "reject"}


def test_human_absent_takes_the_fail_safe() -> None:
    inv = investigate(Fault(id="f", kind="human_absent", target="humans"), case="critical_host")
    fired(inv, "human_absent")
    assert inv.result.data["fail_safe"] == "no action"
    assert not inv.case.world.isolated
    assert not inv.case.world.blocklist


def test_human_wrong() -> None:
    inv = investigate(Fault(id="f", kind="human_wrong", target="humans"), case="critical_host", seed=5)
    fired(inv, "human_wrong")
    assert inv.result.data["human_correct"] is False


def test_crash_stops_the_run_dead() -> None:
    trace = Trace()
    with pytest.raises(SimulatedCrash, match="crashed at transition 2"):
        investigate(Fault(id="f", kind="crash", target="run", at_transition=2), trace=trace)
    fired(trace, "crash")
    assert trace.query(kind="run_finished") == []
    assert len(trace.query(kind="transition")) == 2


EVERY_KIND = FaultPlan(
    faults=[
        Fault(id="t", kind="timeout", target="tool:threat_intel", trigger=Trigger(probability=0.3)),
        Fault(
            id="l",
            kind="latency_spike",
            target="tool:siem_search",
            seconds=20,
            trigger=Trigger(probability=0.5),
        ),
        Fault(id="e", kind="error", target="tool:edr_process_tree", trigger=Trigger(probability=0.3)),
        Fault(id="em", kind="empty_result", target="tool:user_lookup", trigger=Trigger(probability=0.5)),
        Fault(id="p", kind="partial_result", target="tool:siem_search", trigger=Trigger(probability=0.5)),
        Fault(
            id="s", kind="stale_read", target="tool:block_ip", seconds=30, trigger=Trigger(probability=0.5)
        ),
        Fault(id="sf", kind="silent_failure", target="tool:block_ip", trigger=Trigger(probability=0.3)),
        Fault(
            id="c",
            kind="conflicting_actor",
            target="tool:block_ip",
            seconds=5,
            trigger=Trigger(probability=0.3),
        ),
        Fault(id="h", kind="hallucinated_tool_call", target="tier:mid", trigger=Trigger(probability=0.2)),
        Fault(id="m", kind="malformed_arguments", target="tier:mid", trigger=Trigger(probability=0.2)),
        Fault(id="r", kind="rate_limit", target="tier:mid", trigger=Trigger(probability=0.2), retry_after=2),
        Fault(id="o", kind="overloaded", target="tier:mid", trigger=Trigger(probability=0.1)),
        Fault(id="hs", kind="human_slow", target="humans", seconds=600, trigger=Trigger(probability=0.5)),
        Fault(id="ha", kind="human_absent", target="humans", trigger=Trigger(probability=0.2)),
        Fault(id="hw", kind="human_wrong", target="humans", trigger=Trigger(probability=0.2)),
        Fault(id="x", kind="crash", target="run", at_transition=5, trigger=Trigger(probability=0.5)),
    ]
)


@pytest.mark.parametrize("seed", range(6))
def test_determinism_with_every_fault_kind_enabled(seed: int) -> None:
    def once() -> tuple[str, str | None]:
        trace = Trace()
        try:
            inv = run_investigation(seed=seed, tier="mid", plan=EVERY_KIND, trace=trace)
            outcome: str | None = inv.result.final_state
        except SimulatedCrash:
            outcome = None
        return trace.dumps(), outcome

    first, second = once(), once()
    assert first == second
    assert '"fault_injected"' in first[0]


# --- plans and cases that cannot be run as asked ------------------------------------------


def test_an_unknown_case_template_is_refused_with_the_closest_one() -> None:
    with pytest.raises(InvalidArgument) as raised:
        run_investigation(case="c2_becon")  # type: ignore[arg-type]
    assert str(raised.value) == (
        "unknown case='c2_becon'; choose one of ['c2_beacon', 'critical_host', 'benign_scanner'] "
        "or an InvestigationCase; did you mean 'c2_beacon'?"
    )
    with pytest.raises(InvalidArgument, match=r"^unknown template='phishing'; choose one of \['c2_beacon', "):
        make_case(0, "phishing")  # type: ignore[arg-type]


def test_an_unknown_tier_is_refused_with_the_closest_one() -> None:
    with pytest.raises(
        InvalidArgument, match=r"^unknown tier='larg'; choose one of \['large', 'mid', 'small'\] or a "
    ):
        run_investigation(tier="larg")
    with pytest.raises(InvalidArgument, match=r"^unknown triage_tier='huge'; choose one of"):
        run_investigation(triage_tier="huge")


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        (
            Fault(id="f", kind="timeout", target="tool:threat_intell"),
            "fault 'f' can never fire: unknown target='tool:threat_intell'; choose one of "
            "['tool:asset_lookup', 'tool:block_ip', 'tool:disable_user', 'tool:edr_process_tree', "
            "'tool:enable_user', 'tool:firewall_rules', 'tool:isolate_host', 'tool:open_ticket', "
            "'tool:release_host', 'tool:siem_search', 'tool:threat_intel', 'tool:unblock_ip', "
            "'tool:user_lookup']; did you mean 'tool:threat_intel'?",
        ),
        (
            Fault(id="s", kind="silent_failure", target="tool:firewall_rules"),
            "fault 's' can never fire: kind='silent_failure' needs a write tool, and "
            "target='tool:firewall_rules' is a read tool; choose one of ['tool:block_ip', "
            "'tool:disable_user', 'tool:enable_user', 'tool:isolate_host', 'tool:open_ticket', "
            "'tool:release_host', 'tool:unblock_ip']",
        ),
        (  # the run plays 'perfect' only
            Fault(id="h", kind="hallucinated_tool_call", target="tier:small"),
            "fault 'h' can never fire: unknown target='tier:small'; choose one of ['tier:perfect']",
        ),
        (
            Fault(id="r", kind="rate_limit", target="tier:perfet"),
            "fault 'r' can never fire: unknown target='tier:perfet'; choose one of ['tier:perfect']; "
            "did you mean 'tier:perfect'?",
        ),
    ],
)
def test_a_fault_whose_target_is_not_in_the_run_is_refused(fault: Fault, message: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        investigate(fault)
    assert str(raised.value) == message


def test_faults_on_the_ladder_tiers_and_the_triage_tier_can_fire() -> None:
    faults = [
        Fault(id="t", kind="malformed_arguments", target="tier:small", trigger=Trigger(nth=1)),
        Fault(id="l", kind="malformed_arguments", target="tier:large", trigger=Trigger(nth=1)),
    ]
    inv = run_investigation(
        seed=1,
        tier="mid",
        triage_tier="small",
        ladder=[("mid", 0.99), ("large", 0.99)],
        plan=FaultPlan(faults=faults),
    )
    assert {e.fault_id for e in inv.trace.query(kind="fault_injected")} == {"t", "l"}  # type: ignore[union-attr]
    with pytest.raises(InvalidArgument, match=r"choose one of \['tier:large', 'tier:mid', 'tier:small'\]"):
        run_investigation(
            seed=1,
            triage_tier="small",
            ladder=[("mid", 0.9), ("large", 0.9)],
            plan=FaultPlan(faults=[Fault(id="x", kind="overloaded", target="tier:huge")]),
        )
