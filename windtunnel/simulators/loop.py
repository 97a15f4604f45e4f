"""An asyncio event loop that runs in virtual time.

When no callback is ready, the clock jumps straight to the next timer instead of
waiting for it, so ``asyncio.sleep``, ``asyncio.timeout``, ``asyncio.wait_for`` and
retry back-off cost no wall time. When nothing is ready and no timer is pending
while the awaited coroutine is unfinished, the loop raises :class:`DeadlockError`
instead of hanging.

The loop does no I/O: sockets, subprocesses and threads (``run_in_executor``,
``asyncio.to_thread``) are outside the simulation and are refused. A horizon
bounds simulated time, so that a timer that keeps firing while the work waits
forever ends in :class:`HorizonError` instead of a hang. Work that is merely long
(thousands of 45-minute runs in one call) meets the horizon too: the error says
so, and how to move it.
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import math
from collections.abc import Callable
from typing import Any

from windtunnel.orchestrator.errors import SimulationError

__all__ = ["DeadlockError", "HorizonError", "VirtualLoop", "sleep"]

_MAX_TASKS = 20  # a message listing ten thousand waiting runs helps nobody
_NUMBERS = (float, int)
# asyncio.base_events' thresholds: a loop with more than _PURGE_SIZE timers, over
# _PURGE_SHARE of them cancelled, rebuilds its heap without them.
_PURGE_SIZE = 100
_PURGE_SHARE = 0.5


class DeadlockError(SimulationError):
    """Nothing is ready, no timer is pending, and the awaited work is unfinished."""


class HorizonError(SimulationError):
    """Simulated time passed the loop's horizon with the awaited work unfinished.

    Catches what a deadlock check cannot: a periodic timer (a heartbeat, a polling
    loop) that keeps the clock moving while the work waits forever. Long work that
    is not stuck meets it too; the message says how to raise the horizon.
    """


class _VirtualSelector:
    """Stands in for the loop's selector: "waiting" moves the virtual clock."""

    __slots__ = ("_loop",)

    def __init__(self, loop: VirtualLoop) -> None:
        self._loop = loop

    def select(self, timeout: float | None = None) -> list[Any]:
        loop = self._loop
        if timeout is None:
            # The base loop passes None only when nothing is ready and no timer is
            # scheduled: in a closed simulation nothing can ever wake it again.
            raise DeadlockError(loop.describe_deadlock())
        if timeout > 0:
            # Jump exactly to the earliest timer rather than adding `timeout` to the
            # clock: the addition drifts in floating point (0.1 + 0.2 != 0.3), the
            # assignment lands on the timer's own deadline.
            loop._now = max(loop._now, loop._scheduled[0]._when)  # type: ignore[attr-defined]
            if loop._horizon is not None and loop._now > loop._horizon:
                raise HorizonError(loop.describe_horizon())
        return []

    def close(self) -> None:
        """Nothing to release."""


