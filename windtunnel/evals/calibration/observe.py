"""What a results directory shows of a config's model: decisions, tool calls, call sizes and times.

Every observation is read off the events, so live runs, replays and simulated tiers
are read alike; only the truth comes from elsewhere: each run's case is rebuilt from
the experiment's scenario files and the cell's seed, which gives the case's
difficulty, its key evidence and — through the domain's playbook — the right next
state of each decision.

- A **decision** is a model response with a ``submit`` among more than one allowed
  next state: right or not, its stated confidence, the case's difficulty, and the
  share of the key evidence the run had seen by then (each key tool's strongest
  result in the conversations so far, as :func:`~windtunnel.simulators.evidence.strength`
  weighs it — what :class:`~windtunnel.simulators.SimulatedModel` decides on).
- A **tool call** is any other tool_use of a response: hallucinated when it was
  rejected as an unknown or not-allowed tool, malformed when rejected for its arguments.
- A **call** is a model_called event that got a response: its tokens, the input
  tokens beyond the request's own characters / 4, and its latency.

Runs where a fault of the tier itself fired (a hallucinated call or mangled arguments
injected, an API error) count for decisions only: those faults are the plan's, not
the model's. Resumed runs (after a simulated crash) are left out of decisions: a
dead life's conversations are not all in the trace, so their evidence is unknown.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.parquet as pq  # type: ignore[import-untyped]  # no stubs shipped

from windtunnel.orchestrator import InvalidArgument, ToolResultBlock
from windtunnel.orchestrator.tools import SUBMIT
from windtunnel.scenarios import LoadedScenario, ScenarioError, resolve
from windtunnel.simulators.evidence import strength

from ..experiment import Experiment
from ..manifest import read_manifest

__all__ = ["Observations", "observe"]

_KINDS = ("model_called", "tool_rejected", "fault_injected", "run_resumed")
_HALLUCINATED = frozenset({"unknown_tool", "not_allowed"})


@dataclass(frozen=True, slots=True, kw_only=True)
class Observations:
    """One config's observations in a results directory (see the module docstring)."""

    config: str
    runs: int
    """Runs of the config without a harness error."""
    models: Counter[str]
    """Model ids of its calls, with their counts."""
    tiers: Counter[str]
    """Tier names of its calls (its model id when no tier played), with their counts."""
    decisions: pd.DataFrame
    """One row per decision: cell, state, choices, difficulty, evidence, correct, confidence."""
    calls: pd.DataFrame
    """One row per answered model call: cell, input_tokens, output_tokens, overhead, latency, retries."""
    tool_calls: int
    """Tool calls other than submit, in runs without a tier fault."""
    hallucinated: int
    malformed: int
    skipped: Counter[str] = field(default_factory=Counter)
    """What was left out, and why."""
    files_changed: tuple[str, ...] = ()
    """Scenario files whose digest differs from the manifest's: the truth may have moved."""


def observe(results_dir: str | Path, *, config: str | None = None) -> Observations:
    """The observations of ``config`` (the only one, when None) in ``results_dir``.

    Raises:
        InvalidArgument: not a results directory; no such config, or several and none
            chosen; the experiment's scenario files cannot be loaded from here.
    """
    path = Path(results_dir)
    if not path.is_dir() or not (path / "runs.parquet").is_dir() or not (path / "events.parquet").is_dir():
        raise InvalidArgument(
            f"{str(path)!r} is not a results directory (no runs.parquet and events.parquet)"
        )
    manifest = read_manifest(path)
    runs = pd.read_parquet(path / "runs.parquet")
    name = _chosen(config, sorted(runs["config"].unique()), path)
    runs = runs[(runs["config"] == name) & (runs["harness_error"] == "")]
    experiment = Experiment.model_validate(manifest.experiment)
    cases = _cases(experiment, runs, path)
    changed = _changed(manifest.files)
    cells = sorted(runs["cell"])
    table = pq.read_table(
        path / "events.parquet",
        columns=["cell", "seq", "kind", "event"],
        filters=[("cell", "in", cells), ("kind", "in", list(_KINDS))],
    )
    frame = table.to_pandas().sort_values(["cell", "seq"])
    reader = _Reader()
    for cell, group in frame.groupby("cell", sort=True):
        reader.run(str(cell), [json.loads(text) for text in group["event"]], cases[str(cell)])
    return Observations(
        config=name,
        runs=len(runs),
        models=reader.models,
        tiers=reader.tiers,
        decisions=pd.DataFrame(reader.decisions, columns=list(_DECISION_COLUMNS)),
        calls=pd.DataFrame(reader.calls, columns=list(_CALL_COLUMNS)),
        tool_calls=reader.tool_calls,
        hallucinated=reader.hallucinated,
        malformed=reader.malformed,
        skipped=reader.skipped,
        files_changed=changed,
    )


