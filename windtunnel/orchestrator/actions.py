"""`ActionSpec`: what a write tool declares about the change it makes.

The resource it touches and the intent it has on it (for leases and conflict
detection), how to tell that the change is already made (precheck), how to read
it back once made (verify), how to undo it (compensate), and whether it is high
impact (which escalates whatever the confidence). A write tool without an action
spec — and so without a verifier — is refused when its registry is built.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

__all__ = ["ActionSpec", "Impact"]

Impact: TypeAlias = Literal["low", "high"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionSpec:
    """The declaration of a write tool's change.

    Each callable takes the tool's validated arguments.

    Example::

        ActionSpec(
            intent="block",
            opposite="unblock",
            resource=lambda args: f"ip:{args.ip}",
            precheck=lambda args: firewall.is_blocked(args.ip),
            verify=lambda args: firewall.is_blocked(args.ip),
            compensate=lambda args: firewall.unblock(args.ip),
        )
    """

    intent: str
    """What the action does to its resource, e.g. ``block``."""
    opposite: str | None
    """The intent that undoes this one, e.g. ``unblock``: the two conflict on a resource."""
    resource: Callable[[Any], str]
    """The resource the call touches, e.g. ``ip:203.0.113.9``."""
    precheck: Callable[[Any], Awaitable[bool]]
    """True when the resource is already in the desired state (the call is a no-op)."""
    verify: Callable[[Any], Awaitable[bool]]
    """Reads the resource back after the call: True when the change is really there."""
    compensate: Callable[[Any], Awaitable[Any]] | None = None
    """Undoes the change; None when it cannot be undone (e.g. a sent notification)."""
    impact: Callable[[Any], Impact] = lambda args: "low"
    """High-impact calls (isolating a critical host) escalate whatever the confidence."""
