"""One run, one row: the documented columns of ``runs.parquet`` and how a run fills them.

:data:`COLUMNS` names and describes every column; :data:`RUNS_SCHEMA` types them.
A row whose run raised out of the harness has ``harness_error`` set and the run's
own columns null: it is never dropped, and never counted as the agent's.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import Counter
from collections.abc import Collection
from typing import Any

import pyarrow as pa  # type: ignore[import-untyped]  # no stubs shipped

from windtunnel.evals.invariants import check_all
from windtunnel.scenarios import LoadedScenario, ScenarioRun

from .experiment import Cell, plan_digest

__all__ = [
    "CHECKS",
    "COLUMNS",
    "EVENTS_SCHEMA",
    "RUNS_SCHEMA",
    "error_row",
    "event_rows",
    "run_row",
    "trace_digest",
]

CHECKS = ("completed", "final_state", "escalation", "required_actions", "forbidden_actions", "budget")
"""The grader's generic checks, each a ``check_<name>`` column."""

_S, _B, _I, _U, _F = pa.string(), pa.bool_(), pa.int64(), pa.uint64(), pa.float64()

COLUMNS: dict[str, tuple[pa.DataType, str]] = {
    "experiment": (_S, "The experiment's name."),
    "cell": (_S, "The cell id, 'scenario/seed_index/config'; unique in the experiment."),
    "scenario": (_S, "The scenario id."),
    "tags": (_S, "The scenario's tags, comma-joined."),
    "domain": (_S, "The scenario's domain."),
    "config": (_S, "The config's name."),
    "seed_index": (_I, "The seed index, 0..seeds-1."),
    "seed": (_U, "The simulation seed, from (experiment seed, scenario id, seed index)."),
    "fault_plan": (_S, "The extra fault plan laid over the scenario's own; '' for none."),
    "plan_digest": (_S, "sha256 of the fault plan the run met, extra plan included (canonical JSON)."),
    "status": (_S, "How the run ended: completed, budget_exceeded, failed, cancelled, paused."),
    "final_state": (_S, "The state the run ended in."),
    "correct": (_B, "Every grader check passed."),
    "escalated": (_B, "The run reached a human."),
    "needs_human": (_B, "The truth it was graded against needs a human."),
    **{f"check_{name}": (_B, f"The grader's {name!r} check passed.") for name in CHECKS},
    "decided_by": (
        _S,
        "Ids of the faults that changed what is right, comma-joined ('': the truth as stated).",
    ),
    "actions_applied": (_I, "action_applied events, those found in the idempotency ledger excluded."),
    "actions_verified": (_I, "action_verified events: actions confirmed by a read-back."),
    "actions_compensated": (_I, "action_compensated events whose undo succeeded."),
    "silent_failures_injected": (_I, "silent_failure faults that fired (fault_injected events)."),
    "silent_failures_caught": (_I, "Of those, the ones whose tool then saw a verification_failed."),
    "faults_declared": (_I, "Faults in the plan that apply to the config (see faults_not_applicable)."),
    "faults_not_applicable": (
        _S,
        "Ids of the plan's faults on a tier the config does not play (tier:mid under 'small'), "
        "comma-joined: the run says nothing about them, and is not inconclusive for them.",
    ),
    "faults_fired": (_I, "Declared faults that fired at least once."),
    "faults_fired_ids": (_S, "Ids of the declared faults that fired at least once, comma-joined."),
    "faults_fired_by_kind": (_S, "JSON object: fault kind -> times fired (the injector's counts)."),
    "inconclusive": (_B, "A declared fault never fired: the run says nothing about surviving it."),
    "faults_not_fired": (_S, "Ids of the declared faults that never fired, comma-joined."),
    "model_calls": (_I, "model_called events."),
    "input_tokens": (_I, "Input tokens billed, all tiers."),
    "output_tokens": (_I, "Output tokens billed, all tiers."),
    "model_cost": (_F, "USD of model calls."),
    "by_tier": (
        _S,
        "JSON object: tier (the model id when no tier played) -> "
        "{calls, input_tokens, output_tokens, cost}; see windtunnel.evals.tiers().",
    ),
    "human_minutes": (_F, "Review minutes charged by humans (parsed from 'N minutes' in cost_charged)."),
    "human_cost": (_F, "USD charged by sources 'human:...'."),
    "cost": (_F, "Total USD charged to the run."),
    "sim_duration": (_F, "Simulated seconds from start to end."),
    "wall_time": (_F, "Wall-clock seconds of the run (grading and digest included); not deterministic."),
    "invariant_violations": (
        _I,
        "Invariant violations found in the trace (windtunnel.evals.invariants.check_all).",
    ),
    "violations": (
        _S,
        "JSON list of the violations: {invariant, seq, message} each; see windtunnel.evals.violation_rows().",
    ),
    "trace_digest": (_S, "sha256 of Trace.dumps(): the trace without wall time."),
    "confidence": (_F, "Stated confidence of the last transition chosen by a model-played state, if any."),
    "rechecked": (_B, "The cell ran twice for the determinism self-check."),
    "harness_error": (_S, "'' when none; else 'Type: message' of an exception out of the harness."),
}
"""Every column of ``runs.parquet``: name -> (arrow type, description)."""

