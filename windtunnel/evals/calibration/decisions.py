"""Accuracy and confidence, fitted by maximum likelihood in the family ``SimulatedModel`` draws them from.

For decision ``i`` with difficulty ``d`` and evidence share ``e`` the tier is right
with probability ``p = clamp(skill - difficulty_slope*d - evidence_weight*(1-e), floor, 0.99)``
and states ``clip(p + overconfidence + N(0, confidence_noise²), 0.01, 0.99)``. The
joint likelihood — Bernoulli for the choice, a normal censored at 0.01 and 0.99
(a Tobit) for the confidence — is maximized over the free parameters; intervals are
Wald intervals from the observed information (statsmodels' numerical Hessian,
with a step wide enough to step over the clamps' kinks), clipped to each
parameter's range.

A parameter is not identifiable when its interval cannot be computed: the
information is singular or ill-conditioned along it (a flat or non-convex direction
of the likelihood, at the wide step and at a narrow one), its estimate sits on a
bound of its range, or its interval spans more than half of that range.
:func:`fit_decisions` then fixes it at its start value (the base tier's), fits the
others again, and reports it in :attr:`DecisionFit.unidentified`, never as fitted.

The confidence pins ``p + overconfidence`` tightly (its noise is small), the choices
pin ``p``: together they separate the two. That rests on the profile's own
assumption that stated confidence is accuracy plus a constant. :func:`fit_decisions`
tests it — a likelihood-ratio test against a confidence that moves with difficulty
and evidence on its own — and when it fails, fits accuracy from the choices alone
and the confidence given that accuracy, and says so.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import optimize, stats  # type: ignore[import-untyped]  # no stubs pinned
from statsmodels.tools.numdiff import approx_hess3  # type: ignore[import-untyped]

__all__ = ["ACCURACY", "DecisionFit", "fit_decisions"]

Array = npt.NDArray[np.float64]

ACCURACY = ("skill", "difficulty_slope", "evidence_weight", "floor")
"""The accuracy parameters, in the order of the likelihood's vector."""
_CONFIDENCE = ("overconfidence", "confidence_noise")
_BOUNDS: Mapping[str, tuple[float, float]] = {
    "skill": (0.0, 1.0),
    "difficulty_slope": (0.0, 5.0),
    "evidence_weight": (0.0, 1.0),
    "floor": (0.0, 0.99),
    "overconfidence": (-1.0, 1.0),
    "confidence_noise": (1e-4, 1.0),
}
_CAP = 0.99  # SimulatedModel's ceiling on accuracy and on stated confidence
_LOW = 0.01
_EPS = 1e-9
HESSIAN_STEPS = (1e-2, 1e-3)
"""Finite-difference steps of the observed information, widest first (see ``_fit``)."""
MAX_CONDITION = 1e8
"""An information matrix whose eigenvalues span more than this ratio is taken as singular."""
MAX_WIDTH = 0.5
"""An interval wider than this share of its parameter's range says the data do not pin it."""
LR_ALPHA = 0.01
"""Below this p-value the confidence is taken not to follow accuracy as the profile assumes."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DecisionFit:
    """The fitted accuracy and confidence parameters, each ``(estimate, low, high)``; fixed ones absent."""

    estimates: dict[str, tuple[float, float, float]]
    method: dict[str, str]
    """How each parameter was fitted, in a few words."""
    unidentified: dict[str, str]
    """Free parameters the data could not pin, each with why; fixed at the start value."""
    lr_p: float | None
    """The likelihood-ratio test's p-value of "confidence = accuracy + constant"; None without confidences."""
    below_floor: int
    """Decisions whose fitted linear accuracy is under the floor: how much the data say about it."""


