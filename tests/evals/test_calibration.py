"""`calibrate` recovers the parameters of a simulated tier from a few hundred of its runs.

Tolerances are the estimators' own intervals, Bonferroni-corrected over the
parameters checked (so that all of them cover their true value together with 95 %
probability), and each interval must also be narrower than a stated width, so that
a wide interval cannot pass by saying nothing, and each estimate within a stated
absolute distance of the truth, so that a bias the intervals' width hides still fails.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.evals import Experiment, read_runs, run_experiment
from windtunnel.evals.calibration import Calibration, calibrate
from windtunnel.evals.calibration.decisions import fit_decisions
from windtunnel.evals.profile_file import read_profile, write_profile
from windtunnel.orchestrator import InvalidArgument
from windtunnel.reports import load_project
from windtunnel.simulators import DEFAULT_TIERS, LogNormal, TierProfile

SOC = str(Path(__file__).resolve().parents[2] / "windtunnel" / "scenarios" / "soc" / "scenarios")

ODD = TierProfile(
    name="odd",
    model="claude-haiku-5-5",
    skill=0.8,
    difficulty_slope=0.4,
    evidence_weight=0.5,
    floor=0.4,
    overconfidence=-0.08,
    confidence_noise=0.05,
    hallucination_rate=0.08,
    malformed_rate=0.05,
    input_tokens=LogNormal(median=500, sigma=0.2),
    output_tokens=LogNormal(median=90, sigma=0.6),
    latency=LogNormal(median=2.5, sigma=0.7),
)
"""Unusual on purpose: underconfident, a low floor, fumbling, terse and erratic."""

PARAMETERS = 14
CONFIDENCE = 1 - 0.05 / PARAMETERS

WIDEST = {
    "skill": 0.2,
    "difficulty_slope": 0.25,
    "evidence_weight": 0.35,
    "floor": 0.2,
    "overconfidence": 0.2,
    "confidence_noise": 0.015,
    "hallucination_rate": 0.05,
    "malformed_rate": 0.05,
}
"""The widest interval accepted, per parameter (token and latency parameters: 15 % of the value)."""

FARTHEST = {
    "skill": 0.05,
    "difficulty_slope": 0.1,
    "evidence_weight": 0.05,
    "floor": 0.05,
    "overconfidence": 0.05,
    "confidence_noise": 0.01,
    "hallucination_rate": 0.02,
    "malformed_rate": 0.02,
}
"""The farthest an estimate may be from the truth (token and latency parameters: 5 % of the value).