def _chosen(config: str | None, known: list[str], path: Path) -> str:
    if config is None:
        if len(known) != 1:
            raise InvalidArgument(f"{path} holds configs {known}: choose one with config=")
        return known[0]
    if config not in known:
        raise InvalidArgument(f"config={config!r} is not in {path}; it holds {known}")
    return config


@dataclass(frozen=True, slots=True)
class _Case:
    difficulty: float
    evidence: tuple[str, ...]
    playbook: Any


def _cases(experiment: Experiment, runs: pd.DataFrame, path: Path) -> dict[str, _Case]:
    """Each run's case, rebuilt from the scenario files and its seed."""
    try:
        suite = experiment.load()
        scenarios = experiment.scenarios_by_plan(suite)
    except (ScenarioError, InvalidArgument, OSError) as exc:
        first = str(exc.problems[0]) if isinstance(exc, ScenarioError) else str(exc).splitlines()[0]
        raise InvalidArgument(
            f"{path}: the experiment's scenario files {experiment.scenarios} cannot be loaded from here "
            f"({first}); calibrate from the folder the experiment ran in"
        ) from None
    cases: dict[str, _Case] = {}
    for cell, scenario_id, plan, seed in zip(
        runs["cell"], runs["scenario"], runs["fault_plan"], runs["seed"], strict=True
    ):
        loaded: LoadedScenario | None = scenarios.get((scenario_id, plan))
        if loaded is None:
            raise InvalidArgument(
                f"{path}: scenario {scenario_id!r} is no longer in {experiment.scenarios}; "
                "calibrate against the files the experiment ran"
            )
        case = resolve(loaded.scenario, loaded.domain, seed=int(seed))
        cases[cell] = _Case(
            difficulty=float(case.truth.difficulty),
            evidence=tuple(case.truth.evidence),
            playbook=loaded.domain.playbook(case),
        )
    return cases


def _changed(files: Mapping[str, str]) -> tuple[str, ...]:
    import hashlib

    changed = []
    for name, digest in sorted(files.items()):
        try:
            now = hashlib.sha256(Path(name).read_bytes()).hexdigest()
        except OSError:
            now = ""
        if now != digest:
            changed.append(name)
    return tuple(changed)


_DECISION_COLUMNS = ("cell", "state", "choices", "difficulty", "evidence", "correct", "confidence")
_CALL_COLUMNS = ("cell", "input_tokens", "output_tokens", "overhead", "latency", "retries")


