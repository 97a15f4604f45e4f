"""The SOC's write tools: block and unblock an address, isolate and release a host,
disable and enable an account, open a ticket; each with its :class:`ActionSpec`
(the world is the source of truth: reading it back is the verification)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from operator import attrgetter
from typing import Any

from pydantic import BaseModel

from windtunnel.orchestrator.actions import ActionSpec, Impact
from windtunnel.orchestrator.tools import Tool

from .sources import TIMEOUT, Delay, HostArgs, IpArgs, TicketArgs, UserArgs, find_host, find_user
from .world import StateSet, Ticket, World

__all__ = ["write_tools"]


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
    impact: Callable[[World, Any], Impact]
    check: Callable[[World, str], object] | None
    """Raises for a resource the source does not know."""
    descriptions: tuple[str, str]


def _ip_impact(world: World, args: IpArgs) -> Impact:
    return "low"


def _host_impact(world: World, args: HostArgs) -> Impact:
    # An unknown host cannot be shown to be harmless to touch: a human decides.
    host = world.hosts.get(args.host)
    return "low" if host is not None and host.criticality in ("low", "medium") else "high"


def _user_impact(world: World, args: UserArgs) -> Impact:
    user = world.users.get(args.user)
    return "low" if user is not None and not user.privileged else "high"


# The same for every world: built once, not for every run.
_TOGGLES = (
    _Toggle(
        names=("block_ip", "unblock_ip"),
        intents=("block", "unblock"),
        set_name="blocklist",
        key="ip",
        state="blocked",
        args=IpArgs,
        impact=_ip_impact,
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
        impact=_host_impact,
        check=find_host,
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
        impact=_user_impact,
        check=find_user,
        descriptions=(
            "Disable an account in the identity provider.",
            "Re-enable a disabled account in the identity provider.",
        ),
    ),
)


def write_tools(world: World, delays: Mapping[str, Delay]) -> list[Tool]:
    tools = [
        _toggle(world, delays[toggle.names[side]], toggle, present=side == 0)
        for toggle in _TOGGLES
        for side in (0, 1)
    ]
    return [*tools, _open_ticket(world, delays["open_ticket"])]


def _toggle(world: World, delay: Delay, toggle: _Toggle, *, present: bool) -> Tool:
    """The tool that puts the key into (``present``) or takes it out of the toggle's set."""
    set_name, key, state, check = toggle.set_name, toggle.key, toggle.state, toggle.check
    impact = toggle.impact
    get_key = attrgetter(key)
    name, intent, opposite = (
        (toggle.names[0], *toggle.intents) if present else (toggle.names[1], *reversed(toggle.intents))
    )

    async def apply(args: Any) -> dict[str, Any]:
        value: str = get_key(args)
        now = await delay()
        if check is not None:
            check(world, value)
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
        timeout=TIMEOUT,
        action=ActionSpec(
            intent=intent,
            opposite=opposite,
            resource=lambda args: f"{key}:{get_key(args)}",
            precheck=done,
            # The world is the source of truth: reading it back is the verification.
            verify=done,
            compensate=undo,
            impact=lambda args: impact(world, args),
        ),
    )


def _open_ticket(world: World, delay: Delay) -> Tool:
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
        timeout=TIMEOUT,
        action=ActionSpec(
            intent="open_ticket",
            opposite=None,
            resource=lambda args: f"ticket:{args.title}",
            precheck=exists,
            verify=exists,
            compensate=None,
        ),
    )
