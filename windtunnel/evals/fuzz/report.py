"""What a fuzz campaign reports: its findings, its progress, its summary."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from windtunnel.simulators import Fault

from .confirm import Confirmation
from .trial import Failure

__all__ = ["Finding", "FuzzProgress", "FuzzReport"]


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
            "reached": self.reached,
            "inconclusive": self.inconclusive,
            "harness_errors": self.harness_errors,
        }
