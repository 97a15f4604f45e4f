"""``manifest.json`` of a results directory: what ran, with which code, files and prices.

:class:`Manifest` validates it when a directory is resumed or read; its JSON Schema,
:data:`MANIFEST_SCHEMA`, lets other tools check it too.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["MANIFEST_SCHEMA", "Manifest", "Session"]


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
    configs: list[dict[str, Any]] = Field(description="The configs, as JSON.")
    files: dict[str, str] = Field(description="Every scenario or suite file read -> its sha256.")
    prices: dict[str, Any] = Field(
        description="Model prices per million tokens and human rates, with their date."
    )
    sessions: list[Session] = Field(description="Each call that wrote to the directory.")
    wall_s: float = Field(ge=0, description="Wall seconds of all sessions.")


MANIFEST_SCHEMA: dict[str, Any] = Manifest.model_json_schema()
"""The JSON Schema of ``manifest.json``."""
