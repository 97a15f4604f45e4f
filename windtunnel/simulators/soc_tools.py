"""The SOC's tools over a simulated :class:`World`: six read sources and seven actions.

Each call waits a latency drawn from its tool's own random stream
(``rng("latency/<tool>")``), in virtual time, then answers from the world as it is
at that moment; writes change the world at that moment too, so a timed-out write
never half-applies. Results are plain dicts and lists (no output validation: these
run millions of times under fuzzing). Faults are not injected here: a fault layer
wraps these tools.

Assumed latencies (lognormal: median, sigma, floor; simulated seconds; each tool's
overridable through ``latency=``) and per-attempt timeouts (fixed; the default
retry policy and circuit breaker apply):

| tools                             | median | sigma | floor | timeout |
|-----------------------------------|--------|-------|-------|---------|
| ``siem_search``                   | 8.0    | 0.5   | 1.0   | 60      |
| ``threat_intel``                  | 1.5    | 0.5   | 0.2   | 20      |
| ``asset_lookup``, ``user_lookup`` | 0.5    | 0.4   | 0.05  | 20      |
| ``edr_process_tree``              | 3.0    | 0.5   | 0.5   | 20      |
| ``firewall_rules``                | 1.0    | 0.4   | 0.1   | 20      |
| every write tool                  | 2.0    | 0.5   | 0.3   | 20      |

With these, a SIEM search outlasts its timeout about 3 times in 100,000 attempts:
a rare natural timeout, retried like any other.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from types import MappingProxyType
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from windtunnel.orchestrator.actions import ActionSpec, Impact
from windtunnel.orchestrator.errors import InvalidArgument
from windtunnel.orchestrator.tools import Tool, ToolRegistry
from windtunnel.orchestrator.validation import check_names, check_number, check_type

from .world import Host, StateSet, Ticket, User, World

__all__ = [
    "DEFAULT_LATENCY",
    "READ_TOOLS",
    "SIEM_LIMIT",
    "WRITE_TOOLS",
    "HostArgs",
    "IpArgs",
    "Latency",
    "SiemQuery",
    "TicketArgs",
    "UserArgs",
    "soc_tools",
]

READ_TOOLS = (
    "siem_search",
    "threat_intel",
    "asset_lookup",
    "user_lookup",
    "edr_process_tree",
    "firewall_rules",
)
"""The read tools' names."""

WRITE_TOOLS = (
    "block_ip",
    "unblock_ip",
    "isolate_host",
    "release_host",
    "disable_user",
    "enable_user",
    "open_ticket",
)
"""The write tools' names; each carries an :class:`ActionSpec`."""

SIEM_LIMIT = 50
"""The most events one SIEM search returns."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Latency:
    """How long one call of a source takes: lognormal around ``median``, never below ``floor``.

    Example:
        >>> Latency(median=2.0, sigma=0.0).draw(random.Random(0))
        2.0
        >>> Latency(median=2.0, sigma=0.5, floor=1.9).draw(random.Random(0)) >= 1.9
        True
    """

    median: float
    """Seconds; half the calls take longer. 0 with ``sigma=0`` means no wait."""
    sigma: float = 0.5
    """Spread of the log of the latency; 0 for a constant ``median``."""
    floor: float = 0.0
    """Seconds no call is faster than."""

    def __post_init__(self) -> None:
        for name in ("median", "sigma", "floor"):
            check_number(f"Latency {name}", getattr(self, name), low=0, finite=True)
        if self.median == 0 and self.sigma > 0:
            raise InvalidArgument(
                f"Latency median=0 needs sigma=0 (a lognormal has no zero), got sigma={self.sigma!r}"
            )

    def draw(self, rng: random.Random) -> float:
        """One call's latency in seconds, drawn from ``rng`` (nothing is drawn when constant)."""
        if self.sigma == 0:
            return max(self.floor, self.median)
        return max(self.floor, rng.lognormvariate(math.log(self.median), self.sigma))


_READ = Latency(median=0.5, sigma=0.4, floor=0.05)
_WRITE = Latency(median=2.0, sigma=0.5, floor=0.3)

