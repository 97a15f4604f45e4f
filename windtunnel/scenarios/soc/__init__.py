"""The built-in security-operations domain: a SOC world, its tools, the investigation
workflow, the analyst's playbook, and scenario files — the template to copy for a
domain of your own.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from windtunnel.scenarios.domain import Case, Domain
from windtunnel.scenarios.schema import ActionRef

from .playbook import SocPlaybook
from .sources import Latency
from .tools import DEFAULT_LATENCY, READ_TOOLS, SIEM_LIMIT, WRITE_TOOLS, soc_tools
from .workflow import soc_workflow
from .world import Alert, Host, IpInfo, LogEvent, Process, Ticket, User, World

__all__ = [
    "DEFAULT_LATENCY",
    "DOMAIN",
    "READ_TOOLS",
    "SIEM_LIMIT",
    "WRITE_TOOLS",
    "Alert",
    "Host",
    "IpInfo",
    "Latency",
    "LogEvent",
    "Process",
    "SocPlaybook",
    "Ticket",
    "User",
    "World",
    "in_effect",
    "soc_tools",
    "soc_workflow",
]

# Each toggling write tool: the world's set it changes, the argument naming the key,
# and whether the key is in the set once the action is in effect.
_TOGGLES = {
    "block_ip": ("blocklist", "ip", True),
    "unblock_ip": ("blocklist", "ip", False),
    "isolate_host": ("isolated", "host", True),
    "release_host": ("isolated", "host", False),
    "disable_user": ("disabled", "user", True),
    "enable_user": ("disabled", "user", False),
}


def in_effect(world: World, action: ActionRef) -> bool:
    """Whether ``action`` is in effect in ``world``: the state it sets holds (a ticket exists)."""
    if action.tool == "open_ticket":
        title = action.args.get("title")
        return any(title is None or ticket.title == title for ticket in world.tickets)
    name, key, present = _TOGGLES[action.tool]
    return world.has(name, str(action.args[key])) == present  # type: ignore[arg-type]


def _check(case: Case) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """The alert's host, and the hosts and users actions name, exist in the world."""
    world, alert = case.world, case.input
    if alert.host and alert.host not in world.hosts:
        yield ("input", "host"), f"host {alert.host!r} is not in the world; hosts: {sorted(world.hosts)}"
    for section in ("required_actions", "forbidden_actions"):
        for index, action in enumerate(getattr(case.truth, section)):
            for key, known in (("host", world.hosts), ("user", world.users)):
                value = action.args.get(key)
                if value is not None and value not in known:
                    where = ("truth", section, index, "args", key)
                    yield where, f"{key} {value!r} is not in the world; {key}s: {sorted(known)}"


DOMAIN = Domain(
    name="soc",
    description="Security operations: triage and investigate alerts, contain, verify, escalate.",
    world=World,
    input=Alert,
    tools=lambda world, sim: soc_tools(world, rng=sim.rng),
    workflow=soc_workflow,
    playbook=SocPlaybook,
    in_effect=in_effect,
    escalation_states=frozenset({"escalate"}),
    terminal_states=frozenset({"close", "escalated"}),
    escalated_states=frozenset({"escalated"}),
    check=_check,
    scenarios=Path(__file__).with_name("scenarios"),
)
