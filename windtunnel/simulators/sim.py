"""`Sim`: one seed in, every source of nondeterminism out — time, randomness, ids."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

from windtunnel.orchestrator import active_runs

from .loop import DeadlockError, HorizonError, VirtualLoop

__all__ = ["DEFAULT_HORIZON", "Sim", "derive_seed"]

T = TypeVar("T")

DEFAULT_HORIZON = 30 * 24 * 3600.0
"""30 simulated days: far past any investigation, near enough to end a livelock fast."""


def derive_seed(seed: int, name: str) -> int:
    """A 64-bit seed for the stream ``name``, independent of every other name."""
    digest = hashlib.sha256(f"{seed}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big")


class Sim:
    """A deterministic simulation: virtual clock, named random streams and ids.

    Everything a run could draw from the outside world comes from here, so the same
    seed and the same code give the same trace.

    Example:
        >>> import asyncio
        >>> sim = Sim(seed=7)
        >>> sim.run(asyncio.sleep(2700))
        >>> sim.now
        2700.0
        >>> sim.rng("faults/siem").random() == Sim(seed=7).rng("faults/siem").random()
        True
    """

    def __init__(self, *, seed: int = 0, start: float = 0.0, horizon: float | None = DEFAULT_HORIZON) -> None:
        """Args:
        seed: every random draw and id derives from it.
        start: the clock's first reading, in simulated seconds.
        horizon: simulated seconds one ``run()`` may last before unfinished work is
            an error (:class:`HorizonError`); None for no limit.
        """
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got seed={seed!r}")
        if horizon is not None and not horizon > 0:
            raise ValueError(f"horizon={horizon!r} must be > 0 simulated seconds, or None")
        self.seed = seed
        self.horizon = horizon
        self._now = float(start)
        self._streams: dict[str, random.Random] = {}
        self._counters: dict[str, int] = {}

    def __repr__(self) -> str:
        return f"Sim(seed={self.seed}, now={self._now:g})"

    @property
    def now(self) -> float:
        """Simulated seconds since the simulation started."""
        return self._now

    def rng(self, name: str) -> random.Random:
        """The random stream ``name``: derived from (seed, name), created on first use.

        Each consumer draws from its own stream, so adding one never shifts
        another's draws.
        """
        stream = self._streams.get(name)
        if stream is None:
            stream = self._streams[name] = random.Random(derive_seed(self.seed, name))
        return stream

    def seed_for(self, name: str) -> int:
        """The seed of stream ``name`` (as :meth:`rng` would use), without caching a stream."""
        return derive_seed(self.seed, name)

    def new_id(self, prefix: str) -> str:
        """A new id such as ``run-7-1``: unique within this sim and across seeds."""
        count = self._counters.get(prefix, 0) + 1
        self._counters[prefix] = count
        return f"{prefix}-{self.seed}-{count}"

    def run(self, main: Coroutine[Any, Any, T]) -> T:
        """Run ``main`` to completion in virtual time and return its result.

        The clock carries on from where the previous call left it. Raises
        :class:`DeadlockError` (naming the runs, their states and what each task
        awaits) if the work can never finish, :class:`HorizonError` if it is still
        unfinished when the horizon has passed.
        """
        horizon = None if self.horizon is None else self._now + self.horizon
        loop = VirtualLoop(start=self._now, horizon=horizon, describe=lambda: _describe_runs(loop))
        try:
            return loop.run_until_complete(main)
        finally:
            self._now = loop.time()
            _close(loop)


def _describe_runs(loop: asyncio.AbstractEventLoop) -> str:
    runs = active_runs(loop)
    if not runs:
        return "no workflow run is active"
    return "\n".join(f"  run {run_id!r} is in state {state!r}" for run_id, state in runs.items())


def _close(loop: VirtualLoop) -> None:
    """Cancel what is left (after a deadlock or an error) and close the loop."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    try:
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
    except (DeadlockError, HorizonError):
        # A task that swallows its cancellation and waits again cannot be finished;
        # the original error is already on its way to the caller.
        pass
    finally:
        loop.close()
