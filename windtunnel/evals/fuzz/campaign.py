"""A fuzz campaign: replay the saved regressions, then generate, run, judge, shrink, keep.

Trial ``i`` draws from its own stream (the campaign seed and ``i``): its scenario,
one of a few seeds per scenario (so the truth oracle's fault-free baselines are
shared), and a swarm of faults leaning toward what no trial reached yet. Trials
run one after another in this process, so the coverage each one leans on is that
of the trials before it: the same seed gives the same trials and the same
findings, however long the campaign runs (a time limit only cuts it shorter).
"""

from __future__ import annotations

import dataclasses
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from windtunnel.orchestrator import InvalidArgument, Workflow
from windtunnel.scenarios import Kit, LoadedScenario, Suite, load_file, load_suite
from windtunnel.simulators import Fault, derive_seed

from .confirm import Confirmation, confirm
from .coverage import Coverage
from .generate import generate, space_of
from .regression import REGRESSIONS, is_generated, load_regressions, regression_id, regression_text
from .shrink import shrink
from .trial import Failure, Oracle, Outcome, Signature, Subject

__all__ = ["Finding", "FuzzProgress", "FuzzReport", "fuzz"]

SEEDS_PER_SCENARIO = 8
"""Trials of one scenario draw their simulation seed from this many."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """A distinct failure: what broke, the smallest plan found that breaks it, and where it is kept."""

    failure: Failure
    also: tuple[Failure, ...] = ()
    """The other failures its shrunk plan shows (e.g. a wrong final state and a missing action)."""
    scenario: str
    seed: int
    """The simulation seed it fails on."""
    faults: list[Fault]
    """The shrunk faults, laid over the scenario's own."""
    generated: int
    """How many faults the failing trial had before shrinking."""
    trial: int | None
    """The trial that found it; None for a saved regression that still fails."""
    shrink_runs: int = 0
    confirmation: Confirmation | None = None
    """For a grader failure: whether fresh seeds confirm it (see :mod:`.confirm`)."""
    path: Path | None = None
    """Its regression file, when the campaign has an output directory."""
    replay: str | None = None
    """A command that replays it."""

    def summary(self) -> dict[str, Any]:
        """The finding as JSON-ready data."""
        return {
            "oracle": self.failure.oracle,
            "state": self.failure.state,
            "event": self.failure.event,
            "message": self.failure.message,
            "also": [str(failure) for failure in self.also],
            "scenario": self.scenario,
            "seed": self.seed,
            "faults": [fault.model_dump(mode="json", exclude_none=True) for fault in self.faults],
            "generated": self.generated,
            "trial": self.trial,
            "file": None if self.path is None else str(self.path),
            "replay": self.replay,
            "confirmation": None if self.confirmation is None else str(self.confirmation),
        }


@dataclass(frozen=True, slots=True, kw_only=True)
class FuzzProgress:
    """Where a campaign is, handed to the progress callback about once a second."""

    trials: int
    seconds: float
    failures: int
    coverage: float


@dataclass(slots=True, kw_only=True)
class FuzzReport:
    """What a campaign did and found."""

    trials: int = 0
    seconds: float = 0.0
    runs: int = 0
    """Scenario runs, baselines and shrinking included."""
    findings: list[Finding] = field(default_factory=list)
    fixed: list[str] = field(default_factory=list)
    """Saved regressions that no longer fail (their files)."""
    noise: list[Finding] = field(default_factory=list)
    """Grader failures that fresh seeds did not confirm: a tier's noise, not the faults' doing."""
    inconclusive: int = 0
    """Trials in which no generated fault fired and nothing failed: neither pass nor fail."""
    harness_errors: int = 0
    harness_messages: list[str] = field(default_factory=list)
    """The distinct harness errors (the first ten)."""
    coverage: float = 1.0
    reached: int = 0
    """Distinct (state, fault kind, reaction) combinations reached."""
    unreached: list[tuple[str, str]] = field(default_factory=list)
    """(state, fault kind) pairs some trial could have hit and none did."""

    @property
    def trials_per_s(self) -> float:
        return self.trials / self.seconds if self.seconds else 0.0

    def summary(self) -> dict[str, Any]:
        """The last line of ``windtunnel fuzz``: trials, speed, failures, the shrunk
        plans' sizes, coverage."""
        return {
            "trials": self.trials,
            "trials_per_s": round(self.trials_per_s, 1),
            "failures": len(self.findings),
            "min_faults": [len(finding.faults) for finding in self.findings],
            "coverage": round(self.coverage, 4),
            "inconclusive": self.inconclusive,
            "harness_errors": self.harness_errors,
        }


