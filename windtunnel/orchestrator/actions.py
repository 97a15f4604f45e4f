"""`ActionSpec` and `ActionPolicy`: what a write tool declares about its change, and
how the action executor treats it.

The resource a call touches and the intent it has on it (for leases and conflict
detection), how to tell that the change is already made (precheck), how to read
it back once made (verify), how to undo it (compensate), and whether it is high
impact (which escalates whatever the confidence). A write tool without an action
spec — and so without a verifier — is refused when its registry is built.
"""

from __future__ import annotations

import hashlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .events import ConflictPolicy

__all__ = ["ActionPolicy", "ActionSpec", "Impact", "action_key"]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class ActionPolicy:
    """How the executor verifies, recovers and handles conflicts."""

    verify_attempts: int = 4
    """Read-backs before verification counts as failed."""
    verify_delay: float = 5.0
    """Seconds before the second read-back; doubles each time (stale reads settle)."""
    reapply: int = 1
    """Times the action is applied again after a failed verification."""
    compensate: bool = True
    """Undo an action that never verified, when the tool can."""
    on_conflict: ConflictPolicy = "escalate"
    conflict_wait: float = 300.0
    """For ``on_conflict="wait"``: seconds to wait for the other run's lease."""
    escalate_high_impact: bool = True
    """Escalate before applying a high-impact action that no approval grants."""


def action_key(run_id: str, step: int, tool: str, normalized: str, occurrence: int = 0) -> str:
    """The idempotency key of the ``occurrence``-th call of ``tool`` with ``normalized``
    arguments in step ``step`` of run ``run_id``.

    A step that runs again after a crash keeps its number and makes its calls in the
    same order, so it finds them done; the same call made again — later in the step,
    or in a later step (block, unblock, block again) — is a new action, which the
    precheck judges.
    """
    digest = hashlib.sha256(
        f"{run_id}\x00{step}\x00{tool}\x00{normalized}\x00{occurrence}".encode()
    ).hexdigest()
    return f"{tool}:{digest[:16]}"