At this size (about 500 decisions) the estimates' spread over independent experiments
is about 0.03 for skill, floor and overconfidence: these are about twice that, so a
bias of their size fails the test whatever the intervals say.
"""


def _true(profile: TierProfile, parameter: str) -> float:
    field, _, part = parameter.partition(".")
    value = getattr(profile, field)
    return float(getattr(value, part) if part else value)


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("calibration") / "results"
    experiment = Experiment(name="calib", scenarios=[SOC], seeds=6, configs=["mid", ODD], recheck=0)
    run_experiment(experiment, out)
    return out


@pytest.fixture(scope="module")
def odd(results: Path) -> Calibration:
    return calibrate(results, config="odd", confidence=CONFIDENCE)


def test_recovers_an_unusual_tier(odd: Calibration) -> None:
    assert odd.runs >= 250
    assert [fit.parameter for fit in odd.parameters if not fit.fitted] == []
    for fit in odd.parameters:
        truth = _true(ODD, fit.parameter)
        assert fit.low is not None
        assert fit.high is not None
        assert fit.low <= truth <= fit.high, fit
        widest = WIDEST.get(fit.parameter, 0.15 * truth)
        assert fit.high - fit.low <= widest, fit
        assert abs(fit.estimate - truth) <= FARTHEST.get(fit.parameter, 0.05 * truth), fit
    assert odd.profile.name == "calibrated-odd"
    assert odd.profile.model == ODD.model


def test_recovers_mid_and_keeps_what_it_cannot_see(results: Path) -> None:
    mid = DEFAULT_TIERS["mid"]
    calibration = calibrate(results, config="mid", confidence=CONFIDENCE, base="small")
    kept = {fit.parameter for fit in calibration.parameters if not fit.fitted}
    # Mid's accuracy rarely falls to its floor of 0.5: too few decisions say anything about it.
    assert kept == {"floor"}
    assert calibration.profile.floor == DEFAULT_TIERS["small"].floor
    assert any(warning.startswith("floor: not identifiable") for warning in calibration.warnings)
    for fit in calibration.parameters:
        if fit.fitted:
            assert fit.low is not None
            assert fit.high is not None
            truth = _true(mid, fit.parameter)
            assert fit.low <= truth <= fit.high, fit
            assert abs(fit.estimate - truth) <= FARTHEST.get(fit.parameter, 0.05 * truth), fit


def test_the_profile_file_plays_in_windtunnel_run(
    odd: Calibration, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    odd.write("calibrated.json")
    assert read_profile("calibrated.json") == odd.profile
    result = CliRunner().invoke(
        app,
        ["run", SOC, "--id", "soc-c2-beacon", "--config", "calibrated.json", "--seeds", "1", "--out", "out"],
    )
    assert result.exit_code == 0, result.output
    assert set(read_runs("out")["config"]) == {"calibrated-odd"}
    # And from the project's table, relative to its pyproject.toml.
    (tmp_path / "sub").mkdir()
    (tmp_path / "pyproject.toml").write_text(
        '[tool.windtunnel]\nconfigs = ["calibrated.json", {name = "cal", profile = "calibrated.json"}]\n'
    )
    project = load_project(tmp_path / "sub")
    assert [config.profile for config in project.configs] == [odd.profile, odd.profile]
    assert [config.name for config in project.configs] == ["calibrated-odd", "cal"]


def test_cli_prints_the_table_and_json(results: Path, tmp_path: Path) -> None:
    out = tmp_path / "odd.yaml"
    result = CliRunner().invoke(app, ["calibrate", str(results), "--config", "odd", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines[1].split()[:3] == ["parameter", "estimate", "95%"]
    summary = json.loads(lines[-1])
    assert summary["name"] == "calibrated-odd"
    assert summary["kept"] == []
    assert read_profile(out).name == "calibrated-odd"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["calibrate", "{tmp}/nope", "--out", "{tmp}/p.json"], "is not a results directory"),
        (
            ["calibrate", "{results}", "--config", "large", "--out", "{tmp}/p.json"],
            "config='large' is not in",
        ),
        (["calibrate", "{results}", "--out", "{tmp}/p.json"], "choose one with config="),
        (["calibrate", "{results}", "--config", "odd", "--out", "{tmp}/p.txt"], ".json, .yaml or .yml"),
        (["calibrate", "{few}", "--out", "{tmp}/p.json"], "calibrating needs at least 30"),
    ],
)
def test_cli_bad_input_exits_2(
    args: list[str], message: str, results: Path, tmp_path: Path, few_runs: Path
) -> None:
    filled = [arg.format(tmp=tmp_path, results=results, few=few_runs) for arg in args]
    result = CliRunner().invoke(app, filled)
    assert result.exit_code == 2, result.output
    assert message in result.output


@pytest.fixture(scope="module")
def few_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("few") / "results"
    run_experiment(
        Experiment(name="few", scenarios=[SOC], ids=["soc-c2-beacon"], seeds=3, configs=["small"]), out
    )
    return out


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"name": "x"}', "model: Field required"),
        ("[]", "Input should be a valid dictionary"),
    ],
)
def test_bad_profile_files(content: str, message: str, tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(InvalidArgument, match=message):
        read_profile(path)


def test_profile_file_round_trips_as_yaml(tmp_path: Path) -> None:
    assert read_profile(write_profile(ODD, tmp_path / "odd.yml")) == ODD
    with pytest.raises(InvalidArgument, match="cannot read it"):
        read_profile(tmp_path / "missing.json")


def _decisions(n: int, *, correct: float, seed: int = 0) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    difficulty = rng.uniform(0.1, 0.7, n)
    evidence = rng.uniform(0.3, 1.0, n)
    right = (rng.uniform(size=n) < correct).astype(float)
    stated = np.round(np.clip(0.9 + rng.normal(0, 0.03, n), 0.01, 0.99), 4)
    return difficulty, evidence, right, stated


MID = {
    key: float(getattr(DEFAULT_TIERS["mid"], key))
    for key in ("skill", "difficulty_slope", "evidence_weight", "floor", "overconfidence", "confidence_noise")
}
FREE = ["skill", "difficulty_slope", "evidence_weight", "overconfidence", "confidence_noise"]


@pytest.mark.parametrize("correct", [0.0, 1.0], ids=["always-wrong", "always-right"])
def test_degenerate_decisions_fit_nothing_they_cannot_pin(correct: float) -> None:
    # Always the same verdict: the choices say nothing about how accuracy moves, and
    # the accuracy sits on a clamp; what cannot be pinned is said so, never "fitted".
    fit = fit_decisions(*_decisions(300, correct=correct), start=MID, free=FREE)
    assert fit.unidentified, fit
    assert set(fit.unidentified).isdisjoint(fit.estimates)
    assert set(fit.unidentified) | set(fit.estimates) == set(FREE)
    for name, (estimate, low, high) in fit.estimates.items():
        assert low < estimate < high, (name, fit.estimates[name])


def test_an_unidentified_parameter_is_kept_listed_and_warned(tmp_path: Path) -> None:
    # The slope and weight of a tier that is always right cannot be measured.
    sure = ODD.model_copy(
        update={"name": "sure", "skill": 0.99, "difficulty_slope": 0.0, "evidence_weight": 0.0}
    )
    run_experiment(
        Experiment(name="sure", scenarios=[SOC], seeds=1, configs=[sure], recheck=0), tmp_path / "r"
    )
    result = CliRunner().invoke(app, ["calibrate", str(tmp_path / "r"), "--out", str(tmp_path / "p.json")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output.strip().splitlines()[-1])
    kept = set(summary["kept"])
    assert {"difficulty_slope", "evidence_weight"} <= kept
    base = DEFAULT_TIERS["small"]  # claude-haiku-5-5's built-in tier
    profile = read_profile(tmp_path / "p.json")
    for name in kept:
        assert f"warning: {name}: not identifiable" in result.output
        assert summary["parameters"][name]["low"] is None
        if "." not in name:
            assert getattr(profile, name) == getattr(base, name)
    bounds = {
        "skill": 1.0,
        "difficulty_slope": 5.0,
        "evidence_weight": 1.0,
        "floor": 0.99,
        "overconfidence": 2.0,
    }
    for name, fit in summary["parameters"].items():
        if name in bounds and name not in kept:
            assert fit["high"] - fit["low"] <= bounds[name] / 2, (name, fit)


def test_changed_scenario_files_are_refused_unless_allowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    shutil.copytree(SOC, "scenarios")
    run_experiment(
        Experiment(name="moved", scenarios=["scenarios"], seeds=1, configs=["mid"], recheck=0), "r"
    )
    beacon = Path("scenarios/c2-beacon.yaml")
    beacon.write_text(beacon.read_text() + "\n# edited after the experiment\n")
    refused = CliRunner().invoke(app, ["calibrate", "r", "--out", "p.json"])
    assert refused.exit_code == 2, refused.output
    assert "scenario files changed since the experiment" in refused.output
    assert "c2-beacon.yaml" in refused.output
    assert not Path("p.json").exists()
    allowed = CliRunner().invoke(app, ["calibrate", "r", "--out", "p.json", "--allow-changed-scenarios"])
    assert allowed.exit_code == 0, allowed.output
    assert "warning: scenario files changed since the runs" in allowed.output
