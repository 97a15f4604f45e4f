"""`Live`: how an experiment plays its real-model configs — live, recorded, or replayed.

Given to :func:`~windtunnel.evals.run_experiment` as ``live=``. Cells run on a pool
of ``concurrency`` threads (a live cell mostly waits for the API), each on its own
virtual loop; the rows come back in cell order and are written as they come. When
the cost cap refuses a call, no call starts after it: the cells that finished are
written, the cells it cut short are not (they run again on resume, answered from
the recording when it holds their first calls: resume with ``replay_or_record``),
and the cells not started are left for the next run.

Two other stops end the experiment at once, the same way: a request the API refuses
for good (a bad key: :class:`APIRefused` is raised once the cells in flight halted),
and an interrupt (Ctrl-C: the queued cells are cancelled, the calls in flight too,
what finished is written, and ``KeyboardInterrupt`` goes on up).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Generator, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from windtunnel.orchestrator import InvalidArgument
from windtunnel.orchestrator.validation import check_choice, check_int, check_number
from windtunnel.scenarios import LoadedScenario

from ..executors import CellOutput, run_cell
from ..experiment import Cell, Experiment
from ..rows import error_row
from .errors import CellHalted, LiveError
from .limits import Spend
from .models import CellModels, Mode
from .recording import Recording
from .session import DEFAULT_TIMEOUT, LiveSession, require_key

__all__ = ["Live", "describe_stop"]


@dataclass(kw_only=True)
class Live:
    """How real-model configs run: the mode, the recordings, the limits.

    Example:
        >>> live = Live(mode="replay_or_record", recordings="recordings", concurrency=8, max_cost=5.0)
        >>> live.calls_api
        True
    """

    mode: Mode = "live"
    """``live``, ``record``, ``replay`` or ``replay_or_record`` (see :data:`Mode`)."""
    recordings: str | Path | None = None
    """The recordings directory: required by every mode but ``live``."""
    concurrency: int = 4
    """Cells run at once, and model calls in flight at most."""
    max_cost: float | None = None
    """USD the experiment may spend on model calls; checked before each call."""
    rpm: float | None = None
    """HTTP attempts per minute at most (``retry-after`` is honoured regardless)."""
    max_retries: int = 2
    """The SDK's retries of a failed attempt."""
    timeout: float = DEFAULT_TIMEOUT
    """Seconds one HTTP attempt may take before the SDK gives it up (then retries it)."""
    base_url: str | None = None
    """The Messages API's address; by default ``ANTHROPIC_BASE_URL`` or Anthropic's."""
    session: LiveSession | None = field(default=None, repr=False)
    """The session of the last run that called the API: its spend, its peak concurrency."""
    halted: int = 0
    """Cells the cost cap (or a refusal, or an interrupt) cut short in the last run (not written)."""

    def __post_init__(self) -> None:
        check_choice("mode", self.mode, ["live", "record", "replay", "replay_or_record"])
        check_int("concurrency", self.concurrency, low=1)
        check_number("timeout", self.timeout, low=0, low_open=True, finite=True)
        if self.mode != "live" and self.recordings is None:
            raise InvalidArgument(f"mode={self.mode!r} needs recordings=DIR")
        if self.mode == "replay" and not Path(self.recordings or "").is_dir():
            raise InvalidArgument(f"recordings={str(self.recordings)!r} is not a directory of recordings")

    @property
    def calls_api(self) -> bool:
        """Whether this mode may call the API (everything but ``replay``)."""
        return self.mode != "replay"

    def spend(self) -> Spend | None:
        """What the last run spent, when it called the API."""
        return None if self.session is None else self.session.meter.spend()

    def check(self, experiment: Experiment) -> None:
        """Say now what would stop the run later: the API key missing for a mode that calls it,
        a recording that cannot be read.

        Raises:
            MissingAPIKey: the mode calls the API and no key is set.
            RecordingError: a recording of the experiment is damaged, stale or another's.
            ScenarioError: the experiment's scenario files have problems.
        """
        real = _real_configs(experiment)
        if not real:
            return
        if self.calls_api:
            require_key()
        if self.recordings is not None:
            scenarios = sorted({loaded.scenario.id for loaded in experiment.load()})
            for scenario in scenarios:
                for config, models in real.items():
                    Recording(self.recordings, scenario=scenario, config=config, models=models)

    def outputs(
        self, experiment: Experiment, cells: list[Cell], scenarios: dict[tuple[str, str], LoadedScenario]
    ) -> Generator[CellOutput, None, None]:
        """Run ``cells``, yielding each one's row and events in cell order; stop at the cost cap."""
        real = _real_configs(experiment)
        self.halted = 0
        self.session = (
            LiveSession(
                concurrency=self.concurrency,
                max_cost=self.max_cost,
                rpm=self.rpm,
                max_retries=self.max_retries,
                base_url=self.base_url,
                timeout=self.timeout,
            )
            if self.calls_api and real
            else None
        )
        recordings: dict[tuple[str, str], Recording] = {}
        lock = threading.Lock()

        def recording(cell: Cell) -> Recording | None:
            if self.recordings is None:
                return None
            with lock:
                key = (cell.scenario, cell.config)
                if key not in recordings:
                    recordings[key] = Recording(
                        self.recordings, scenario=cell.scenario, config=cell.config, models=real[cell.config]
                    )
                return recordings[key]

        def one(cell: Cell) -> CellOutput | None:
            loaded = scenarios[(cell.scenario, cell.plan)]
            if cell.config not in real:
                return run_cell(experiment, loaded, cell)
            models = CellModels(
                mode=self.mode,
                scenario=cell.scenario,
                cell=cell.id,
                seed=cell.seed,
                session=self.session,
                recording=recording(cell),
            )
            started = time.perf_counter()
            try:
                return run_cell(experiment, loaded, cell, real=models, recheck=self.mode == "replay")
            except CellHalted as halted:
                if halted.why != "miss":
                    return None  # not written: the cell runs again on resume
                wall = time.perf_counter() - started
                return error_row(experiment.name, cell, loaded, halted.error, wall_time=wall), []

        pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="windtunnel-cell")
        try:
            yield from self._ordered(pool, cells, one)
        except BaseException:
            # Ctrl-C, or the writer gave up: no queued cell starts, no call goes out, the calls
            # in flight are cancelled; the cells running halt at their next call.
            if self.session is not None:
                self.session.abort()
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        else:
            pool.shutdown(wait=True)
            if self.session is not None and self.session.refusal is not None:
                raise self.session.refusal
        finally:
            for kept in recordings.values():
                kept.close()
            if self.session is not None:
                self.session.close()

    def _ordered(self, pool: ThreadPoolExecutor, cells: list[Cell], one: Any) -> Iterator[CellOutput]:
        """The outputs in cell order, with a few cells queued per thread so that the pool
        stays busy while the head of the line waits; once the cap stops, none starts."""
        todo = iter(cells)
        pending: deque[Future[CellOutput | None]] = deque()

        def stopped() -> bool:
            return self.session is not None and self.session.meter.stopped  # the cap, a refusal

        def refill() -> None:
            while len(pending) < 4 * self.concurrency and not stopped():
                cell = next(todo, None)
                if cell is None:
                    return
                pending.append(pool.submit(one, cell))

        refill()
        while pending:
            if stopped():
                for future in pending:
                    future.cancel()  # only those not started yet
            head = pending.popleft()
            if head.cancelled():
                continue
            try:
                output = head.result()
            except KeyboardInterrupt:
                # What finished is written; the rest is cut short (see outputs()).
                if self.session is not None:
                    self.session.abort()
                for future in [head, *pending]:
                    if future.done() and not future.cancelled() and future.exception() is None:
                        finished = future.result()
                        if finished is not None:
                            yield finished
                raise
            if output is None:
                self.halted += 1
            else:
                yield output
            refill()


def _real_configs(experiment: Experiment) -> dict[str, list[str]]:
    """The configs that play real models, with their model ids."""
    found = {config.name: config.real_models() for config in experiment.configs}
    return {name: models for name, models in found.items() if models}


def describe_stop(live: Live, remaining: int) -> str:
    """A line saying the cost cap stopped the experiment, and how to go on."""
    spend = live.spend()
    if spend is None or not spend.refused:
        raise LiveError("the experiment was not stopped by the cost cap")
    if live.mode in ("record", "replay_or_record"):
        # --record would call (and pay for) the cut runs' recorded calls again.
        how = f"resume with --replay-or-record {live.recordings} and the same results directory"
        how += " (the calls already recorded are replayed, not paid again)"
    else:
        how = "run again with the same results directory to resume (the cut runs' calls are paid again)"
    return (
        f"stopped by the cost cap (max_cost=${spend.max_cost:g}): ${spend.spent:.4f} spent in {spend.calls} "
        f"calls; {live.halted} runs cut short and {remaining} not run are left: {how}"
    )
