"""The safety paths, each checked end to end and at its boundary: a failed undo,
circuit-breaker recovery, ladder thresholds, the approval deadline, the cost check
in ``charge``, and the breaker's opening count.

Each section guards a behaviour that a one-character change in the package could
break while every other test still passed; the mutation each one catches is named
in its docstring.
"""

from __future__ import annotations

import asyncio
import math
from itertools import accumulate
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from windtunnel.orchestrator import (
    ActionApplied,
    ActionCompensated,
    ActionVerified,
    ApprovalDecided,
    Budget,
    BudgetExceeded,
    CostCharged,
    Escalated,
    RunError,
    RunFinished,
    RunResult,
    SqliteStore,
    TransitionTaken,
    VerificationFailed,
    decide,
    resume,
    run,
)
from windtunnel.orchestrator.approvals import Decision
from windtunnel.simulators import Sim, SimulatedCrash

from .safety_kit import (
    Firewall,
    ScriptedSource,
    approval_workflow,
    blocking_workflow,
    charging,
    ladder_decision,
    poll,
    source_tool,
)

PROPERTY = settings(max_examples=60, deadline=None)


def action_story(result: RunResult) -> list[tuple[Any, ...]]:
    """The run's action events, escalations, transitions and end, with their times."""
    told: list[tuple[Any, ...]] = []
    for e in result.trace:
        if isinstance(e, ActionApplied):
            told.append((e.sim_time, "applied", e.attempt, e.from_ledger))
        elif isinstance(e, ActionVerified):
            told.append((e.sim_time, "verified", e.attempts))
        elif isinstance(e, VerificationFailed):
            told.append((e.sim_time, "verification_failed", e.action))
        elif isinstance(e, ActionCompensated):
            told.append((e.sim_time, "compensated", e.ok))
        elif isinstance(e, Escalated):
            told.append((e.sim_time, "escalated", e.trigger, e.to))
        elif isinstance(e, TransitionTaken):
            told.append((e.sim_time, "transition", e.target))
        elif isinstance(e, RunFinished):
            told.append((e.sim_time, "finished", e.status, e.state))
    return told


def action_keys(result: RunResult) -> set[str]:
    return {
        e.key
        for e in result.trace
        if isinstance(e, ActionApplied | ActionVerified | VerificationFailed | ActionCompensated)
    }


# 1. Failed compensation ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("undo_fails", "ok", "rules_left"), [(True, False, {"203.0.113.9"}), (False, True, set())]
)
def test_an_action_that_never_verifies_is_undone_or_reported_not_undone(
    undo_fails: bool, ok: bool, rules_left: set[str]
) -> None:
    """An action whose read-back never shows it is applied twice, then compensated;
    ``action_compensated.ok`` says whether the undo worked, and the run escalates
    either way. Guards against a compensation that raises being reported ok=True."""
    firewall = Firewall(undo_fails=undo_fails)
    sim = Sim(seed=0)
    result = sim.run(run(blocking_workflow(firewall.tool()), env=sim))

    # Applied at t=0, read at 0 and 1; applied again at 1, read at 1 and 2; undone at 2.
    assert action_story(result) == [
        (0.0, "applied", 1, False),
        (1.0, "verification_failed", "reapply"),
        (1.0, "applied", 2, False),
        (2.0, "verification_failed", "compensate"),
        (2.0, "compensated", ok),
        (2.0, "escalated", "verification_failed", "human"),
        (2.0, "transition", "human"),
        (2.0, "finished", "completed", "human"),
    ]
    assert len(action_keys(result)) == 1  # one action throughout, never verified
    assert (firewall.applied, firewall.reads, firewall.undos) == (2, 4, 1)
    assert firewall.rules == rules_left  # a failed undo leaves the change in place: a human must know
    assert (result.status, result.final_state) == ("completed", "human")


def test_without_a_compensation_the_unverified_action_escalates_directly() -> None:
    """No undo declared: verification_failed says ``escalate`` and nothing claims to have
    compensated. Guards the choice of the step after the last failed verification."""
    firewall = Firewall(undo_fails=False)
    sim = Sim(seed=0)
    result = sim.run(run(blocking_workflow(firewall.tool(compensable=False)), env=sim))
    assert action_story(result)[:5] == [
        (0.0, "applied", 1, False),
        (1.0, "verification_failed", "reapply"),
        (1.0, "applied", 2, False),
        (2.0, "verification_failed", "escalate"),
        (2.0, "escalated", "verification_failed", "human"),
    ]
    assert firewall.undos == 0
    assert firewall.rules == {"203.0.113.9"}