def fit_decisions(
    difficulty: Array,
    evidence: Array,
    correct: Array,
    confidence: Array | None,
    *,
    start: Mapping[str, float],
    free: Sequence[str],
    confidence_level: float = 0.95,
) -> DecisionFit:
    """Fit the ``free`` parameters (of :data:`ACCURACY`, ``overconfidence``, ``confidence_noise``);
    the others stay at ``start``'s values, and so do the free ones the data cannot pin
    (see the module docstring), listed in ``unidentified``.

    ``confidence`` None (or all NaN) fits accuracy from the choices alone.
    """
    z = float(stats.norm.ppf(0.5 + confidence_level / 2))
    data = _Data(difficulty, evidence, correct, confidence)
    unidentified: dict[str, str] = {}
    while True:  # each pass fixes at least one more parameter, or ends
        fit = _fit_pass(data, [name for name in free if name not in unidentified], start, z)
        if not fit.unidentified:
            return DecisionFit(
                estimates=fit.estimates,
                method=fit.method,
                unidentified=unidentified,
                lr_p=fit.lr_p,
                below_floor=fit.below_floor,
            )
        unidentified.update(fit.unidentified)


def _fit_pass(data: _Data, free: Sequence[str], start: Mapping[str, float], z: float) -> DecisionFit:
    accuracy_free = [name for name in ACCURACY if name in free]
    confidence_free = [name for name in _CONFIDENCE if name in free and data.stated is not None]
    method: dict[str, str] = {}
    if not confidence_free:
        values, hessian = _fit(data.choices_nll, accuracy_free, start)
        estimates, unidentified = _intervals(values, hessian, accuracy_free, z)
        method.update(dict.fromkeys(accuracy_free, "maximum likelihood, choices"))
        return DecisionFit(
            estimates=estimates,
            method=method,
            unidentified=unidentified,
            lr_p=None,
            below_floor=data.below_floor({**start, **values}),
        )
    names = [*accuracy_free, *confidence_free]
    joint, joint_hessian = _fit(data.joint_nll, names, start)
    estimates, unidentified = _intervals(joint, joint_hessian, names, z)
    if unidentified:  # fix them before testing anything on this fit
        return DecisionFit(estimates={}, method={}, unidentified=unidentified, lr_p=None, below_floor=0)
    lr_p = data.lr_test(joint, start)
    if lr_p >= LR_ALPHA:
        method.update(dict.fromkeys(names, "maximum likelihood, choices and confidence"))
        return DecisionFit(
            estimates=estimates,
            method=method,
            unidentified={},
            lr_p=lr_p,
            below_floor=data.below_floor({**start, **joint}),
        )
    # Confidence does not follow accuracy: accuracy from the choices, confidence around it.
    accuracy, accuracy_hessian = _fit(data.choices_nll, accuracy_free, start)
    given = {**start, **accuracy}
    shift, shift_hessian = _fit(data.joint_nll, confidence_free, given)
    method.update(dict.fromkeys(accuracy_free, "maximum likelihood, choices (confidence does not track it)"))
    method.update(dict.fromkeys(confidence_free, "censored-normal fit around the fitted accuracy"))
    estimates, unidentified = _intervals(accuracy, accuracy_hessian, accuracy_free, z)
    shifted, unshifted = _intervals(shift, shift_hessian, confidence_free, z)
    estimates.update(shifted)
    unidentified.update(unshifted)
    return DecisionFit(
        estimates=estimates,
        method=method,
        unidentified=unidentified,
        lr_p=lr_p,
        below_floor=data.below_floor(given),
    )


