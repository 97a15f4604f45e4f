"""``windtunnel.simulators.loop.sleep``: asyncio.sleep's behaviour, without its cost on a VirtualLoop."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from windtunnel.simulators import HorizonError, VirtualLoop
from windtunnel.simulators.loop import sleep

Sleep = Callable[[float], Awaitable[None]]

# Powers of two, so that sums are exact and timers often fall due together: asyncio leaves
# their order undefined, but it is deterministic, and a skipped sleep must not change it.
DELAYS = st.sampled_from([2.0**k for k in range(-3, 6)])
Plan = list[tuple[str, float]]  # ("sleep" | "timeout" | "cancel" | "spawn" | "churn", seconds)
KINDS = st.sampled_from(["sleep", "sleep", "timeout", "cancel", "spawn", "churn"])
PLANS = st.lists(
    st.lists(st.tuples(KINDS, DELAYS), max_size=6),
    min_size=1,
    max_size=4,
)


def play(plans: list[Plan], pause: Sleep) -> list[tuple[Any, ...]]:
    """What happens when each plan runs in its own task: every step and its simulated time."""
    log: list[tuple[Any, ...]] = []
    tasks: list[asyncio.Task[None]] = []

    def ring(number: int, step: int) -> None:
        log.append((number, step, "timer", asyncio.get_running_loop().time()))

    async def worker(number: int, plan: Plan) -> None:
        loop = asyncio.get_running_loop()
        try:
            for step, (kind, seconds) in enumerate(plan):
                if kind == "sleep":
                    await pause(seconds)
                elif kind == "timeout":
                    try:
                        async with asyncio.timeout(seconds):
                            await pause(seconds * 3)
                    except TimeoutError:
                        log.append((number, step, "timed out", loop.time()))
                elif kind == "cancel":
                    for task in tasks:
                        if task is not asyncio.current_task() and not task.done():
                            task.cancel()
                            break
                elif kind == "spawn":
                    loop.call_later(seconds, ring, number, step)
                else:
                    # Enough cancelled timers for the loop to purge them from its heap.
                    for index in range(120):
                        handle = loop.call_later(seconds * (1 + index % 3), log.append, (number, step, index))
                        if index % 5:
                            handle.cancel()
                log.append((number, step, kind, loop.time()))
        except asyncio.CancelledError:
            log.append((number, "cancelled", loop.time()))
            raise

    async def main() -> None:
        tasks.extend(asyncio.create_task(worker(number, plan)) for number, plan in enumerate(plans))
        await asyncio.gather(*tasks, return_exceptions=True)
        await pause(max((s for plan in plans for _, s in plan), default=1.0) * 4)  # timers left

    loop = VirtualLoop()
    try:
        loop.run_until_complete(main())
        log.append(("end", loop.time()))
    finally:
        loop.close()
    return log


@settings(max_examples=300, deadline=None)
@given(PLANS)
def test_sleep_does_what_asyncio_sleep_does(plans: list[Plan]) -> None:
    assert play(plans, sleep) == play(plans, asyncio.sleep)


def test_a_lone_sleep_moves_the_clock_without_a_timer() -> None:
    async def main() -> int:
        loop = asyncio.get_running_loop()
        await sleep(1.5)
        return len(loop._scheduled)  # type: ignore[attr-defined]

    loop = VirtualLoop()
    assert loop.run_until_complete(main()) == 0
    assert loop.time() == 1.5
    loop.close()


def test_a_pending_cancellation_is_raised_by_the_sleep() -> None:
    async def main() -> str:
        task = asyncio.current_task()
        assert task is not None
        task.cancel()
        try:
            await sleep(10)
        except asyncio.CancelledError:
            return "cancelled"
        return "slept"

    loop = VirtualLoop()
    assert loop.run_until_complete(main()) == "cancelled"
    assert loop.time() == 0.0
    loop.close()


def test_a_sleep_past_the_horizon_raises_as_asyncio_sleep_does() -> None:
    loop = VirtualLoop(horizon=100)
    with pytest.raises(HorizonError):
        loop.run_until_complete(sleep(200))
    loop.close()


@pytest.mark.parametrize("delay", [0, -1.0, 0.0])
def test_zero_and_negative_sleeps_yield_once_and_keep_the_clock(delay: float) -> None:
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    async def main() -> None:
        asyncio.get_running_loop().create_task(other())
        await sleep(delay)
        order.append("main")

    loop = VirtualLoop()
    loop.run_until_complete(main())
    assert (order, loop.time()) == (["other", "main"], 0.0)
    loop.close()


def test_on_another_loop_it_is_asyncio_sleep() -> None:
    asyncio.run(sleep(0.001))