@pytest.mark.parametrize(("undo_fails", "ok"), [(True, False), (False, True)])
def test_a_failed_undo_after_a_crash_mid_verification_is_reported(undo_fails: bool, ok: bool) -> None:
    """The process dies during the first read-back; on resume the ledger's unverified
    entry is verified again, undone, and ``ok`` tells whether the undo worked. Guards
    the executor's second compensation site (the resumed path) the same way."""
    firewall = Firewall(undo_fails=undo_fails, crash_on_first_read=True)
    store = SqliteStore(":memory:")
    sim = Sim(seed=0)
    wf = blocking_workflow(firewall.tool(), name="block-durable")
    with pytest.raises(SimulatedCrash):
        sim.run(run(wf, env=sim, store=store, run_id="r-1"))
    assert firewall.applied == 1
    result = sim.run(resume(wf, "r-1", env=sim, store=store))

    # The resumed life goes on where the first stopped — verify, reapply, verify, undo —
    # exactly as a life never killed does.
    assert action_story(result) == [
        (0.0, "applied", 1, False),  # recorded again from the ledger: the first life's event died with it
        (1.0, "verification_failed", "reapply"),
        (1.0, "applied", 2, False),
        (2.0, "verification_failed", "compensate"),
        (2.0, "compensated", ok),
        (2.0, "escalated", "verification_failed", "human"),
        (2.0, "transition", "human"),
        (2.0, "finished", "completed", "human"),
    ]
    assert len(action_keys(result)) == 1
    assert (firewall.applied, firewall.undos) == (2, 1)  # as many as without the crash
    # A failed undo is on record as such, not as an undo.
    assert [e.status for e in store.ledger] == ["compensated" if ok else "undo_failed"]
    assert firewall.rules == (set() if ok else {"203.0.113.9"})


# 2. Circuit breaker recovery --------------------------------------------------------------


def test_intermittent_failures_never_open_the_breaker() -> None:
    """Two failures, a success, two failures...: with failures=3 the breaker never opens,
    because a success resets the count. Guards the reset on success."""
    source = ScriptedSource(".xx" * 4 + ".")
    calls = poll(source_tool(source, failures=3), at=range(13))
    assert [status for _, status, _ in calls] == ["ok", "error", "error"] * 4 + ["ok"]
    assert [attempts for _, _, attempts in calls] == [1] * 13
    assert len(source.attempts) == 13
    assert source.surprises == []


def test_a_success_among_retries_resets_the_count_too() -> None:
    """Each call fails twice and succeeds on its third attempt: 4 calls, 12 attempts,
    all ok, although 8 attempts failed, more than failures=3."""
    source = ScriptedSource("xx." * 4)
    calls = poll(source_tool(source, failures=3, attempts=3), at=[0, 100, 200, 300])
    assert [(status, attempts) for _, status, attempts in calls] == [("ok", 3)] * 4
    assert len(source.attempts) == 12


def test_three_failures_in_a_row_open_the_breaker() -> None:
    """The contrast: ``x`` three times in a row opens it, and the source is not called again."""
    source = ScriptedSource(".xxx")
    calls = poll(source_tool(source, failures=3), at=range(6))
    assert calls == [
        (0.0, "ok", 1),
        (1.0, "error", 1),
        (2.0, "error", 1),
        (3.0, "error", 1),
        (4.0, "unavailable", 0),
        (5.0, "unavailable", 0),
    ]
    assert len(source.attempts) == 4


def test_after_the_cooldown_a_success_closes_the_breaker() -> None:
    """Opened at t=2 until t=62; at t=62 one attempt goes through and succeeds, which
    closes the breaker: two failures after it do not open it again."""
    source = ScriptedSource("xxx" + "." + "xx" + ".")
    calls = poll(source_tool(source, failures=3, cooldown=60.0), at=[0, 1, 2, 3, 61, 62, 63, 64, 65])
    assert calls == [
        (0.0, "error", 1),
        (1.0, "error", 1),
        (2.0, "error", 1),  # the third failure opens it until t=62
        (3.0, "unavailable", 0),
        (61.0, "unavailable", 0),
        (62.0, "ok", 1),  # half-open: one attempt, it succeeds, the breaker closes
        (63.0, "error", 1),
        (64.0, "error", 1),
        (65.0, "ok", 1),
    ]
    assert source.attempts == [0.0, 1.0, 2.0, 62.0, 63.0, 64.0, 65.0]


