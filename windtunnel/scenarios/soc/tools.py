"""The SOC's tools over a simulated :class:`World`: six read sources here, seven actions
in :mod:`.writes`.

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

import random
from collections.abc import Callable, Mapping
from operator import attrgetter
from types import MappingProxyType
from typing import Any

from windtunnel.orchestrator.tools import Tool, ToolRegistry
from windtunnel.orchestrator.validation import check_names, check_type

from .sources import (
    Delay,
    HostArgs,
    IpArgs,
    Latency,
    SiemQuery,
    TicketArgs,
    UserArgs,
    find_host,
    find_user,
    read_tool,
    record,
)
from .world import World
from .writes import write_tools

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
    delays = {name: Delay(name, value, rng) for name, value in latencies.items()}
    return ToolRegistry([*_read_tools(world, delays), *write_tools(world, delays)])


def _read_tools(world: World, delays: Mapping[str, Delay]) -> list[Tool]:
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
        return [record(event) for event in hits[:SIEM_LIMIT]]

    async def threat_intel(args: IpArgs) -> dict[str, Any]:
        await delays["threat_intel"]()
        info = world.ips.get(args.ip)
        if info is None:
            return {"ip": args.ip, "reputation": "unknown", "note": ""}
        return {"ip": args.ip, "reputation": info.reputation, "note": info.note}

    async def asset_lookup(args: HostArgs) -> dict[str, Any]:
        now = await delays["asset_lookup"]()
        answer = record(find_host(world, args.host))
        answer["isolated"] = world.observe("isolated", args.host, now=now)
        return answer

    async def user_lookup(args: UserArgs) -> dict[str, Any]:
        now = await delays["user_lookup"]()
        answer = record(find_user(world, args.user))
        answer["disabled"] = world.observe("disabled", args.user, now=now)
        return answer

    async def edr_process_tree(args: HostArgs) -> list[dict[str, Any]]:
        await delays["edr_process_tree"]()
        find_host(world, args.host)
        procs = sorted((p for p in world.processes if p.host == args.host), key=attrgetter("pid"))
        names = {p.pid: p.name for p in procs}
        tree = []
        for proc in procs:
            entry = record(proc)
            entry["parent_name"] = None if proc.parent is None else names.get(proc.parent)
            tree.append(entry)
        return tree

    async def firewall_rules(args: IpArgs) -> dict[str, Any]:
        now = await delays["firewall_rules"]()
        # What the firewall reports, which a stale-read fault can hold back.
        return {"ip": args.ip, "blocked": world.observe("blocklist", args.ip, now=now)}

    return [
        read_tool(
            "siem_search",
            "Search SIEM log events (firewall, EDR, identity, proxy, DNS), newest first, "
            f"at most {SIEM_LIMIT}.",
            SiemQuery,
            siem_search,
        ),
        read_tool(
            "threat_intel", "Reputation of an IP address and what is known about it.", IpArgs, threat_intel
        ),
        read_tool(
            "asset_lookup",
            "A host's inventory record: address, criticality, owner, OS, isolation.",
            HostArgs,
            asset_lookup,
        ),
        read_tool(
            "user_lookup",
            "An account's record: role, whether privileged, whether disabled.",
            UserArgs,
            user_lookup,
        ),
        read_tool(
            "edr_process_tree",
            "The processes the EDR sees on a host, by pid, with their parents.",
            HostArgs,
            edr_process_tree,
        ),
        read_tool("firewall_rules", "Whether the firewall blocks an IP address.", IpArgs, firewall_rules),
    ]
