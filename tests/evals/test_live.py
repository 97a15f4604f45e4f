"""Live experiments end to end, offline: the real SDK over real HTTP to a loopback fake API,
then the recording replayed on the virtual loop."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.evals import read_runs, run_experiment
from windtunnel.evals.live import Live, MissingAPIKey, prompt_digest, request_digest, worst_case_cost
from windtunnel.orchestrator import InvalidArgument, request_from_api
from windtunnel.simulators import HttpFault

from .live_kit import CALL_COST, CANARY, MODEL, canary_key, experiment, served  # noqa: F401  # canary_key: the fixture

ROOT = Path(__file__).resolve().parents[2]
COLUMNS = [
    "cell",
    "correct",
    "escalated",
    "final_state",
    "cost",
    "model_cost",
    "trace_digest",
    "harness_error",
]


pytestmark = pytest.mark.usefixtures("canary_key")


def test_a_recorded_live_experiment_replays_to_the_same_rows(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    with served() as (api, model, url):
        api.fail_next(
            HttpFault(kind="rate_limit", retry_after=0.2), HttpFault(kind="overloaded", retry_after=0.01)
        )
        live = Live(mode="record", recordings=tmp_path / "rec", concurrency=2, base_url=url)
        summary = run_experiment(experiment(), tmp_path / "live", live=live)
    assert (summary.ran, summary.harness_errors) == (8, 0)
    # The concurrency limit held, on the client and at the server.
    assert live.session is not None
    assert live.session.peak <= 2
    assert model.peak <= 2
    assert model.peak == 2  # and the cells did run side by side
    attempts = api.attempts
    assert [a.fault for a in attempts[:2]] == ["rate_limit", "overloaded"]
    # The 429's retry-after held every attempt back 0.2 s; the 529 was retried by the SDK.
    assert all(a.at - attempts[0].at >= 0.2 for a in attempts[2:])
    assert live.session.limiter.paused == 2
    assert any(a.fault is None and (a.retry_count or 0) >= 1 for a in attempts)
    assert len([a for a in attempts if a.status == 200]) == model.calls == 4
    spend = live.spend()
    assert spend is not None
    assert (spend.calls, spend.spent) == (4, pytest.approx(4 * CALL_COST))

    replay = Live(mode="replay", recordings=tmp_path / "rec")
    again = run_experiment(experiment(), tmp_path / "replay", live=replay)
    assert (again.ran, again.harness_errors) == (8, 0)
    lived = read_runs(tmp_path / "live")[COLUMNS].sort_values("cell").reset_index(drop=True)
    replayed = read_runs(tmp_path / "replay")[COLUMNS].sort_values("cell").reset_index(drop=True)
    assert lived.to_dict("records") == replayed.to_dict("records")  # trace digests too: the same traces

    # The key reached no artifact, no recording, no log, no output.
    captured = capsys.readouterr()
    assert CANARY not in caplog.text + captured.out + captured.err
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


def test_the_cost_cap_stops_at_the_right_call_and_the_rest_resumes(tmp_path: Path) -> None:
    with served() as (_, model, url):
        # Learn each call's worst case from a recording of the four cells.
        probe = Live(mode="record", recordings=tmp_path / "probe", base_url=url, concurrency=1)
        run_experiment(experiment(), tmp_path / "probe-out", live=probe)
        lines = (tmp_path / "probe" / "soc-c2-beacon" / "haiku.jsonl").read_text().splitlines()[1:]
        exchanges = sorted((json.loads(line) for line in lines), key=lambda e: e["seed"])
        rows = read_runs(tmp_path / "probe-out").to_dict("records")
        order = {row["seed"]: row["cell"] for row in rows if row["config"] == "haiku"}
        by_cell = {
            order[e["seed"]]: worst_case_cost(request_from_api(e["request"]), model=MODEL) for e in exchanges
        }
        worst = [by_cell[f"soc-c2-beacon/{i}/haiku"] for i in range(4)]
        # The third call starts (2 spent + its worst case fit), the fourth does not.
        cap = 2 * CALL_COST + worst[2] + 1e-9
        assert 3 * CALL_COST + worst[3] > cap
        model.calls = 0
        capped = Live(
            mode="replay_or_record", recordings=tmp_path / "rec", base_url=url, concurrency=1, max_cost=cap
        )
        first = run_experiment(experiment(), tmp_path / "out", live=capped)
        assert model.calls == 3
        spend = capped.spend()
        assert spend is not None
        assert (spend.calls, spend.refused) == (3, 1)
        assert spend.spent <= cap
        # Cells 0..2 of haiku and the simulated cells before the stop are written; the rest waits.
        done = set(read_runs(tmp_path / "out")["cell"])
        assert {f"soc-c2-beacon/{i}/haiku" for i in range(3)} <= done
        assert "soc-c2-beacon/3/haiku" not in done
        assert first.ran == len(done)
        resumed = Live(mode="replay_or_record", recordings=tmp_path / "rec", base_url=url, concurrency=1)
        second = run_experiment(experiment(), tmp_path / "out", live=resumed)
    assert (second.skipped, second.ran, model.calls) == (len(done), 8 - len(done), 4)
    assert len(read_runs(tmp_path / "out")) == 8


def test_a_replay_of_a_changed_prompt_names_the_missing_request(tmp_path: Path) -> None:
    with served() as (_, _, url):
        run_experiment(
            experiment(1),
            tmp_path / "live",
            live=Live(mode="record", recordings=tmp_path / "rec", base_url=url),
        )
    path = tmp_path / "rec" / "soc-c2-beacon" / "haiku.jsonl"
    header, line = path.read_text().splitlines()
    recorded = json.loads(line)
    recorded["request"]["system"] = recorded["request"]["system"].replace("triage", "sort", 1)
    # As if recorded with an older prompt: its digests are of that prompt.
    recorded["digest"] = request_digest(request_from_api(recorded["request"]), model=MODEL)
    recorded["prompt_digest"] = prompt_digest(request_from_api(recorded["request"]))
    path.write_text(f"{header}\n{json.dumps(recorded)}\n")
    summary = run_experiment(
        experiment(1), tmp_path / "replay", live=Live(mode="replay", recordings=tmp_path / "rec")
    )
    assert summary.harness_errors == 1
    runs = read_runs(tmp_path / "replay").set_index("cell")
    error = runs.loc["soc-c2-beacon/0/haiku", "harness_error"]
    assert error.startswith(
        "ReplayMiss: replay of scenario 'soc-c2-beacon' (cell soc-c2-beacon/0/haiku), state 'triage', "
        "model 'claude-haiku-4-5': request "
    )
    assert "the system prompt or tools of state 'triage' changed since it was recorded" in error
    assert 'differs first at system: recorded "You sort SOC alerts' in error
    assert not runs.loc["soc-c2-beacon/0/small", "harness_error"]


def test_without_a_key_live_configs_fail_at_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY")
    with pytest.raises(MissingAPIKey, match="ANTHROPIC_API_KEY is not set"):
        run_experiment(experiment(1), tmp_path / "out", live=Live())
    assert not (tmp_path / "out").exists()
    with pytest.raises(InvalidArgument, match=r"plays real models \['claude-haiku-4-5'\]: run it live"):
        run_experiment(experiment(1), tmp_path / "out")
    scenario = "windtunnel/scenarios/soc/scenarios/c2-beacon.yaml"
    result = CliRunner().invoke(app, ["run", scenario, "--config", MODEL, "--out", str(tmp_path / "cli")])
    assert result.exit_code == 2
    assert "ANTHROPIC_API_KEY is not set" in result.output


def test_a_dry_run_estimates_and_spends_nothing(tmp_path: Path) -> None:
    scenario = "windtunnel/scenarios/soc/scenarios/c2-beacon.yaml"
    args = ["run", scenario, "--config", MODEL, "--seeds", "2", "--dry-run", "--out", str(tmp_path / "out")]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "an ESTIMATE from simulated stand-in tiers" in result.output
    assert "claude-haiku-4-5: 2 runs, ~" in result.output
    assert "claude-haiku-4-5 as small" in result.output
    assert not (tmp_path / "out").exists()