DEFAULT_LATENCY: Mapping[str, Latency] = MappingProxyType(
    {
        "siem_search": Latency(median=8.0, sigma=0.5, floor=1.0),
        "threat_intel": Latency(median=1.5, sigma=0.5, floor=0.2),
        "asset_lookup": _READ,
        "user_lookup": _READ,
        "edr_process_tree": Latency(median=3.0, sigma=0.5, floor=0.5),
        "firewall_rules": Latency(median=1.0, sigma=0.4, floor=0.1),
        **dict.fromkeys(WRITE_TOOLS, _WRITE),
    }
)
"""Each tool's assumed latency (see the module docstring)."""

_TIMEOUTS = {"siem_search": 60.0}
_TIMEOUT = 20.0


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class SiemQuery(_Args):
    """Search the SIEM's log events."""

    query: str = Field(description="Case-insensitive text in the event's action or detail; '' for any.")
    host: str | None = Field(None, description="Only events on this host; omit for any.")
    ip: str | None = Field(None, description="Only events with this source or destination address.")
    user: str | None = Field(None, description="Only events of this account; omit for any.")
    hours: int = Field(24, ge=1, le=168, description="How far back to search, in hours.")


class IpArgs(_Args):
    """An IP address."""

    ip: str = Field(min_length=1, description="The address, e.g. 203.0.113.9.")


class HostArgs(_Args):
    """A host by name."""

    host: str = Field(min_length=1, description="The host's name, e.g. web-01.")


class UserArgs(_Args):
    """An account by name."""

    user: str = Field(min_length=1, description="The account's name.")


class TicketArgs(_Args):
    """A ticket to open."""

    title: str = Field(min_length=1, max_length=200, description="One line; tickets are found by title.")
    severity: Literal["low", "medium", "high", "critical"] = Field(description="How urgent it is.")
    body: str = Field("", max_length=10_000, description="What was found and done.")


def soc_tools(
    world: World, *, rng: Callable[[str], random.Random], latency: Mapping[str, Latency] | None = None
) -> ToolRegistry:
    """The SOC's read and write tools acting on ``world``.

    Args:
        world: what the tools read and change.
        rng: the random stream for a name, e.g. ``sim.rng``; each tool draws its
            latency from ``rng("latency/<tool>")``, so calling one never shifts another's draws.
        latency: per-tool overrides of :data:`DEFAULT_LATENCY`.

    Raises:
        InvalidArgument: when ``latency`` names a tool that does not exist, or gives
            something other than a :class:`Latency`.

    Example:
        >>> from windtunnel.simulators import Sim
        >>> sim = Sim(seed=1)
        >>> tools = soc_tools(World(), rng=sim.rng)
        >>> sim.run(tools.get("firewall_rules").fn(IpArgs(ip="203.0.113.9")))
        {'ip': '203.0.113.9', 'blocked': False}
    """
    latencies = dict(DEFAULT_LATENCY)
    if latency:
        check_names("latency", latency, sorted(latencies))
        for name, value in latency.items():
            check_type(f"latency[{name!r}]", value, Latency)
        latencies.update(latency)
    delays = {name: _Delay(name, value, rng) for name, value in latencies.items()}
    return ToolRegistry([*_read_tools(world, delays), *_write_tools(world, delays)])


class _Delay:
    """Waits one call's latency, drawn from the tool's own stream (fetched on first use)."""

    __slots__ = ("_latency", "_name", "_rng", "_stream")

    def __init__(self, name: str, latency: Latency, rng: Callable[[str], random.Random]) -> None:
        self._name = name
        self._latency = latency
        self._rng = rng
        self._stream: random.Random | None = None

    async def __call__(self) -> float:
        """Sleep the drawn latency; return the (simulated) time after it."""
        stream = self._stream
        if stream is None:
            stream = self._stream = self._rng(f"latency/{self._name}")
        seconds = self._latency.draw(stream)
        if seconds > 0:
            await asyncio.sleep(seconds)
        return asyncio.get_running_loop().time()


def _fields(model: BaseModel) -> dict[str, Any]:
    # A pydantic v2 model keeps its fields in __dict__; the world's models forbid
    # extras and hold only scalars, so a copy equals model_dump() at a tenth the cost.
    return model.__dict__.copy()


def _tool(name: str, description: str, args: type[BaseModel], fn: Callable[[Any], Awaitable[Any]]) -> Tool:
    return Tool(
        name=name, description=description, input_model=args, fn=fn, timeout=_TIMEOUTS.get(name, _TIMEOUT)
    )


