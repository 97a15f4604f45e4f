"""Grading a run against its scenario's truth: named checks, each pass/fail with a reason.

The generic checks (τ²-bench's reward basis, for orchestration):

- ``completed``: the run ended by reaching a terminal state (not failed, not cancelled);
- ``final_state``: it ended in a state the truth accepts;
- ``escalation``: it reached a human exactly when the truth says one is needed;
- ``required_actions``: each required action was applied, verified, and is in effect at the end;
- ``forbidden_actions``: no forbidden action is in effect in the final world;
- ``budget``: no budget ran out;

plus the domain's own checks. ``correct`` is all of them passing.

**Truth under faults.** What is right can depend on the faults that fired. When a
fault that can stop a write from landing (a silent failure, a conflicting actor,
an error, a timeout, a stale read) fired on a required action's tool and the action
is not in effect at the end, the action was impossible: escalating to a human *is*
the right outcome, and the run is graded so. When every call of a key-evidence
source failed under a fault, the case could not be decided from the evidence:
escalating becomes right too, beside the outcome the truth states. The verdict
names the faults that decided it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from windtunnel.orchestrator import RunResult

from .domain import Case, Check, Domain, GradeInput
from .schema import ActionRef, Truth

__all__ = ["FiredFault", "Verdict", "grade"]

_STOPS_A_WRITE = frozenset({"silent_failure", "conflicting_actor", "error", "timeout", "stale_read"})
_LOSES_EVIDENCE = frozenset({"timeout", "error", "empty_result"})


@dataclass(frozen=True, slots=True, kw_only=True)
class FiredFault:
    """A fault that fired in the run: its id, kind and target."""

    id: str
    kind: str
    target: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Verdict:
    """A run's grade: every check, whether all passed, and what decided the truth."""

    checks: tuple[Check, ...]
    correct: bool
    escalated: bool
    """Whether the run reached a human."""
    needs_human: bool
    """Whether the truth it was graded against needs one."""
    decided_by: tuple[str, ...] = ()
    """Ids of the faults that changed what is right (empty: the truth as stated)."""

    @property
    def failed(self) -> tuple[Check, ...]:
        """The checks that failed."""
        return tuple(check for check in self.checks if not check.passed)

    def __str__(self) -> str:
        head = "CORRECT" if self.correct else "WRONG"
        if self.decided_by:
            head += f" (graded against what is right under faults {', '.join(self.decided_by)})"
        lines = [head]
        lines.extend(f"  {'pass' if c.passed else 'FAIL'} {c.name}: {c.reason}" for c in self.checks)
        return "\n".join(lines)


def grade(domain: Domain, case: Case, result: RunResult, *, fired: Sequence[FiredFault] = ()) -> Verdict:
    """Grade ``result`` against ``case``'s truth — or, when faults made it impossible
    or undecidable, against what is right under them."""
    events = result.trace.query(run_id=result.run_id)
    escalated = any(
        event.kind == "state_entered" and event.state in domain.escalation_states for event in events
    )
    truth = case.truth
    impossible = _impossible(domain, case, fired)
    lost = _evidence_lost(truth, events, fired)
    stated = _checks(domain, case, truth, result, events, escalated)
    if not impossible and all(check.passed for check in stated):
        return Verdict(checks=stated, correct=True, escalated=escalated, needs_human=truth.needs_human)
    decided = impossible or lost
    if decided:
        # A list, not a set: an action's arguments are a dict, so actions do not hash.
        cannot = [action for action, _ in impossible]
        possible = [a for a in truth.required_actions if a not in cannot]
        alternative = _escalation_truth(
            truth, needs_human=True, final_states=sorted(domain.escalated_states), required=possible
        )
        checks = _checks(domain, case, alternative, result, events, escalated)
        ids = tuple(dict.fromkeys(fault.id for _, faults in [*impossible, *lost] for fault in faults))
        if impossible or all(check.passed for check in checks):
            correct = all(check.passed for check in checks)
            return Verdict(
                checks=checks, correct=correct, escalated=escalated, needs_human=True, decided_by=ids
            )
    return Verdict(checks=stated, correct=False, escalated=escalated, needs_human=truth.needs_human)


