"""The command that replays one run of a results directory: ``windtunnel scenario run``.

A run is replayed by its scenario file, its scenario id, its simulation seed (the
``seed`` column) and how its config plays. The manifest names the experiment; loading
its suite again tells which file holds each scenario.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Mapping
from typing import Any

from windtunnel.evals import Config, Experiment
from windtunnel.orchestrator import WindtunnelError

__all__ = ["Replay", "replay_command", "replayer", "scenario_files"]

Replay = Callable[[Mapping[str, Any]], str]
"""Given a run's row (``scenario``, ``seed``, ``config``, ``fault_plan``), the shell
command that replays it."""


def scenario_files(manifest: Mapping[str, Any]) -> dict[str, str]:
    """Scenario id -> the file it was loaded from, by loading the manifest's experiment
    again (paths as the experiment gave them, relative to where it ran).

    Raises:
        ScenarioError: the files are gone or no longer load.
    """
    experiment = Experiment.model_validate(manifest["experiment"])
    return {loaded.scenario.id: loaded.file for loaded in experiment.load()}


def replay_command(run: Mapping[str, Any], *, file: str, config: Config) -> str:
    """``windtunnel scenario run FILE --id ID --seed SEED --tier PLAY [--workflow W]``,
    with a note after ``#`` for what the command line cannot replay (a config's own
    tier profile or models, an extra fault plan)."""
    words = ["windtunnel", "scenario", "run", file, "--id", str(run["scenario"]), "--seed", str(run["seed"])]
    notes = []
    if config.play is not None:
        words += ["--tier", config.play]
    elif config.profile is not None:
        notes.append(f"config {config.name!r} plays its own tier profile, which this command cannot take")
    else:
        notes.append(
            f"config {config.name!r} plays its own models ({config.models}), which this command cannot take"
        )
    if config.workflow is not None:
        words += ["--workflow", config.workflow]
    if run.get("fault_plan"):
        notes.append(
            f"the run also met the extra fault plan {run['fault_plan']!r}, which this command does not add"
        )
    command = shlex.join(words)
    return f"{command}  # {'; '.join(notes)}" if notes else command


def replayer(manifest: Mapping[str, Any], *, files: Mapping[str, str] | None = None) -> Replay:
    """The replay commands of a results directory's runs, from its ``manifest.json``.

    ``files`` maps scenario ids to their files; by default `scenario_files` loads them,
    and when the suite no longer loads each command says ``<file of SCENARIO>`` instead.
    """
    configs = {config.name: config for config in map(Config.model_validate, manifest["configs"])}
    if files is None:
        try:
            files = scenario_files(manifest)
        except WindtunnelError:  # a report of old results must not fail because the files moved
            files = {}
    found = dict(files)

    def replay(run: Mapping[str, Any]) -> str:
        scenario = str(run["scenario"])
        return replay_command(
            run, file=found.get(scenario, f"<file of {scenario}>"), config=configs[str(run["config"])]
        )

    return replay