def _read_tools(world: World, delays: Mapping[str, _Delay]) -> list[Tool]:
    by_time = attrgetter("time")

    async def siem_search(args: SiemQuery) -> list[dict[str, Any]]:
        now = await delays["siem_search"]()
        since = now - args.hours * 3600.0
        # An empty filter means "any": models often send "" for an optional field.
        host, ip, user, text = args.host or None, args.ip or None, args.user or None, args.query.lower()
        hits = [
            event
            for event in world.logs
            # Events after `now` have not happened yet: scenarios may schedule them.
            if since <= event.time <= now
            and (host is None or event.host == host)
            and (ip is None or event.src_ip == ip or event.dst_ip == ip)
            and (user is None or event.user == user)
            and (not text or text in event.action.lower() or text in event.detail.lower())
        ]
        hits.sort(key=by_time, reverse=True)  # stable: ties keep the log's order
        return [_fields(event) for event in hits[:SIEM_LIMIT]]

    async def threat_intel(args: IpArgs) -> dict[str, Any]:
        await delays["threat_intel"]()
        info = world.ips.get(args.ip)
        if info is None:
            return {"ip": args.ip, "reputation": "unknown", "note": ""}
        return {"ip": args.ip, "reputation": info.reputation, "note": info.note}

    async def asset_lookup(args: HostArgs) -> dict[str, Any]:
        now = await delays["asset_lookup"]()
        answer = _fields(_host(world, args.host))
        answer["isolated"] = world.observe("isolated", args.host, now=now)
        return answer

    async def user_lookup(args: UserArgs) -> dict[str, Any]:
        now = await delays["user_lookup"]()
        answer = _fields(_user(world, args.user))
        answer["disabled"] = world.observe("disabled", args.user, now=now)
        return answer

    async def edr_process_tree(args: HostArgs) -> list[dict[str, Any]]:
        await delays["edr_process_tree"]()
        _host(world, args.host)
        procs = sorted((p for p in world.processes if p.host == args.host), key=attrgetter("pid"))
        names = {p.pid: p.name for p in procs}
        tree = []
        for proc in procs:
            entry = _fields(proc)
            entry["parent_name"] = None if proc.parent is None else names.get(proc.parent)
            tree.append(entry)
        return tree

    async def firewall_rules(args: IpArgs) -> dict[str, Any]:
        now = await delays["firewall_rules"]()
        # What the firewall reports, which a stale-read fault can hold back.
        return {"ip": args.ip, "blocked": world.observe("blocklist", args.ip, now=now)}

    return [
        _tool(
            "siem_search",
            "Search SIEM log events (firewall, EDR, identity, proxy, DNS), newest first, "
            f"at most {SIEM_LIMIT}.",
            SiemQuery,
            siem_search,
        ),
        _tool(
            "threat_intel", "Reputation of an IP address and what is known about it.", IpArgs, threat_intel
        ),
        _tool(
            "asset_lookup",
            "A host's inventory record: address, criticality, owner, OS, isolation.",
            HostArgs,
            asset_lookup,
        ),
        _tool(
            "user_lookup",
            "An account's record: role, whether privileged, whether disabled.",
            UserArgs,
            user_lookup,
        ),
        _tool(
            "edr_process_tree",
            "The processes the EDR sees on a host, by pid, with their parents.",
            HostArgs,
            edr_process_tree,
        ),
        _tool("firewall_rules", "Whether the firewall blocks an IP address.", IpArgs, firewall_rules),
    ]


def _host(world: World, name: str) -> Host:
    host = world.hosts.get(name)
    if host is None:
        raise LookupError(f"unknown host={name!r}: not in the asset inventory")
    return host


def _user(world: World, name: str) -> User:
    user = world.users.get(name)
    if user is None:
        raise LookupError(f"unknown user={name!r}: not in the identity provider")
    return user


@dataclass(frozen=True, slots=True, kw_only=True)
class _Toggle:
    """Two write tools that put a key into, and take it out of, one of the world's sets."""

    names: tuple[str, str]
    intents: tuple[str, str]
    set_name: StateSet
    key: str
    """The argument naming the resource; also the resource's kind, e.g. ``ip``."""
    state: str
    """What membership of the set means, e.g. ``blocked``."""
    args: type[BaseModel]
    impact: Callable[[Any], Impact]
    check: Callable[[str], object] | None
    """Raises for a resource the source does not know."""
    descriptions: tuple[str, str]


