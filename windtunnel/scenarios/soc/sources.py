"""What the SOC's tools share: their arguments, their latency and timeouts, and lookups
in the world that fail loudly for what the world does not hold."""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from windtunnel.orchestrator.errors import InvalidArgument
from windtunnel.orchestrator.tools import Tool
from windtunnel.orchestrator.validation import check_number
from windtunnel.simulators.loop import sleep

from .world import Host, User, World

__all__ = [
    "TIMEOUT",
    "Delay",
    "HostArgs",
    "IpArgs",
    "Latency",
    "SiemQuery",
    "TicketArgs",
    "UserArgs",
    "find_host",
    "find_user",
    "read_tool",
    "record",
]

TIMEOUT = 20.0
"""Seconds one attempt of a tool may take, unless it says otherwise."""
_TIMEOUTS = {"siem_search": 60.0}


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


class Delay:
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
            await sleep(seconds)
        return asyncio.get_running_loop().time()


def record(model: BaseModel) -> dict[str, Any]:
    """The fields of one of the world's records, as a tool answers them."""
    # A pydantic v2 model keeps its fields in __dict__; the world's models forbid
    # extras and hold only scalars, so a copy equals model_dump() at a tenth the cost.
    return model.__dict__.copy()


def read_tool(
    name: str, description: str, args: type[BaseModel], fn: Callable[[Any], Awaitable[Any]]
) -> Tool:
    """A read tool with its timeout."""
    return Tool(
        name=name, description=description, input_model=args, fn=fn, timeout=_TIMEOUTS.get(name, TIMEOUT)
    )


def find_host(world: World, name: str) -> Host:
    host = world.hosts.get(name)
    if host is None:
        raise LookupError(f"unknown host={name!r}: not in the asset inventory")
    return host


def find_user(world: World, name: str) -> User:
    user = world.users.get(name)
    if user is None:
        raise LookupError(f"unknown user={name!r}: not in the identity provider")
    return user
