"""One small scenario on the smallest real tier, recorded live then replayed; runs only with a key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from windtunnel.evals import Experiment, read_runs, run_experiment
from windtunnel.evals.live import Live

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("ANTHROPIC_API_KEY"), reason="needs ANTHROPIC_API_KEY"),
]

ROOT = Path(__file__).resolve().parents[2]
LIVE_MODEL = os.environ.get("WINDTUNNEL_LIVE_MODEL", "claude-haiku-4-5")


def test_a_real_model_plays_a_scenario_and_its_recording_replays(tmp_path: Path) -> None:
    experiment = Experiment(
        name="live-api",
        scenarios=[str(ROOT / "windtunnel/scenarios/soc/scenarios/c2-beacon.yaml")],
        configs=[{"name": "haiku", "play": LIVE_MODEL}],
        recheck=0.0,
    )
    live = Live(mode="record", recordings=tmp_path / "rec", concurrency=1, max_cost=0.50)
    summary = run_experiment(experiment, tmp_path / "live", live=live)
    runs = read_runs(tmp_path / "live")
    assert summary.ran == 1
    assert not runs["harness_error"].fillna("").iloc[0]
    assert float(runs["model_cost"].iloc[0]) > 0
    replay = run_experiment(
        experiment, tmp_path / "replay", live=Live(mode="replay", recordings=tmp_path / "rec")
    )
    assert replay.harness_errors == 0
    assert list(read_runs(tmp_path / "replay")["trace_digest"]) == list(runs["trace_digest"])
    key = os.environ["ANTHROPIC_API_KEY"].encode()
    assert not [path for path in tmp_path.rglob("*") if path.is_file() and key in path.read_bytes()]