def _write_tools(world: World, delays: Mapping[str, _Delay]) -> list[Tool]:
    def ip_impact(args: IpArgs) -> Impact:
        return "low"

    def host_impact(args: HostArgs) -> Impact:
        # An unknown host cannot be shown to be harmless to touch: a human decides.
        host = world.hosts.get(args.host)
        return "low" if host is not None and host.criticality in ("low", "medium") else "high"

    def user_impact(args: UserArgs) -> Impact:
        user = world.users.get(args.user)
        return "low" if user is not None and not user.privileged else "high"

    toggles = (
        _Toggle(
            names=("block_ip", "unblock_ip"),
            intents=("block", "unblock"),
            set_name="blocklist",
            key="ip",
            state="blocked",
            args=IpArgs,
            impact=ip_impact,
            check=None,  # any address can be blocked, known to threat intel or not
            descriptions=(
                "Block an IP address at the firewall.",
                "Remove an IP address from the firewall's blocklist.",
            ),
        ),
        _Toggle(
            names=("isolate_host", "release_host"),
            intents=("isolate", "release"),
            set_name="isolated",
            key="host",
            state="isolated",
            args=HostArgs,
            impact=host_impact,
            check=lambda name: _host(world, name),
            descriptions=(
                "Isolate a host from the network through the EDR.",
                "Release a host from EDR network isolation.",
            ),
        ),
        _Toggle(
            names=("disable_user", "enable_user"),
            intents=("disable", "enable"),
            set_name="disabled",
            key="user",
            state="disabled",
            args=UserArgs,
            impact=user_impact,
            check=lambda name: _user(world, name),
            descriptions=(
                "Disable an account in the identity provider.",
                "Re-enable a disabled account in the identity provider.",
            ),
        ),
    )
    tools = [
        _toggle(world, delays[toggle.names[side]], toggle, present=side == 0)
        for toggle in toggles
        for side in (0, 1)
    ]
    return [*tools, _open_ticket(world, delays["open_ticket"])]


def _toggle(world: World, delay: _Delay, toggle: _Toggle, *, present: bool) -> Tool:
    """The tool that puts the key into (``present``) or takes it out of the toggle's set."""
    set_name, key, state, check = toggle.set_name, toggle.key, toggle.state, toggle.check
    get_key = attrgetter(key)
    name, intent, opposite = (
        (toggle.names[0], *toggle.intents) if present else (toggle.names[1], *reversed(toggle.intents))
    )

    async def apply(args: Any) -> dict[str, Any]:
        value: str = get_key(args)
        now = await delay()
        if check is not None:
            check(value)
        world.change(set_name, value, present, at=now)
        return {key: value, state: present}

    async def done(args: Any) -> bool:
        now = asyncio.get_running_loop().time()
        return world.observe(set_name, get_key(args), now=now) == present

    async def undo(args: Any) -> None:
        world.change(set_name, get_key(args), not present, at=asyncio.get_running_loop().time())

    return Tool(
        name=name,
        description=toggle.descriptions[0 if present else 1],
        input_model=toggle.args,
        fn=apply,
        kind="write",
        timeout=_TIMEOUT,
        action=ActionSpec(
            intent=intent,
            opposite=opposite,
            resource=lambda args: f"{key}:{get_key(args)}",
            precheck=done,
            # The world is the source of truth: reading it back is the verification.
            verify=done,
            compensate=undo,
            impact=toggle.impact,
        ),
    )


def _open_ticket(world: World, delay: _Delay) -> Tool:
    async def open_ticket(args: TicketArgs) -> dict[str, Any]:
        await delay()
        taken = {ticket.id for ticket in world.tickets}
        number = len(world.tickets) + 1
        while f"TKT-{number:04d}" in taken:  # a scenario may start with tickets of its own
            number += 1
        ticket = Ticket(id=f"TKT-{number:04d}", title=args.title, severity=args.severity, body=args.body)
        world.tickets.append(ticket)
        return {"id": ticket.id, "title": ticket.title, "severity": ticket.severity}

    async def exists(args: TicketArgs) -> bool:
        return any(ticket.title == args.title for ticket in world.tickets)

    return Tool(
        name="open_ticket",
        description="Open a ticket in case management; returns its id.",
        input_model=TicketArgs,
        fn=open_ticket,
        kind="write",
        timeout=_TIMEOUT,
        action=ActionSpec(
            intent="open_ticket",
            opposite=None,
            resource=lambda args: f"ticket:{args.title}",
            precheck=exists,
            verify=exists,
            compensate=None,
        ),
    )
