"""Spending limits of a live experiment: a cost cap checked before each call, and a
client-side rate limiter that honours ``retry-after``.

The cost cap is a reservation: before a call starts, its worst case —
:func:`worst_case_cost`, the prompt's size as input tokens (UTF-8 bytes / 3, more
than any English or JSON prompt tokenizes to) and ``max_tokens`` of output — is
added to what is spent and in flight. When a call ends, its reservation is replaced
by its real cost. If a call's worst case does not fit while other calls are in
flight, it waits for them to end (their real cost is usually far below their worst
case) and tries again; it is refused only when it does not fit with nothing in
flight, and no call starts after that. So the money spent stays under the cap,
with every call in flight, and the cap stops the experiment on real costs, not on
the worst cases of the calls that happened to be in flight.
"""

from __future__ import annotations

import asyncio
import json
import math
import threading
import time
from dataclasses import dataclass

from windtunnel.orchestrator import DEFAULT_PRICES, InvalidArgument, ModelRequest, request_to_api

__all__ = ["CostMeter", "RateLimiter", "Spend", "worst_case_cost"]


def worst_case_cost(request: ModelRequest, *, model: str) -> float:
    """The most ``request`` can cost on ``model``: its bytes / 3 as input tokens, ``max_tokens`` out."""
    price = DEFAULT_PRICES.price(model)
    size = len(json.dumps(request_to_api(request, model=model), ensure_ascii=False).encode())
    return (math.ceil(size / 3) * price.input + request.max_tokens * price.output) / 1e6


@dataclass(frozen=True, slots=True, kw_only=True)
class Spend:
    """Where the money of a live experiment is."""

    spent: float
    """USD of the calls that ended."""
    calls: int
    """Calls that ended (answered or failed)."""
    refused: int
    """Calls refused by the cost cap."""
    max_cost: float | None


class CostMeter:
    """The cost cap: reserves each call's worst case before it starts; thread-safe.

    Example:
        >>> meter = CostMeter(max_cost=0.01)
        >>> meter.reserve(0.006)
        True
        >>> meter.settle(0.006, actual=0.002)  # a call in flight would have made the next wait
        >>> meter.reserve(0.006)
        True
        >>> meter.settle(0.006, actual=0.005)
        >>> meter.reserve(0.006), meter.spend().spent, meter.stopped  # 0.007 + 0.006 > 0.01
        (False, 0.007, True)
    """

    def __init__(self, *, max_cost: float | None = None) -> None:
        if max_cost is not None and not (math.isfinite(max_cost) and max_cost >= 0):
            raise InvalidArgument(f"max_cost={max_cost!r} must be a finite number of USD >= 0, or None")
        self.max_cost = max_cost
        self._settled = threading.Condition()
        self._spent = 0.0
        self._held = 0.0
        self._flying = 0
        self._calls = 0
        self._refused = 0
        self.waiting = 0
        """Calls waiting for calls in flight to end before their worst case is decided."""
        self.stopped = False
        """True once a call was refused (or :meth:`halt` called): no call starts after that."""

    def reserve(self, worst: float) -> bool:
        """Hold ``worst`` USD for a call about to start; False (and stop) if that passes the cap.

        When it passes the cap only with the worst cases of the calls in flight, wait for
        those to settle (blocking this thread) and decide on their real costs.
        """
        with self._settled:
            while not self.stopped and not self._fits(worst, held=self._held):
                if not self._flying:
                    self.stopped = True
                    self._refused += 1
                    break
                self.waiting += 1
                self._settled.notify_all()  # whoever waits for a waiter (see until_waiting)
                try:
                    self._settled.wait()
                finally:
                    self.waiting -= 1
            if self.stopped:
                return False
            self._held += worst
            self._flying += 1
            return True

    def _fits(self, worst: float, *, held: float) -> bool:
        return self.max_cost is None or self._spent + held + worst <= self.max_cost

    def settle(self, reserved: float, *, actual: float) -> None:
        """A call that held ``reserved`` ended and cost ``actual``."""
        with self._settled:
            self._held -= reserved
            self._flying -= 1
            self._spent += actual
            self._calls += 1
            self._settled.notify_all()

    def until_waiting(self, count: int = 1) -> None:
        """Block until ``count`` calls wait for calls in flight (a supervisor's or a
        test's way to know, without polling the clock)."""
        with self._settled:
            self._settled.wait_for(lambda: self.waiting >= count)

    def halt(self) -> None:
        """Start no call from now on (the experiment stops for another reason than the cap)."""
        with self._settled:
            self.stopped = True
            self._settled.notify_all()

    def spend(self) -> Spend:
        """What is spent so far."""
        with self._settled:
            return Spend(spent=self._spent, calls=self._calls, refused=self._refused, max_cost=self.max_cost)


class RateLimiter:
    """Spaces request attempts to ``rpm`` per minute, and pauses them all after a ``retry-after``.

    Lives on the live experiment's I/O loop: :meth:`wait` before every HTTP attempt
    (the SDK's retries included), :meth:`pause` when a 429 or 529 says how long to wait.
    """

    def __init__(self, *, rpm: float | None = None) -> None:
        if rpm is not None and not (math.isfinite(rpm) and rpm > 0):
            raise InvalidArgument(f"rpm={rpm!r} must be a number of requests per minute > 0, or None")
        self.rpm = rpm
        self._next = 0.0  # time.monotonic() before which no attempt starts
        self.paused = 0
        """How many ``retry-after`` answers paused the attempts."""

    async def wait(self) -> None:
        """Wait until the next attempt may start, and claim its slot."""
        while True:
            delay = self._next - time.monotonic()
            if delay <= 0:
                break
            await asyncio.sleep(delay)
        if self.rpm is not None:
            self._next = time.monotonic() + 60.0 / self.rpm

    def pause(self, seconds: float) -> None:
        """No attempt starts in the next ``seconds`` (a ``retry-after``)."""
        self.paused += 1
        self._next = max(self._next, time.monotonic() + seconds)


MAX_RETRY_AFTER = 60.0
"""Seconds: a longer ``retry-after`` pauses the attempts this long at most (a misconfigured
proxy's hour-long value must not hang the experiment)."""


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds from ``retry-after-ms`` or ``retry-after`` (seconds), as the SDK reads them,
    at most :data:`MAX_RETRY_AFTER`.

    >>> retry_after({"retry-after": "3"}), retry_after({"retry-after": "3600"}), retry_after({})
    (3.0, 60.0, None)
    """
    for name, scale in (("retry-after-ms", 1000.0), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is not None:
            try:
                seconds = float(value) / scale
            except ValueError:
                continue
            if math.isfinite(seconds) and seconds >= 0:
                return min(seconds, MAX_RETRY_AFTER)
    return None