RUNS_SCHEMA = pa.schema(
    [pa.field(name, kind, metadata={"description": doc}) for name, (kind, doc) in COLUMNS.items()]
)
"""The arrow schema of ``runs.parquet``: every column nullable (null when a harness error stopped the run)."""

EVENTS_SCHEMA = pa.schema(
    [
        pa.field("cell", _S, metadata={"description": "The cell id of the run."}),
        pa.field("run_id", _S, metadata={"description": "The run id."}),
        pa.field("seq", _I, metadata={"description": "Position of the event within its run."}),
        pa.field("kind", _S, metadata={"description": "The event's kind."}),
        pa.field("sim_time", _F, metadata={"description": "Simulated seconds."}),
        pa.field("state", _S, metadata={"description": "The state the run was in."}),
        pa.field("wall_time", _F, metadata={"description": "Wall-clock seconds since the epoch."}),
        pa.field("event", _S, metadata={"description": "The whole event as JSON, without wall time."}),
    ]
)
"""The arrow schema of ``events.parquet``: one row per event of every run."""

_CHECK_COLUMNS = tuple((name, f"check_{name}") for name in CHECKS)
_MINUTES = re.compile(r"(\d+(?:\.\d+)?) minutes")


def _base(experiment: str, cell: Cell, loaded: LoadedScenario) -> dict[str, Any]:
    spec = loaded.scenario
    row: dict[str, Any] = dict.fromkeys(COLUMNS)
    row.update(
        experiment=experiment,
        cell=cell.id,
        scenario=spec.id,
        tags=",".join(spec.tags),
        domain=spec.domain,
        config=cell.config,
        fault_plan=cell.plan,
        seed_index=cell.seed_index,
        seed=cell.seed,
        plan_digest=plan_digest(spec),
        harness_error="",
        rechecked=False,
    )
    return row


def error_row(
    experiment: str, cell: Cell, loaded: LoadedScenario, error: BaseException, *, wall_time: float
) -> dict[str, Any]:
    """The row of a cell whose run raised out of the harness: ``harness_error`` set,
    the run's columns null."""
    row = _base(experiment, cell, loaded)
    row.update(harness_error=f"{type(error).__name__}: {error}", wall_time=wall_time)
    return row


def run_row(
    experiment: str,
    cell: Cell,
    loaded: LoadedScenario,
    run: ScenarioRun,
    *,
    digest: str,
    wall_time: float,
    tiers: Collection[str] | None = None,
) -> dict[str, Any]:
    """The row of one graded run; ``digest`` is the sha256 of its ``Trace.dumps()``;
    ``tiers`` the simulated tiers the config plays (None: any), so that a fault on
    another tier counts as not applicable rather than as never fired."""
    row = _base(experiment, cell, loaded)
    result, verdict = run.result, run.verdict
    events = run.trace.events
    broken = check_all(events, run.workflow)  # with the workflow: its transitions are checked too
    checks = {check.name: check.passed for check in verdict.checks}
    by_kind: Counter[str] = Counter()
    faults = loaded.scenario.faults
    idle = [
        f.id
        for f in faults
        if f.target.startswith("tier:") and tiers is not None and f.target[5:] not in tiers
    ]
    plan = {fault.id: fault.kind for fault in faults if fault.id not in idle}
    fault_counts = run.injector.counts()
    for fault_id, kind in plan.items():
        by_kind[kind] += fault_counts[fault_id].fired
    row.update(
        status=result.status,
        final_state=result.final_state,
        correct=verdict.correct,
        escalated=verdict.escalated,
        needs_human=verdict.needs_human,
        **{column: checks.get(name) for name, column in _CHECK_COLUMNS},
        decided_by=",".join(verdict.decided_by),
        faults_declared=len(plan),
        faults_not_applicable=",".join(idle),
        faults_fired=sum(1 for fault_id in plan if fault_counts[fault_id].fired),
        faults_fired_ids=",".join(fault_id for fault_id in plan if fault_counts[fault_id].fired),
        faults_fired_by_kind=json.dumps(dict(sorted(by_kind.items())), sort_keys=True),
        inconclusive=any(not fault_counts[fault_id].fired for fault_id in plan),
        faults_not_fired=",".join(fault_id for fault_id in plan if not fault_counts[fault_id].fired),
        cost=result.cost,
        sim_duration=result.duration,
        wall_time=wall_time,
        invariant_violations=len(broken),
        violations=(
            json.dumps([{"invariant": v.check, "seq": v.seq, "message": v.message} for v in broken])
            if broken
            else "[]"  # what json.dumps gives, for nearly every run, without its cost
        ),
        trace_digest=digest,
    )
    row.update(_from_events(events))
    return row


