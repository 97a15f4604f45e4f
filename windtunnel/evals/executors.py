"""Running an experiment's cells: in this process, or on a pool of processes.

Whatever the executor and the number of workers, the rows are the same (wall time
aside) and are written in cell order. Each cell is one :func:`run_scenario` on the
cell's seed; an exception out of it becomes the cell's row with ``harness_error``
set. The determinism self-check runs a share of the cells twice
(:attr:`Experiment.recheck`); a trace-digest mismatch is a harness error on that row.

On Ray (:mod:`windtunnel.evals.ray_executor`) the cells go in chunks to a few actors.
"""

from __future__ import annotations

import itertools
import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, TypeAlias

from windtunnel.orchestrator import DEFAULT_PRICES, InvalidArgument, SimulationError, WindtunnelError
from windtunnel.orchestrator.validation import check_choice
from windtunnel.scenarios import LoadedScenario, RealModels, ScenarioRun, load_callable, run_scenario

from .experiment import Cell, Experiment
from .results import Results
from .rows import error_row, event_rows, run_row, trace_digest

if TYPE_CHECKING:
    from .live import Live

__all__ = ["Executor", "ExperimentSummary", "Progress", "run_cell", "run_experiment"]

Executor: TypeAlias = Literal["local", "process", "ray"]
"""Where cells run: in this process, on a pool of spawned processes, or on Ray actors."""

