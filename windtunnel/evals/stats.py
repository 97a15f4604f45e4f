"""The statistics the metrics stand on: intervals, a paired test, and a sample size.

Each function returns an estimate with its interval as ``(estimate, low, high)``:

- `wilson` — a proportion with its Wilson score interval (statsmodels);
- `cluster_bootstrap` — a mean over rows whose clusters (scenarios) are resampled
  whole, with a percentile interval (scipy's bootstrap over per-cluster sums);
- `paired_bootstrap` — the mean of paired differences, cluster-resampled the same way;
- `mcnemar_exact` — McNemar's exact test on the discordant pairs (statsmodels);
- `seeds_needed` / `pairs_needed` — Connor's (1987) sample size for McNemar's test,
  written by hand because neither scipy nor statsmodels has a power function for
  paired proportions.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]  # no stubs pinned
from statsmodels.stats.contingency_tables import mcnemar  # type: ignore[import-untyped]
from statsmodels.stats.proportion import proportion_confint  # type: ignore[import-untyped]

from windtunnel.orchestrator import InvalidArgument

__all__ = [
    "Estimate",
    "cluster_bootstrap",
    "mcnemar_exact",
    "paired_bootstrap",
    "pairs_needed",
    "seeds_needed",
    "wilson",
]

Estimate = tuple[float, float, float]
"""``(estimate, low, high)``; NaNs where there is nothing to estimate."""

NAN3: Estimate = (math.nan, math.nan, math.nan)


def wilson(successes: int, n: int, *, confidence: float = 0.95) -> Estimate:
    """``successes / n`` with its Wilson score interval.

    The interval is ``(p̂ + z²/2n ± z·sqrt(p̂(1-p̂)/n + z²/4n²)) / (1 + z²/n)`` with
    ``z`` the two-sided normal quantile (statsmodels ``proportion_confint(method="wilson")``).
    ``n == 0`` gives all NaNs: no runs, no rate.

    >>> [round(v, 4) for v in wilson(8, 10)]
    [0.8, 0.4902, 0.9433]
    """
    if n < 0 or not 0 <= successes <= n:
        raise InvalidArgument(f"need 0 <= successes <= n, got successes={successes!r}, n={n!r}")
    if n == 0:
        return NAN3
    low, high = proportion_confint(successes, n, alpha=1 - confidence, method="wilson")
    return successes / n, float(low), float(high)


def cluster_bootstrap(
    values: Sequence[float] | npt.ArrayLike,
    clusters: Sequence[object] | npt.ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """The mean of ``values`` with a percentile bootstrap interval that resamples clusters.

    Runs of one scenario are not independent (same case, same faults), so the
    resampling unit is the cluster: each resample draws clusters with replacement and
    takes ``sum(values in drawn clusters) / count(values in drawn clusters)``. Seeded,
    hence deterministic. Fewer than two clusters gives a NaN interval; NaN values are
    dropped first.

    >>> cluster_bootstrap([1.0, 1.0, 3.0], ["a", "a", "b"])[0]
    1.6666666666666667
    """
    vals = np.asarray(values, dtype=float)
    keys = np.asarray(clusters, dtype=object)
    if vals.shape != keys.shape:
        raise InvalidArgument(f"values and clusters differ in length: {vals.shape} != {keys.shape}")
    keep = ~np.isnan(vals)
    vals, keys = vals[keep], keys[keep]
    if vals.size == 0:
        return NAN3
    _, index = np.unique(keys.astype(str), return_inverse=True)
    sums = np.bincount(index, weights=vals)
    counts = np.bincount(index).astype(float)
    estimate = float(vals.mean())
    if sums.size < 2:
        return estimate, math.nan, math.nan
    if np.all(vals == vals[0]):
        # Every resample is the same value; scipy would warn about degenerate data.
        return estimate, estimate, estimate

    def ratio(s: npt.NDArray[np.float64], c: npt.NDArray[np.float64], axis: int) -> npt.NDArray[np.float64]:
        result: npt.NDArray[np.float64] = s.sum(axis=axis) / c.sum(axis=axis)
        return result

    result = stats.bootstrap(
        (sums, counts),
        ratio,
        paired=True,
        vectorized=True,
        n_resamples=n_resamples,
        confidence_level=confidence,
        method="percentile",
        rng=np.random.default_rng(seed),
    )
    return estimate, float(result.confidence_interval.low), float(result.confidence_interval.high)


def paired_bootstrap(
    a: Sequence[float] | npt.ArrayLike,
    b: Sequence[float] | npt.ArrayLike,
    clusters: Sequence[object] | npt.ArrayLike,
    *,
    confidence: float = 0.95,
    n_resamples: int = 2000,
    seed: int = 0,
) -> Estimate:
    """The mean of ``a - b`` over pairs, with `cluster_bootstrap`'s interval.

    ``a[i]`` and ``b[i]`` are the same cell under two configs; resampling the pairs'
    differences keeps the pairing, and resampling whole clusters keeps a scenario's
    cells together.
    """
    diff = np.asarray(a, dtype=float) - np.asarray(b, dtype=float)
    return cluster_bootstrap(diff, clusters, confidence=confidence, n_resamples=n_resamples, seed=seed)


def mcnemar_exact(b: int, c: int) -> float:
    """The two-sided p-value of McNemar's exact test on ``b`` and ``c`` discordant pairs.

    Under no difference each discordant pair is a fair coin, so ``p = min(1, 2·P(X <=
    min(b, c)))`` with ``X ~ Binomial(b + c, 1/2)`` (statsmodels ``mcnemar(exact=True)``).
    No discordant pairs gives ``p = 1``.

    >>> mcnemar_exact(8, 2)
    0.109375
    """
    if b < 0 or c < 0:
        raise InvalidArgument(f"discordant counts must be >= 0, got b={b!r}, c={c!r}")
    if b + c == 0:
        return 1.0
    return float(mcnemar([[0, b], [c, 0]], exact=True).pvalue)


def pairs_needed(p10: float, p01: float, *, alpha: float = 0.05, power: float = 0.80) -> float:
    """Pairs needed for McNemar's test to see ``p10 != p01`` (Connor 1987).

    With ``δ = p10 - p01`` (the difference in accuracy) and ``ψ = p10 + p01`` (the
    discordant share), Connor, "Sample size for testing differences in proportions for
    the paired-sample design", Biometrics 43 (1987) 207-211, gives
    ``n = (z_{1-alpha/2}·sqrt(ψ) + z_{power}·sqrt(ψ - δ²))² / δ²``. ``δ == 0`` gives ``inf``.

    >>> round(pairs_needed(0.36, 0.06), 2)
    34.17
    """
    delta, psi = p10 - p01, p10 + p01
    if not (0 <= p10 <= 1 and 0 <= p01 <= 1 and psi <= 1):
        raise InvalidArgument(f"p10={p10!r} and p01={p01!r} must be probabilities summing to at most 1")
    if delta == 0:
        return math.inf
    z_alpha = float(stats.norm.ppf(1 - alpha / 2))
    z_power = float(stats.norm.ppf(power))
    return (z_alpha * math.sqrt(psi) + z_power * math.sqrt(psi - delta**2)) ** 2 / delta**2


def seeds_needed(
    p1: float,
    p2: float,
    *,
    discordant: float | None = None,
    scenarios: int = 1,
    alpha: float = 0.05,
    power: float = 0.80,
) -> float:
    """Seeds per scenario to see accuracies ``p1`` vs ``p2`` with McNemar's test.

    ``discordant`` is the share of pairs where the two configs disagree; when it is
    not known it is taken as if the configs erred independently,
    ``ψ = p1(1-p2) + p2(1-p1)``. Then ``p10 = (ψ + δ)/2``, ``p01 = (ψ - δ)/2`` with
    ``δ = p1 - p2``, `pairs_needed` gives the pairs, and the seeds are
    ``ceil(pairs / scenarios)``. ``p1 == p2`` gives ``inf``.

    >>> seeds_needed(0.9, 0.6, scenarios=10)
    4
    """
    if scenarios < 1:
        raise InvalidArgument(f"scenarios={scenarios!r} must be at least 1")
    delta = p1 - p2
    psi = p1 * (1 - p2) + p2 * (1 - p1) if discordant is None else discordant
    if psi < abs(delta) - 1e-12:
        raise InvalidArgument(f"discordant={psi!r} cannot be below the difference |p1 - p2|={abs(delta)!r}")
    pairs = pairs_needed(max(0.0, (psi + delta) / 2), max(0.0, (psi - delta) / 2), alpha=alpha, power=power)
    return pairs if math.isinf(pairs) else math.ceil(pairs / scenarios)