def test_after_the_cooldown_a_failure_opens_the_breaker_for_another_cooldown() -> None:
    """With 3 attempts per call: the first call's three failures open the breaker at t=3
    (after back-offs of 1 s and 2 s); at t=63 exactly one attempt is let through, fails,
    and opens it until t=123; at t=123 one attempt goes through again."""
    source = ScriptedSource("xxx" + "x" + ".")
    calls = poll(source_tool(source, failures=3, attempts=3, cooldown=60.0), at=[0, 62, 63, 64, 122, 123])
    assert calls == [
        (0.0, "error", 3),
        (62.0, "unavailable", 0),
        (63.0, "error", 1),  # half-open: one attempt, not three
        (64.0, "unavailable", 0),
        (122.0, "unavailable", 0),
        (123.0, "ok", 1),
    ]
    assert source.attempts == [0.0, 1.0, 3.0, 63.0, 123.0]


# 3a. Ladder threshold ---------------------------------------------------------------------


def test_a_confidence_exactly_at_a_nonzero_threshold_stands() -> None:
    """0.85 at a threshold of 0.85 stands; the float just below it escalates.
    Guards ``>=`` (not ``>``) in the ladder's comparison."""
    assert ladder_decision(0.85, 0.85) == "close"
    assert ladder_decision(0.85, math.nextafter(0.85, 0.0)) == "escalate"
    assert ladder_decision(0.85, math.nextafter(0.85, 1.0)) == "close"


unit = st.floats(0.0, 1.0)


@st.composite
def threshold_and_confidence(draw: st.DrawFn) -> tuple[float, float]:
    """A threshold and a confidence, often equal to it or one float either side."""
    threshold = draw(unit)
    near = [threshold, math.nextafter(threshold, 0.0), math.nextafter(threshold, 1.0)]
    return threshold, draw(st.one_of(st.sampled_from(near), unit))


@PROPERTY
@given(threshold_and_confidence())
def test_a_decision_stands_iff_its_confidence_reaches_the_threshold(pair: tuple[float, float]) -> None:
    """Over thresholds and confidences (equal and one float apart included)."""
    threshold, confidence = pair
    expected = "close" if confidence >= threshold else "escalate"
    assert ladder_decision(threshold, confidence) == expected


# 3b. Approval deadline ----------------------------------------------------------------


DECISIONS: tuple[Decision, ...] = ("approve", "reject")


def approval_run(timeout: float) -> tuple[Sim, SqliteStore, str, float]:
    """Start an approval workflow; the sim, store, the paused run's id and the deadline."""
    store = SqliteStore(":memory:")
    sim = Sim(seed=0)
    paused = sim.run(run(approval_workflow(timeout), env=sim, store=store))
    assert paused.status == "paused"
    [request] = store.pending()
    assert (request.requested_at, request.deadline) == (0.0, timeout)
    return sim, store, paused.run_id, request.deadline


def resume_at(sim: Sim, store: SqliteStore, run_id: str, when: float, timeout: float) -> RunResult:
    sim.run(asyncio.sleep(when - sim.now))
    assert sim.now == when
    return sim.run(resume(approval_workflow(timeout), run_id, env=sim, store=store))


def decision_of(result: RunResult) -> tuple[str, str | None, float, str]:
    [decided] = [e for e in result.trace if isinstance(e, ApprovalDecided)]
    return decided.decision, decided.by, decided.waited, decided.next


def test_an_undecided_request_takes_the_fail_safe_exactly_at_its_deadline() -> None:
    """Resumed a float before the deadline, the run still waits; resumed at the deadline,
    it goes to ``on_timeout``'s state (not reject's). Guards ``now < deadline``."""
    sim, store, run_id, deadline = approval_run(600.0)
    early = resume_at(sim, store, run_id, math.nextafter(deadline, 0.0), 600.0)
    assert early.status == "paused"
    at = resume_at(sim, store, run_id, deadline, 600.0)
    assert (at.status, at.final_state) == ("completed", "hold")
    assert decision_of(at) == ("timeout", None, 600.0, "hold")
    assert at.data == {"approval": "timeout", "fail_safe": "hold"}
    with pytest.raises(RunError, match="already decided: timeout"):
        decide(store, f"{run_id}:approve:2", "approve", by="late", at=deadline)


