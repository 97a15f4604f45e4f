"""What the fuzzer's trials reached, in the spirit of Antithesis's "sometimes" assertions.

A trial *reaches* (state, fault kind, reaction) when a fault of that kind fired in
that state and the orchestrator's next event (model calls and charges aside) was
of the reaction's kind. A pair (state, kind) is *possible* once some trial called,
in that state, a target a fault of that kind can hit — so the report of what was
never reached lists what the fuzzer could have exercised and did not, not every
combination of states and kinds. Generation leans toward targets whose possible
pairs are unreached (:meth:`Coverage.weight`).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence

from windtunnel.orchestrator import (
    ApprovalRequested,
    Event,
    FaultInjected,
    ModelCalled,
    ToolCalled,
    TransitionTaken,
)

__all__ = ["Coverage"]

_QUIET = frozenset({"fault_injected", "model_called", "cost_charged"})
"""Events that are not a reaction to a fault: what follows them is."""


class Coverage:
    """Counts of what trials reached; ``kinds_for(target)`` names the kinds that can hit a target."""

    def __init__(self, kinds_for: Callable[[str], Sequence[str]]) -> None:
        self._kinds_for = kinds_for
        self.reached: Counter[tuple[str, str, str]] = Counter()
        """(state, fault kind, reaction) -> trials' firings that reached it."""
        self._pairs: set[tuple[str, str]] = set()
        self._called: dict[str, set[str]] = {}
        """target -> the states it was called in."""
        self._scenario_calls: dict[str, set[str]] = {}
        """scenario -> the targets its trials called."""
        self._uncalled: dict[str, set[str]] = {}
        """scenario -> targets a fault was aimed at in one of its trials and had no call to fire on."""

    def observe(
        self, events: Sequence[Event], *, scenario: str, calls: Mapping[str, int] | None = None
    ) -> None:
        """Count what one trial of ``scenario`` reached and what it made possible;
        ``calls`` says, per target a fault was aimed at, how many calls it could have
        fired on (a human review leaves no event of its own)."""
        called = self._scenario_calls.setdefault(scenario, set())
        for aimed, count in (calls or {}).items():
            (called if count else self._uncalled.setdefault(scenario, set())).add(aimed)
        for index, event in enumerate(events):
            state = event.state or "-"
            if event.kind == "run_resumed":
                # A crash stops the run dead before it can record itself: the life that
                # resumes is its trace, in the state it died in.
                self.reached[(state, "crash", "run_resumed")] += 1
                self._pairs.add((state, "crash"))
                continue
            if isinstance(event, FaultInjected):
                run_id, later = event.run_id, events[index + 1 :]
                reaction = next((e.kind for e in later if e.run_id == run_id and e.kind not in _QUIET), "-")
                self.reached[(state, event.fault_kind, reaction)] += 1
                self._pairs.add((state, event.fault_kind))
                continue
            target = _target(event)
            if target is not None:
                self._called.setdefault(target, set()).add(state)
                called.add(target)

    def possible(self) -> set[tuple[str, str]]:
        """Every (state, kind) pair some trial could have hit, and those it did."""
        found = set(self._pairs)
        for target, states in self._called.items():
            found.update((state, kind) for kind in self._kinds_for(target) for state in states)
        return found

    def unreached(self) -> list[tuple[str, str]]:
        """(state, kind) pairs that were possible and never reached, sorted."""
        return sorted(self.possible() - self._pairs)

    def ratio(self) -> float:
        """Share of the possible (state, kind) pairs reached (1.0 when none is possible yet)."""
        possible = self.possible()
        return len(self._pairs & possible) / len(possible) if possible else 1.0

    def weight(self, kind: str, target: str, *, scenario: str) -> float:
        """How strongly to pick ``kind`` at ``target`` in a trial of ``scenario``: 1, plus 2
        for each state the target was called in where ``kind`` was never reached; a
        tenth of that when the scenario's trials show the target is not called there
        (a fault there would likely never fire)."""
        states = self._called.get(target, ())
        weight = 1.0 + 2.0 * sum(1 for state in states if (state, kind) not in self._pairs)
        called = self._scenario_calls.get(scenario)
        if called is None or target in called:
            return weight
        # Tool and model calls are events: a trial of the scenario without one says the
        # target is not called there. A human review or a transition leaves none of its
        # own: only a fault aimed there that found no call says so.
        seen = target.startswith(("tool:", "tier:")) or target in self._uncalled.get(scenario, ())
        return weight / 10 if seen else weight


def _target(event: Event) -> str | None:
    """The fault target an event shows being called, if any."""
    if isinstance(event, ToolCalled):
        return f"tool:{event.tool}"
    if isinstance(event, ModelCalled):
        return f"tier:{event.tier}" if event.tier else None
    if isinstance(event, ApprovalRequested):
        return "humans"
    if isinstance(event, TransitionTaken):
        return "run"
    return None
