"""Confirming a grader finding over seeds: the faults' doing, or a tier's own noise?

A fault that changes the course of a run also changes which draws a simulated tier
makes after it, so a grader check can fail on one seed for reasons that have
nothing to do with the fault: the tier would have erred on that seed's other
path anyway. Before a grader finding counts, the shrunk faults run on fresh seeds,
each paired with the same seed without them: the finding is confirmed when, by
McNemar's exact test, the check fails with the faults (and passes without) on
significantly more seeds than the reverse. An invariant needs no such test: one
violation is a bug on any seed.

A fault may matter on few seeds (only where the run reaches its target), so the
test looks at 8, 16, 32, then 64 seeds, stopping as soon as it is significant —
or as soon as the faults broke the check no more often than they fixed it, or (from
32 seeds on) so rarely that the p-value is at least one half. Each
look is tested at a quarter of the 5% level (Bonferroni), so looking four times
does not inflate the false-positive rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from windtunnel.scenarios import LoadedScenario
from windtunnel.simulators import Fault, derive_seed

from ..stats import mcnemar_exact
from .trial import Subject

__all__ = ["ALPHA", "FUTILE", "FUTILE_FROM", "STAGES", "Confirmation", "confirm"]

STAGES = (8, 16, 32, 64)
"""The fresh seeds looked at, in turn."""
ALPHA = 0.05
"""The false-positive rate of a confirmation, over all its looks."""
FUTILE = 0.5
FUTILE_FROM = 32
"""A look at this many seeds or more whose p-value is at least ``FUTILE`` stops the test:
the faults changed too little to go on (earlier, a fault that matters on few seeds
may not have shown yet)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Confirmation:
    """A grader check over fresh seeds, with and without the faults."""

    check: str
    seeds: int
    broke: int
    """Seeds on which the check passes without the faults and fails with them."""
    fixed: int
    """Seeds on which it fails without the faults and passes with them."""
    p_value: float
    """McNemar's exact test of broke against fixed; confirmed below ``ALPHA / len(STAGES)``."""

    @property
    def confirmed(self) -> bool:
        """The faults make the check fail more often, beyond noise."""
        return self.broke > self.fixed and self.p_value < ALPHA / len(STAGES)

    def __str__(self) -> str:
        verdict = "confirmed" if self.confirmed else "not confirmed (noise)"
        return (
            f"{verdict}: over {self.seeds} fresh seeds the faults broke {self.check} on {self.broke}"
            f" and fixed it on {self.fixed} (McNemar p = {self.p_value:.3g})"
        )


def confirm(
    subject: Subject,
    loaded: LoadedScenario,
    faults: Sequence[Fault],
    check: str,
    *,
    seed: int,
    stages: Sequence[int] = STAGES,
) -> Confirmation:
    """Run ``loaded`` with and without ``faults`` on fresh seeds drawn from ``seed`` (the
    same for every finding of a campaign, so the runs without faults are shared), in
    ``stages``, and count the seeds on which the grader ``check`` changed."""
    broke = fixed = done = 0
    found = Confirmation(check=check, seeds=0, broke=0, fixed=0, p_value=1.0)
    for stage in stages:
        for index in range(done, stage):
            fresh = derive_seed(seed, f"fuzz/confirm/{loaded.scenario.id}/{index}")
            without = subject.passed(loaded, fresh, ())
            with_faults = subject.passed(loaded, fresh, faults)
            if without is None or with_faults is None:
                continue  # a harness error on either side: the pair says nothing
            broke += check in without and check not in with_faults
            fixed += check not in without and check in with_faults
        done = stage
        found = Confirmation(
            check=check, seeds=stage, broke=broke, fixed=fixed, p_value=mcnemar_exact(broke, fixed)
        )
        if found.confirmed or broke <= fixed or (stage >= FUTILE_FROM and found.p_value >= FUTILE):
            break
    return found