@pytest.mark.parametrize("decision", ["approve", "reject"])
def test_a_decision_at_exactly_the_deadline_counts(decision: Decision) -> None:
    """``decide`` accepts ``at == deadline`` and the run follows the decision, even when
    resumed later. Guards ``at > deadline`` (not ``>=``) in ``decide``."""
    sim, store, run_id, deadline = approval_run(600.0)
    decide(store, f"{run_id}:approve:2", decision, by="alice", at=deadline)
    done = resume_at(sim, store, run_id, deadline + 60, 600.0)
    target = {"approve": "act", "reject": "drop"}[decision]
    assert (done.status, done.final_state) == ("completed", target)
    assert decision_of(done) == (decision, "alice", 600.0, target)


def test_a_decision_just_after_the_deadline_is_refused_and_the_fail_safe_holds() -> None:
    """One float past the deadline: ``decide`` refuses it, and the run takes the fail-safe."""
    sim, store, run_id, deadline = approval_run(600.0)
    late = math.nextafter(deadline, math.inf)
    with pytest.raises(RunError, match="passed its deadline"):
        decide(store, f"{run_id}:approve:2", "approve", by="alice", at=late)
    done = resume_at(sim, store, run_id, late, 600.0)
    assert (done.status, done.final_state) == ("completed", "hold")
    assert decision_of(done)[0] == "timeout"


@st.composite
def timeout_and_time(draw: st.DrawFn) -> tuple[float, float]:
    """A timeout and a time after the request (at t=0), often the deadline or one float
    either side."""
    timeout = draw(st.floats(1.0, 1e6))
    near = [timeout, math.nextafter(timeout, 0.0), math.nextafter(timeout, math.inf)]
    return timeout, draw(st.one_of(st.sampled_from(near), st.floats(0.0, 2 * timeout)))


@PROPERTY
@given(timeout_and_time())
def test_an_undecided_request_waits_iff_its_deadline_is_ahead(pair: tuple[float, float]) -> None:
    """Resumed at any time with no decision: paused before the deadline, the fail-safe from it on."""
    timeout, when = pair
    sim, store, run_id, deadline = approval_run(timeout)
    result = resume_at(sim, store, run_id, when, timeout)
    if when < deadline:
        assert result.status == "paused"
        assert [r.id for r in store.pending()] == [f"{run_id}:approve:2"]
    else:
        assert (result.status, result.final_state) == ("completed", "hold")
        assert decision_of(result) == ("timeout", None, when, "hold")
        assert store.pending() == []


@PROPERTY
@given(timeout_and_time(), st.sampled_from(DECISIONS))
def test_a_decision_counts_iff_it_is_made_by_the_deadline(
    pair: tuple[float, float], decision: Decision
) -> None:
    """A decision made at time ``when`` is accepted and followed iff ``when <= deadline``;
    a later one is refused and the run takes the fail-safe."""
    timeout, when = pair
    sim, store, run_id, deadline = approval_run(timeout)
    sim.run(asyncio.sleep(when))
    expected: tuple[str, str | None, float, str]
    if when <= deadline:
        decide(store, f"{run_id}:approve:2", decision, by="alice", at=sim.now)
        target = {"approve": "act", "reject": "drop"}[decision]
        expected = (decision, "alice", when, target)
    else:
        with pytest.raises(RunError, match="passed its deadline"):
            decide(store, f"{run_id}:approve:2", decision, by="alice", at=sim.now)
        expected = ("timeout", None, when, "hold")
    result = sim.run(resume(approval_workflow(timeout), run_id, env=sim, store=store))
    assert (result.status, result.final_state) == ("completed", expected[3])
    assert decision_of(result) == expected


# 3c. The cost check in charge ---------------------------------------------------------------


def spend(charges: list[float], max_cost: float) -> tuple[RunResult, list[int]]:
    refused: list[int] = []
    sim = Sim(seed=0)
    result = sim.run(run(charging(charges, refused), env=sim, budget=Budget(max_cost=max_cost)))
    return result, refused