def _from_events(events: list[Any]) -> dict[str, Any]:
    """The columns counted off the trace, in one pass: actions, models, humans, silent
    failures, confidence."""
    applied = verified = compensated = 0
    calls = input_tokens = output_tokens = 0
    model_cost = human_cost = human_minutes = 0.0
    by_tier: dict[str, dict[str, float]] = {}
    silent: list[tuple[int, str]] = []  # (seq, tool) of each silent failure fired
    failed: list[tuple[int, str]] = []  # (seq, tool) of each verification_failed
    confidence: float | None = None
    model_in_state = False
    for event in events:
        kind = event.kind
        if kind == "model_called":
            calls += 1
            input_tokens += event.input_tokens
            output_tokens += event.output_tokens
            model_cost += event.cost
            model_in_state = True
            tier = by_tier.setdefault(
                event.tier or event.model, {"calls": 0, "input_tokens": 0, "output_tokens": 0, "cost": 0.0}
            )
            tier["calls"] += 1
            tier["input_tokens"] += event.input_tokens
            tier["output_tokens"] += event.output_tokens
            tier["cost"] += event.cost
        elif kind == "state_entered":
            model_in_state = False
        elif kind == "transition" and model_in_state and event.confidence is not None:
            confidence = event.confidence
        elif kind == "cost_charged" and event.source.startswith("human:"):
            human_cost += event.cost
            found = _MINUTES.search(event.detail)
            human_minutes += float(found.group(1)) if found else 0.0
        elif kind == "fault_injected" and event.fault_kind == "silent_failure":
            silent.append((event.seq, event.target.removeprefix("tool:")))
        elif kind == "verification_failed":
            failed.append((event.seq, event.tool))
        elif kind == "action_applied":
            applied += not event.from_ledger
        elif kind == "action_verified":
            verified += 1
        elif kind == "action_compensated":
            compensated += event.ok
    caught = sum(1 for seq, tool in silent if any(s > seq and t == tool for s, t in failed))
    return {
        "actions_applied": applied,
        "actions_verified": verified,
        "actions_compensated": compensated,
        "model_calls": calls,
        "input_tokens": input_tokens,
        "output_tokens": output_tokens,
        "model_cost": model_cost,
        "by_tier": json.dumps(by_tier, sort_keys=True),
        "human_cost": human_cost,
        "human_minutes": human_minutes,
        "silent_failures_injected": len(silent),
        "silent_failures_caught": caught,
        "confidence": confidence,
    }


def trace_digest(dumped: str) -> str:
    """sha256 of a trace's ``dumps()``."""
    return hashlib.sha256(dumped.encode()).hexdigest()


def event_rows(cell: Cell, run: ScenarioRun, dumped: str) -> list[dict[str, Any]]:
    """One row per event of ``run``; ``dumped`` is its ``Trace.dumps()``, one line per event."""
    # split("\n"), not splitlines(): JSON leaves U+2028 and U+0085 in strings unescaped,
    # and splitlines() would cut an event there (it is slower, too).
    lines = dumped.split("\n")
    lines.pop()  # after the last newline
    cell_id = cell.id  # a property that formats: once, not per event
    return [
        {
            "cell": cell_id,
            "run_id": run_id,
            "seq": seq,
            "kind": kind,
            "sim_time": sim_time,
            "state": state,
            "wall_time": wall_time,
            "event": line,
        }
        for (kind, run_id, seq, sim_time, wall_time, state, _), line in zip(
            run.trace.records, lines, strict=True
        )
    ]
