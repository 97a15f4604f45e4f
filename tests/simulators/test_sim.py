"""The simulation kernel: virtual time, named random streams, ids, deadlocks."""

from __future__ import annotations

import asyncio
import math
import re
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import pytest

from windtunnel import Outcome, Sim, StepContext, Workflow, run
from windtunnel.orchestrator import InvalidArgument
from windtunnel.simulators import DeadlockError, HorizonError, VirtualLoop, derive_seed


def test_45_minute_sleep_ends_at_exactly_2700_seconds() -> None:
    sim = Sim(seed=0)
    sim.run(asyncio.sleep(2700))
    assert sim.now == 2700.0


def test_sleeps_land_on_their_deadlines_without_drift() -> None:
    async def steps() -> list[float]:
        loop = asyncio.get_running_loop()
        seen = []
        for _ in range(45):
            await asyncio.sleep(60)
            seen.append(loop.time())
        return seen

    sim = Sim(seed=0)
    assert sim.run(steps()) == [60.0 * (i + 1) for i in range(45)]
    assert sim.now == 2700.0


def test_timeout_and_wait_for_run_in_simulated_time() -> None:
    async def main() -> tuple[float, float]:
        loop = asyncio.get_running_loop()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(30):
                await asyncio.sleep(3600)
        after_timeout = loop.time()
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(loop.create_future(), timeout=5)
        return after_timeout, loop.time()

    assert Sim(seed=0).run(main()) == (30.0, 35.0)


@pytest.mark.parametrize("start", [1e9, 1e12, 1e15])
def test_timers_still_fire_at_large_simulated_times(start: float) -> None:
    async def main() -> None:
        await asyncio.sleep(1)
        await asyncio.sleep(1e-3)
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(asyncio.get_running_loop().create_future(), timeout=5)
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(5):
                await asyncio.sleep(60)

    sim = Sim(seed=0, start=start)
    sim.run(main())
    assert sim.now >= start + 11


def test_clock_carries_over_between_runs() -> None:
    sim = Sim(seed=0)
    sim.run(asyncio.sleep(10))
    sim.run(asyncio.sleep(5))
    assert sim.now == 15.0


def test_streams_are_reproducible_and_independent() -> None:
    a, b = Sim(seed=3), Sim(seed=3)
    # Drawing from another stream first does not shift this one's draws.
    b.rng("tools/siem").random()
    assert [a.rng("faults").random() for _ in range(3)] == [b.rng("faults").random() for _ in range(3)]
    assert a.rng("faults") is a.rng("faults")
    assert Sim(seed=4).rng("faults").random() != Sim(seed=3).rng("faults").random()
    assert derive_seed(3, "faults") != derive_seed(3, "fault")


def test_ids_are_deterministic_and_per_prefix() -> None:
    sim = Sim(seed=9)
    assert [sim.new_id("run"), sim.new_id("alert"), sim.new_id("run")] == ["run-9-1", "alert-9-1", "run-9-2"]


@pytest.mark.parametrize("seed", [1.5, "7", True, None, -1])
def test_seed_must_be_an_int_at_least_0(seed: object) -> None:
    with pytest.raises(InvalidArgument) as raised:
        Sim(seed=seed)  # type: ignore[arg-type]
    assert str(raised.value) == f"seed={seed!r} must be an int >= 0"


def test_seed_0_and_large_seeds_make_distinct_well_formed_ids() -> None:
    assert Sim(seed=0).new_id("run") == "run-0-1"
    assert Sim(seed=2**64).new_id("run") == f"run-{2**64}-1"


def test_deadlock_raises_naming_the_run_and_state() -> None:
    async def stuck(ctx: StepContext) -> Outcome:
        await asyncio.Event().wait()
        return Outcome(next="done")

    wf = Workflow(
        states={"investigate": stuck},
        transitions={"investigate": ["done"]},
        initial="investigate",
        terminal=["done"],
    )
    sim = Sim(seed=2)
    with pytest.raises(DeadlockError) as info:
        sim.run(run(wf, env=sim, run_id="run-stuck"))
    message = str(info.value)
    assert message.startswith("deadlock at simulated t=0s: nothing is ready and no timer is pending")
    assert "run 'run-stuck' is in state 'investigate'" in message
    assert "waits in run > drive > stuck > wait (" in message  # where the task waits


def test_deadlock_outside_a_run() -> None:
    async def main() -> None:
        await asyncio.sleep(3)
        await asyncio.get_running_loop().create_future()

    sim = Sim(seed=0)
    with pytest.raises(DeadlockError, match=r"t=3s.*\n.*no workflow run is active"):
        sim.run(main())
    # The sim is still usable afterwards.
    sim.run(asyncio.sleep(1))
    assert sim.now == 4.0


def test_virtual_loop_can_be_used_directly() -> None:
    loop = VirtualLoop(start=100.0)
    try:
        loop.run_until_complete(asyncio.sleep(50))
        assert loop.time() == 150.0
    finally:
        loop.close()


def test_threads_are_refused_not_deadlocked() -> None:
    import time

    from windtunnel.orchestrator import SimulationError

    with pytest.raises(SimulationError, match=r"run_in_executor\('sleep'\) is not supported in simulation"):
        Sim(seed=0).run(asyncio.to_thread(time.sleep, 0.01))


