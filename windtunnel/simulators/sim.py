"""`Sim`: one seed in, every source of nondeterminism out — time, randomness, ids."""

from __future__ import annotations

import asyncio
import hashlib
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

from windtunnel.orchestrator import active_runs
from windtunnel.orchestrator.validation import check_int, check_number

from .loop import DeadlockError, HorizonError, VirtualLoop

__all__ = ["DEFAULT_HORIZON", "Sim", "derive_seed"]

T = TypeVar("T")

_MAX_RUNS = 20  # listed in a deadlock or horizon message; the rest are counted

DEFAULT_HORIZON = 30 * 24 * 3600.0
"""30 simulated days per :meth:`Sim.run` call: far past any investigation, near enough
to end a livelock fast. 960 sequential 45-minute runs fill it: run more in one call
with ``Sim(horizon=...)`` or ``Sim(horizon=None)``, or in several calls."""

_DAY = 24 * 3600.0


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
        seed: every random draw and id derives from it; an int >= 0 (ids such as
            ``run-7-1`` carry it).
        start: the clock's first reading, in simulated seconds.
        horizon: simulated seconds each :meth:`run` call may last before unfinished
            work is an error (:class:`HorizonError`); None for no limit. It counts
            from the start of every call, not of the simulation: a sim reused for
            many calls never runs out, while one call holding many runs may.

        Raises:
            InvalidArgument: for a seed that is not an int >= 0, a start that is not a
                finite number, or a horizon that is not a number > 0 or None.
        """
        check_int("seed", seed, low=0)
        check_number("start", start, finite=True)
        check_number("horizon", horizon, low=0, low_open=True, optional=True)
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

        The clock carries on from where the previous call left it, and the horizon
        counts from it. Raises :class:`DeadlockError` (naming the runs, their states
        and what each task awaits) if the work can never finish, :class:`HorizonError`
        (the same, and how to raise the horizon) if it is still unfinished when the
        horizon has passed.
        """
        horizon = None if self.horizon is None else self._now + self.horizon
        loop = VirtualLoop(
            start=self._now,
            horizon=horizon,
            describe=lambda: _describe_runs(loop),
            horizon_help=self._horizon_help(),
        )
        try:
            return loop.run_until_complete(main)
        finally:
            self._now = loop.time()
            _close(loop)

    def _horizon_help(self) -> str:
        """The last line of a horizon message: where this call's horizon lies, how to move it."""
        if self.horizon is None:
            return ""
        days = f" ({self.horizon / _DAY:g} days)" if self.horizon >= _DAY else ""
        return (
            f"the horizon counts from each Sim.run() call: this one began at t={self._now:.15g}s and may "
            f"last {self.horizon:.15g}s{days}; for longer work pass Sim(horizon=<seconds>), or "
            "Sim(horizon=None) for no limit"
        )


def _describe_runs(loop: asyncio.AbstractEventLoop) -> str:
    runs = list(active_runs(loop).items())
    if not runs:
        return "no workflow run is active"
    lines = [f"  run {run_id!r} is in state {state!r}" for run_id, state in runs[:_MAX_RUNS]]
    if len(runs) > _MAX_RUNS:
        lines.append(f"  ... and {len(runs) - _MAX_RUNS} more runs")
    return "\n".join(lines)


def _close(loop: VirtualLoop) -> None:
    """Cancel what is left (after a deadlock or an error) and close the loop."""
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    try:
        if tasks:
            loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        # Running the loop once more to close no async generator costs ~20 us a run; the
        # loop's set of live ones is private, so without it they are shut down as before.
        if getattr(loop, "_asyncgens", True):
            loop.run_until_complete(loop.shutdown_asyncgens())
    except (DeadlockError, HorizonError):
        # A task that swallows its cancellation and waits again cannot be finished;
        # the original error is already on its way to the caller.
        pass
    finally:
        loop.close()