def fuzz(
    paths: Sequence[str | Path] | Suite,
    *,
    trials: int | None = None,
    seconds: float | None = None,
    seed: int = 0,
    config: str = "large",
    workflow: Callable[[Kit], Workflow] | str | None = None,
    oracle: Oracle = "both",
    out: str | Path | None = None,
    max_faults: int = 4,
    tags: Sequence[str] = (),
    ids: Sequence[str] = (),
    kinds: Sequence[str] | None = None,
    max_failures: int | None = None,
    progress: Callable[[FuzzProgress], None] | None = None,
) -> FuzzReport:
    """Fuzz the scenarios at ``paths`` for ``trials`` trials or ``seconds`` of wall
    time (whichever ends first; at least one must be given).

    Args:
        paths: scenario files, folders or suite files (``tags`` and ``ids`` select), or
            a :class:`~windtunnel.scenarios.Suite` loaded already.
        seed: the campaign seed: the same seed gives the same trials and findings.
        config: how decision states are played: a tier, a ladder, or ``"oracle"`` (the
            playbook played perfectly, so that only the orchestration can fail).
        workflow: your workflow factory (or ``"module:function"``) instead of the scenarios'.
        oracle: ``invariants``, ``truth`` (the grader), or ``both``.
        out: where regression files go (``out/regressions``); saved ones there are
            replayed first.
        max_faults: the most faults a trial generates.
        kinds: the fault kinds to generate (default: every generable one).
        max_failures: stop once this many distinct failures are found.

    Raises:
        InvalidArgument: bad arguments, or a workflow factory that cannot build.
        ScenarioError: a scenario file (or a saved regression) is invalid.
    """
    if trials is None and seconds is None:
        raise InvalidArgument("give trials= or seconds= (or both): a campaign needs an end")
    if max_faults < 1:
        raise InvalidArgument(f"max_faults={max_faults} must be at least 1")
    suite = list(paths if isinstance(paths, Suite) else load_suite(paths, tags=tags, ids=ids))
    subject = Subject(config=config, workflow=workflow, oracle=oracle)
    campaign = _Campaign(
        subject,
        suite,
        seed=seed,
        folder=None if out is None else Path(out),
        kinds=kinds,
        max_faults=max_faults,
    )
    campaign.replay()
    campaign.survey()
    report = campaign.report
    start = shown = time.perf_counter()
    number = 0
    while (
        (trials is None or number < trials)
        and (seconds is None or time.perf_counter() - start < seconds)
        and (max_failures is None or len(report.findings) < max_failures)
    ):
        campaign.trial(number)
        number += 1
        now = time.perf_counter()
        if progress is not None and now - shown >= 1.0:
            shown = now
            ratio = campaign.coverage.ratio()
            progress(
                FuzzProgress(
                    trials=number, seconds=now - start, failures=len(report.findings), coverage=ratio
                )
            )
    report.trials = number
    report.seconds = time.perf_counter() - start
    report.runs = subject.runs
    report.coverage = campaign.coverage.ratio()
    report.reached = len(campaign.coverage.reached)
    report.unreached = campaign.coverage.unreached()
    return report