def test_charging_exactly_the_budget_does_not_exhaust_it() -> None:
    """0.25 + 0.25 against max_cost=0.5 (exact in binary): no BudgetExhausted, the run
    completes. Guards ``>`` (not ``>=``) in the check inside ``charge`` and in the engine's."""
    result, refused = spend([0.25, 0.25], 0.5)
    assert refused == []
    assert (result.status, result.final_state, result.cost) == ("completed", "done", 0.5)
    assert [e for e in result.trace if isinstance(e, BudgetExceeded)] == []


def test_a_charge_a_float_past_the_budget_exhausts_it_even_when_swallowed() -> None:
    """Exactly max_cost, then one ulp more: the second charge raises BudgetExhausted (and so
    does every later one, a zero included); the handler swallows it and still the run ends
    ``budget_exceeded`` in the ``on_budget`` state, with every charge recorded."""
    ulp = math.ulp(0.5)
    result, refused = spend([0.5, ulp, 0.0], 0.5)
    assert refused == [1, 2]
    assert (result.status, result.final_state) == ("budget_exceeded", "over")
    assert [(e.budget, e.limit, e.used) for e in result.trace if isinstance(e, BudgetExceeded)] == [
        ("cost", 0.5, math.nextafter(0.5, 1.0))
    ]
    assert [e.cost for e in result.trace if isinstance(e, CostCharged)] == [0.5, ulp, 0.0]


@st.composite
def charges_and_budget(draw: st.DrawFn) -> tuple[list[float], float]:
    """Charges and a max_cost, often exactly a running total or one float either side."""
    charges = draw(st.lists(st.floats(0.0, 5.0), min_size=1, max_size=6))
    totals = list(accumulate(charges))  # the same left-to-right float sums as the run's
    near = [
        x for total in totals for x in (total, math.nextafter(total, 0.0), math.nextafter(total, math.inf))
    ]
    return charges, draw(st.one_of(st.sampled_from(near), st.floats(0.0, 30.0)))


@PROPERTY
@given(charges_and_budget())
def test_a_charge_exhausts_the_budget_iff_the_running_total_passes_it(
    pair: tuple[list[float], float],
) -> None:
    """Every charge from the one that takes the running total past max_cost raises
    (and only those); the run ends budget_exceeded iff the final total is past it."""
    charges, max_cost = pair
    totals = list(accumulate(charges))
    result, refused = spend(charges, max_cost)
    assert refused == [i for i, total in enumerate(totals) if total > max_cost]
    assert result.cost == totals[-1]
    if totals[-1] > max_cost:
        assert (result.status, result.final_state) == ("budget_exceeded", "over")
    else:
        assert (result.status, result.final_state) == ("completed", "done")
    assert len([e for e in result.trace if isinstance(e, CostCharged)]) == len(charges)


# 3d. The breaker's opening count -------------------------------------------------------------


@st.composite
def breaker_cases(draw: st.DrawFn) -> tuple[int, int, str]:
    """A breaker's ``failures``, attempts per call, and a script: fewer than ``failures``
    failures, a success, then ``failures`` failures (errors or timeouts) in a row."""
    failures = draw(st.integers(1, 6))
    attempts = draw(st.integers(1, 4))
    failure = st.sampled_from("xt")
    before = draw(st.lists(failure, max_size=failures - 1))
    after = draw(st.lists(failure, min_size=failures, max_size=failures))
    return failures, attempts, "".join(before) + "." + "".join(after)


@PROPERTY
@given(breaker_cases())
def test_the_breaker_opens_after_exactly_n_consecutive_failed_attempts(case: tuple[int, int, str]) -> None:
    """Over ``failures`` settings, retries per call and failure kinds: the breaker opens
    at exactly the N-th consecutive failed attempt, not one early (a success before
    resets the count), not one late. Guards the opening comparison."""
    failures, attempts, script = case
    source = ScriptedSource(script)
    tool = source_tool(source, failures=failures, attempts=attempts, cooldown=1e6)
    calls = poll(tool, at=[1000.0 * i for i in range(len(script) + 1)])
    # Every scripted attempt was made, and not one more: the last failure opened it.
    assert len(source.attempts) == len(script)
    assert source.surprises == []
    assert sum(made for _, _, made in calls) == len(script)
    statuses = [status for _, status, _ in calls]
    assert "unavailable" in statuses
    opened = statuses.index("unavailable")
    assert statuses[opened:] == ["unavailable"] * (len(calls) - opened)
    assert statuses[opened - 1] in ("error", "timeout")
    assert calls[opened][0] > source.attempts[-1]  # opened by the last scripted attempt
