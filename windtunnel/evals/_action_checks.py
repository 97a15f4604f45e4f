"""Invariant checkers over the write actions of a trace: verified, applied once, not
in conflict. Each checker's docstring defines its invariant exactly;
:mod:`windtunnel.evals.invariants` exports them. Each has a per-run (or, for
conflicts, whole-sequence) part that ``check_all`` calls after grouping the events once.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from windtunnel.orchestrator import ActionApplied, Event

from ._violation import Violation, by_run

__all__ = [
    "applied_twice",
    "conflicting_intents",
    "no_action_applied_twice",
    "no_conflicting_intents",
    "unsettled_writes",
    "writes_verified_or_escalated",
]


def writes_verified_or_escalated(events: Iterable[Event]) -> list[Violation]:
    """Every write a run applied is verified, undone, or escalated before its step ends.

    A write is an ``action_applied`` with ``from_ledger`` and ``noop`` both False (a
    no-op applied nothing; a ledger hit was settled when first applied). It is
    settled by a later ``action_verified`` or ``action_compensated`` (``ok``) of its
    key, or by the run's escalation in the same step: an ``escalated`` event that
    the next transition follows into its ``to`` state (a ladder's escalation from
    one tier to the next moves no run and does not count). It is a violation when
    the step ends — the next ``state_entered`` or ``run_finished`` — with the write
    unsettled. A run cancelled mid-step is not judged on that step, and a trace that
    stops mid-step (a run in progress, a life that died) is not judged on it yet.
    """
    return [
        found
        for run_id, run_events in by_run(events).items()
        for found in unsettled_writes(run_id, run_events)
    ]


def unsettled_writes(run_id: str, run_events: Sequence[Event]) -> list[Violation]:
    """:func:`writes_verified_or_escalated` for one run's events."""
    found: list[Violation] = []
    unsettled: dict[str, ActionApplied] = {}  # key -> its first unsettled application
    for index, event in enumerate(run_events):
        if event.kind == "action_applied":
            if not (event.from_ledger or event.noop):
                unsettled.setdefault(event.key, event)
        elif event.kind == "action_verified" or (event.kind == "action_compensated" and event.ok):
            unsettled.pop(event.key, None)
        elif not unsettled:
            continue
        elif event.kind == "escalated":
            after = run_events[index + 1] if index + 1 < len(run_events) else None
            if (
                after is not None
                and after.kind == "transition"
                and after.reason is not None
                and after.target == event.to
            ):
                unsettled.clear()
        elif event.kind == "state_entered" or event.kind == "run_finished":
            if not (event.kind == "run_finished" and event.status == "cancelled"):
                found.extend(
                    Violation(
                        check="writes_verified_or_escalated",
                        run_id=run_id,
                        seq=applied.seq,
                        message=f"{applied.tool} ({applied.intent}) on {applied.resource} was applied "
                        f"(attempt {applied.attempt}, key {applied.key}) but neither verified, undone nor "
                        f"escalated before its step ended at seq {event.seq}",
                    )
                    for applied in unsettled.values()
                )
            unsettled.clear()
    return found


def no_action_applied_twice(events: Iterable[Event]) -> list[Violation]:
    """No write is applied twice: an idempotency key's applications in a run are
    successive attempts, each one asked for by a failed verification.

    An application is an ``action_applied`` with ``from_ledger`` False; its
    ``attempt`` numbers it. A violation is a non-no-op application of a key that
    (a) repeats an attempt already applied, (b) comes after the precheck recorded the
    key as a no-op, or (c) follows an earlier application without a
    ``verification_failed`` of the key with action ``reapply`` in between, or with a
    lower attempt number. A ``recovered`` application — a crash or a tool error left
    the outcome unknown and reading back found the change — is the read-back settling
    that same application, not a second one: repeating its attempt is no violation
    (the executor applies nothing then).
    """
    return [
        found for run_id, run_events in by_run(events).items() for found in applied_twice(run_id, run_events)
    ]


