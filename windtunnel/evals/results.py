"""A results directory, written while the experiment runs and resumable after a kill.

Layout::

    out/
      manifest.json                   versions, suite files and digests, the experiment, sessions
      runs.parquet/part-SSSSS-KKKKK.parquet     one row per run (see rows.COLUMNS)
      events.parquet/part-SSSSS-KKKKK.parquet   one row per event, with its cell id

``runs.parquet`` and ``events.parquet`` are folders of part files, so
``pandas.read_parquet("out/runs.parquet")`` gives one frame. Rows stream to disk:
a row group is flushed every ``row_group_size`` runs (their events with them), or
sooner once the runs held carry ``EVENT_BYTES`` of event JSON, and a
part file is closed — its footer written, readable from then on — every
``groups_per_part`` row groups. ``SSSSS`` counts the sessions that wrote to the
directory, ``KKKKK`` the parts of a session; a runs part and the events part of the
same name hold the same cells.

Resuming: opening a directory that already holds results reads the cells of every
readable runs part; a part left unreadable by a kill (no footer) is deleted with its
partner, and its cells run again. No cell is written twice.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import pyarrow as pa  # type: ignore[import-untyped]  # no stubs shipped
import pyarrow.parquet as pq  # type: ignore[import-untyped]
from pydantic import ValidationError

import windtunnel
from windtunnel.orchestrator import (
    DEFAULT_PRICES,
    DEFAULT_PRICES_AS_OF,
    Event,
    InvalidArgument,
    UnknownPriceError,
    event_adapter,
)
from windtunnel.scenarios import Suite
from windtunnel.simulators import DEFAULT_APPROVERS

from .experiment import Experiment
from .manifest import Manifest
from .rows import EVENTS_SCHEMA, RUNS_SCHEMA

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Results", "read_events", "read_runs", "run_events"]

RUNS = "runs.parquet"
EVENTS = "events.parquet"
MANIFEST = "manifest.json"
EVENT_BYTES = 4 * 2**20
"""Event JSON held before a flush, whatever the number of runs: what bounds the writer's memory
(a run's events, each model call with its whole request, weigh tens of kilobytes)."""


class Results:
    """A results directory open for writing: the cells it holds, and a streaming writer.

    Use as a context manager; leaving it flushes the last rows and closes the part.
    """

    def __init__(
        self,
        path: str | Path,
        experiment: Experiment,
        suite: Suite,
        *,
        row_group_size: int = 1000,
        groups_per_part: int = 10,
    ) -> None:
        if row_group_size < 1 or groups_per_part < 1:
            raise InvalidArgument(
                f"row_group_size={row_group_size} and groups_per_part={groups_per_part} must be >= 1"
            )
        self.path = Path(path)
        self.row_group_size = row_group_size
        self.groups_per_part = groups_per_part
        self._runs_dir = self.path / RUNS
        self._events_dir = self.path / EVENTS
        self._runs_dir.mkdir(parents=True, exist_ok=True)
        self._events_dir.mkdir(parents=True, exist_ok=True)
        self._manifest = self._open_manifest(experiment, suite)
        self.done: set[str] = self._read_done()
        """Cell ids already written."""
        self._session = len(self._manifest["sessions"])
        # Written now, so that a session killed before it closes still owns its part names.
        self._manifest["sessions"].append({"started_at": time.time(), "wall_s": None, "cells_run": None})
        self._write_manifest()
        self._part = 0
        self._groups = 0
        self._runs: list[dict[str, Any]] = []
        self._events: list[dict[str, Any]] = []
        self._event_bytes = 0
        self._writers: tuple[pq.ParquetWriter, pq.ParquetWriter] | None = None
        self._started = time.perf_counter()
        self._written = 0

    def _open_manifest(self, experiment: Experiment, suite: Suite) -> dict[str, Any]:
        files = {name: hashlib.sha256(Path(name).read_bytes()).hexdigest() for name in suite.files}
        spec = experiment.model_dump(mode="json")
        path = self.path / MANIFEST
        if path.exists():
            manifest: dict[str, Any] = _read_manifest(path)
            if manifest["experiment"] != spec:
                raise InvalidArgument(
                    f"{self.path} holds results of another experiment ({manifest['experiment']['name']!r}"
                    " or other settings); use a new directory"
                )
            if manifest["files"] != files:
                changed = sorted(set(manifest["files"].items()) ^ set(files.items()))
                raise InvalidArgument(
                    f"{self.path}: the suite's files changed since its results were written "
                    f"({sorted({name for name, _ in changed})}); use a new directory"
                )
            return manifest
        return {
            "windtunnel": windtunnel.__version__,
            "python": platform.python_version(),
            "experiment": spec,
            "experiment_seed": experiment.seed,
            "seeds": experiment.seeds,
            "cells": len(experiment.cells(suite)),
            "configs": [config.model_dump(mode="json") for config in experiment.configs],
            "files": files,
            "prices": _prices(experiment),
            "sessions": [],
            "wall_s": 0.0,
        }

    def _read_done(self) -> set[str]:
        done: set[str] = set()
        for part in sorted(self._runs_dir.glob("*.parquet")):
            partner = self._events_dir / part.name
            try:
                cells = pq.read_table(part, columns=["cell"]).column("cell").to_pylist()
                pq.ParquetFile(partner).close()
            except (OSError, pa.ArrowException):
                part.unlink()  # a kill left it without a footer: its cells run again
                partner.unlink(missing_ok=True)
                continue
            done.update(cells)
        runs = {part.name for part in self._runs_dir.glob("*.parquet")}
        for orphan in self._events_dir.glob("*.parquet"):
            if orphan.name not in runs:
                orphan.unlink()
        return done

    def write(self, row: dict[str, Any], events: list[dict[str, Any]]) -> None:
        """Add one run's row and its events; flushed in row groups."""
        if row["cell"] in self.done:
            raise InvalidArgument(f"cell {row['cell']!r} is already in {self.path}")
        self.done.add(row["cell"])
        self._runs.append(row)
        self._events.extend(events)
        self._event_bytes += sum(len(event["event"]) for event in events)
        self._written += 1
        if len(self._runs) >= self.row_group_size or self._event_bytes >= EVENT_BYTES:
            self._flush()

    def _flush(self) -> None:
        if not self._runs:
            return
        if self._writers is None:
            name = f"part-{self._session:05d}-{self._part:05d}.parquet"
            self._writers = (
                pq.ParquetWriter(self._events_dir / name, EVENTS_SCHEMA),
                pq.ParquetWriter(self._runs_dir / name, RUNS_SCHEMA),
            )
        events_writer, runs_writer = self._writers
        # Events first: a runs part that is readable always has its events written.
        events_writer.write_table(_table(self._events, EVENTS_SCHEMA))
        runs_writer.write_table(_table(self._runs, RUNS_SCHEMA))
        self._runs, self._events, self._event_bytes = [], [], 0
        self._groups += 1
        if self._groups >= self.groups_per_part:
            self._close_part()

    def _close_part(self) -> None:
        if self._writers is not None:
            events_writer, runs_writer = self._writers
            events_writer.close()
            runs_writer.close()
            self._writers = None
            self._part += 1
            self._groups = 0

    def close(self) -> None:
        """Flush the last rows, close the part, and record this session in the manifest."""
        self._flush()
        self._close_part()
        wall = time.perf_counter() - self._started
        self._manifest["sessions"][-1].update(wall_s=round(wall, 3), cells_run=self._written)
        self._manifest["wall_s"] = round(sum(s["wall_s"] or 0.0 for s in self._manifest["sessions"]), 3)
        self._write_manifest()

    def _write_manifest(self) -> None:
        (self.path / MANIFEST).write_text(json.dumps(self._manifest, indent=2, sort_keys=True) + "\n")

    def __enter__(self) -> Results:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _table(rows: list[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """``rows`` as a table of ``schema`` (a missing key is null), built column by column:
    ``Table.from_pylist`` took ~60 µs an event row, 35 times as long, which made the writer
    cost as much as the runs."""
    columns = {name: [row.get(name) for row in rows] for name in schema.names}
    return pa.Table.from_pydict(columns, schema=schema)


def _read_manifest(path: Path) -> dict[str, Any]:
    try:
        return Manifest.model_validate_json(path.read_text()).model_dump(mode="json")
    except (OSError, ValidationError) as exc:
        raise InvalidArgument(
            f"{path}: not a readable windtunnel manifest: {str(exc).splitlines()[0]}"
        ) from None


def _prices(experiment: Experiment) -> dict[str, Any]:
    """The prices the runs were charged at: each simulated tier's model (per million
    tokens, from the price table as of its date) and each human approver's rate."""
    models: dict[str, Any] = {}
    for config in experiment.configs:
        for model in [profile.model for profile in config.tiers()] + config.real_models():
            try:
                models[model] = DEFAULT_PRICES.price(model).model_dump(mode="json")
            except UnknownPriceError as exc:
                models[model] = {"error": str(exc)}
    return {
        "as_of": DEFAULT_PRICES_AS_OF.date().isoformat(),
        "models_usd_per_million_tokens": dict(sorted(models.items())),
        "humans_usd_per_minute": {name: human.cost_per_minute for name, human in DEFAULT_APPROVERS.items()},
        "own_models": sorted(config.name for config in experiment.configs if config.models is not None),
    }


def read_runs(path: str | Path) -> pd.DataFrame:
    """The runs of a results directory: one frame, one row per run."""
    import pandas as pd

    return pd.read_parquet(Path(path) / RUNS)


def read_events(path: str | Path) -> pd.DataFrame:
    """The events of a results directory: one frame, one row per event, with its cell."""
    import pandas as pd

    return pd.read_parquet(Path(path) / EVENTS)


def run_events(
    path: str | Path,
    *,
    scenario: str | None = None,
    config: str | None = None,
    seed_index: int | None = None,
    cell: str | None = None,
) -> list[Event]:
    """The events of the runs of a results directory that match every filter given,
    validated, in cell order; each event's ``run_id`` is its cell id, so that runs of
    different cells (which may share a run id) stay apart.

    Raises:
        InvalidArgument: no run matches, naming what the directory holds.
    """
    import pandas as pd

    runs = pd.read_parquet(Path(path) / RUNS, columns=["cell", "scenario", "config", "seed_index"])
    chosen = runs
    for column, value in (
        ("scenario", scenario),
        ("config", config),
        ("seed_index", seed_index),
        ("cell", cell),
    ):
        if value is not None:
            chosen = chosen[chosen[column] == value]
    if chosen.empty:
        raise InvalidArgument(
            f"{path}: no run matches; it holds scenarios {sorted(runs['scenario'].unique())}, "
            f"configs {sorted(runs['config'].unique())}, seed indexes 0..{int(runs['seed_index'].max())}"
        )
    cells = sorted(chosen["cell"])
    columns = ["cell", "seq", "wall_time", "event"]
    table = pq.read_table(Path(path) / EVENTS, columns=columns, filters=[("cell", "in", cells)])
    frame = table.to_pandas().sort_values(["cell", "seq"])
    # The event JSON is stored without its wall time (so that it is deterministic): put it back.
    return [
        event_adapter.validate_python({**json.loads(text), "wall_time": wall, "run_id": cell_id})
        for cell_id, wall, text in zip(frame["cell"], frame["wall_time"], frame["event"], strict=True)
    ]
