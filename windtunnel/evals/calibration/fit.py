"""`calibrate`: a :class:`~windtunnel.simulators.TierProfile` measured from recorded runs.

Each parameter is fitted in the family :class:`~windtunnel.simulators.SimulatedModel`
draws it from (see :mod:`.decisions` and :mod:`.spread`), with an interval and the
number of observations behind it. A parameter the data cannot pin — no spread of
difficulty for the slope, too few decisions under the floor, no tool calls for the
rates, an accuracy or confidence parameter whose interval cannot be computed (see
:mod:`.decisions`) — keeps the base tier's value, is listed as not fitted, and a
warning says so.

Known bias: the decision intervals are Wald intervals on a likelihood the clamps
make kinked, and skill and overconfidence are strongly (negatively) correlated — the
stated confidence pins their sum, the choices pin skill — so both can miss together.
Measured over 20 independent experiments of the soc suite, the 95 % intervals of the
accuracy and confidence parameters covered the truth 16 to 20 times in 20 (see
``docs/recipes/calibrate.md``): somewhat optimistic.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from windtunnel.orchestrator import InvalidArgument
from windtunnel.simulators import DEFAULT_TIERS, TierProfile

from ..profile_file import write_profile
from .decisions import ACCURACY, fit_decisions
from .observe import Observations, observe
from .spread import fit_log_normal, fit_rate

__all__ = ["MIN_RUNS", "Calibration", "ParameterFit", "calibrate"]

MIN_RUNS = 30
"""Fewer runs than this is too few to calibrate from."""
MIN_DECISIONS = 30
"""Fewer decisions than this leaves accuracy and confidence at the base tier's values."""
MIN_SPREAD = 0.05
"""The least standard deviation of difficulty (of missing evidence) that identifies its slope (weight)."""
MIN_BELOW_FLOOR = 20
"""Decisions whose linear accuracy falls under the floor needed to fit the floor."""

_LOG_NORMALS = ("input_tokens", "output_tokens", "latency")


class ParameterFit(BaseModel):
    """One parameter of a calibrated profile: its estimate, interval and evidence."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    parameter: str = Field(description="The profile field, e.g. 'skill' or 'latency.median'.")
    estimate: float = Field(description="The value written into the profile.")
    low: float | None = Field(description="Lower end of the interval; None when the value was kept.")
    high: float | None = Field(description="Upper end of the interval; None when the value was kept.")
    n: int = Field(description="Observations behind it: decisions, tool calls or model calls.")
    fitted: bool = Field(description="False: not identifiable from the data; the base tier's value kept.")
    method: str = Field(description="How it was estimated, or why it was kept.")


class Calibration(BaseModel):
    """A profile fitted from a results directory, with every parameter's interval and warnings.

    Example::

        calibration = calibrate("results", config="claude-haiku")
        print(calibration.table())
        calibration.write("profiles/calibrated-haiku.json")  # then Config(profile="profiles/...")
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    profile: TierProfile = Field(description="The fitted profile.")
    results: str = Field(description="The results directory it was fitted from.")
    config: str = Field(description="The config whose runs it was fitted from.")
    runs: int = Field(description="Runs of the config read.")
    decisions: int = Field(description="Decisions (submits among two or more next states) read.")
    confidence: float = Field(description="Coverage of the intervals, e.g. 0.95.")
    base: str = Field(description="The tier whose values the parameters that could not be fitted keep.")
    parameters: list[ParameterFit] = Field(description="Every numeric parameter of the profile.")
    confidence_test_p: float | None = Field(
        description="p-value of the test that stated confidence is accuracy plus a constant, "
        "as the profile assumes; None without confidences."
    )
    warnings: list[str] = Field(description="Parameters kept, data left out, assumptions that failed.")

    def parameter(self, name: str) -> ParameterFit:
        """The fit of parameter ``name``."""
        for fit in self.parameters:
            if fit.parameter == name:
                return fit
        raise InvalidArgument(
            f"parameter={name!r} is not one of {[fit.parameter for fit in self.parameters]}"
        )

    def table(self) -> str:
        """The parameters as a plain-text table: parameter, estimate, interval, n, how."""
        head = ("parameter", "estimate", f"{self.confidence:.0%} interval", "n", "how")
        rows = [head]
        for fit in self.parameters:
            interval = (
                "kept" if fit.low is None or fit.high is None else f"[{_num(fit.low)}, {_num(fit.high)}]"
            )
            rows.append((fit.parameter, _num(fit.estimate), interval, str(fit.n), fit.method))
        widths = [max(len(row[i]) for row in rows) for i in range(len(head) - 1)]
        lines = [
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=False)) + "  " + row[-1]
            for row in rows
        ]
        return "\n".join(line.rstrip() for line in lines)

    def write(self, path: str | Path) -> Path:
        """Write the profile (only the profile) to ``path``, JSON or YAML by its suffix."""
        return write_profile(self.profile, path)


