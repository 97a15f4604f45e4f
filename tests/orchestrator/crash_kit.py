"""Systematic crash sweeps: kill a durable run at every point where it touches the
outside world, in one life and then in the next, and compare with a run never killed.

A process can die anywhere, but only its external writes — to the store and to
the world — outlive it, so a death between two writes is the same as a death just
before the second. The kill points are therefore the writes: every store write
(checkpoint, ledger entry, lease, claim, release) and every write to the firewall.
A life killed at point *k* performs writes 1..k-1 and dies on the k-th, without
performing it or anything after (a dead process writes nothing, not even in a
``finally``). The next life starts in a new store object (a new process), on a
lease clock moved past the dead owner's lease.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from windtunnel.orchestrator import (
    ActionPolicy,
    Checkpoint,
    Lease,
    LedgerEntry,
    Outcome,
    SqliteStore,
    StepContext,
    ToolRegistry,
    ToolUseBlock,
    Trace,
    Workflow,
    call_tool,
    resume,
    run,
)
from windtunnel.orchestrator.trace import Record
from windtunnel.simulators import Sim, SimulatedCrash

from .durable_kit import firewall_tools

TTL = 60.0


class Reaper:
    """Counts kill points and kills the life at the chosen one."""

    def __init__(self, kill_at: int | None) -> None:
        self.kill_at = kill_at
        self.points = 0
        self.dead = False

    def point(self, what: str) -> None:
        if self.dead:
            raise SimulatedCrash("a dead process writes nothing")
        self.points += 1
        if self.points == self.kill_at:
            self.dead = True
            raise SimulatedCrash(f"killed at point {self.points}: before {what}")


class CrashingStore(SqliteStore):
    """A store whose every write is a kill point."""

    def __init__(self, path: Path, reaper: Reaper, clock: Any) -> None:
        super().__init__(path, owner_ttl=TTL, clock=clock)
        self.reaper = reaper

    def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
        self.reaper.point(f"checkpoint {checkpoint.status} {checkpoint.state}")
        super().save(checkpoint, records)

    def ledger_put(self, entry: LedgerEntry) -> None:
        self.reaper.point(f"ledger {entry.status} {entry.tool} {entry.resource}")
        super().ledger_put(entry)

    def acquire(self, lease: Lease, *, opposite: str | None) -> Lease | None:
        self.reaper.point(f"lease {lease.resource}")
        return super().acquire(lease, opposite=opposite)

    def release(self, holder: str) -> None:
        self.reaper.point("release")
        super().release(holder)

    def claim(self, run_id: str, incarnation: int) -> None:
        self.reaper.point("claim")
        super().claim(run_id, incarnation)

    def release_owner(self, run_id: str, incarnation: int) -> None:
        self.reaper.point("release owner")
        super().release_owner(run_id, incarnation)


@dataclass
class Firewall:
    """A blocklist in memory — the outside world, which no crash rolls back — that
    counts its writes. ``lands_on`` makes an address's block land only on its n-th
    application (0: never): a silent failure; -n: never, and its n-th application
    fails outright (an error, as a timeout would answer). With ``log``, every write is also
    appended to that file, and the blocklist is read from it: a world that other
    processes share."""

    reaper: Reaper | None = None
    lands_on: dict[str, int] | None = None
    log: Path | None = None

    def __post_init__(self) -> None:
        self._blocked: set[str] = set()
        self._writes = 0
        self.tried: dict[str, int] = {}

    @property
    def blocked(self) -> set[str]:
        if self.log is None:
            return self._blocked
        blocked: set[str] = set()
        for line in self.lines():
            verb, ip = line.split()
            (blocked.add if verb == "block" else blocked.discard)(ip)
        return blocked

    @property
    def writes(self) -> int:
        return self._writes if self.log is None else len(self.lines())

    def lines(self) -> list[str]:
        assert self.log is not None
        return self.log.read_text().splitlines() if self.log.exists() else []

    def set(self, ip: str, present: bool) -> None:
        verb = "block" if present else "unblock"
        if self.reaper is not None:
            self.reaper.point(f"world {verb} {ip}")
        self._writes += 1
        if present and self.lands_on and ip in self.lands_on:
            self.tried[ip] = self.tried.get(ip, 0) + 1
            if self.tried[ip] == -self.lands_on[ip]:
                raise ConnectionError(f"firewall did not answer blocking {ip}")
            if self.tried[ip] != self.lands_on[ip]:
                return  # said done, did nothing
        if self.log is not None:
            with self.log.open("a") as file:  # one short append: atomic between processes
                file.write(f"{verb} {ip}\n")
        (self._blocked.add if present else self._blocked.discard)(ip)

    def registry(self) -> ToolRegistry:
        return firewall_tools(lambda ip: ip in self.blocked, self.set)


Plan = list[list[tuple[str, str]]]
"""The write calls of each state, in order: (tool, address)."""

SMALL: Plan = [
    [("block_ip", "a"), ("block_ip", "b")],
    [("unblock_ip", "a"), ("block_ip", "c")],
    [("block_ip", "a"), ("unblock_ip", "b")],
]
LARGE: Plan = [
    [("block_ip", "a"), ("block_ip", "b"), ("unblock_ip", "a")],
    [("block_ip", "a"), ("block_ip", "c"), ("unblock_ip", "b")],
    [("unblock_ip", "a"), ("block_ip", "a"), ("block_ip", "a")],
    [("block_ip", "b"), ("unblock_ip", "c"), ("block_ip", "d")],
    [("unblock_ip", "d"), ("block_ip", "e"), ("unblock_ip", "a")],
    [("block_ip", "c"), ("unblock_ip", "e"), ("block_ip", "a")],
    [("unblock_ip", "b"), ("block_ip", "d"), ("unblock_ip", "c")],
    [("block_ip", "e"), ("unblock_ip", "a"), ("block_ip", "b")],
]
SILENT: Plan = [
    [("block_ip", "a"), ("block_ip", "flaky")],  # lands on its second application
    [("unblock_ip", "a"), ("block_ip", "never")],  # never lands: compensated, escalated
]
SILENT_LANDS_ON = {"flaky": 2, "never": 0}
UNANSWERED: Plan = [
    [("block_ip", "a"), ("block_ip", "lost")],  # never lands; its reapplication fails outright
    [("unblock_ip", "a")],
]
UNANSWERED_LANDS_ON = {"lost": -2}


def workflow(firewall: Firewall, plan: Plan) -> Workflow:
    tools = firewall.registry()
    states = [f"s{i + 1}" for i in range(len(plan))]
    chain = [*states, "done"]

    def act(index: int) -> Any:
        async def handler(ctx: StepContext) -> Outcome:
            for name, ip in plan[index]:
                use = ToolUseBlock(id=ctx.new_id("call"), name=name, input={"ip": ip})
                await call_tool(ctx, tools, [name], use)
            await asyncio.sleep(30.0)
            return Outcome(next=chain[index + 1])

        return handler

    async def escalate(ctx: StepContext) -> Outcome:
        return Outcome(next="escalated")

    return Workflow(
        name="sweep",
        states={**{state: act(i) for i, state in enumerate(states)}, "escalate": escalate},
        transitions={**{state: [chain[i + 1]] for i, state in enumerate(states)}, "escalate": ["escalated"]},
        initial="s1",
        terminal=["done", "escalated"],
        escalate_to="escalate",
        actions=ActionPolicy(verify_attempts=2, verify_delay=1.0),
    )


@dataclass
class Outcomes:
    """What a run left behind: the world, the ledger and the trace."""

    blocked: set[str]
    writes: int
    ledger: list[tuple[str, str, str, bool]]
    trace: Trace
    status: str
    final_state: str


def uninterrupted(tmp: Path, plan: Plan, lands_on: dict[str, int] | None = None) -> Outcomes:
    firewall = Firewall(lands_on=dict(lands_on or {}))
    store = SqliteStore(tmp / "clean.sqlite")
    sim = Sim(seed=3)
    result = sim.run(run(workflow(firewall, plan), env=sim, store=store))
    ledger = [(e.tool, e.resource, e.status, e.verified) for e in store.ledger]
    store.close()
    return Outcomes(
        firewall.blocked, firewall.writes, ledger, result.trace, result.status, result.final_state
    )


def killed_twice(
    tmp: Path, plan: Plan, first: int | None, second: int | None, lands_on: dict[str, int] | None = None
) -> tuple[Outcomes, int, int]:
    """Kill the first life at point ``first``, the second at ``second`` (None: let it
    finish), then let a third finish. Returns the outcome and the points each of the
    first two lives reached."""
    path = tmp / f"sweep-{first}-{second}.sqlite"
    clock = _Clock()
    firewall = Firewall(lands_on=dict(lands_on or {}))
    sim = Sim(seed=3)
    wf = workflow(firewall, plan)
    reached = [0, 0]
    run_id = "run-3-1"
    for life, kill_at in enumerate((first, second, None)):
        reaper = Reaper(kill_at)
        firewall.reaper = reaper
        store = CrashingStore(path, reaper, clock)
        checkpoint = store.load(run_id)
        try:
            if checkpoint is None:  # killed before its first checkpoint: start over
                sim.run(run(wf, env=sim, store=store, run_id=run_id))
            elif checkpoint.status in ("running", "paused"):
                sim.run(resume(wf, run_id, env=sim, store=store))
        except SimulatedCrash:
            pass
        if life < 2:
            reached[life] = reaper.points
        store.close()
        clock.now += TTL + 1  # the dead owner's lease lapses
    store = SqliteStore(path)
    checkpoint = store.load(run_id)
    assert checkpoint is not None
    assert checkpoint.status not in ("running", "paused"), "the last life was not killed: it must finish"
    ledger = [(e.tool, e.resource, e.status, e.verified) for e in store.ledger]
    trace = Trace.from_events(store.events(run_id))
    store.close()
    ended = Outcomes(firewall.blocked, firewall.writes, ledger, trace, checkpoint.status, checkpoint.state)
    return ended, reached[0], reached[1]


class _Clock:
    """A wall clock for leases that a test moves by hand."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


RECOVERY = {"run_resumed", "action_unknown", "tool_called"}
"""Events a crash legitimately adds (``run_resumed``, ``action_unknown``) or loses
(``tool_called`` of an action that landed in a dead life, its answer lost): left out
when traces are compared, and checked on their own."""


def action_events(trace: Trace) -> list[tuple[str, str | None]]:
    """The trace as (kind, key or state), without the events a crash adds or loses."""
    return [
        (event.kind, getattr(event, "key", None) or event.state)
        for event in trace
        if event.kind not in RECOVERY
    ]