class _Data:
    def __init__(self, difficulty: Array, evidence: Array, correct: Array, confidence: Array | None) -> None:
        self.d = np.asarray(difficulty, dtype=float)
        self.missing = 1.0 - np.asarray(evidence, dtype=float)
        self.y = np.asarray(correct, dtype=float)
        stated = None if confidence is None else np.asarray(confidence, dtype=float)
        if stated is not None and not np.isfinite(stated).any():
            stated = None
        self.stated = stated
        if stated is not None:
            self.has = np.isfinite(stated)
            c = np.where(self.has, stated, 0.5)
            # Rounded to 4 decimals by the model: at a bound within rounding is at the bound.
            self.high = self.has & (c >= _CAP - 5e-5)
            self.low = self.has & (c <= _LOW + 5e-5)
            self.mid = self.has & ~self.high & ~self.low
            self.c = c

    def linear(self, p: Mapping[str, float]) -> Array:
        result: Array = p["skill"] - p["difficulty_slope"] * self.d - p["evidence_weight"] * self.missing
        return result

    def accuracy(self, p: Mapping[str, float]) -> Array:
        return np.clip(self.linear(p), p["floor"], _CAP)

    def below_floor(self, p: Mapping[str, float]) -> int:
        return int((self.linear(p) < p["floor"]).sum())

    def choices_nll(self, p: Mapping[str, float]) -> float:
        q = np.clip(self.accuracy(p), _EPS, 1 - _EPS)
        return float(-(self.y * np.log(q) + (1 - self.y) * np.log1p(-q)).sum())

    def tobit_nll(self, mean: Array, sigma: float) -> float:
        if self.stated is None:
            return 0.0
        total = stats.norm.logpdf(self.c[self.mid], mean[self.mid], sigma).sum()
        total += stats.norm.logsf(_CAP, mean[self.high], sigma).sum()
        total += stats.norm.logcdf(_LOW, mean[self.low], sigma).sum()
        return float(-total)

    def joint_nll(self, p: Mapping[str, float]) -> float:
        mean = self.accuracy(p) + p["overconfidence"]
        return self.choices_nll(p) + self.tobit_nll(mean, p["confidence_noise"])

    def lr_test(self, joint: Mapping[str, float], start: Mapping[str, float]) -> float:
        """p-value of the profile's confidence model (accuracy + constant) against a confidence
        with a clamped-linear mean of its own (3 more parameters)."""
        fitted = {**start, **joint}
        restricted = self.joint_nll(fitted)
        accuracy = [name for name in ACCURACY if name in joint]
        choices, _ = _fit(self.choices_nll, accuracy, fitted, information=False)
        d, missing = self.d, self.missing

        def free_nll(q: Mapping[str, float]) -> float:
            mean = np.clip(q["a"] - q["b"] * d - q["c"] * missing, q["f"], _CAP + q["o"])
            return self.tobit_nll(mean, q["confidence_noise"])

        shift = fitted["overconfidence"]
        begin = {
            "a": fitted["skill"] + shift,
            "b": fitted["difficulty_slope"],
            "c": fitted["evidence_weight"],
            "f": fitted["floor"] + shift,
            "o": shift,
            "confidence_noise": fitted["confidence_noise"],
        }
        wide = {"a": (-2.0, 3.0), "b": (-5.0, 5.0), "c": (-3.0, 3.0), "f": (-2.0, 2.0), "o": (-1.0, 1.0)}
        names = ["a", "b", "c", "f", "confidence_noise"]
        free, _ = _fit(free_nll, names, begin, bounds=wide, information=False)
        unrestricted = self.choices_nll({**fitted, **choices}) + free_nll({**begin, **free})
        statistic = max(0.0, 2 * (restricted - unrestricted))
        return float(stats.chi2.sf(statistic, 3))