def _num(value: float) -> str:
    return f"{value:.4g}"


def calibrate(
    results_dir: str | Path,
    *,
    config: str | None = None,
    name: str | None = None,
    base: str | TierProfile | None = None,
    confidence: float = 0.95,
    min_runs: int = MIN_RUNS,
    allow_changed_scenarios: bool = False,
) -> Calibration:
    """Fit a :class:`~windtunnel.simulators.TierProfile` to the runs of ``config`` in ``results_dir``.

    Args:
        results_dir: a results directory (``run_experiment``, ``windtunnel run``); run
            from the folder the experiment ran in, so that its scenario files load.
        config: the config to calibrate; may be omitted when the directory holds one.
        name: the profile's name; ``calibrated-<config>`` by default.
        base: the tier whose values the parameters that cannot be fitted keep: the
            built-in tier of the same model id by default, else ``mid``.
        confidence: the coverage of the intervals.
        min_runs: fewer runs than this is an error.
        allow_changed_scenarios: fit even when scenario files changed since the
            experiment (their cases' truth may have moved), with a warning.

    Raises:
        InvalidArgument: not a results directory, no such config, too few runs, a
            config that plays more than one tier, scenario files that do not load or
            that changed since the experiment (unless ``allow_changed_scenarios``).
    """
    if not 0 < confidence < 1:
        raise InvalidArgument(f"confidence={confidence!r} must be in (0, 1)")
    seen = observe(results_dir, config=config)
    if seen.runs < min_runs:
        raise InvalidArgument(
            f"config {seen.config!r} has {seen.runs} runs in {results_dir}; calibrating needs at least "
            f"{min_runs}: run more seeds"
        )
    if len(seen.tiers) != 1 or len(seen.models) != 1:
        raise InvalidArgument(
            f"config {seen.config!r} plays {sorted(seen.tiers)} with models {sorted(seen.models)}; "
            "calibrate a config that plays one model"
        )
    if seen.files_changed and not allow_changed_scenarios:
        raise InvalidArgument(
            f"scenario files changed since the experiment in {results_dir} ran: "
            f"{', '.join(seen.files_changed)}; each decision's right answer, difficulty and key "
            "evidence are rebuilt from them, so the fit may be wrong: restore them, run again, "
            "or pass allow_changed_scenarios=True"
        )
    model = next(iter(seen.models))
    start = _base(base, model)
    warnings = [f"scenario files changed since the runs: {', '.join(seen.files_changed)}"] * bool(
        seen.files_changed
    )
    warnings += [f"left out {count} {why}" for why, count in sorted(seen.skipped.items())]
    fits: dict[str, ParameterFit] = {}
    test_p = _decisions(seen, start, confidence, fits, warnings)
    _rates(seen, start, confidence, fits, warnings)
    _sizes(seen, start, confidence, fits, warnings)
    values: dict[str, Any] = start.model_dump()
    for fit in fits.values():
        field, _, part = fit.parameter.partition(".")
        if part:
            values[field] = {**values[field], part: fit.estimate}
        else:
            values[field] = fit.estimate
    values.update(name=name or f"calibrated-{seen.config}", model=model)
    order = [*ACCURACY, "overconfidence", "confidence_noise", "hallucination_rate", "malformed_rate"]
    order += [f"{field}.{part}" for field in _LOG_NORMALS for part in ("median", "sigma")]
    return Calibration(
        profile=TierProfile.model_validate(values),
        results=str(results_dir),
        config=seen.config,
        runs=seen.runs,
        decisions=len(seen.decisions),
        confidence=confidence,
        base=start.name,
        parameters=[fits[key] for key in order],
        confidence_test_p=test_p,
        warnings=warnings,
    )


def _base(base: str | TierProfile | None, model: str) -> TierProfile:
    if isinstance(base, TierProfile):
        return base
    if base is not None:
        if base not in DEFAULT_TIERS:
            raise InvalidArgument(f"base={base!r} must be a TierProfile or one of {sorted(DEFAULT_TIERS)}")
        return DEFAULT_TIERS[base]
    same = [tier for tier in DEFAULT_TIERS.values() if tier.model == model]
    return same[0] if same else DEFAULT_TIERS["mid"]


def _kept(
    name: str, value: float, n: int, why: str, fits: dict[str, ParameterFit], warnings: list[str], base: str
) -> None:
    fits[name] = ParameterFit(
        parameter=name, estimate=value, low=None, high=None, n=n, fitted=False, method=why
    )
    warnings.append(f"{name}: not identifiable ({why}); kept {base}'s {value:.4g}")


