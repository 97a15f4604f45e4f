"""One fuzz trial: a scenario run with generated faults over its own, judged by the oracles.

Two oracles judge a trial:

- ``invariants``: every trace checker of :mod:`windtunnel.evals.invariants`; any
  violation is a failure, located at the offending event.
- ``truth``: the scenario's grader; a check fails the trial only when the same
  scenario, seed and config *without* the generated faults passes it. A simulated
  tier's own mistakes are not the faults' doing, and blaming them on the faults
  would call right behaviour wrong. Nor is a run that ended with a human (in an
  escalated state) under faults failed for not ending as the fault-free case would
  (its final state, its escalation, an action it left to the human): with faults
  firing, handing the case to a human is the safe side — the matrix counts it as
  over-escalation, at its cost; the fuzzer looks for what breaks.

A failure's *signature* — (oracle, state, event kind) — says what broke, where and
how; the fuzzer deduplicates by it, and a shrunk plan must keep it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, TypeAlias

from windtunnel.orchestrator import Event, InvalidArgument, Workflow
from windtunnel.scenarios import Kit, LoadedScenario, ScenarioRun, parse_play, run_scenario
from windtunnel.scenarios.domain import load_factory
from windtunnel.scenarios.oracle import oracle as oracle_models
from windtunnel.simulators import Fault

from ..invariants import check_all

__all__ = ["ORACLES", "ORACLE_CONFIG", "Failure", "Oracle", "Outcome", "Subject"]

Oracle: TypeAlias = Literal["invariants", "truth", "both"]
ORACLES: tuple[Oracle, ...] = ("invariants", "truth", "both")

Signature: TypeAlias = tuple[str, str, str]

SAFE_WHEN_ESCALATED = frozenset({"final_state", "escalation", "required_actions"})
"""Grader checks a run that ended with a human (in an escalated state) may fail under
faults without failing the truth oracle: it ended elsewhere, asked someone, or left
an action to them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Failure:
    """One oracle's complaint about a run."""

    oracle: str
    """``invariant:<checker>`` or ``grader:<check>``."""
    state: str
    """Where: the state of the offending event (the final state, for the grader); ``-`` if none."""
    event: str
    """How: the offending event's kind (``run_finished:<status>``, for the grader)."""
    message: str
    """What happened, in the checker's or the grader's words."""

    @property
    def check(self) -> str:
        """The checker or grader check, without its oracle's prefix."""
        return self.oracle.partition(":")[2]

    @property
    def signature(self) -> Signature:
        """(oracle, state, event kind): what distinct failures are told apart by."""
        return (self.oracle, self.state, self.event)

    def __str__(self) -> str:
        return f"{self.oracle} in {self.state} at {self.event}: {self.message}"


@dataclass(frozen=True, slots=True, kw_only=True)
class Outcome:
    """What one trial showed."""

    failures: tuple[Failure, ...]
    fired_on: dict[str, tuple[int, ...]]
    """Per generated fault id, the opportunities it fired on (empty: it never fired)."""
    opportunities: dict[str, int] = dataclasses.field(default_factory=dict)
    """Per generated fault id, the calls of its target it could have fired on."""
    events: Sequence[Event] = ()
    harness_error: str | None = None
    """The harness itself failed (never counted as the agent's failure)."""

    @property
    def inconclusive(self) -> bool:
        """Faults were generated but none fired, and nothing failed: not a pass."""
        return bool(self.fired_on) and not any(self.fired_on.values()) and not self.failures

    def fails(self, signature: Signature) -> bool:
        """Whether one of the failures has ``signature``."""
        return any(failure.signature == signature for failure in self.failures)


ORACLE_CONFIG = "oracle"
"""The config whose decision states play the domain's playbook perfectly
(:mod:`windtunnel.scenarios.oracle`): no model noise, so only the orchestration can fail."""


