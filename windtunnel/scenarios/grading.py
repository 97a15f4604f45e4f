"""Grading a run against its scenario's truth: named checks, each pass/fail with a reason.

The generic checks (τ²-bench's reward basis, for orchestration):

- ``completed``: the run ended by reaching a terminal state (not failed, not cancelled);
- ``final_state``: it ended in a state the truth accepts;
- ``escalation``: it reached a human exactly when the truth says one is needed;
- ``required_actions``: each required action was applied, verified, and is in effect at the end;
- ``forbidden_actions``: no forbidden action was applied — at any time, an undo does
  not unsay it — nor is in effect in the final world;
- ``budget``: no budget ran out;

plus the domain's own checks. ``correct`` is all of them passing.

**Truth under faults.** What is right can depend on the faults that fired, and
the grader reads it off the trace, whatever the kinds (a domain's own kinds too):
when the run tried a required action, the action is not in effect at the end, and
faults hit the run's tools (the write never landed, its call timed out, its
read-back could not be made), the action was impossible — escalating to a human
*is* the right outcome, and the run is graded so. When the run tried a required
action under faults on its tool and could not verify it (its read-back failed, or
its outcome stayed unknown, and nothing verified it after), a human must check it,
landed or not; and when a key-evidence source never answered under faults that hit
it, the case could not be decided from the evidence: escalating becomes right too,
beside the outcome the truth states. The verdict names the faults that decided it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from windtunnel.orchestrator import RunResult

from .domain import Case, Check, Domain, GradeInput
from .schema import ActionRef, Truth

__all__ = ["FiredFault", "Verdict", "grade"]

_EMPTY = frozenset({"", "[]", "{}", "null"})


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
    run = _Run.read(domain, events)
    truth = case.truth
    on_tools = [fault for fault in fired if fault.target.startswith("tool:")]
    impossible = _impossible(domain, case, run, on_tools)
    on_models = [fault for fault in fired if fault.target.startswith("tier:")]
    unverified = _unverified(case, run, on_tools)
    undecided = _decision_lost(run, on_models)
    lost = _evidence_lost(truth, run, on_tools) + undecided
    stated = _checks(domain, case, truth, result, run)
    if not impossible and all(check.passed for check in stated):
        return Verdict(checks=stated, correct=True, escalated=run.escalated, needs_human=truth.needs_human)
    if impossible or unverified or lost:
        # ActionRefs hold dicts: compared, not hashed
        stopped = [action for action, _ in [*impossible, *unverified]]
        if undecided:  # the agent never decided to act: what it never tried, a human decides instead
            stopped += [action for action in truth.required_actions if not _tried(action, run)]
        possible = [a for a in truth.required_actions if a not in stopped]
        alternative = truth.model_copy(
            update={
                "needs_human": True,
                "final_states": sorted(domain.escalated_states),
                "required_actions": possible,
            }
        )
        checks = _checks(domain, case, alternative, result, run)
        decided = [*impossible, *unverified, *lost]
        ids = tuple(dict.fromkeys(fault.id for _, faults in decided for fault in faults))
        if impossible or all(check.passed for check in checks):
            correct = all(check.passed for check in checks)
            return Verdict(
                checks=checks, correct=correct, escalated=run.escalated, needs_human=True, decided_by=ids
            )
    return Verdict(checks=stated, correct=False, escalated=run.escalated, needs_human=truth.needs_human)


@dataclass(frozen=True, slots=True, kw_only=True)
class _Run:
    """What the grader reads off a run's events."""

    escalated: bool
    """Whether the run entered an escalation state."""
    writes: tuple[tuple[str, Any], ...]
    """(tool, arguments) of every write call answered ok."""
    calls: dict[str, list[Any]]
    """The ``tool_called`` events, by tool."""
    verified: frozenset[str]
    """Write tools with an action verified (or found already done)."""
    events: tuple[Any, ...]
    """The run's events."""

    @classmethod
    def read(cls, domain: Domain, events: Sequence[Any]) -> _Run:
        write_tools: set[str] = set()
        verified: set[str] = set()
        calls: dict[str, list[Any]] = {}
        escalated = False
        for event in events:  # one pass: the grader reads every run
            kind = event.kind
            if kind == "tool_called":
                calls.setdefault(event.tool, []).append(event)
            elif kind in ("state_entered", "run_resumed"):
                # A resumed run may enter its escalation state in a life whose events died with it.
                escalated = escalated or event.state in domain.escalation_states
            elif kind == "action_applied":
                write_tools.add(event.tool)
                if event.noop:
                    verified.add(event.tool)
            elif kind == "action_unknown":
                write_tools.add(event.tool)
            elif kind == "action_verified":
                verified.add(event.tool)
        # A write is known only once its tool has an action: a second look, at tool calls alone.
        writes = [
            (event.tool, event.input)
            for event in events
            if event.kind == "tool_called" and event.tool in write_tools and event.status == "ok"
        ]
        return cls(
            escalated=escalated,
            writes=tuple(writes),
            calls=calls,
            verified=frozenset(verified),
            events=tuple(events),
        )