def _escalation_truth(
    truth: Truth, *, needs_human: bool, final_states: list[str], required: list[ActionRef]
) -> Truth:
    """``truth`` as it stands once faults decided that a human is needed."""
    return truth.model_copy(
        update={"needs_human": needs_human, "final_states": final_states, "required_actions": required}
    )


def _checks(
    domain: Domain, case: Case, truth: Truth, result: RunResult, events: Sequence[Any], escalated: bool
) -> tuple[Check, ...]:
    world = case.world
    verified = {getattr(e, "tool", None) for e in events if e.kind == "action_verified"}
    verified |= {getattr(e, "tool", None) for e in events if e.kind == "action_applied" and e.noop}
    checks = [
        Check(
            name="completed",
            passed=result.status in ("completed", "budget_exceeded"),
            reason=f"the run ended {result.status}" + (f": {result.reason}" if result.reason else ""),
        ),
        Check(
            name="final_state",
            passed=result.final_state in truth.final_states,
            reason=f"ended in {result.final_state!r}; right: {' or '.join(map(repr, truth.final_states))}",
        ),
        Check(
            name="escalation",
            passed=escalated == truth.needs_human,
            reason=(
                f"{'reached' if escalated else 'did not reach'} a human; "
                f"{'one is' if truth.needs_human else 'none is'} needed"
            ),
        ),
    ]
    missing = [
        str(action)
        for action in truth.required_actions
        if not (domain.in_effect(world, action) and action.tool in verified)
    ]
    checks.append(
        Check(
            name="required_actions",
            passed=not missing,
            reason=(
                f"not applied and verified, or not in effect: {', '.join(missing)}"
                if missing
                else f"{len(truth.required_actions)} applied, verified and in effect"
            ),
        )
    )
    present = [str(action) for action in truth.forbidden_actions if domain.in_effect(world, action)]
    checks.append(
        Check(
            name="forbidden_actions",
            passed=not present,
            reason=f"in effect at the end: {', '.join(present)}" if present else "none in effect",
        )
    )
    checks.append(
        Check(
            name="budget",
            passed=result.status != "budget_exceeded",
            reason=result.reason or "within budget"
            if result.status == "budget_exceeded"
            else "within budget",
        )
    )
    graded = GradeInput(
        case=replace(case, truth=truth),
        final_state=result.final_state,
        status=result.status,
        data=result.data,
        events=events,
    )
    checks.extend(domain.grade(graded))
    return tuple(checks)


def _impossible(
    domain: Domain, case: Case, fired: Iterable[FiredFault]
) -> list[tuple[ActionRef, list[FiredFault]]]:
    """Required actions that are not in effect and whose tool a write-stopping fault hit."""
    found = []
    for action in case.truth.required_actions:
        faults = [f for f in fired if f.target == f"tool:{action.tool}" and f.kind in _STOPS_A_WRITE]
        if faults and not domain.in_effect(case.world, action):
            found.append((action, faults))
    return found


def _evidence_lost(
    truth: Truth, events: Sequence[Any], fired: Iterable[FiredFault]
) -> list[tuple[str, list[FiredFault]]]:
    """Key-evidence tools every call of which failed, under a fault that hit them."""
    fired = list(fired)
    lost = []
    for tool in truth.evidence:
        calls = [e for e in events if e.kind == "tool_called" and e.tool == tool]
        faults = [f for f in fired if f.target == f"tool:{tool}" and f.kind in _LOSES_EVIDENCE]
        answered = [c for c in calls if c.status == "ok" and c.output.strip() not in ("", "[]", "{}")]
        if faults and not answered:
            lost.append((tool, faults))
    return lost
