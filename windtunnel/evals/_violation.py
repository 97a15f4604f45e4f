"""`Violation`, what every invariant checker returns, and the grouping of a trace's
events by run that the checkers start from."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from windtunnel.orchestrator import Event

__all__ = ["Violation", "by_run"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Violation:
    """One broken invariant, located in the trace."""

    check: str
    """The checker that found it, e.g. ``"no_action_applied_twice"``."""
    run_id: str
    """The run at fault."""
    seq: int | None
    """The offending event's sequence number in its run; None when no one event is."""
    message: str
    """What happened, naming the action, call, state or budget."""


def by_run(events: Iterable[Event]) -> dict[str, list[Event]]:
    """The events of each run, in the order given, runs in order of first appearance."""
    runs: dict[str, list[Event]] = defaultdict(list)
    for event in events:
        runs[event.run_id].append(event)
    return runs