@dataclass(slots=True)
class _Key:
    """What a run has done with one idempotency key so far."""

    attempts: set[int]
    noop: bool = False
    reapply: bool = False
    """A failed verification asked for another application since the last one."""


def applied_twice(run_id: str, run_events: Sequence[Event]) -> list[Violation]:
    """:func:`no_action_applied_twice` for one run's events."""
    found: list[Violation] = []
    keys: dict[str, _Key] = {}
    for event in run_events:
        if event.kind == "verification_failed":
            if event.action == "reapply" and event.key in keys:
                keys[event.key].reapply = True
            continue
        if event.kind != "action_applied" or event.from_ledger:
            continue
        seen = keys.get(event.key)
        if seen is None:
            keys[event.key] = _Key(attempts=set() if event.noop else {event.attempt}, noop=event.noop)
            continue
        if event.noop:
            seen.noop = True
            continue
        problem = None
        what = f"{event.tool} ({event.intent}) on {event.resource}, key {event.key},"
        if seen.noop:
            problem = f"{what} was applied after the precheck had found it done (a no-op)"
            seen.noop = False  # reported once; what follows is judged against this application
        elif event.attempt in seen.attempts:
            if not event.recovered:
                problem = f"{what} was applied twice as attempt {event.attempt}"
        elif seen.attempts and (not seen.reapply or event.attempt < max(seen.attempts)):
            problem = (
                f"{what} was applied again (attempt {event.attempt}, after attempt {max(seen.attempts)}) "
                "without a failed verification asking for it"
            )
        if problem is not None:
            found.append(
                Violation(check="no_action_applied_twice", run_id=run_id, seq=event.seq, message=problem)
            )
        seen.attempts.add(event.attempt)
        seen.reapply = False
    return found


def no_conflicting_intents(
    events: Iterable[Event], *, opposites: Mapping[str, str | None] | None = None
) -> list[Violation]:
    """No run applies an intent on a resource while another run holds it with a
    conflicting intent — what the store's leases are there to prevent.

    Taken across the runs in ``events``, which must have shared one action store and
    one clock (runs on one event loop, as in a simulation of concurrent runs); a
    single run never conflicts with itself, and runs of separate simulations (each
    ``run_scenario`` on its own) must be checked separately.

    Leases are not recorded, so holds are read from the evidence. A run holds a
    resource with an intent from the first event showing it — its own
    ``action_applied`` (not from the ledger) or ``action_unknown`` on the resource, or
    another run's ``conflict_detected`` naming it the holder — until it finishes.
    Its later events on the resource (the action's verification or undo, a conflict
    it meets) keep the hold in evidence. An event with another intent shows the lease
    renewed: the executor takes the new lease before it records anything, so the old
    intent is held only until its last evidence. A step cut short (``handler_failed``,
    ``budget_exceeded``) may have leased anew without a record, and a life that died
    (``run_resumed`` after a crash) may have lost its leases: the run's holds end at
    their last evidence then, until new evidence. A paused run keeps holding; a run
    whose events stop holds until its last evidence.

    Intents conflict as :func:`~windtunnel.orchestrator.conflicts` says: held intent
    ``h`` and wanted intent ``w`` conflict when ``h != w`` and ``w``'s opposite is
    ``h`` or ``w`` declares none. ``opposites`` maps each intent to the opposite its
    action declares (``{"block": "unblock", "unblock": "block"}``); an intent it does
    not list, or every intent when it is None, is taken to declare none — the strict
    reading: pass the opposites when actions with different, non-opposite intents
    share a resource.

    A violation is an ``action_applied`` (not from the ledger; a no-op too, its lease
    was taken) of one run at a moment — simulated time, then position in ``events`` —
    after the start of another run's hold on the resource with a conflicting intent
    and strictly before its end. Not checked: a dead run's unsettled action, which
    bars every intent (the events do not show the lease flag).
    """
    return conflicting_intents(list(events), opposites)


@dataclass(frozen=True, slots=True)
class _Hold:
    """A run's hold on a resource with one intent: from ``start`` (simulated time,
    position) until ``end`` (simulated time, exclusive)."""

    run_id: str
    intent: str
    start: tuple[float, int]
    end: float


