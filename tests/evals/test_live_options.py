"""The live options of ``windtunnel run`` and what they refuse, the dry run's stand-ins,
and recordings that cannot be used as they are; offline."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.evals import Experiment, read_runs, run_experiment
from windtunnel.evals.live import Live, MissingAPIKey, estimate

from .live_kit import CANARY, MODEL, canary_key, experiment, served  # noqa: F401  # canary_key: the fixture

ROOT = Path(__file__).resolve().parents[2]
SCENARIO = "windtunnel/scenarios/soc/scenarios/c2-beacon.yaml"
RECORDED = Path("soc-c2-beacon") / "haiku.jsonl"


pytestmark = pytest.mark.usefixtures("canary_key")


def _run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", SCENARIO, "--seeds", "1", *args])
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--executor", "process"], "--executor: configs that play real models run every cell on threads"),
        (["--workers", "2"], "--workers: configs that play real models run every cell on threads"),
        (["--executor", "ray", "--workers", "2"], "--executor and --workers: configs that play real models"),
    ],
)
def test_live_configs_refuse_a_process_pool_or_ray(tmp_path: Path, args: list[str], said: str) -> None:
    code, output = _run("--config", MODEL, "--out", str(tmp_path / "out"), *args)
    assert code == 2
    assert f"windtunnel: {said}" in output
    assert not (tmp_path / "out").exists()


def test_live_options_without_a_real_config_are_noted(tmp_path: Path) -> None:
    code, output = _run("--config", "small", "--max-cost", "1", "--rpm", "5", "--out", str(tmp_path / "out"))
    assert code == 0, output
    assert "no config plays a real model: --max-cost, --rpm do nothing in this run" in output


def test_an_interrupt_exits_130(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import windtunnel.evals

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(windtunnel.evals, "run_experiment", interrupted)
    code, output = _run("--config", MODEL, "--timeout", "30", "--out", str(tmp_path / "out"))
    assert code == 130
    assert "interrupted: the runs that finished are written in" in output


def test_a_dry_run_of_a_ladder_of_one_family_stands_in_each_model_under_its_own_name() -> None:
    ladder = f"ladder:{MODEL}@0.8,{MODEL}-20251001"  # one id inside the other, one family
    code, output = _run("--config", ladder, "--dry-run")
    assert code == 0, output
    assert f"stand-ins: {MODEL} as small, {MODEL}-20251001 as small" in output
    found = estimate(Experiment(name="x", scenarios=[SCENARIO], seeds=1, configs=[ladder]))
    assert [item.stand_ins for item in found] == [{MODEL: "small", f"{MODEL}-20251001": "small"}]
    assert found[0].calls > 0


def test_a_truncated_recording_names_its_line_before_anything_is_written(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    recorded = Experiment(name="live", scenarios=[SCENARIO], seeds=2, configs=[MODEL], recheck=0.0)
    with served() as (_, _, url):
        run_experiment(recorded, tmp_path / "first", live=Live(mode="record", recordings=rec, base_url=url))
    path = rec / "soc-c2-beacon" / f"{MODEL}.jsonl"
    text = path.read_text()
    path.write_text(text[: len(text) - 40])  # a killed write
    code, output = _run("--config", MODEL, "--replay", str(rec), "--out", str(tmp_path / "out"))
    assert code == 2, output
    assert f"{path}:3: not a recorded exchange: " in output
    assert not (tmp_path / "out").exists()


def test_a_recording_of_another_format_is_refused_as_stale(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    with served() as (_, _, url):
        run_experiment(
            experiment(1), tmp_path / "first", live=Live(mode="record", recordings=rec, base_url=url)
        )
    path = rec / RECORDED
    header, *lines = path.read_text().splitlines()
    path.write_text("\n".join([json.dumps({**json.loads(header), "format": 2}), *lines]) + "\n")
    with pytest.raises(Exception, match=rf"{path}:1: recording format 2 \(windtunnel .*\); this windtunnel"):
        run_experiment(experiment(1), tmp_path / "out", live=Live(mode="replay", recordings=rec))


def test_a_changed_model_id_is_named_in_the_miss(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    with served() as (_, _, url):
        run_experiment(
            experiment(1), tmp_path / "first", live=Live(mode="record", recordings=rec, base_url=url)
        )
    changed = Experiment(
        name="live", scenarios=[SCENARIO], seeds=1, configs=[{"name": "haiku", "play": f"{MODEL}-20251001"}]
    )
    summary = run_experiment(changed, tmp_path / "out", live=Live(mode="replay", recordings=rec))
    assert summary.harness_errors == 1
    error = read_runs(tmp_path / "out")["harness_error"].iloc[0]
    assert f"holds exchanges for model '{MODEL}', not '{MODEL}-20251001': the config's model changed" in error


def test_an_auth_token_is_a_key_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(MissingAPIKey, match="ANTHROPIC_API_KEY is not set"):
        Live().check(experiment(1))
    monkeypatch.setenv("ANTHROPIC_AUTH_TOKEN", "a-token")
    Live().check(experiment(1))
