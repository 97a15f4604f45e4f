"""Who drives a durable run: owner ids, whether an owner's lease is live, and
whether a run may be claimed for its next life.

An owner is ``host/space:pid:nonce``, where *space* tells apart the process-id
spaces of one host name (a boot, a container's PID namespace). Its lease on a run is
live until it expires on the wall clock — and no longer than its process lives,
where that can be seen: an owner in this very process-id space whose process is
gone holds nothing, as a killed process holds nothing. An owner anywhere else is
trusted until its lease expires.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import socket
import time
from pathlib import Path
from typing import Any

__all__ = ["iso", "new_owner", "owner_alive", "unclaimable"]


def _space() -> str:
    """This process-id space: the boot and the PID namespace, where they can be read."""
    parts = []
    for source in ("/proc/sys/kernel/random/boot_id", "/proc/self/ns/pid"):
        try:
            parts.append(os.readlink(source) if source.endswith("pid") else Path(source).read_text().strip())
        except OSError:
            parts.append("?")
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:8]


_HOST = f"{socket.gethostname()}/{_space()}"
_ENDED = frozenset({"completed", "budget_exceeded", "failed", "cancelled"})


def new_owner() -> str:
    """A new owner id for this process: ``host:pid:nonce``."""
    return f"{_HOST}:{os.getpid()}:{secrets.token_hex(4)}"


def owner_alive(owner: str | None, expires: float, now: float) -> bool:
    """Whether an owner lease is live at wall time ``now``: not expired, and not of a
    process known to be dead."""
    if owner is None or expires <= now:
        return False
    host, _, rest = owner.partition(":")
    pid = rest.partition(":")[0]
    if host != _HOST or not pid.isdigit() or int(pid) == os.getpid():
        return True
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False  # the process that owned it is gone
    except PermissionError:
        return True  # it exists, under another user
    return True


def unclaimable(run_id: str, row: Any, incarnation: int, me: str, now: float) -> str | None:
    """Why the run cannot be claimed for its next life by owner ``me``, or None.

    ``row`` is the run's (incarnation, owner, owner_expires, status), or None.
    """
    if row is None:
        return f"no checkpoint for run_id={run_id!r}"
    current, owner, expires, status = row
    if current != incarnation:
        return f"run {run_id!r} was resumed elsewhere meanwhile (life {current}); it is not resumed twice"
    if status in _ENDED:
        return f"run {run_id!r} already ended ({status}); there is nothing to resume"
    if owner is not None and owner != me and owner_alive(owner, expires, now):
        return (
            f"run {run_id!r} is owned by {owner} until {iso(expires)} (renewed while it runs): it is "
            "not resumed twice. If that process is gone, wait for its lease to expire, or release "
            f"the run: windtunnel runs release STORE {run_id}"
        )
    return None


def iso(wall: float) -> str:
    """A wall-clock time as ISO 8601, UTC, to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall))