def _checks(
    domain: Domain,
    case: Case,
    truth: Truth,
    result: RunResult,
    run: _Run,
) -> tuple[Check, ...]:
    world = case.world
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
    ]
    passed = run.escalated == truth.needs_human
    reason = (
        f"{'reached' if run.escalated else 'did not reach'} a human; "
        f"{'one is' if truth.needs_human else 'none is'} needed"
    )
    checks.append(Check(name="escalation", passed=passed, reason=reason))
    missing = [
        str(action)
        for action in truth.required_actions
        if not (domain.in_effect(world, action) and action.tool in run.verified)
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
    # Forbidden: in effect at the end, or applied at any time (an undo does not unsay it).
    present = [
        str(action)
        for action in truth.forbidden_actions
        if domain.in_effect(world, action) or _made(action, run.writes)
    ]
    checks.append(
        Check(
            name="forbidden_actions",
            passed=not present,
            reason=f"applied or in effect: {', '.join(present)}" if present else "none applied",
        )
    )
    checks.append(
        Check(
            name="budget",
            passed=result.status != "budget_exceeded",
            reason=(result.reason or "ran out") if result.status == "budget_exceeded" else "within budget",
        )
    )
    graded = GradeInput(
        case=replace(case, truth=truth),
        final_state=result.final_state,
        status=result.status,
        data=result.data,
        events=run.events,
    )
    checks.extend(domain.grade(graded))
    return tuple(checks)


def _made(action: ActionRef, writes: Sequence[tuple[str, Any]]) -> bool:
    """Whether ``action`` is among the write calls made (answered ok)."""
    return any(tool == action.tool and _same(given, action.args) for tool, given in writes)


def _same(made: Any, wanted: Any) -> bool:
    """Whether the arguments of a call match an action's: every argument the action
    names has the value it names."""
    return isinstance(made, dict) and all(made.get(key) == value for key, value in wanted.items())


def _impossible(
    domain: Domain, case: Case, run: _Run, faults: Sequence[FiredFault]
) -> list[tuple[ActionRef, list[FiredFault]]]:
    """Required actions the run tried that are not in effect at the end, in a run
    where faults hit its tools: the faults stopped them (a write that never landed,
    a call that timed out, a read-back that could not be made)."""
    if not faults:
        return []
    found = []
    for action in case.truth.required_actions:
        if _tried(action, run) and not domain.in_effect(case.world, action):
            found.append((action, list(faults)))
    return found


def _unverified(
    case: Case, run: _Run, faults: Sequence[FiredFault]
) -> list[tuple[ActionRef, list[FiredFault]]]:
    """Required actions the run tried and could not verify — a failed read-back, an
    outcome left unknown, and never a verification after — under faults on their tool."""
    found = []
    for action in case.truth.required_actions:
        hit = [fault for fault in faults if fault.target == f"tool:{action.tool}"]
        if not hit or action.tool in run.verified or not _tried(action, run):
            continue
        doubted = any(
            event.kind in ("verification_failed", "action_unknown") and event.tool == action.tool
            for event in run.events
        )
        if doubted:
            found.append((action, hit))
    return found


def _tried(action: ActionRef, run: _Run) -> bool:
    """Whether the run called ``action``'s tool with its arguments."""
    return any(_same(call.input, action.args) for call in run.calls.get(action.tool, ()))


def _evidence_lost(
    truth: Truth, run: _Run, faults: Sequence[FiredFault]
) -> list[tuple[str, list[FiredFault]]]:
    """Key-evidence tools that never gave an answer, under faults that hit them."""
    lost = []
    for tool in truth.evidence:
        hit = [fault for fault in faults if fault.target == f"tool:{tool}"]
        answered = [c for c in run.calls.get(tool, ()) if c.status == "ok" and c.output.strip() not in _EMPTY]
        if hit and not answered:
            lost.append((tool, hit))
    return lost


def _decision_lost(run: _Run, faults: Sequence[FiredFault]) -> list[tuple[str, list[FiredFault]]]:
    """States whose agent could not decide — it gave up, or a model call failed for
    good — under faults that hit the models: a human deciding instead is then right."""
    if not faults:
        return []
    lost = [
        event.state
        for event in run.events
        if (event.kind == "agent_nudged" and event.gave_up) or (event.kind == "model_called" and event.error)
    ]
    return [(state, list(faults)) for state in dict.fromkeys(lost)]