class _Campaign:
    """A campaign's state: the subject, the scenarios' fault spaces, coverage, what is known."""

    def __init__(
        self,
        subject: Subject,
        suite: list[LoadedScenario],
        *,
        seed: int,
        folder: Path | None,
        kinds: Sequence[str] | None,
        max_faults: int,
    ) -> None:
        self.subject, self.suite, self.seed, self.folder = subject, suite, seed, folder
        self.max_faults = max_faults
        self.spaces = {s.scenario.id: space_of(s, tiers=subject.tiers, kinds=kinds) for s in suite}
        self.coverage = Coverage(self._kinds_for)
        self.report = FuzzReport()
        self.known: set[Signature] = set()
        self.noisy: set[tuple[Signature, str, frozenset[tuple[str, str]]]] = set()
        """(signature, scenario, the shrunk faults' kinds and targets) of grader failures
        fresh seeds did not confirm."""

    def _kinds_for(self, target: str) -> list[str]:
        return sorted({kind for space in self.spaces.values() for kind in space.kinds_for(target)})

    def _seed(self, scenario: str, index: int) -> int:
        return derive_seed(self.seed, f"fuzz/{scenario}/{index}")

    def survey(self) -> None:
        """Run each scenario once without generated faults (on its first trial seed), so
        that generation knows from the start which targets each one calls — and the
        grader's baselines for that seed are ready."""
        for loaded in self.suite:
            scenario = loaded.scenario.id
            outcome = self.subject.run(loaded, self._seed(scenario, 0), [])
            self.coverage.observe(outcome.events, scenario=scenario)

    def trial(self, number: int) -> None:
        """Generate, run and judge trial ``number``; shrink and keep what it found."""
        rng = random.Random(derive_seed(self.seed, f"fuzz/trial/{number}"))
        loaded = self.suite[rng.randrange(len(self.suite))]
        scenario = loaded.scenario.id
        sim_seed = self._seed(scenario, rng.randrange(SEEDS_PER_SCENARIO))

        def weight(kind: str, target: str) -> float:
            return self.coverage.weight(kind, target, scenario=scenario)

        faults = generate(rng, self.spaces[scenario], max_faults=self.max_faults, weight=weight)
        outcome = self.subject.run(loaded, sim_seed, faults)
        calls: dict[str, int] = {}
        for fault in faults:
            calls[fault.target] = max(calls.get(fault.target, 0), outcome.opportunities.get(fault.id, 0))
        self.coverage.observe(outcome.events, scenario=scenario, calls=calls)
        report = self.report
        if outcome.harness_error is not None:
            report.harness_errors += 1
            if outcome.harness_error not in report.harness_messages and len(report.harness_messages) < 10:
                report.harness_messages.append(outcome.harness_error)
        elif outcome.inconclusive:
            report.inconclusive += 1
        aimed = {(fault.kind, fault.target) for fault in faults}
        for failure in outcome.failures:
            if failure.signature in self.known:
                continue  # known already, or shown by the shrunk plan of another failure of this trial
            if any(
                sig == failure.signature and at == scenario and plan <= aimed for sig, at, plan in self.noisy
            ):
                continue  # this trial holds faults that shrank to noise here before: it would again
            finding = self._shrink(loaded, sim_seed, faults, outcome, failure, number)
            if finding.confirmation is not None and not finding.confirmation.confirmed:
                # Noise from these faults in this scenario says nothing of other faults, or elsewhere.
                plan = frozenset((fault.kind, fault.target) for fault in finding.faults)
                self.noisy.update((f.signature, scenario, plan) for f in (finding.failure, *finding.also))
                report.noise.append(finding)
            else:
                self.known.update(f.signature for f in (finding.failure, *finding.also))
                report.findings.append(self._write(loaded, finding) if self.folder else finding)

    def _shrink(
        self,
        loaded: LoadedScenario,
        sim_seed: int,
        faults: list[Fault],
        outcome: Outcome,
        failure: Failure,
        number: int,
    ) -> Finding:
        """``failure`` of trial ``number`` shrunk; a grader failure confirmed over fresh seeds."""

        def still_fails(candidate: Sequence[Fault]) -> Outcome | None:
            found = self.subject.run(loaded, sim_seed, candidate)
            return found if found.fails(failure.signature) else None

        shrunk = shrink(faults, outcome, still_fails)
        kept = next(f for f in shrunk.outcome.failures if f.signature == failure.signature)
        check = kept.oracle.removeprefix("grader:")
        confirmation = (
            confirm(self.subject, loaded, shrunk.faults, check, seed=self.seed)
            if kept.oracle.startswith("grader:")
            else None
        )
        return Finding(
            failure=kept,
            also=tuple(f for f in shrunk.outcome.failures if f.signature != kept.signature),
            scenario=loaded.scenario.id,
            seed=sim_seed,
            faults=shrunk.faults,
            generated=len(faults),
            trial=number,
            shrink_runs=shrunk.runs,
            confirmation=confirmation,
        )

    def _write(self, loaded: LoadedScenario, finding: Finding) -> Finding:
        """``finding`` written as a regression file under the output folder."""
        assert self.folder is not None
        subject = self.subject
        name = regression_id(loaded, finding.failure, finding.faults, finding.seed)
        path = self.folder / REGRESSIONS / f"{name}.yaml"
        text = regression_text(
            loaded,
            failure=finding.failure,
            faults=finding.faults,
            seed=finding.seed,
            config=subject.config,
            workflow=subject.workflow,
            found_by=f"windtunnel fuzz --seed {self.seed}, trial {finding.trial}",
            path=path,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        load_file(path)  # what was written must load as it will be replayed: a failure here is ours
        replay = f"windtunnel scenario run {path} --tier {subject.config}"
        if subject.factory is not None and subject.workflow is None:
            replay += " --workflow MODULE:FACTORY"  # a callable given in Python has no name to write
        return dataclasses.replace(finding, path=path, replay=replay)

    def replay(self) -> None:
        """Run the saved regressions: those that still fail are findings (their
        signatures known); those that pass are fixed."""
        if self.folder is None:
            return
        for loaded in load_regressions(self.folder):
            spec = loaded.scenario
            own = [fault for fault in spec.faults if not is_generated(fault)]
            added = [fault for fault in spec.faults if is_generated(fault)]
            base = dataclasses.replace(loaded, scenario=spec.model_copy(update={"faults": own}))
            seed = spec.seed or 0
            outcome = self.subject.run(base, seed, added)
            new = [failure for failure in outcome.failures if failure.signature not in self.known]
            if not outcome.failures:
                self.report.fixed.append(loaded.file)
            elif new:
                self.known.update(failure.signature for failure in outcome.failures)
                self.report.findings.append(
                    Finding(
                        failure=new[0],
                        also=tuple(new[1:]),
                        scenario=spec.id,
                        seed=seed,
                        faults=added,
                        generated=len(added),
                        trial=None,
                        path=Path(loaded.file),
                        replay=f"windtunnel scenario run {loaded.file} --tier {self.subject.config}",
                    )
                )