def _fit(
    nll: Callable[[Mapping[str, float]], float],
    names: Sequence[str],
    start: Mapping[str, float],
    *,
    bounds: Mapping[str, tuple[float, float]] | None = None,
    information: bool = True,
) -> tuple[dict[str, float], Array | None]:
    """The minimum of ``nll`` over ``names`` (others at ``start``), and its observed
    information (the Hessian) on the fitting scale (the noise's log); None without
    names or when not asked for."""
    box = {**_BOUNDS, **(bounds or {})}
    if not names:
        return {}, None
    # The noise is fitted on its log: positive, and a better-shaped likelihood.
    logged = [name == "confidence_noise" for name in names]

    def unpack(x: Array) -> dict[str, float]:
        values = {n: (math.exp(v) if log else float(v)) for n, v, log in zip(names, x, logged, strict=True)}
        return {**start, **values}

    def objective(x: Array) -> float:
        return nll(unpack(x))

    x0 = np.array(
        [math.log(max(start[n], 1e-3)) if log else start[n] for n, log in zip(names, logged, strict=True)]
    )
    limits = [
        (math.log(box[n][0]), math.log(box[n][1])) if log else box[n]
        for n, log in zip(names, logged, strict=True)
    ]
    x0 = np.clip(x0, [lo for lo, _ in limits], [hi for _, hi in limits])
    # The clamps make the likelihood kinked: a simplex search, polished once from where it stopped.
    best = optimize.minimize(
        objective,
        x0,
        method="Nelder-Mead",
        bounds=limits,
        options={"maxiter": 4000, "xatol": 1e-6, "fatol": 1e-8},
    )
    best = optimize.minimize(
        objective,
        best.x,
        method="Nelder-Mead",
        bounds=limits,
        options={"maxiter": 4000, "xatol": 1e-7, "fatol": 1e-9},
    )
    values = {n: v for n, v in unpack(best.x).items() if n in names}
    # The clamps put kinks in the likelihood, and its optimum often sits on one (a
    # decision right at the floor): the widest step measures the curvature around it
    # rather than the kink's, which the default step (1e-4) would. But a wide step may
    # also straddle another decision's kink and see a non-convex direction that is
    # not there: then a narrow step. Neither convex: the data do not pin that direction.
    if not information:
        return values, None
    widest = None
    for step in HESSIAN_STEPS:
        hessian: Array = approx_hess3(best.x, objective, epsilon=step)
        if not _flat(hessian):
            return values, hessian
        widest = hessian if widest is None else widest
    return values, widest


def _flat(hessian: Array) -> list[Array]:
    """The directions (unit vectors) along which ``hessian`` is not clearly positive:
    singular, ill-conditioned or non-convex; every direction when it is not finite."""
    if not np.all(np.isfinite(hessian)):
        return list(np.eye(len(hessian)))
    eigenvalues, vectors = np.linalg.eigh((hessian + hessian.T) / 2)
    top = float(np.max(np.abs(eigenvalues)))
    return [vectors[:, i] for i, value in enumerate(eigenvalues) if value <= top / MAX_CONDITION]


def _intervals(
    values: Mapping[str, float], hessian: Array | None, names: Sequence[str], z: float
) -> tuple[dict[str, tuple[float, float, float]], dict[str, str]]:
    """Each parameter's Wald interval, or why it has none: ``(estimates, unidentified)``.

    The parameters that weigh in a flat direction of the information are the
    unidentified ones; when there is any, the others get no interval either (the
    covariance needs the whole matrix) and are fitted again once those are fixed.
    """
    if hessian is None:
        return {}, {}
    flat = _flat(hessian)
    if flat:
        # A unit vector has a component of at least 1/sqrt(len(names)): some name is always caught.
        weight = np.max(np.abs(np.array(flat)), axis=0)
        caught = [name for name, w in zip(names, weight, strict=True) if w >= 1 / math.sqrt(len(names))]
        why = "singular or ill-conditioned information: the likelihood is flat along it"
        return {}, dict.fromkeys(caught, why)
    cov = np.linalg.inv(hessian)
    result: dict[str, tuple[float, float, float]] = {}
    unidentified: dict[str, str] = {}
    for index, name in enumerate(names):
        value = values[name]
        low, high = _BOUNDS[name]
        half = z * math.sqrt(float(cov[index, index]))
        logged = name == "confidence_noise"  # fitted on its log: the interval is too
        if logged:
            interval = (max(low, value * math.exp(-half)), min(high, value * math.exp(half)))
            edge = min(math.log(value / low), math.log(high / value)) / math.log(high / low)
            width = math.log(interval[1] / interval[0]) / math.log(high / low)
        else:
            interval = (max(low, value - half), min(high, value + half))
            edge = min(value - low, high - value) / (high - low)
            width = (interval[1] - interval[0]) / (high - low)
        if edge < 1e-3:
            unidentified[name] = f"estimate {value:.4g} on a bound of its range [{low:g}, {high:g}]"
        elif width > MAX_WIDTH:
            unidentified[name] = (
                f"interval [{interval[0]:.4g}, {interval[1]:.4g}] spans {width:.0%} of its range"
            )
        else:
            result[name] = (value, *interval)
    return result, unidentified