class VirtualLoop(asyncio.BaseEventLoop):
    """An event loop whose ``time()`` is simulated seconds, starting at ``start``.

    Example:
        >>> loop = VirtualLoop()
        >>> loop.run_until_complete(asyncio.sleep(2700))
        >>> loop.time()
        2700.0
        >>> loop.close()
    """

    def __init__(
        self,
        *,
        start: float = 0.0,
        horizon: float | None = None,
        describe: Callable[[], str] | None = None,
        horizon_help: str = "pass a later VirtualLoop(horizon=...), or horizon=None for no limit",
    ) -> None:
        """Args:
        start: the clock's first reading, in simulated seconds.
        horizon: the simulated time past which unfinished work is an error
            (:class:`HorizonError`); None for no limit.
        describe: adds a line about the work in progress to deadlock and horizon messages.
        horizon_help: the last line of a horizon message: how to raise the horizon.
        """
        super().__init__()
        self._now = float(start)
        self._horizon = horizon
        self._selector = _VirtualSelector(self)
        self._describe = describe
        self._horizon_help = horizon_help
        # Stands for a skipped sleep's timer in the heap (see _skip); never fires.
        self._wake = asyncio.TimerHandle(0.0, _never, (), self)

    # asyncio moves a timer to the ready queue when `when < time() + resolution`.
    # A fixed resolution is absorbed by rounding once time() is large (1e-6 added to
    # 1e12 changes nothing), so timers due "now" would never fire and the loop would
    # spin. Keep the resolution at least one unit in the last place of the clock.
    @property
    def _clock_resolution(self) -> float:
        return _resolution(self._now)

    @_clock_resolution.setter
    def _clock_resolution(self, value: float) -> None:
        """The base class assigns the monotonic clock's resolution; ignore it."""

    def time(self) -> float:
        """The simulated time in seconds."""
        return self._now

    def describe_deadlock(self) -> str:
        """A message naming the simulated time, the tasks left and what they await."""
        return self._describe_work(
            f"deadlock at simulated t={self._now:g}s: nothing is ready and no timer is pending"
        )

    def describe_horizon(self) -> str:
        """A message saying the horizon passed, the work left, and how to raise the horizon."""
        headline = (
            f"simulated time passed the horizon t={_seconds(self._horizon or 0.0)}s with the work "
            f"unfinished (the next timer is at t={_seconds(self._now)}s)"
        )
        return f"{self._describe_work(headline)}\n{self._horizon_help}"

    def _describe_work(self, headline: str) -> str:
        """``headline``, then the work in progress and what each task waits for."""
        lines = [headline]
        if self._describe is not None:
            lines.append(self._describe())
        tasks = sorted((task for task in asyncio.all_tasks(self) if not task.done()), key=_name)
        for task in tasks[:_MAX_TASKS]:
            lines.append(f"  task {task.get_name()!r} waits in {_where(task)}")
        if len(tasks) > _MAX_TASKS:
            lines.append(f"  ... and {len(tasks) - _MAX_TASKS} more tasks")
        return "\n".join(lines)

    def _skip(self, delay: float) -> bool:
        """Move the clock ``delay`` seconds on at once, for the running task's sleep, when
        nothing else could run before the task would wake up; False (nothing done) otherwise.

        Then the sleep's timer would be the first to fire, alone, and the task the only
        work after it: two turns of the loop and a future later, the loop would stand
        where this leaves it. Its timer queue too, to the order of the entries, since
        timers due at the same time fire in the order the heap holds them: the sleep's
        timer is pushed and popped, and the queue tidied as those turns would. Not
        skipped when anything is ready, a timer (even a cancelled one) is due before
        the wake-up or with it, the loop is stopping or in debug mode, the wake-up
        passes the horizon, the loop would purge its cancelled timers first, or the
        task has a cancellation pending (the sleep must raise it).
        """
        # Plain numbers only: anything else takes asyncio's path, errors included.
        if type(delay) not in _NUMBERS or not 0.0 < delay < math.inf:
            return False
        base: Any = self  # asyncio's private state, which typeshed does not declare
        if base._ready or base._stopping or base._debug:
            return False
        when = self._now + delay
        if self._horizon is not None and when > self._horizon:
            return False  # the loop's own path raises HorizonError
        scheduled: list[Any] = base._scheduled
        if _purges(len(scheduled) + 1, base._timer_cancelled_count):  # with the sleep's timer
            return False
        # A timer before `when + resolution` would fire in the same turn as the sleep's, or before it.
        if scheduled and scheduled[0]._when < when + _resolution(when):
            return False
        task: Any = asyncio.current_task(self)
        if task is None or task._must_cancel:
            return False
        wake: Any = self._wake
        wake._when = when
        heapq.heappush(scheduled, wake)
        # The first turn finds it at the head, live: it tidies nothing, fires it alone.
        heapq.heappop(scheduled)
        self._now = when
        self._tidy()  # the second turn, which resumes the task
        return True

    def _tidy(self) -> None:
        """Drop cancelled timers as a turn of the loop does before it waits."""
        base: Any = self
        scheduled: list[Any] = base._scheduled
        if _purges(len(scheduled), base._timer_cancelled_count):
            kept = []
            for handle in scheduled:
                if handle._cancelled:
                    handle._scheduled = False
                else:
                    kept.append(handle)
            heapq.heapify(kept)
            base._scheduled = kept
            base._timer_cancelled_count = 0
        else:
            while scheduled and scheduled[0]._cancelled:
                base._timer_cancelled_count -= 1
                heapq.heappop(scheduled)._scheduled = False

    def run_in_executor(  # type: ignore[override]
        self, executor: Any, func: Callable[..., Any], *args: Any
    ) -> asyncio.Future[Any]:
        """Refused: a thread's work takes real time that the simulation cannot account for."""
        # asyncio.to_thread hands over partial(context.run, func, ...): name the func.
        while isinstance(func, functools.partial):
            func = func.args[0] if func.args and callable(func.args[0]) else func.func
        name = getattr(func, "__qualname__", repr(func))
        raise SimulationError(
            f"run_in_executor({name!r}) is not supported in simulation: threads run outside "
            "virtual time; make the call async, or fake it"
        )

    async def shutdown_default_executor(self, timeout: float | None = None) -> None:
        """No executor is ever started."""

    def _process_events(self, event_list: list[Any]) -> None:
        """No I/O happens in simulation, so there are never events to process."""

    def _write_to_self(self) -> None:
        """No other thread can wake a simulation; nothing to signal."""