def conflicting_intents(
    events: Sequence[Event], opposites: Mapping[str, str | None] | None = None
) -> list[Violation]:
    """:func:`no_conflicting_intents` over ``events`` as one sequence (positions matter)."""
    first = events[0].run_id if events else ""
    if all(event.run_id == first for event in events):
        return []  # one run, or none: nothing can conflict
    holds = _holds(events)
    found: list[Violation] = []
    for position, event in enumerate(events):
        if event.kind != "action_applied" or event.from_ledger:
            continue
        moment = (event.sim_time, position)
        opposite = None if opposites is None else opposites.get(event.intent)
        for hold in holds.get(event.resource, ()):
            if (
                hold.run_id != event.run_id
                and hold.start < moment
                and event.sim_time < hold.end
                and hold.intent != event.intent
                and (opposite is None or hold.intent == opposite)
            ):
                found.append(
                    Violation(
                        check="no_conflicting_intents",
                        run_id=event.run_id,
                        seq=event.seq,
                        message=f"{event.tool} applied {event.intent!r} on {event.resource} while run "
                        f"{hold.run_id!r} held it to {hold.intent!r}",
                    )
                )
                break
    return found


@dataclass(slots=True)
class _Open:
    """A hold still open: its intent, where it started, and when it was last in evidence."""

    intent: str
    start: tuple[float, int]
    seen: float


def _holds(events: Sequence[Event]) -> dict[str, list[_Hold]]:
    """Every run's holds on every resource, by resource; see :func:`no_conflicting_intents`."""
    holds: dict[str, list[_Hold]] = {}
    open_: dict[str, dict[str, _Open]] = {}  # run -> resource -> its open hold
    intents: dict[str, str] = {}  # idempotency key -> intent (keys name their run)
    last: dict[str, Event] = {}

    def close(run_id: str, resource: str, end: float) -> None:
        hold = open_[run_id].pop(resource)
        holds.setdefault(resource, []).append(_Hold(run_id, hold.intent, hold.start, end))

    def evidence(run_id: str, resource: str, intent: str | None, moment: tuple[float, int]) -> None:
        """``run_id`` held ``resource`` at ``moment``, with ``intent`` (None: whatever it held)."""
        held = open_.setdefault(run_id, {})
        now = held.get(resource)
        if now is not None and (intent is None or intent == now.intent):
            now.seen = moment[0]
            return
        if intent is None:
            return
        if now is not None:
            # The lease changed intent before this event, after the old intent's last evidence.
            close(run_id, resource, now.seen)
        held[resource] = _Open(intent, moment, moment[0])

    for position, event in enumerate(events):
        run_id, moment = event.run_id, (event.sim_time, position)
        if event.kind == "action_applied" or event.kind == "action_unknown":
            intents[event.key] = event.intent
            if event.kind == "action_unknown" or not event.from_ledger:
                evidence(run_id, event.resource, event.intent, moment)
        elif event.kind in ("action_verified", "verification_failed", "action_compensated"):
            evidence(run_id, event.resource, intents.get(event.key), moment)
        elif event.kind == "conflict_detected":
            evidence(run_id, event.resource, None, moment)  # it still holds what it held
            evidence(event.held_by, event.resource, event.held_intent, moment)  # the store saw it
        elif event.kind in ("handler_failed", "budget_exceeded") or (
            event.kind == "run_resumed" and event.status != "paused"
        ):
            # A step cut short may have leased a resource anew before recording anything;
            # a life that died may have lost its leases: what it holds is unknown.
            for resource in list(open_.get(run_id, ())):
                close(run_id, resource, open_[run_id][resource].seen)
        elif event.kind == "run_finished":
            for resource in list(open_.get(run_id, ())):
                close(run_id, resource, event.sim_time)
        last[run_id] = event
    for run_id, held in open_.items():
        final = last.get(run_id)  # None: a holder only other runs' conflicts mention
        paused = final is not None and final.kind == "approval_requested"
        for resource in list(held):
            close(run_id, resource, math.inf if paused else held[resource].seen)
    return holds
