"""The HTML report's failing runs: which to show, the command that replays each, and
its timeline read from the events of that run alone."""

from __future__ import annotations

import hashlib
import json
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.dataset as ds  # type: ignore[import-untyped]  # no stubs shipped

from windtunnel.evals import CHECKS
from windtunnel.evals.results import EVENTS
from windtunnel.scenarios import ScenarioError, load_file

__all__ = ["FailingRun", "failing_runs", "read_events_of", "timeline"]


@dataclass(frozen=True, slots=True, kw_only=True)
class FailingRun:
    """A run graded not correct, as the report shows it."""

    cell: str
    """Its cell id."""
    scenario: str
    config: str
    seed: int
    """The simulation seed: what ``--seed`` replays."""
    failed: list[str]
    """The grader checks it failed."""
    command: str | None
    """The shell command that replays it; None when the CLI cannot (see ``note``)."""
    note: str = ""
    """Why the command is missing or may not replay it exactly."""
    steps: list[dict[str, Any]] = field(default_factory=list)
    """Its timeline (see :func:`timeline`); empty beyond the cap of timelines shown."""


def failing_runs(
    runs: pd.DataFrame, manifest: dict[str, Any], *, cwd: Path, limit: int
) -> tuple[list[FailingRun], int]:
    """The first ``limit`` runs graded not correct, in the order they ran, each with
    its replay command, and how many failed in all. Harness errors are not the
    agent's failures: they are shown apart."""
    ok = runs["harness_error"].fillna("").astype(str) == ""
    every = runs[ok & ~runs["correct"].astype(bool)]
    failed = every.head(limit)
    if failed.empty:
        return [], len(every)
    files = _scenario_files(manifest, set(failed["scenario"].astype(str)), cwd=cwd)
    configs = {config["name"]: config for config in manifest.get("configs", [])}
    shown = []
    for row in failed.to_dict("records"):
        command, note = _replay({str(key): value for key, value in row.items()}, files, configs)
        shown.append(
            FailingRun(
                cell=str(row["cell"]),
                scenario=str(row["scenario"]),
                config=str(row["config"]),
                seed=int(row["seed"]),
                failed=[name for name in CHECKS if row.get(f"check_{name}") is False],
                command=command,
                note=note,
            )
        )
    return shown, len(every)


def _scenario_files(manifest: dict[str, Any], wanted: set[str], *, cwd: Path) -> dict[str, tuple[str, str]]:
    """Scenario id -> (file as the manifest names it, note), for the ids in ``wanted``.

    The manifest names each file read and its sha256, not which scenario each holds,
    so the files are loaded, as named, from ``cwd`` until every wanted id is found.
    """
    found: dict[str, tuple[str, str]] = {}
    for name, digest in manifest.get("files", {}).items():
        if wanted <= found.keys():
            break
        path = cwd / name
        try:
            loaded = load_file(path)
            changed = hashlib.sha256(path.read_bytes()).hexdigest() != digest
        except (OSError, ScenarioError):
            continue  # a suite file, or one gone since the run
        note = f"{name} changed since the run: the replay may differ" if changed else ""
        for scenario in loaded:
            found.setdefault(scenario.scenario.id, (name, note))
    return found


def _replay(
    row: dict[str, Any], files: dict[str, tuple[str, str]], configs: dict[str, dict[str, Any]]
) -> tuple[str | None, str]:
    scenario, config = str(row["scenario"]), configs.get(str(row["config"]), {})
    if scenario not in files:
        return None, f"no file of the manifest holding scenario {scenario!r} was found from here"
    if config.get("play") is None:
        return None, "its config plays its own tier profile or models, which the CLI cannot take"
    if row.get("fault_plan"):
        return None, f"it ran with the extra fault plan {row['fault_plan']!r}, which the CLI cannot lay over"
    name, note = files[scenario]
    workflow = f" --workflow {config['workflow']}" if config.get("workflow") else ""
    command = (
        f"windtunnel scenario run {shlex.quote(name)} --id {shlex.quote(scenario)} --seed {int(row['seed'])} "
        f"--tier {shlex.quote(str(config['play']))}{workflow}"
    )
    return command, note


def read_events_of(results_dir: Path, cells: list[str]) -> pd.DataFrame:
    """The events of ``cells`` only, in run order.

    Row groups holding none of them are skipped after reading their ``cell`` column
    alone: the events' JSON is most of the file, and decoding it all for 100,000 runs
    would take minutes.
    """
    if not cells:
        return pd.DataFrame(columns=["cell", "seq", "kind", "sim_time", "state", "event"])
    wanted = set(cells)
    parts: list[pd.DataFrame] = []
    for fragment in ds.dataset(results_dir / EVENTS, format="parquet").get_fragments():
        for group in fragment.split_by_row_group():
            held = set(group.to_table(columns=["cell"]).column("cell").to_pylist())
            if held & wanted:
                frame = group.to_table(
                    columns=["cell", "seq", "kind", "sim_time", "state", "event"]
                ).to_pandas()
                parts.append(frame[frame["cell"].isin(wanted)])
    return pd.concat(parts, ignore_index=True).sort_values(["cell", "seq"], ignore_index=True)


def timeline(events: pd.DataFrame) -> list[dict[str, Any]]:
    """One run's notable events as ``{t, state, kind, detail}``, times from its start:
    states entered, transitions, tool calls, faults, escalations, approvals, actions."""
    if events.empty:
        return []
    start = float(events["sim_time"].iloc[0])
    steps: list[dict[str, Any]] = []
    for kind, sim_time, state, raw in events[["kind", "sim_time", "state", "event"]].itertuples(index=False):
        detail = _detail(str(kind), json.loads(raw))
        if detail is not None:
            steps.append(
                {"t": float(sim_time) - start, "state": str(state), "kind": str(kind), "detail": detail}
            )
    return steps


def _detail(kind: str, event: dict[str, Any]) -> str | None:
    match kind:
        case "state_entered":
            return f"entered (attempt {event.get('attempt', 1)})"
        case "transition":
            confidence = event.get("confidence")
            stated = "" if confidence is None else f", confidence {confidence:.2f}"
            return f"-> {event.get('target')}{stated}"
        case "tool_called":
            return f"{event.get('tool')}: {event.get('status')} ({event.get('attempts')} attempt(s))"
        case "tool_rejected" | "tool_timeout":
            why = event.get("reason") or "timed out"
            return f"{event.get('tool')}: {why} {event.get('detail') or ''}".strip()
        case "fault_injected":
            return f"{event.get('fault_id')} ({event.get('fault_kind')} on {event.get('target')})"
        case "escalated":
            return f"{event.get('trigger')} -> {event.get('to')}: {event.get('detail')}"
        case "approval_requested" | "approval_decided":
            return str(event.get("proposal") or f"{event.get('decision')} by {event.get('by')}")
        case "action_applied" | "action_verified" | "verification_failed" | "action_compensated":
            return f"{event.get('intent') or ''} {event.get('resource')}".strip()
        case "handler_failed" | "budget_exceeded" | "conflict_detected" | "transition_refused":
            return ", ".join(f"{key}={value}" for key, value in event.items() if key not in _COMMON)
        case "run_finished":
            return f"{event.get('status')} after {event.get('steps')} steps"
    return None


_COMMON = {"run_id", "seq", "sim_time", "state", "kind"}