class _Reader:
    """Reads the events of one run after another into rows and counts."""

    def __init__(self) -> None:
        self.models: Counter[str] = Counter()
        self.tiers: Counter[str] = Counter()
        self.decisions: list[tuple[Any, ...]] = []
        self.calls: list[tuple[Any, ...]] = []
        self.tool_calls = self.hallucinated = self.malformed = 0
        self.skipped: Counter[str] = Counter()

    def run(self, cell: str, events: list[dict[str, Any]], case: _Case) -> None:
        tier_faulted = any(
            e["kind"] == "fault_injected" and str(e["target"]).startswith("tier:") for e in events
        )
        resumed = any(e["kind"] == "run_resumed" for e in events)
        key = frozenset(case.evidence)
        findings: dict[str, float] = {}  # the strongest evidence of each key tool seen so far in the run
        # Tool-use ids repeat across the states of a run (each state's model numbers its own):
        # a rejection belongs to the calls of the model response just before it.
        pending: set[str] = set()
        for event in events:
            if event["kind"] == "tool_rejected":
                if event["call_id"] in pending:
                    pending.discard(event["call_id"])
                    self.hallucinated += event["reason"] in _HALLUCINATED
                    self.malformed += event["reason"] == "invalid_arguments"
                continue
            if event["kind"] != "model_called":
                continue
            pending = set()
            self.models[event["model"]] += 1
            self.tiers[event["tier"] or event["model"]] += 1
            response, request = event["response"], event["request"]
            if response is None:
                self.skipped["model calls that failed"] += 1
                continue
            if tier_faulted:
                self.skipped["model calls in runs with a tier fault (tokens, latency, tool calls)"] += 1
            else:
                overhead = event["input_tokens"] - request_chars(request) / 4
                self.calls.append(
                    (
                        cell,
                        event["input_tokens"],
                        event["output_tokens"],
                        overhead,
                        event["latency"],
                        event["retries"],
                    )
                )
            _seen(request, key, findings)
            for use in (b for b in response["content"] if b["type"] == "tool_use"):
                if use["name"] == SUBMIT:
                    self._decision(cell, event, use, case, findings, resumed=resumed)
                elif not tier_faulted:
                    self.tool_calls += 1
                    pending.add(use["id"])

    def _decision(
        self,
        cell: str,
        event: Mapping[str, Any],
        use: Mapping[str, Any],
        case: _Case,
        findings: Mapping[str, float],
        *,
        resumed: bool,
    ) -> None:
        allowed = _allowed(event["request"])
        given = use["input"] if isinstance(use["input"], dict) else {}
        chosen, confidence = given.get("next"), given.get("confidence")
        if resumed:
            self.skipped["decisions in resumed runs"] += 1
        elif len(allowed) < 2:
            self.skipped["decisions with one allowed next state"] += 1
        elif chosen not in allowed:
            self.skipped["submits without an allowed next state"] += 1
        else:
            key = case.evidence
            evidence = sum(findings.get(tool, 0.0) for tool in key) / len(key) if key else 1.0
            right = case.playbook.right_choice(event["state"], allowed)
            stated = float(confidence) if isinstance(confidence, int | float) else float("nan")
            self.decisions.append(
                (cell, event["state"], len(allowed), case.difficulty, evidence, chosen == right, stated)
            )


def _allowed(request: Mapping[str, Any]) -> tuple[str, ...]:
    for spec in request["tools"]:
        if spec["name"] == SUBMIT:
            try:
                return tuple(spec["input_schema"]["properties"]["next"]["enum"])
            except (KeyError, TypeError):
                return ()
    return ()


def _seen(request: Mapping[str, Any], key: frozenset[str], findings: dict[str, float]) -> None:
    """Raise ``findings`` to the strength of each key tool's results in ``request``'s conversation."""
    names: dict[str, str] = {}
    for block in _blocks(request):
        if block["type"] == "tool_use" and block["name"] in key:
            names[block["id"]] = block["name"]
        elif block["type"] == "tool_result" and block["tool_use_id"] in names:
            tool = names[block["tool_use_id"]]
            weight = strength(
                ToolResultBlock(
                    tool_use_id=block["tool_use_id"], content=block["content"], is_error=block["is_error"]
                )
            )
            if weight > findings.get(tool, 0.0):
                findings[tool] = weight


def _blocks(request: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    for message in request["messages"]:
        yield from message["content"]


def request_chars(request: Mapping[str, Any]) -> int:
    """A request's size in characters, as :class:`~windtunnel.simulators.SimulatedModel`
    counts it (tool definitions included) before it divides by 4 for its input tokens."""
    total = sum(
        len(spec["name"]) + len(spec["description"]) + len(str(spec["input_schema"]))
        for spec in request["tools"]
    )
    total += len(request["system"])
    for block in _blocks(request):
        kind = block["type"]
        if kind == "text":
            total += len(block["text"])
        elif kind == "tool_result":
            total += len(block["content"]) + 40
        else:
            total += len(block["name"]) + len(str(block["input"])) + 40
    return total
