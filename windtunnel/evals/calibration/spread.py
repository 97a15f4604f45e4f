"""Rates and log-normal sizes: the tool-call fumbles, the tokens and the latency of a tier.

- A rate (hallucinated, malformed calls) is a binomial share of the tool calls, with
  its Wilson score interval: each call is one draw of the model.
- Tokens and latency are drawn log-normal (:class:`~windtunnel.simulators.LogNormal`):
  the maximum-likelihood median is the geometric mean, with a t interval on the mean
  log; the sigma is the standard deviation of the logs, with its chi-square interval.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy import stats  # type: ignore[import-untyped]  # no stubs pinned

from ..stats import Estimate, wilson

__all__ = ["fit_log_normal", "fit_rate"]


def fit_rate(events: int, n: int, *, confidence: float = 0.95) -> Estimate:
    """``events / n`` with its Wilson interval."""
    return wilson(events, n, confidence=confidence)


def fit_log_normal(values: npt.NDArray[np.float64], *, confidence: float = 0.95) -> tuple[Estimate, Estimate]:
    """The median and the sigma of a log-normal fitted to ``values`` (all > 0, at least 2).

    >>> median, sigma = fit_log_normal(np.array([1.0, 4.0]))
    >>> round(median[0], 6), round(sigma[0], 4)
    (2.0, 0.9803)
    """
    logs = np.log(values)
    n = len(logs)
    mean, sd = float(logs.mean()), float(logs.std(ddof=1))
    alpha = 1 - confidence
    half = float(stats.t.ppf(1 - alpha / 2, n - 1)) * sd / math.sqrt(n)
    median = (math.exp(mean), math.exp(mean - half), math.exp(mean + half))
    low = sd * math.sqrt((n - 1) / float(stats.chi2.ppf(1 - alpha / 2, n - 1)))
    high = sd * math.sqrt((n - 1) / float(stats.chi2.ppf(alpha / 2, n - 1)))
    return median, (sd, low, high)