def _decisions(
    seen: Observations,
    start: TierProfile,
    confidence: float,
    fits: dict[str, ParameterFit],
    warnings: list[str],
) -> float | None:
    frame = seen.decisions
    n = len(frame)
    values = {key: float(getattr(start, key)) for key in (*ACCURACY, "overconfidence", "confidence_noise")}
    if n < MIN_DECISIONS:
        for key, value in values.items():
            _kept(key, value, n, f"{n} decisions, fewer than {MIN_DECISIONS}", fits, warnings, start.name)
        return None
    d = frame["difficulty"].to_numpy(dtype=float)
    e = frame["evidence"].to_numpy(dtype=float)
    y = frame["correct"].to_numpy(dtype=float)
    stated = frame["confidence"].to_numpy(dtype=float)
    kept: dict[str, str] = {}
    if float(np.std(d)) < MIN_SPREAD:
        kept["difficulty_slope"] = f"difficulty spread {np.std(d):.3f} < {MIN_SPREAD}"
    if float(np.std(1 - e)) < MIN_SPREAD:
        kept["evidence_weight"] = f"evidence spread {np.std(1 - e):.3f} < {MIN_SPREAD}"
    if not np.isfinite(stated).any():
        kept["overconfidence"] = kept["confidence_noise"] = "no stated confidence"
    free = [key for key in values if key not in kept and key != "floor"]
    fit = fit_decisions(d, e, y, stated, start=values, free=free, confidence_level=confidence)
    if fit.below_floor >= MIN_BELOW_FLOOR:
        fit = fit_decisions(d, e, y, stated, start=values, free=[*free, "floor"], confidence_level=confidence)
    else:
        kept["floor"] = f"{fit.below_floor} decisions under it, fewer than {MIN_BELOW_FLOOR}"
    kept.update(fit.unidentified)
    for key, value in values.items():
        if key in kept:
            _kept(key, value, n, kept[key], fits, warnings, start.name)
            continue
        estimate, low, high = fit.estimates[key]
        fits[key] = ParameterFit(
            parameter=key, estimate=estimate, low=low, high=high, n=n, fitted=True, method=fit.method[key]
        )
    assumed = [
        key for key in ("skill", "difficulty_slope", "evidence_weight", "overconfidence") if key in kept
    ]
    for key in ("skill", "overconfidence"):
        others = [other for other in assumed if other != key]
        if fits[key].fitted and others:
            warnings.append(
                f"{key}: fitted with {' and '.join(others)} kept, so it carries "
                f"{'that value' if len(others) == 1 else 'those values'}' assumption"
            )
    if fit.lr_p is not None and "maximum likelihood, choices and confidence" not in fit.method.values():
        warnings.append(
            "stated confidence does not follow accuracy plus a constant "
            f"(likelihood-ratio p={fit.lr_p:.2g}): accuracy fitted from the choices alone, "
            "confidence around it"
        )
    return fit.lr_p


def _rates(
    seen: Observations,
    start: TierProfile,
    confidence: float,
    fits: dict[str, ParameterFit],
    warnings: list[str],
) -> None:
    for key, count in (("hallucination_rate", seen.hallucinated), ("malformed_rate", seen.malformed)):
        if not seen.tool_calls:
            _kept(key, float(getattr(start, key)), 0, "no tool calls", fits, warnings, start.name)
            continue
        estimate, low, high = fit_rate(count, seen.tool_calls, confidence=confidence)
        fits[key] = ParameterFit(
            parameter=key,
            estimate=estimate,
            low=low,
            high=high,
            n=seen.tool_calls,
            fitted=True,
            method="share of tool calls, Wilson",
        )


def _sizes(
    seen: Observations,
    start: TierProfile,
    confidence: float,
    fits: dict[str, ParameterFit],
    warnings: list[str],
) -> None:
    calls = seen.calls
    columns: Mapping[str, str] = {
        "input_tokens": "overhead",
        "output_tokens": "output_tokens",
        "latency": "latency",
    }
    for field, column in columns.items():
        values = calls[column].to_numpy(dtype=float)
        n = len(values)
        why = (
            f"{n} calls, fewer than 2"
            if n < 2
            else f"{int((values <= 0).sum())} of {n} values <= 0: not log-normal"
            if (values <= 0).any()
            else ""
        )
        if field == "input_tokens" and why.endswith("log-normal"):
            why = "input tokens under the request's characters / 4: not an overhead on top of them"
        current = getattr(start, field)
        if why:
            for part in ("median", "sigma"):
                _kept(f"{field}.{part}", float(getattr(current, part)), n, why, fits, warnings, start.name)
            continue
        median, sigma = fit_log_normal(values, confidence=confidence)
        what = "over the request's characters / 4, " if field == "input_tokens" else ""
        for part, (estimate, low, high) in (("median", median), ("sigma", sigma)):
            fits[f"{field}.{part}"] = ParameterFit(
                parameter=f"{field}.{part}",
                estimate=estimate,
                low=low,
                high=high,
                n=n,
                fitted=True,
                method=f"log-normal {what}"
                + ("geometric mean, t" if part == "median" else "sd of logs, chi-square"),
            )
