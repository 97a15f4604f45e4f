"""`Runtime`: where a run gets its randomness and ids.

The orchestrator never knows whether it is simulated. In production it uses
:class:`SystemRuntime` (OS entropy, UUIDs); under windtunnel's simulator the
``Sim`` plays the same part from one seed. Time always comes from the running
event loop, which the simulator replaces with a virtual clock.
"""

from __future__ import annotations

import hashlib
import os
import random
import uuid
from typing import Protocol

__all__ = ["Runtime", "SystemRuntime"]


class Runtime(Protocol):
    """The sources of nondeterminism a run draws from, other than time."""

    def rng(self, name: str) -> random.Random:
        """The random stream ``name``; the same object on every call with that name."""
        ...

    def new_id(self, prefix: str) -> str:
        """A new unique id starting with ``prefix``."""
        ...

    def seed_for(self, name: str) -> int:
        """A seed for a one-off stream ``name``: the same for the same name, not cached."""
        ...


class SystemRuntime:
    """Production randomness and ids: streams seeded from the OS, UUID4 ids."""

    def __init__(self) -> None:
        self._streams: dict[str, random.Random] = {}
        self._secret = os.urandom(16)

    def rng(self, name: str) -> random.Random:
        """A stream seeded from OS entropy on first use."""
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = random.Random()
        return stream

    def new_id(self, prefix: str) -> str:
        """``prefix`` and a UUID4, e.g. ``run-0f1c...``."""
        return f"{prefix}-{uuid.uuid4().hex}"

    def seed_for(self, name: str) -> int:
        """A seed from the process's secret, stable for ``name`` within this process."""
        return int.from_bytes(hashlib.sha256(self._secret + name.encode()).digest()[:8], "big")
