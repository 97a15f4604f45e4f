"""``manifest.json`` of a results directory: what ran, with which code, files and prices.

:class:`Manifest` validates it when a directory is resumed or read; its JSON Schema,
:data:`MANIFEST_SCHEMA`, lets other tools check it too.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from windtunnel.orchestrator import InvalidArgument

__all__ = ["MANIFEST_SCHEMA", "Manifest", "Session", "read_manifest"]


class Session(BaseModel):
    """One call of ``run_experiment`` that wrote to the directory."""

    model_config = ConfigDict(extra="forbid")

    started_at: float = Field(description="Wall clock at its start, seconds since the epoch.")
    wall_s: float | None = Field(description="Its wall seconds; null while it runs or if it was killed.")
    cells_run: int | None = Field(description="Cells it wrote; null while it runs or if it was killed.")


class Manifest(BaseModel):
    """The manifest of a results directory."""

    model_config = ConfigDict(extra="forbid")

    windtunnel: str = Field(description="The windtunnel version that created the directory.")
    python: str = Field(description="The Python version that created it.")
    experiment: dict[str, Any] = Field(
        description="The Experiment, as JSON: scenarios, seeds, configs, plans."
    )
    experiment_seed: int = Field(description="The seed every cell's simulation seed derives from.")
    seeds: int = Field(ge=1, description="Seed indexes per scenario and config.")
    cells: int | None = Field(
        None, ge=0, description="Cells in the experiment: runs.parquet holds this many once it is complete."
    )
    configs: list[dict[str, Any]] = Field(description="The configs, as JSON.")
    files: dict[str, str] = Field(description="Every scenario or suite file read -> its sha256.")
    prices: dict[str, Any] = Field(
        description="Model prices per million tokens and human rates, with their date."
    )
    sessions: list[Session] = Field(description="Each call that wrote to the directory.")
    wall_s: float = Field(ge=0, description="Wall seconds of all sessions.")


MANIFEST_SCHEMA: dict[str, Any] = Manifest.model_json_schema()
"""The JSON Schema of ``manifest.json``."""


def read_manifest(path: str | Path) -> Manifest:
    """The manifest of the results directory ``path``, validated.

    Raises:
        InvalidArgument: it is missing, not JSON, or not a windtunnel manifest.
    """
    file = Path(path) / "manifest.json"
    try:
        return Manifest.model_validate_json(file.read_bytes())
    except OSError as exc:
        raise InvalidArgument(f"{file}: cannot read it: {exc.strerror or exc}") from None
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(map(str, first["loc"])) or "(the whole file)"
        raise InvalidArgument(f"{file}: not a windtunnel manifest: {where}: {first['msg']}") from None
