"""Every kill point of a first life x every kill point of a second life, then a clean
final life: the world, the ledger and the trace must come out as if never killed.

Random crash campaigns missed what this finds (a reviewer's sweep found 44 bad
pairs in 6,348 before the executor put every step of an action on record). The
small sweep runs by default; the 8-state, 24-write one is marked ``slow``.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from windtunnel.evals import no_action_applied_twice, trace_complete, writes_verified_or_escalated

from .crash_kit import (
    LARGE,
    SILENT,
    SILENT_LANDS_ON,
    SMALL,
    UNANSWERED,
    UNANSWERED_LANDS_ON,
    Outcomes,
    Plan,
    action_events,
    killed_twice,
    uninterrupted,
)


def pairs(
    tmp: Path, plan: Plan, lands_on: dict[str, int] | None = None
) -> Iterator[tuple[int, int, Outcomes]]:
    """Every (first, second) kill-point pair, with what the run came to."""
    first = 1
    while True:
        once, reached, lived = killed_twice(tmp, plan, first, None, lands_on)
        if reached < first:
            return  # the first life finished before reaching this point: all points done
        yield first, 0, once
        for second in range(1, lived + 1):
            twice, _, _ = killed_twice(tmp, plan, first, second, lands_on)
            yield first, second, twice
        first += 1


def differences(clean: Outcomes, crashed: Outcomes, *, exact: bool) -> list[str]:
    """How a crashed run's outcome differs from the clean one's."""
    found = []
    if crashed.blocked != clean.blocked:
        found.append(f"world {sorted(crashed.blocked)} != {sorted(clean.blocked)}")
    if crashed.ledger != clean.ledger:
        found.append(f"ledger {crashed.ledger} != {clean.ledger}")
    trace, clean_trace = crashed.trace, clean.trace
    if (crashed.status, crashed.final_state) != (clean.status, clean.final_state):
        found.append(f"ended {crashed.status} in {crashed.final_state}, not {clean.final_state}")
    if trace_complete(trace.events):
        found.append(f"trace incomplete: {trace_complete(trace.events)}")
    if exact:
        # Every write landed at its first application, so nothing may be written twice...
        if crashed.writes != clean.writes:
            found.append(f"{crashed.writes} world writes, not {clean.writes}")
        # ...and the trace is the clean one, but for what a crash adds or loses.
        if action_events(trace) != action_events(clean_trace):
            found.append("action events differ")
        recovered = len(trace.query(kind="action_applied", recovered=True))
        calls = len(trace.query(kind="tool_called"))
        if calls + recovered != len(clean_trace.query(kind="tool_called")):
            found.append(f"{calls} tool calls + {recovered} recovered != the clean run's")
        unknown = len(trace.query(kind="action_unknown"))
        if unknown < recovered:
            found.append(f"{recovered} actions recovered but only {unknown} recorded as unknown")
    return found


def sweep(tmp: Path, plan: Plan, lands_on: dict[str, int] | None = None) -> tuple[int, list[str]]:
    clean = uninterrupted(tmp, plan, lands_on)
    count, bad = 0, []
    for first, second, crashed in pairs(tmp, plan, lands_on):
        count += 1
        for difference in differences(clean, crashed, exact=lands_on is None):
            bad.append(f"kill at {first} then {second}: {difference}")
    return count, bad


@pytest.fixture
def fast_dir(tmp_path: Path) -> Iterator[Path]:
    """A directory in memory when the machine has one: thousands of small SQLite files
    are opened and closed, and a killed process's writes are the same in tmpfs."""
    shm = Path("/dev/shm")
    if not shm.is_dir():
        yield tmp_path
        return
    with tempfile.TemporaryDirectory(dir=shm) as path:
        yield Path(path)


def test_every_pair_of_kill_points_small(fast_dir: Path) -> None:
    count, bad = sweep(fast_dir, SMALL)
    assert count > 500  # the sweep really ran (the number is in the closing note)
    assert bad == []


def test_every_pair_of_kill_points_with_silent_failures(fast_dir: Path) -> None:
    # A write that lands only on its second application, and one that never lands:
    # verification, reapplication, compensation and escalation all get killed midway.
    clean = uninterrupted(fast_dir, SILENT, SILENT_LANDS_ON)
    assert clean.final_state == "escalated"
    assert ("block_ip", "ip:never", "compensated", False) in clean.ledger
    (fast_dir / "sweep").mkdir()
    count, bad = sweep(fast_dir / "sweep", SILENT, SILENT_LANDS_ON)
    assert count > 300
    assert bad == []


def test_every_pair_of_kill_points_with_an_unanswered_reapplication(fast_dir: Path) -> None:
    # A write that never shows and whose second application fails outright: the clean
    # run applies, reapplies into the failure, undoes and escalates. A kill that loses
    # the first application's answer makes the failing one the first attempt's again —
    # a failed write, nothing to settle — so each pair is judged by the invariants.
    clean = uninterrupted(fast_dir, UNANSWERED, UNANSWERED_LANDS_ON)
    assert clean.final_state == "escalated"
    assert ("block_ip", "ip:lost", "compensated", False) in clean.ledger
    (fast_dir / "sweep").mkdir()
    count, bad = 0, []
    for first, second, crashed in pairs(fast_dir / "sweep", UNANSWERED, UNANSWERED_LANDS_ON):
        count += 1
        events = crashed.trace.events
        broken = [
            *trace_complete(events),
            *writes_verified_or_escalated(events),
            *no_action_applied_twice(events),
        ]
        lost = [status for _, resource, status, _ in crashed.ledger if resource == "ip:lost"]
        ends = {"compensated": "escalated", "failed": "done"}.get(lost[0]) if len(lost) == 1 else None
        if crashed.final_state != ends:
            broken.append(f"ledger {lost} for ip:lost, ended in {crashed.final_state}")
        bad.extend(f"kill at {first} then {second}: {problem}" for problem in broken)
    assert count > 100
    assert bad == []


@pytest.mark.slow
def test_every_pair_of_kill_points_large(fast_dir: Path) -> None:
    count, bad = sweep(fast_dir, LARGE)
    assert count > 5000
    assert bad == []
