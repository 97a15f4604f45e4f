"""Regression scenario files: a found failure, written as a scenario that replays it.

A regression file is the failing trial's scenario with the shrunk faults added to
its own (their ids start ``fuzz-``), its seed pinned (``seed:``), the workflow
named when it was given as ``module:function``, and a comment saying what broke
and how to replay it. It is an ordinary scenario file: ``windtunnel validate``
checks it, ``windtunnel scenario run`` and ``windtunnel run`` run it, and the next
``windtunnel fuzz`` with the same ``--out`` replays it before generating anything
(as Hypothesis replays its example database).
"""

from __future__ import annotations

import hashlib
import io
import json
import shlex
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from windtunnel.scenarios import LoadedScenario, load_file
from windtunnel.simulators import Fault

from .trial import Failure

__all__ = [
    "REGRESSIONS",
    "is_generated",
    "load_regressions",
    "regression_id",
    "regression_text",
    "replay_command",
]

REGRESSIONS = "regressions"
"""The folder of an output directory that holds regression files."""

_PREFIX = "fuzz-"


def is_generated(fault: Fault) -> bool:
    """Whether ``fault`` is one the fuzzer added (not one of the scenario's own)."""
    return fault.id.startswith(_PREFIX)


def replay_command(path: Path | str, config: str, workflow: str | None = None) -> str:
    """The command that replays the regression file at ``path``, quoted for a shell."""
    command = ["windtunnel", "scenario", "run", str(path), "--tier", config]
    if workflow is not None:
        command += ["--workflow", workflow]
    return shlex.join(command)


def regression_id(loaded: LoadedScenario, failure: Failure, faults: Sequence[Fault], seed: int) -> str:
    """A stable id for a regression: the scenario's, with a digest of what broke and how."""
    found = json.dumps(
        [failure.signature, seed, [fault.model_dump(mode="json") for fault in faults]], sort_keys=True
    )
    return f"{loaded.scenario.id}.fuzz-{hashlib.sha256(found.encode()).hexdigest()[:8]}"


def regression_text(
    loaded: LoadedScenario,
    *,
    failure: Failure,
    faults: Sequence[Fault],
    seed: int,
    config: str,
    workflow: str | None,
    found_by: str,
    path: Path,
    replay: str,
) -> str:
    """The text of the regression file at ``path`` for ``failure``, found by ``found_by``
    (e.g. ``"windtunnel fuzz --seed 0, trial 12"``), replayed by the command ``replay``."""
    spec = loaded.scenario
    data: dict[str, Any] = {
        "id": path.stem,
        "description": f"Regression found by windtunnel fuzz: {failure.oracle} in state {failure.state}.",
        "domain": spec.domain,
    }
    if workflow or spec.workflow:
        data["workflow"] = workflow or spec.workflow
    data["tags"] = [*dict.fromkeys([*spec.tags, "fuzz-regression"])]
    data["seed"] = seed
    dumped = spec.model_dump(mode="json", exclude_none=True)
    for key in ("vary", "world", "input", "truth"):
        if dumped.get(key):
            data[key] = dumped[key]
    data["faults"] = [_fault(fault) for fault in [*spec.faults, *faults]]
    if spec.budget is not None:
        data["budget"] = spec.budget.model_dump(mode="json", exclude_none=True)
    header = [
        f"# Found by {found_by}, on config {config}, from scenario {spec.id!r} ({loaded.file}).",
        f"# What broke: {failure.oracle} in state {failure.state}, at {failure.event}:",
        *(f"#   {line}" for line in failure.message.splitlines() or [""]),
        f"# Faults added to the scenario's own: {len(faults)} (ids fuzz-N), after shrinking.",
        f"# Replay: {replay}",
        "# It fails until the bug is fixed; keep it with your scenarios as a regression test.",
    ]
    yaml = YAML(typ="rt", pure=True)
    yaml.default_flow_style = None
    yaml.width = 110
    out = io.StringIO()
    yaml.dump(data, out)
    return "\n".join(header) + "\n" + out.getvalue()


def _fault(fault: Fault) -> dict[str, Any]:
    dumped = fault.model_dump(mode="json", exclude_none=True)
    if not dumped.get("trigger"):
        dumped.pop("trigger", None)
    return dumped


def load_regressions(out: Path) -> list[LoadedScenario]:
    """The regression files under ``out``/regressions, in name order.

    Raises:
        ScenarioError: a file there is not a valid scenario (edited by hand, say).
    """
    folder = out / REGRESSIONS
    if not folder.is_dir():
        return []
    return [loaded for path in sorted(folder.glob("*.yaml")) for loaded in load_file(path)]