async def sleep(delay: float) -> None:
    """Wait ``delay`` seconds, as ``asyncio.sleep(delay)`` does, on any event loop.

    On a :class:`VirtualLoop`, when nothing else could run before the wake-up, it
    just moves the clock: the same result without a future, a timer and two turns of
    the loop, which cost a simulated run more than its model's decisions. A
    simulator's every call waits, so its waits go through here.

    Example:
        >>> loop = VirtualLoop()
        >>> loop.run_until_complete(sleep(90))
        >>> loop.time()
        90.0
        >>> loop.close()
    """
    loop = asyncio.get_running_loop()
    if not (isinstance(loop, VirtualLoop) and loop._skip(delay)):
        await asyncio.sleep(delay)


def _resolution(t: float) -> float:
    """How close to ``t`` a timer counts as due at ``t``: at least one unit in its last place."""
    return max(1e-6, 2.0 * math.ulp(t))


def _purges(timers: int, cancelled: int) -> bool:
    """Whether a turn of the loop rebuilds its heap without its cancelled timers."""
    return timers > _PURGE_SIZE and cancelled / timers > _PURGE_SHARE


def _never() -> None:
    raise AssertionError("a skipped sleep's timer fired")  # pragma: no cover


def _name(task: asyncio.Task[Any]) -> str:
    return task.get_name()


def _seconds(t: float) -> str:
    """Simulated seconds, in full: ``2592000``, not ``2.592e+06``."""
    return f"{t:.15g}"


def _where(task: asyncio.Task[Any]) -> str:
    """The chain of coroutines a task is suspended in, outermost first, and the
    innermost source location, e.g. ``_drive > stuck > wait (asyncio/locks.py:213)``."""
    coro: Any = task.get_coro()
    names: list[str] = []
    location = "not started"
    while coro is not None and getattr(coro, "cr_frame", None) is not None:
        frame = coro.cr_frame
        names.append(frame.f_code.co_name)
        location = f"{frame.f_code.co_filename}:{frame.f_lineno}"
        coro = getattr(coro, "cr_await", None)
    awaiting = f", awaiting {coro!r}" if isinstance(coro, asyncio.Future) else ""
    return f"{' > '.join(names) or '?'} ({location}){awaiting}"