CellOutput: TypeAlias = tuple[dict[str, Any], list[dict[str, Any]]]
"""A cell's row and its events' rows."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ExperimentSummary:
    """What one call of :func:`run_experiment` did."""

    path: Path
    cells: int
    """Cells in the experiment."""
    ran: int
    """Cells run by this call."""
    skipped: int
    """Cells already in the results directory, not run again."""
    harness_errors: int
    """Cells run by this call whose row has ``harness_error`` set."""
    wall_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class Progress:
    """Where a running experiment is: what a progress bar shows after each cell."""

    done: int
    """Cells run by this call so far."""
    total: int
    """Cells this call will run."""
    failed: int
    """Of those, runs graded not correct (the agent's failures)."""
    harness_errors: int
    """Of those, runs the harness failed on."""
    cost: float
    """USD charged to the runs so far, models and humans."""
    elapsed: float
    """Wall seconds since the first cell started."""

    @property
    def rate(self) -> float:
        """Cells per wall second."""
        return self.done / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def eta(self) -> float:
        """Wall seconds left at the current rate (inf before the first cell)."""
        return (self.total - self.done) / self.rate if self.rate > 0 else float("inf")


def run_cell(
    experiment: Experiment,
    loaded: LoadedScenario,
    cell: Cell,
    *,
    real: RealModels | None = None,
    recheck: bool = True,
) -> CellOutput:
    """Run one cell and grade it: its row and its events' rows; never raises for the run's sake.

    ``real`` answers for the real models a config plays (see :mod:`windtunnel.evals.live`);
    ``recheck=False`` skips the determinism self-check (a live cell would pay twice)."""
    started = time.perf_counter()
    config = experiment.config(cell.config)
    try:
        models = None if config.models is None else load_callable(config.models, what="models")

        def once() -> ScenarioRun:
            return run_scenario(
                loaded, seed=cell.seed, play=config.who(), models=models, workflow=config.workflow, real=real
            )

        run = once()
        dumped = run.trace.dumps()
        digest = trace_digest(dumped)
        wall = time.perf_counter() - started
        played = {profile.name for profile in config.tiers()}
        row = run_row(experiment.name, cell, loaded, run, digest=digest, wall_time=wall, tiers=played)
        events = event_rows(cell, run, dumped)
        # recheck=0 (a share of none) needs no per-cell draw
        if recheck and experiment.recheck > 0 and experiment.rechecked(cell):
            row["rechecked"] = True
            again = trace_digest(once().trace.dumps())
            if again != digest:
                row["harness_error"] = (
                    f"NondeterministicRun: the same cell ran twice gave trace digests {digest} and {again}"
                )
    except (Exception, SystemExit) as exc:  # the harness's failure (a user's sys.exit too), not the agent's
        return error_row(experiment.name, cell, loaded, exc, wall_time=time.perf_counter() - started), []
    return row, events


def run_experiment(
    experiment: Experiment,
    out_dir: str | Path,
    *,
    executor: Executor = "local",
    workers: int | None = None,
    row_group_size: int = 1000,
    groups_per_part: int = 10,
    stop_after: int | None = None,
    address: str | None = None,
    progress: Callable[[Progress], None] | None = None,
    live: Live | None = None,
) -> ExperimentSummary:
    """Run every cell of ``experiment`` not yet in ``out_dir``, streaming rows there.

    Args:
        experiment: what to run.
        out_dir: the results directory (see :mod:`windtunnel.evals.results`); created,
            or resumed when it already holds results of this experiment.
        executor: ``"local"`` (this process), ``"process"`` (a spawned pool) or
            ``"ray"`` (Ray actors; needs ``pip install 'windtunnel[ray]'``).
        workers: the pool's processes or Ray actors; ``os.cpu_count()`` by default (on
            a Ray cluster, its CPUs). Only for ``"process"`` and ``"ray"``.
        row_group_size: runs per parquet row group: what is held in memory before a flush.
        groups_per_part: row groups per part file: a kill loses at most one part.
        stop_after: run at most this many missing cells, then stop; a later call
            runs the rest.
        address: the Ray cluster to run on (``"auto"``, ``"ray://host:10001"``); by
            default a local Ray is started for this call. Only for ``"ray"``.
        progress: called after each cell is written, with where the experiment is.
        live: how configs naming real models run (live, recorded or replayed; see
            :class:`~windtunnel.evals.live.Live`); then every cell runs on its threads.

    Raises:
        InvalidArgument: a bad executor, worker count or address, Ray missing for the
            ``"ray"`` executor, a directory holding another experiment's results, a
            config naming real models without ``live``, or ``live`` with another executor
            than ``"local"``.
        MissingAPIKey: ``live`` calls the API and ``ANTHROPIC_API_KEY`` is not set.
        RecordingError: a recording ``live`` would read is damaged, stale or another's.
        APIRefused: the API refused a request for good (a bad key): the experiment stopped;
            what finished is written, the rest runs on resume.
        ScenarioError: the experiment's scenario files have problems.
    """
    check_choice("executor", executor, ["local", "process", "ray"])
    if workers is not None and (workers < 1 or (executor == "local" and workers != 1)):
        raise InvalidArgument(f"workers={workers} must be >= 1, and only 'process' and 'ray' take more")
    if address is not None and executor != "ray":
        raise InvalidArgument(f"address={address!r} is only for the 'ray' executor")
    if stop_after is not None and stop_after < 0:
        raise InvalidArgument(f"stop_after={stop_after} must be >= 0")
    if live is not None and executor != "local":
        raise InvalidArgument(
            f"executor={executor!r}: with live= every cell runs on the live experiment's threads "
            "(Live(concurrency=N)), not on a process pool or Ray"
        )
    started = time.perf_counter()
    _check_configs(experiment, live)
    suite = experiment.load()
    scenarios = experiment.scenarios_by_plan(suite)  # bad extra plans fail here, before any run
    cells = experiment.cells(suite)
    ran = errors = 0
    with Results(
        out_dir, experiment, suite, row_group_size=row_group_size, groups_per_part=groups_per_part
    ) as results:
        todo = [cell for cell in cells if cell.id not in results.done]
        skipped = len(cells) - len(todo)
        todo = todo[:stop_after] if stop_after is not None else todo
        if live is not None:
            with closing(live.outputs(experiment, todo, scenarios)) as lived:
                ran, errors = _write_all(results, lived, len(todo), progress)
        elif executor == "local":
            outputs: Iterator[CellOutput] = (
                run_cell(experiment, scenarios[(cell.scenario, cell.plan)], cell) for cell in todo
            )
            ran, errors = _write_all(results, outputs, len(todo), progress)
        elif executor == "ray":
            from .ray_executor import run_on_ray  # here: it imports this module

            ray_outputs = run_on_ray(experiment, todo, scenarios, address=address, workers=workers)
            with closing(ray_outputs):
                ran, errors = _write_all(results, ray_outputs, len(todo), progress)
        elif todo:
            count = workers or os.cpu_count() or 1
            chunk = max(1, min(64, len(todo) // (count * 4)))
            with ProcessPoolExecutor(
                count,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_init_worker,
                initargs=(experiment.model_dump_json(), scenarios),
            ) as pool:
                outputs = _pooled(pool, todo, chunk, window=4 * count)
                ran, errors = _write_all(results, outputs, len(todo), progress)
    return ExperimentSummary(
        path=Path(out_dir),
        cells=len(cells),
        ran=ran,
        skipped=skipped,
        harness_errors=errors,
        wall_s=time.perf_counter() - started,
    )


def _check_configs(experiment: Experiment, live: Live | None) -> None:
    """What every cell of a config would fail on, said once before any runs: a models or
    workflow factory that does not import, a tier whose model has no price, real models
    with no way to play them (or no API key)."""
    if live is not None:
        live.check(experiment)
    for config in experiment.configs:
        where = f"config {config.name!r}: "
        try:
            if config.models is not None:
                load_callable(config.models, what="models")
            if config.workflow is not None:
                load_callable(config.workflow, what="workflow")
            for profile in config.tiers():
                DEFAULT_PRICES.price(profile.model)
            if config.real_models() and live is None:
                raise InvalidArgument(
                    f"it plays real models {config.real_models()}: run it live, recorded or replayed "
                    "(run_experiment(live=Live(...)); windtunnel run --record, --replay or "
                    "--replay-or-record DIR)"
                )
        except WindtunnelError as exc:
            raise InvalidArgument(where + str(exc)) from None


def _write_all(
    results: Results, outputs: Iterator[CellOutput], total: int, progress: Callable[[Progress], None] | None
) -> tuple[int, int]:
    ran = errors = failed = 0
    cost = 0.0
    started = time.perf_counter()
    for row, events in outputs:
        results.write(row, events)
        ran += 1
        errors += bool(row["harness_error"])
        failed += row["correct"] is False
        cost += row["cost"] or 0.0
        if progress is not None:
            progress(
                Progress(
                    done=ran,
                    total=total,
                    failed=failed,
                    harness_errors=errors,
                    cost=cost,
                    elapsed=time.perf_counter() - started,
                )
            )
    return ran, errors


_WORKER: tuple[Experiment, dict[tuple[str, str], LoadedScenario]] | None = None


def _init_worker(experiment_json: str, scenarios: dict[tuple[str, str], LoadedScenario]) -> None:
    """A pool process gets the experiment and its checked scenarios once (pickled: far
    cheaper than reading and checking the files again in every worker)."""
    global _WORKER
    _WORKER = (Experiment.model_validate_json(experiment_json), scenarios)


def _pooled(pool: ProcessPoolExecutor, cells: list[Cell], chunk: int, *, window: int) -> Iterator[CellOutput]:
    """The outputs of ``cells`` run on ``pool`` in chunks, in cell order, with at most
    ``window`` chunks submitted and not yet handed back (so that memory does not grow
    with the experiment while the writer catches up).

    Raises:
        SimulationError: a worker process died (killed, out of memory, ``os._exit``)
            while running a chunk; the cells written so far stay, a rerun runs the rest.
    """
    chunks = iter([cells[i : i + chunk] for i in range(0, len(cells), chunk)])
    pending = deque(pool.submit(_run_chunk, part) for part in itertools.islice(chunks, window))
    while pending:
        try:
            outputs = pending.popleft().result()
        except BrokenProcessPool:
            raise SimulationError(
                "a worker process died while running cells (killed, out of memory, or os._exit in "
                "user code); the cells written so far are kept: run the experiment again to run the rest"
            ) from None
        following = next(chunks, None)
        if following is not None:
            pending.append(pool.submit(_run_chunk, following))
        yield from outputs


def _run_chunk(cells: list[Cell]) -> list[CellOutput]:
    assert _WORKER is not None, "the pool's initializer did not run"
    experiment, scenarios = _WORKER
    return [run_cell(experiment, scenarios[(cell.scenario, cell.plan)], cell) for cell in cells]
