"""An experiment: scenarios x seeds x configs, each cell with its own simulation seed.

Cells are paired and stable by construction: a cell's simulation seed derives from
(experiment seed, scenario id, seed index) only, so every config meets the same case
and the same faults, and adding a scenario, a config or more seeds changes no other
cell.

Example:
    >>> experiment = Experiment(
    ...     name="tiers", scenarios=["windtunnel/scenarios/soc/scenarios"], ids=["soc-c2-beacon"],
    ...     seeds=2, configs=["small", "ladder:small@0.85,large"],
    ... )
    >>> [cell.id for cell in experiment.cells()]  # doctest: +NORMALIZE_WHITESPACE
    ['soc-c2-beacon/0/small', 'soc-c2-beacon/0/ladder:small@0.85,large',
     'soc-c2-beacon/1/small', 'soc-c2-beacon/1/ladder:small@0.85,large']
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from windtunnel.orchestrator import InvalidArgument
from windtunnel.scenarios import LoadedScenario, Scenario, Suite, load_suite, parse_play
from windtunnel.simulators import derive_seed

__all__ = ["Cell", "Config", "Experiment", "cell_seed", "plan_digest"]


class Config(BaseModel):
    """How an experiment's decision states are played, under a name written into every row."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="The config's name in results; unique in its experiment.")
    play: str = Field(
        min_length=1,
        description="A tier name ('small', 'mid', 'large') or a ladder ('ladder:small@0.85,large').",
    )

    @field_validator("play")
    @classmethod
    def _valid_play(cls, play: str) -> str:
        parse_play(play)  # raises InvalidArgument naming the bad tier or rung
        return play


class Experiment(BaseModel):
    """Scenarios x seeds x configs: what to run, as data.

    A config may be given as a plain play spec (``"small"``); its name is then the spec.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="The experiment's name, written into every row.")
    scenarios: list[str] = Field(min_length=1, description="Scenario files, folders or suite files.")
    tags: list[str] = Field(default_factory=list, description="Only scenarios with every one of these tags.")
    ids: list[str] = Field(
        default_factory=list, description="Only scenarios whose id matches a pattern (fnmatch)."
    )
    seeds: int = Field(1, ge=1, description="Seed indexes 0..seeds-1 per scenario and config.")
    configs: list[Config] = Field(min_length=1, description="How decision states are played, each named.")
    seed: int = Field(0, description="The experiment seed every cell's simulation seed derives from.")
    recheck: float = Field(
        0.05, ge=0, le=1, description="Share of cells run twice to check that their traces match."
    )

    @field_validator("configs", mode="before")
    @classmethod
    def _configs_from_specs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"name": item, "play": item} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _unique_config_names(self) -> Experiment:
        names = [config.name for config in self.configs]
        twice = sorted({name for name in names if names.count(name) > 1})
        if twice:
            raise InvalidArgument(f"config names must be unique in an experiment; repeated: {twice}")
        return self

    def load(self) -> Suite:
        """The experiment's scenarios, loaded and selected.

        Raises:
            ScenarioError: listing every problem of every file.
        """
        return load_suite(self.scenarios, tags=self.tags, ids=self.ids)

    def cells(self, suite: Suite | None = None) -> list[Cell]:
        """Every cell, in a stable order: by scenario (suite order), seed index, config."""
        suite = self.load() if suite is None else suite
        cells: list[Cell] = []
        for loaded in suite:
            scenario_id = loaded.scenario.id
            for index in range(self.seeds):
                seed = cell_seed(self.seed, scenario_id, index)
                cells.extend(
                    Cell(scenario=scenario_id, seed_index=index, seed=seed, config=config.name)
                    for config in self.configs
                )
        return cells

    def config(self, name: str) -> Config:
        """The config called ``name``."""
        for config in self.configs:
            if config.name == name:
                return config
        raise InvalidArgument(
            f"config={name!r} is not in the experiment; known: {[c.name for c in self.configs]}"
        )

    def rechecked(self, cell: Cell) -> bool:
        """Whether ``cell`` is one of the share run twice for the determinism self-check;
        chosen from the experiment seed and the cell alone."""
        return derive_seed(self.seed, f"recheck/{cell.id}") < self.recheck * 2**64


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """One run of an experiment: a scenario, a seed index and a config."""

    scenario: str
    seed_index: int
    seed: int
    """The simulation seed: from the experiment seed, the scenario id and the seed index."""
    config: str

    @property
    def id(self) -> str:
        """``scenario/seed_index/config``: unique in its experiment."""
        return f"{self.scenario}/{self.seed_index}/{self.config}"


def cell_seed(experiment_seed: int, scenario_id: str, seed_index: int) -> int:
    """The simulation seed of every cell of ``scenario_id`` at ``seed_index``, whatever its config."""
    return derive_seed(experiment_seed, f"{scenario_id}/{seed_index}")


def plan_digest(scenario: Scenario | LoadedScenario) -> str:
    """sha256 of a scenario's fault plan, as canonical JSON (sorted keys)."""
    spec = scenario.scenario if isinstance(scenario, LoadedScenario) else scenario
    plan = spec.plan.model_dump(mode="json")
    return hashlib.sha256(json.dumps(plan, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
