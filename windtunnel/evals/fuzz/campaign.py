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
from pathlib import Path

from windtunnel.orchestrator import InvalidArgument, Workflow
from windtunnel.orchestrator.validation import check_choice
from windtunnel.scenarios import Kit, LoadedScenario, Suite, load_file, load_suite
from windtunnel.simulators import Fault, derive_seed, fault_kinds

from .confirm import confirm
from .coverage import Coverage
from .generate import generate, space_of
from .regression import (
    REGRESSIONS,
    is_generated,
    load_regressions,
    regression_id,
    regression_text,
    replay_command,
)
from .report import Finding, FuzzProgress, FuzzReport
from .shrink import shrink
from .trial import Failure, Oracle, Outcome, Signature, Subject

__all__ = ["fuzz"]

SEEDS_PER_SCENARIO = 8
"""Trials of one scenario draw their simulation seed from this many."""


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
    _check(trials=trials, seconds=seconds, max_faults=max_faults, max_failures=max_failures, kinds=kinds)
    suite = list(paths if isinstance(paths, Suite) else load_suite(paths, tags=tags, ids=ids))
    if not suite:
        raise InvalidArgument(
            f"no scenario to fuzz in {[str(p) for p in paths]} (tags={list(tags)}, ids={list(ids)})"
        )
    subject = Subject(config=config, workflow=workflow, oracle=oracle)
    folder = None if out is None else _folder(Path(out))
    campaign = _Campaign(
        subject,
        suite,
        seed=seed,
        folder=folder,
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


def _check(
    *,
    trials: int | None,
    seconds: float | None,
    max_faults: int,
    max_failures: int | None,
    kinds: Sequence[str] | None,
) -> None:
    """Refuse a campaign that could not run, or could not end."""
    if trials is None and seconds is None:
        raise InvalidArgument("give trials= or seconds= (or both): a campaign needs an end")
    for name, value in (("trials", trials), ("max_faults", max_faults), ("max_failures", max_failures)):
        if value is not None and value < 1:
            raise InvalidArgument(f"{name}={value} must be at least 1")
    if seconds is not None and not seconds > 0:
        raise InvalidArgument(f"seconds={seconds} must be more than 0")
    for kind in kinds or ():
        check_choice("fault kind", kind, sorted(fault_kinds()))


def _folder(out: Path) -> Path:
    """``out``, created if need be: refused before any trial, rather than losing what
    the campaign found when its first regression cannot be written."""
    if out.exists() and not out.is_dir():
        raise InvalidArgument(f"out={str(out)!r} is a file, not a folder")
    try:
        (out / REGRESSIONS).mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidArgument(f"out={str(out)!r} cannot be written: {exc.strerror}") from None
    return out


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
        if not any(space.by_kind for space in self.spaces.values()):
            wanted = list(kinds) if kinds else "any kind"
            raise InvalidArgument(
                f"no fault of {wanted} can hit these scenarios played by {subject.config!r}: nothing to fuzz"
            )
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

        own = [fault.id for fault in loaded.scenario.faults]
        faults = generate(rng, self.spaces[scenario], max_faults=self.max_faults, weight=weight, taken=own)
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
        confirmation = (
            confirm(self.subject, loaded, shrunk.faults, kept.check, seed=self.seed)
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
        # The file names the workflow when it was given by name; a callable has no name to write.
        unnamed = subject.factory is not None and subject.workflow is None
        replay = replay_command(path, subject.config, "MODULE:FACTORY" if unnamed else None)
        text = regression_text(
            loaded,
            failure=finding.failure,
            faults=finding.faults,
            seed=finding.seed,
            config=subject.config,
            workflow=subject.workflow,
            found_by=f"windtunnel fuzz --seed {self.seed}, trial {finding.trial}",
            path=path,
            replay=replay,
        )
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        load_file(path)  # what was written must load as it will be replayed: a failure here is ours
        return dataclasses.replace(finding, path=path, replay=replay)

    def replay(self) -> None:
        """Run the saved regressions, each judged as ``windtunnel scenario run`` judges
        it (under this campaign's config and workflow): those that still fail are
        findings (their signatures known); those that pass are fixed."""
        if self.folder is None:
            return
        for loaded in load_regressions(self.folder):
            spec = loaded.scenario
            seed = spec.seed or 0
            outcome = self.subject.as_is(loaded, seed)
            if outcome.harness_error is not None:
                raise InvalidArgument(
                    f"the saved regression {loaded.file} cannot run: {outcome.harness_error}"
                )
            if not outcome.failures:
                self.report.fixed.append(loaded.file)
                continue
            self.known.update(failure.signature for failure in outcome.failures)
            added = [fault for fault in spec.faults if is_generated(fault)]
            self.report.findings.append(
                Finding(
                    failure=outcome.failures[0],
                    also=outcome.failures[1:],
                    scenario=spec.id,
                    seed=seed,
                    faults=added,
                    generated=len(added),
                    trial=None,
                    path=Path(loaded.file),
                    replay=replay_command(loaded.file, self.subject.config),
                )
            )
