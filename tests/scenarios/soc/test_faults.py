"""Every fault kind, alone, against the SOC investigation (the ``c2-beacon`` and
``critical-host-c2`` scenarios with their faults replaced): the trace shows the fault
and the orchestrator's reaction to it. A perfect tier plays the models, so that each
path is the fault's doing, not the model's."""

from __future__ import annotations

from dataclasses import replace

import pytest

from windtunnel.orchestrator import Event, InvalidArgument, Trace
from windtunnel.scenarios import ScenarioRun, load_file, run_scenario
from windtunnel.scenarios.soc import DOMAIN
from windtunnel.simulators import DEFAULT_TIERS, Fault, Trigger, derive_tier

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
assert DOMAIN.scenarios is not None


def investigate(
    *faults: Fault,
    scenario: str = "c2-beacon",
    seed: int = 3,
    play: object = PERFECT,
    trace: Trace | None = None,
) -> ScenarioRun:
    """Run the built-in ``scenario`` with ``faults`` instead of its own."""
    [loaded] = load_file(DOMAIN.scenarios / f"{scenario}.yaml")  # type: ignore[operator]
    spec = loaded.scenario.model_copy(update={"faults": list(faults)})
    return run_scenario(replace(loaded, scenario=spec), seed=seed, play=play, trace=trace)  # type: ignore[arg-type]


def fired(inv: ScenarioRun | Trace, kind: str) -> list[Event]:
    trace = inv if isinstance(inv, Trace) else inv.trace
    found = trace.query(kind="fault_injected", fault_kind=kind)
    assert found, f"no {kind!r} fault in the trace"
    return found


def path(inv: ScenarioRun) -> list[str]:
    return [e.target for e in inv.trace.query(kind="transition")]  # type: ignore[union-attr]


def test_baseline_without_faults_contains_and_verifies() -> None:
    inv = investigate()
    assert path(inv) == ["investigate", "contain", "verify", "close"]
    assert inv.verdict.correct
    assert inv.trace.query(kind="fault_injected") == []


def test_timeout() -> None:
    inv = investigate(Fault(id="f", kind="timeout", target="tool:threat_intel", trigger=Trigger(nth=1)))
    fired(inv, "timeout")
    [timed_out] = inv.trace.query(kind="tool_timeout")
    assert (timed_out.tool, timed_out.attempt) == ("threat_intel", 1)  # type: ignore[union-attr]
    [call] = inv.trace.query(kind="tool_called", tool="threat_intel")
    assert (call.status, call.attempts) == ("ok", 2)  # type: ignore[union-attr]  # retried, then answered
    assert call.duration >= 20.0  # type: ignore[union-attr]  # the whole 20 s timeout was waited
    assert inv.verdict.correct


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
    assert inv.verdict.correct


def test_silent_failure_is_caught_by_verification() -> None:
    inv = investigate(Fault(id="f", kind="silent_failure", target="tool:block_ip"))
    fired(inv, "silent_failure")
    failed = inv.trace.query(kind="verification_failed")
    assert [e.action for e in failed] == ["reapply", "compensate"]  # type: ignore[union-attr]
    assert len(inv.trace.query(kind="action_compensated")) == 1
    [escalated] = inv.trace.query(kind="escalated")
    assert (escalated.trigger, escalated.to) == ("verification_failed", "escalate")  # type: ignore[union-attr]
    assert path(inv)[-2:] == ["escalate", "escalated"]
    assert not inv.case.world.has("blocklist", inv.case.input.dst_ip)


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
    assert inv.verdict.correct  # the model went on after being told


def test_malformed_arguments_are_rejected() -> None:
    inv = investigate(
        Fault(id="f", kind="malformed_arguments", target="tier:perfect", trigger=Trigger(nth=1))
    )
    fired(inv, "malformed_arguments")
    [rejected] = inv.trace.query(kind="tool_rejected")
    assert rejected.reason == "invalid_arguments"  # type: ignore[union-attr]
    assert inv.verdict.correct


def test_rate_limit_is_retried_by_the_sdk() -> None:
    inv = investigate(
        Fault(id="f", kind="rate_limit", target="tier:perfect", trigger=Trigger(nth=1), retry_after=7)
    )
    fired(inv, "rate_limit")
    first = inv.trace.query(kind="model_called")[0]
    assert (first.retries, first.error) == (1, None)  # type: ignore[union-attr]
    assert first.latency >= 7.0  # type: ignore[union-attr]  # the retry-after, in simulated time
    assert first.request_id is not None  # type: ignore[union-attr]  # it went through the SDK
    assert inv.verdict.correct