def test_a_heartbeat_cannot_hide_a_hang_past_the_horizon() -> None:
    async def heartbeat() -> None:
        while True:
            await asyncio.sleep(60)

    async def main() -> None:
        beat = asyncio.create_task(heartbeat())
        try:
            await asyncio.get_running_loop().create_future()  # waits forever
        finally:
            beat.cancel()

    sim = Sim(seed=0, horizon=3600)
    with pytest.raises(HorizonError) as raised:
        sim.run(main())
    assert str(raised.value).splitlines()[0] == (
        "simulated time passed the horizon t=3600s with the work unfinished (the next timer is at t=3660s)"
    )
    assert sim.now == 3660.0


async def forty_five_minutes(ctx: StepContext) -> Outcome:
    await asyncio.sleep(2700)
    return Outcome(next="done")


LONG = Workflow(
    states={"work": forty_five_minutes}, transitions={"work": ["done"]}, initial="work", terminal=["done"]
)


def sequential_runs(sim: Sim, count: int, finished: list[str]) -> Coroutine[Any, Any, None]:
    async def runs() -> None:
        for _ in range(count):
            finished.append((await run(LONG, env=sim)).run_id)

    return runs()


def test_many_runs_in_one_call_pass_the_horizon_with_a_message_that_says_so_and_how_to_raise_it() -> None:
    sim, finished = Sim(seed=0), []  # the default horizon: 30 days, 960 runs of 45 minutes
    with pytest.raises(HorizonError) as raised:
        sim.run(sequential_runs(sim, 10_000, finished))
    assert len(finished) == 960
    lines = str(raised.value).splitlines()
    assert lines[0] == (
        "simulated time passed the horizon t=2592000s with the work unfinished "
        "(the next timer is at t=2594700s)"
    )
    assert lines[1] == "  run 'run-0-961' is in state 'work'"
    assert re.match(
        r"  task 'Task-\d+' waits in runs > run > drive > forty_five_minutes > sleep \(", lines[2]
    )
    assert lines[3:] == [
        "the horizon counts from each Sim.run() call: this one began at t=0s and may last 2592000s "
        "(30 days); for longer work pass Sim(horizon=<seconds>), or Sim(horizon=None) for no limit"
    ]


def test_the_horizon_can_be_raised_or_lifted() -> None:
    sim, finished = Sim(seed=0, horizon=None), []
    sim.run(sequential_runs(sim, 10_000, finished))
    assert (len(finished), sim.now) == (10_000, 10_000 * 2700.0)
    sim, finished = Sim(seed=0, horizon=1000 * 2700.0), []
    sim.run(sequential_runs(sim, 1000, finished))
    assert len(finished) == 1000


def test_the_horizon_counts_from_each_run_call() -> None:
    sim, finished = Sim(seed=0, horizon=2700.0), []
    for _ in range(5):  # 5 calls of 45 minutes: each within its own horizon
        sim.run(sequential_runs(sim, 1, finished))
    assert (len(finished), sim.now) == (5, 5 * 2700.0)
    with pytest.raises(HorizonError, match="this one began at t=13500s and may last 2700s"):
        sim.run(sequential_runs(sim, 2, finished))


def test_a_horizon_message_lists_twenty_runs_and_tasks_and_counts_the_rest() -> None:
    sim = Sim(seed=0, horizon=1000)  # shorter than a run: all thirty are in flight

    async def thirty() -> None:
        await asyncio.gather(*(run(LONG, env=sim) for _ in range(30)))

    with pytest.raises(HorizonError) as raised:
        sim.run(thirty())
    lines = str(raised.value).splitlines()
    runs = [line for line in lines if line.startswith("  run ")]
    tasks = [line for line in lines if line.startswith("  task ")]
    assert (len(runs), len(tasks)) == (20, 20)
    assert "  ... and 10 more runs" in lines
    assert "  ... and 11 more tasks" in lines  # the 30 runs and the gathering task


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": 0}, "horizon=0 must be a number > 0, or None"),
        ({"horizon": -1.0}, "horizon=-1.0 must be a number > 0, or None"),
        ({"horizon": math.nan}, "horizon=nan must be a number > 0, or None"),
        ({"horizon": "30d"}, "horizon='30d' must be a number > 0, or None"),
        ({"start": math.inf}, "start=inf must be a finite number"),
        ({"start": "0"}, "start='0' must be a finite number"),
    ],
)
def test_bad_horizon_and_start(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        Sim(seed=0, **kwargs)
    assert str(raised.value) == message


def test_an_async_generator_left_suspended_is_closed_when_the_run_ends() -> None:
    closed: list[float] = []

    async def ticks() -> AsyncIterator[int]:
        try:
            while True:
                yield 1
                await asyncio.sleep(1.0)
        finally:
            closed.append(asyncio.get_running_loop().time())

    kept: list[AsyncIterator[int]] = []

    async def main() -> None:
        generator = ticks()
        kept.append(generator)  # not collected: only the loop's shutdown can close it
        await anext(generator)

    sim = Sim(seed=0)
    sim.run(main())
    assert closed == [0.0]
    sim.run(asyncio.sleep(5.0))  # a run with no generator left to close
    assert closed == [0.0]
