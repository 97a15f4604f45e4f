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
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from windtunnel.orchestrator import InvalidArgument
from windtunnel.orchestrator.validation import check_unique
from windtunnel.scenarios import (
    FileProblem,
    LoadedScenario,
    Scenario,
    ScenarioError,
    Suite,
    load_suite,
    overlay,
    parse_play,
)
from windtunnel.scenarios.oracle import ORACLE_MODELS
from windtunnel.simulators import Fault, TierProfile, derive_seed

from .profile_file import is_profile_file, read_profile

__all__ = ["Cell", "Config", "Experiment", "ExtraFaults", "cell_seed", "config_of", "plan_digest"]


class Config(BaseModel):
    """How an experiment's decision states are played, under a name written into every row.

    Exactly one of ``play`` (a built-in tier or a ladder of them), ``profile`` (a tier
    of your own, as data) or ``models`` (your own model factory) says who plays.

    Example:
        >>> Config(name="cheap", play="ladder:small@0.9,large").who()
        'ladder:small@0.9,large'
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, description="The config's name in results; unique in its experiment.")
    play: str | None = Field(
        None,
        description="A tier name ('small', 'mid', 'large'), a real model id ('claude-haiku-4-5'), or a "
        "ladder of either ('ladder:small@0.85,large', 'ladder:claude-haiku-4-5@0.8,claude-sonnet-4-5').",
    )
    profile: TierProfile | None = Field(
        None, description="A simulated tier of your own, or the path of a profile file (.json, .yaml)."
    )
    models: str | None = Field(
        None,
        description="'package.module:function' called with (state, playbook), returning the Model "
        "that plays that state: your own models instead of simulated tiers.",
    )
    workflow: str | None = Field(
        None, description="'package.module:function': your workflow factory instead of the scenario's."
    )

    @field_validator("name")
    @classmethod
    def _no_slash(cls, name: str) -> str:
        if "/" in name:  # cell ids are 'scenario/seed_index/config[/+plan]': a slash would make them collide
            raise InvalidArgument(f"config name {name!r} must not contain '/'")
        return name

    @field_validator("profile", mode="before")
    @classmethod
    def _profile_file(cls, value: Any) -> Any:
        # A path, e.g. what `windtunnel calibrate` wrote: the profile it holds.
        return read_profile(value) if isinstance(value, str | Path) else value

    @field_validator("play")
    @classmethod
    def _valid_play(cls, play: str | None) -> str | None:
        if play is not None:
            parse_play(play)  # raises InvalidArgument naming the bad tier or rung
        return play

    @model_validator(mode="after")
    def _one_player(self) -> Config:
        given = [key for key in ("play", "profile", "models") if getattr(self, key) is not None]
        if len(given) != 1:
            raise InvalidArgument(
                f"config {self.name!r} needs exactly one of play, profile or models; given: {given or 'none'}"
            )
        return self

    def who(self) -> str | TierProfile:
        """What ``run_scenario(play=...)`` takes: the play spec or the profile."""
        if self.profile is not None:
            return self.profile
        return self.play or "small"  # with `models`, play names nothing: the models play

    def tiers(self) -> list[TierProfile]:
        """The simulated tiers this config plays with (none for your own models)."""
        if self.models is not None:
            return []
        return [profile for profile, _ in parse_play(self.who()).rungs]

    def real_models(self) -> list[str]:
        """The real model ids this config plays (none for simulated tiers or your own models)."""
        if self.models is not None:
            return []
        return [model for model, _ in parse_play(self.who()).models]


class ExtraFaults(BaseModel):
    """A fault plan laid over every scenario's own: the experiment runs each cell with
    and without it, on the same seed, so that what it costs is measured paired."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]*$", description="The plan's name in cell ids and rows.")
    faults: list[Fault] = Field(
        min_length=1, description="Faults as in a scenario file; ids prefixed 'name/'."
    )

    @field_validator("faults")
    @classmethod
    def _unique_ids(cls, faults: list[Fault]) -> list[Fault]:
        check_unique("fault ids of a plan", [fault.id for fault in faults])
        return faults


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
    fault_plans: list[ExtraFaults] = Field(
        default_factory=list,
        description="Extra fault plans: every cell runs without them and with each, on the same seed.",
    )

    @field_validator("configs", mode="before")
    @classmethod
    def _configs_from_specs(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [config_of(item) for item in value]
        return value

    @model_validator(mode="after")
    def _unique_names(self) -> Experiment:
        check_unique("config names", [config.name for config in self.configs])
        check_unique("fault plan names", [plan.name for plan in self.fault_plans])
        return self

    def load(self) -> Suite:
        """The experiment's scenarios, loaded and selected.

        Raises:
            ScenarioError: listing every problem of every file.
        """
        return load_suite(self.scenarios, tags=self.tags, ids=self.ids)

    def cells(self, suite: Suite | None = None) -> list[Cell]:
        """Every cell, in a stable order: by seed index, scenario (suite order), extra
        plan (none first), config — seed by seed, so that the first runs of an
        experiment (a progress bar's, a killed run's) already cover every scenario."""
        suite = self.load() if suite is None else suite
        plans = ["", *(plan.name for plan in self.fault_plans)]
        cells: list[Cell] = []
        for index in range(self.seeds):
            for loaded in suite:
                scenario_id, pinned = loaded.scenario.id, loaded.scenario.seed
                if pinned is not None and index > 0:
                    continue  # a pinned scenario (a fuzz regression) runs once, on its own seed
                seed = cell_seed(self.seed, scenario_id, index) if pinned is None else pinned
                cells.extend(
                    Cell(scenario=scenario_id, seed_index=index, seed=seed, config=config.name, plan=plan)
                    for plan in plans
                    for config in self.configs
                )
        return cells

    def scenarios_by_plan(self, suite: Suite) -> dict[tuple[str, str], LoadedScenario]:
        """Every scenario as each cell runs it, by (scenario id, extra plan name): its own
        faults under ``""``, with each extra plan's laid over them under its name.

        Raises:
            ScenarioError: an extra plan names targets a scenario's domain lacks; every
                problem of every plan and scenario at once.
        """
        found: dict[tuple[str, str], LoadedScenario] = {}
        problems: list[FileProblem] = []
        for loaded in suite:
            found[(loaded.scenario.id, "")] = loaded
            for plan in self.fault_plans:
                try:
                    found[(loaded.scenario.id, plan.name)] = overlay(loaded, plan.faults, plan=plan.name)
                except ScenarioError as exc:
                    problems.extend(exc.problems)
        if problems:
            raise ScenarioError(problems)
        return found

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
    plan: str = ""
    """The extra fault plan laid over the scenario's own; "" for none."""

    @property
    def id(self) -> str:
        """``scenario/seed_index/config``, and ``/+plan`` with an extra plan: unique in
        its experiment."""
        base = f"{self.scenario}/{self.seed_index}/{self.config}"
        return f"{base}/+{self.plan}" if self.plan else base


def config_of(item: Any) -> Any:
    """A config as given, before validation: a play spec, a profile file's path and a
    TierProfile stand for themselves, by name (the file's under its profile's name),
    and ``"oracle"`` for the oracle model (the domain's playbook played perfectly);
    anything else is left to :class:`Config` to check."""
    if item == "oracle":  # the playbook played perfectly: only the orchestration can fail
        return {"name": item, "models": ORACLE_MODELS}
    if isinstance(item, str) and is_profile_file(item):
        item = read_profile(item)
    if isinstance(item, str):
        return {"name": item, "play": item}
    if isinstance(item, TierProfile):
        return {"name": item.name, "profile": item}
    return item


def cell_seed(experiment_seed: int, scenario_id: str, seed_index: int) -> int:
    """The simulation seed of every cell of ``scenario_id`` at ``seed_index``, whatever its config."""
    return derive_seed(experiment_seed, f"{scenario_id}/{seed_index}")


def plan_digest(scenario: Scenario | LoadedScenario) -> str:
    """sha256 of a scenario's fault plan, as canonical JSON (sorted keys)."""
    spec = scenario.scenario if isinstance(scenario, LoadedScenario) else scenario
    # Every row needs it, and it costs ~70 µs: computed once per (frozen) scenario object.
    key = id(spec)
    found = _DIGESTS.get(key)
    if found is not None and found[0]() is spec:
        return found[1]
    plan = spec.plan.model_dump(mode="json")
    digest = hashlib.sha256(json.dumps(plan, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
    _DIGESTS[key] = (weakref.ref(spec, lambda _: _DIGESTS.pop(key, None)), digest)
    return digest


_DIGESTS: dict[int, tuple[weakref.ref[Scenario], str]] = {}
