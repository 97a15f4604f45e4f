"""Running an experiment's cells on Ray: a few actors, each given the checked scenarios once.

One Ray task per cell would cost more in scheduling than many cells take to run,
so the cells go in chunks to a small pool of actors, one per worker, each of which
gets the experiment and its checked scenarios (put in Ray's object store once) in
its constructor. A chunk goes to the least
busy actor as soon as one has room, and the results come back in cell order: the
rows are the same as on the other executors, wall time aside.

Memory stays bounded: at most a window of chunks is submitted or held past the
first chunk not yet handed back, whatever the number of cells.

Without ``address`` a local Ray is started for the run (one CPU per worker) and
shut down after it. With ``address`` the driver connects to that cluster; its
workers must import windtunnel and find the experiment's scenario files at the
same paths (relative ones resolve against the worker's working directory).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Generator, Iterator
from typing import TYPE_CHECKING, Any

from windtunnel.orchestrator import InvalidArgument

from .executors import CellOutput, run_cell
from .experiment import Cell, Experiment

if TYPE_CHECKING:
    from windtunnel.scenarios import LoadedScenario

if TYPE_CHECKING:
    from types import ModuleType

__all__ = ["run_on_ray"]

# Chunks queued on one actor: the next one is there when the current one ends.
_DEPTH = 2
# Chunks per worker submitted or held ahead of the first one not handed back yet.
_WINDOW = 4
_MAX_CHUNK = 64


def run_on_ray(
    experiment: Experiment,
    cells: list[Cell],
    scenarios: dict[tuple[str, str], LoadedScenario],
    *,
    address: str | None = None,
    workers: int | None = None,
) -> Generator[CellOutput, None, None]:
    """Run ``cells`` of ``experiment`` on Ray: their outputs, in the order of ``cells``.

    Ray is imported here, so a missing Ray is reported before anything runs; it is
    started (or connected to) when the first output is asked for, and stopped (or
    disconnected from) when the outputs are exhausted or the iterator is closed.

    Args:
        experiment: what the cells belong to; sent to the actors as JSON.
        cells: the cells to run.
        scenarios: the checked scenarios by (scenario id, extra plan), as
            :meth:`Experiment.scenarios_by_plan` gives them.
        address: a Ray cluster to connect to (``"auto"``, ``"ray://host:10001"``);
            ``None`` starts a local Ray for this run.
        workers: actors, one CPU each; by default the local machine's CPUs, or the
            cluster's when connecting to one.

    Raises:
        InvalidArgument: Ray is not installed, or ``workers`` is below 1.
    """
    if workers is not None and workers < 1:
        raise InvalidArgument(f"workers={workers} must be >= 1")
    ray = _import_ray()
    return _outputs(ray, experiment, cells, scenarios, address=address, workers=workers)


def _import_ray() -> ModuleType:
    try:
        import ray
    except ImportError as exc:
        raise InvalidArgument("the 'ray' executor needs Ray: pip install 'windtunnel[ray]'") from exc
    return ray


def _outputs(
    ray: Any,
    experiment: Experiment,
    cells: list[Cell],
    scenarios: dict[tuple[str, str], LoadedScenario],
    *,
    address: str | None,
    workers: int | None,
) -> Generator[CellOutput, None, None]:
    if not cells:
        return  # nothing to run is no reason to start a cluster
    started = not ray.is_initialized()
    if started:
        # Ray's INFO lines ("Started a local Ray instance", the auth token notice) and
        # the workers' echoed output would drown the harness's own.
        quiet = {"logging_level": logging.ERROR, "log_to_driver": False}
        if address is None:
            ray.init(num_cpus=workers or os.cpu_count() or 1, include_dashboard=False, **quiet)
        else:
            ray.init(address=address, **quiet)
    actors: list[Any] = []
    try:
        cpus = max(1, int(ray.cluster_resources().get("CPU", 1)))
        count = workers or cpus
        if count > cpus:
            # An actor that finds no CPU never starts, and its chunks would wait forever.
            raise InvalidArgument(
                f"workers={count} but the Ray cluster has {cpus} CPUs; ask for at most {cpus}"
            )
        runner = ray.remote(num_cpus=1)(_CellRunner)
        payload, shared = experiment.model_dump_json(), ray.put(scenarios)
        actors = [runner.remote(payload, shared) for _ in range(min(count, len(cells)))]
        size = max(1, min(_MAX_CHUNK, len(cells) // (len(actors) * 4)))
        chunks = [cells[i : i + size] for i in range(0, len(cells), size)]
        for outputs in _in_order(ray, actors, chunks):
            yield from outputs
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()


def _in_order(ray: Any, actors: list[Any], chunks: list[list[Cell]]) -> Iterator[list[CellOutput]]:
    """Each chunk's outputs, in chunk order, with the chunks spread over ``actors`` as they free up."""
    load = [0] * len(actors)  # chunks queued or running on each actor
    running: dict[Any, tuple[int, int]] = {}  # ref -> (chunk index, actor index)
    done: dict[int, list[CellOutput]] = {}
    window = _WINDOW * len(actors)
    submitted = handed = 0
    while handed < len(chunks):
        while submitted < len(chunks) and submitted - handed < window and min(load) < _DEPTH:
            slot = load.index(min(load))
            running[actors[slot].run.remote(chunks[submitted])] = (submitted, slot)
            load[slot] += 1
            submitted += 1
        if handed in done:
            yield done.pop(handed)
            handed += 1
            continue
        ready, _ = ray.wait(list(running), num_returns=1)
        for ref in ready:
            index, slot = running.pop(ref)
            load[slot] -= 1
            done[index] = ray.get(ref)


class _CellRunner:
    """A Ray actor's state: the experiment and its checked scenarios, given once."""

    def __init__(self, experiment_json: str, scenarios: dict[tuple[str, str], LoadedScenario]) -> None:
        self._experiment = Experiment.model_validate_json(experiment_json)
        self._scenarios = scenarios

    def run(self, cells: list[Cell]) -> list[CellOutput]:
        """Run a chunk of cells, in order."""
        return [
            run_cell(self._experiment, self._scenarios[(cell.scenario, cell.plan)], cell) for cell in cells
        ]