def test_overload_past_the_sdk_retries_is_handled_by_policy() -> None:
    inv = investigate(Fault(id="f", kind="overloaded", target="tier:perfect", trigger=Trigger(times=3)))
    assert len(fired(inv, "overloaded")) == 3
    first = inv.trace.query(kind="model_called")[0]
    assert first.error is not None
    assert "529" in first.error
    [failed] = inv.trace.query(kind="handler_failed")[:1]
    assert (failed.error, failed.action) == ("ModelOverloaded", "retry")  # type: ignore[union-attr]


def test_human_slow() -> None:
    inv = investigate(
        Fault(id="f", kind="human_slow", target="humans", seconds=3000), scenario="critical-host-c2"
    )
    fired(inv, "human_slow")
    assert path(inv)[-1] == "escalated"
    entered = inv.trace.query(kind="state_entered", state="escalate")[0].sim_time
    left = inv.trace.query(kind="transition", state="escalate")[0].sim_time
    assert left - entered >= 3000
    assert inv.result.data["human"] in {"malicious", "benign"}


def test_human_absent_takes_the_fail_safe() -> None:
    inv = investigate(Fault(id="f", kind="human_absent", target="humans"), scenario="critical-host-c2")
    fired(inv, "human_absent")
    assert inv.result.data["fail_safe"] == "no action"
    assert not inv.case.world.isolated
    assert not inv.case.world.blocklist


def test_human_wrong() -> None:
    inv = investigate(Fault(id="f", kind="human_wrong", target="humans"), scenario="critical-host-c2", seed=5)
    fired(inv, "human_wrong")
    assert inv.result.data["human_correct"] is False


def test_crash_stops_the_run_dead_and_it_is_resumed_from_its_checkpoint() -> None:
    inv = investigate(Fault(id="f", kind="crash", target="run", at_transition=2))
    assert inv.injector.counts()["f"].fired == 1
    # The resumed trace holds what the dead life committed: the first transition (the
    # second died with it), then the rest.
    [resumed] = inv.trace.query(kind="run_resumed")
    before = [e for e in inv.trace.query(kind="transition") if e.seq < resumed.seq]
    assert [e.target for e in before] == ["investigate"]  # type: ignore[union-attr]
    assert path(inv)[-3:] == ["contain", "verify", "close"]
    assert len(inv.trace.query(kind="run_finished")) == 1
    assert len(inv.trace.query(kind="action_applied", tool="block_ip")) == 1  # never twice
    assert inv.verdict.correct


def test_runs_with_crashes_one_after_another_are_independent() -> None:
    # Each takes a store in memory that the one before emptied: the same seed, the same trace.
    crash = Fault(id="f", kind="crash", target="run", at_transition=2)
    first = investigate(crash, seed=4).trace.dumps()
    investigate(crash, seed=5)
    investigate(Fault(id="g", kind="crash", target="run", at_transition=3), seed=4)
    assert investigate(crash, seed=4).trace.dumps() == first


EVERY_KIND = (
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
    Fault(id="s", kind="stale_read", target="tool:block_ip", seconds=30, trigger=Trigger(probability=0.5)),
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
)


@pytest.mark.parametrize("seed", range(6))
def test_determinism_with_every_fault_kind_enabled(seed: int) -> None:
    def once() -> tuple[str, str]:
        inv = investigate(*EVERY_KIND, seed=seed, play="mid")
        return inv.trace.dumps(), inv.result.final_state

    first, second = once(), once()
    assert first == second
    assert '"fault_injected"' in first[0]


# --- plays that cannot be run as asked; faults on the tiers of a ladder ----------------------


def test_an_unknown_tier_is_refused_with_the_closest_one() -> None:
    with pytest.raises(
        InvalidArgument, match=r"^unknown tier='larg'; choose one of \['large', 'mid', 'small'\]"
    ):
        investigate(play="larg")
    with pytest.raises(InvalidArgument, match=r"^unknown ladder tier='huge'; choose one of"):
        investigate(play="ladder:small@0.9,huge")


def test_faults_on_the_tiers_of_a_ladder_fire_when_they_play() -> None:
    faults = [
        Fault(id="t", kind="malformed_arguments", target="tier:small", trigger=Trigger(nth=1)),
        Fault(id="l", kind="malformed_arguments", target="tier:large", trigger=Trigger(nth=1)),
        Fault(id="x", kind="overloaded", target="tier:huge"),  # no such tier plays: never fires
    ]
    inv = investigate(*faults, seed=1, play="ladder:small@0.99,mid@0.99,large")
    assert {e.fault_id for e in inv.trace.query(kind="fault_injected")} == {"t", "l"}  # type: ignore[union-attr]