class Subject:
    """What is fuzzed: a workflow (the scenarios' own, or ``workflow``) played as
    ``config`` says — a tier, a ladder, or ``"oracle"`` — judged by ``oracle``.

    Raises:
        InvalidArgument: an unknown config or oracle, or a workflow factory that
            cannot be imported.
    """

    def __init__(
        self,
        *,
        config: str = "large",
        workflow: Callable[[Kit], Workflow] | str | None = None,
        oracle: Oracle = "both",
    ) -> None:
        if oracle not in ORACLES:
            raise InvalidArgument(f"oracle={oracle!r} must be one of {list(ORACLES)}")
        self.config = config
        self.models = oracle_models() if config == ORACLE_CONFIG else None
        # The oracle plays no tier: no model or API fault has anything to hit.
        self.tiers = [] if self.models else _tiers(config)
        self.workflow = workflow if isinstance(workflow, str) else None
        """The factory as ``module:function``, when given so (written into regression files)."""
        self.factory = load_factory(workflow) if isinstance(workflow, str) else workflow
        self.oracle = oracle
        self._baselines: dict[tuple[str, int], frozenset[str] | None] = {}
        self.runs = 0
        """Runs made so far, baselines included."""

    def run(self, loaded: LoadedScenario, seed: int, faults: Sequence[Fault]) -> Outcome:
        """Run ``loaded`` on ``seed`` with ``faults`` over its own; judge it.

        Raises:
            InvalidArgument: the workflow factory is bad input (it raised or returned
                no workflow): no trial can run.
        """
        run = self._run(loaded, seed, faults)
        if isinstance(run, str):
            return Outcome(failures=(), fired_on={f.id: () for f in faults}, harness_error=run)
        counts = run.injector.counts()
        events = run.trace.events
        failures: list[Failure] = []
        if self.oracle != "truth":
            failures += _broken(events, run.workflow)
        if self.oracle != "invariants" and not run.verdict.correct:
            passed = self.passed(loaded, seed, ())
            excused = _excused(loaded, run)
            failures += [
                failure
                for failure in _graded(run)
                if passed is not None and failure.check in passed and failure.check not in excused
            ]
        return Outcome(
            failures=tuple(failures),
            fired_on={fault.id: counts[fault.id].fired_on for fault in faults},
            opportunities={fault.id: counts[fault.id].opportunities for fault in faults},
            events=events,
        )

    def passed(self, loaded: LoadedScenario, seed: int, faults: Sequence[Fault]) -> frozenset[str] | None:
        """The grader checks ``loaded`` passes on ``seed`` with ``faults`` over its own —
        those a run left with a human is excused from counting as passed, as a trial
        judges them (None when the run fails in the harness). Kept for runs without
        ``faults``: the baselines every trial of a scenario and seed is compared with."""
        key = (loaded.scenario.id, seed)
        if not faults and key in self._baselines:
            return self._baselines[key]
        run = self._run(loaded, seed, faults)
        passed = None
        if not isinstance(run, str):
            passed = frozenset(c.name for c in run.verdict.checks if c.passed)
            passed |= _excused(loaded, run) if faults else frozenset()
        if not faults:
            self._baselines[key] = passed
        return passed

    def as_is(self, loaded: LoadedScenario, seed: int) -> Outcome:
        """``loaded`` judged as ``windtunnel scenario run`` judges it — every broken
        invariant and every failed grader check, no baseline (the file is the case):
        how a saved regression still fails, if it does."""
        run = self._run(loaded, seed, ())
        if isinstance(run, str):
            return Outcome(failures=(), fired_on={}, harness_error=run)
        failures = [*_broken(run.trace.events, run.workflow), *_graded(run)]
        return Outcome(failures=tuple(failures), fired_on={}, events=run.trace.events)

    def _run(self, loaded: LoadedScenario, seed: int, faults: Sequence[Fault]) -> ScenarioRun | str:
        """The run of ``loaded`` with ``faults`` over its own, or the harness error that stopped it."""
        spec = loaded.scenario
        scenario = dataclasses.replace(
            loaded, scenario=spec.model_copy(update={"faults": [*spec.faults, *faults]})
        )
        self.runs += 1
        try:
            play = "small" if self.models else self.config  # with models, play is not used
            return run_scenario(scenario, seed=seed, play=play, workflow=self.factory, models=self.models)
        except InvalidArgument:
            raise
        except Exception as exc:  # the harness's own failure: reported apart, never the agent's
            return f"{type(exc).__name__}: {exc}"


def _tiers(config: str) -> list[str]:
    """The simulated tiers ``config`` plays; an unknown one names ``oracle`` too."""
    try:
        return [profile.name for profile, _ in parse_play(config).rungs]
    except InvalidArgument as exc:
        raise InvalidArgument(f"{exc}; or {ORACLE_CONFIG!r} (the playbook played perfectly)") from None


def _graded(run: ScenarioRun) -> list[Failure]:
    """The grader checks a run failed, as failures at its final state."""
    result = run.result
    return [
        Failure(
            oracle=f"grader:{check.name}",
            state=result.final_state or "-",
            event=f"run_finished:{result.status}",
            message=check.reason,
        )
        for check in run.verdict.failed
    ]


def _excused(loaded: LoadedScenario, run: ScenarioRun) -> frozenset[str]:
    """The checks a run that ended with a human (in an escalated state) may fail under
    faults (see :data:`SAFE_WHEN_ESCALATED`)."""
    left_to_human = run.result.final_state in loaded.domain.escalated_states
    return SAFE_WHEN_ESCALATED if left_to_human else frozenset()


def _broken(events: Sequence[Event], workflow: Workflow | None) -> list[Failure]:
    """The invariant violations of a run, each located at its event."""
    by_seq = {(event.run_id, event.seq): event for event in events}
    failures = []
    for violation in check_all(events, workflow):
        event = by_seq.get((violation.run_id, violation.seq)) if violation.seq is not None else None
        failures.append(
            Failure(
                oracle=f"invariant:{violation.check}",
                state=(event.state if event is not None else None) or "-",
                event=event.kind if event is not None else "-",
                message=violation.message,
            )
        )
    return failures
