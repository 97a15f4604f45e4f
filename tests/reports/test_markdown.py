"""The Markdown summary, the metrics CSV and GitHub's step summary."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest

from tests.evals.runs_kit import runs
from windtunnel.evals import read_runs
from windtunnel.reports import (
    append_step_summary,
    evaluate,
    metrics_csv,
    metrics_table,
    parse_gate,
    summary_markdown,
)

MANIFEST = {
    "experiment": {"name": "tiers"},
    "seeds": 2,
    "windtunnel": "9.9",
    "prices": {"as_of": "2026-01-01"},
}


def hand_runs() -> pd.DataFrame:
    """Config a|b: two scenarios x two seeds, one wrong, one harness error; one inconclusive run."""
    base = {"config": "a|b", "model_cost": 0.01, "actions_applied": 1, "actions_verified": 1}
    return runs(
        {**base, "scenario": "s1", "seed_index": 0, "escalated": True, "needs_human": True},
        {**base, "scenario": "s1", "seed_index": 1, "needs_human": True, "correct": False},
        {**base, "scenario": "s2", "seed_index": 0, "inconclusive": True, "faults_not_fired": "slow"},
        {**base, "scenario": "s2", "seed_index": 1, "harness_error": "KeyError: 'x'"},
    )


def test_summary_by_hand() -> None:
    frame = hand_runs()
    gates = evaluate(["accuracy >= 0.9", parse_gate("runs >= 1", config="a|b")], frame)
    assert summary_markdown(frame, gates, MANIFEST) == (
        "## windtunnel: tiers\n"
        "\n"
        "4 runs: 2 scenarios × 2 seeds × 1 configs (windtunnel 9.9, prices as of 2026-01-01). Intervals are "
        "95%: Wilson for rates, a bootstrap over scenarios for costs and pass^k; n/a: nothing to measure.\n"
        "\n"
        "| config | runs | accuracy | escalation precision | escalation recall | verification coverage "
        "| silent-failure catch rate | cost per run (USD) | cost per correct decision (USD) | pass^1 |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
        "| a\\|b | 3 | 0.67 (0.21–0.94) | 1.00 (0.21–1.00) | 0.50 (0.09–0.91) | 1.00 (0.44–1.00) | n/a "
        "| 0.0100 (0.0100–0.0100) | 0.0150 | 0.75 (0.50–1.00) |\n"
        "\n"
        "### Gates: 1 of 2 passed\n"
        "\n"
        "- accuracy \\>= 0.9 failed for config 'a\\|b': measured 0.6667 (interval 0.2077–0.9385)\n"
        "\n"
        "### Harness errors: the harness failed on 1 of 4 runs\n"
        "\n"
        "- `s2/1/a|b`: KeyError: 'x'\n"
        "\n"
        "### Inconclusive runs\n"
        "\n"
        "- scenario 's2': fault 'slow' never fired in 1 of 1 runs (config a\\|b); those runs say nothing "
        "about surviving it\n"
    )


def test_summary_when_all_is_well(results_dir: Path) -> None:
    frame = read_runs(results_dir)
    manifest = json.loads((results_dir / "manifest.json").read_text())
    text = summary_markdown(frame, evaluate(["invariant_violations == 0"], frame), manifest)
    assert text.startswith("## windtunnel: t\n\n8 runs: 2 scenarios × 2 seeds × 2 configs")
    assert "| pass^2 |" in text
    assert "### Gates: 2 of 2 passed\n\nEvery gate passed." in text
    assert "Harness errors" not in text
    assert "Inconclusive" not in text
    assert [line.split(" | ")[0] for line in text.splitlines() if line.startswith("| ")][1:] == [
        "| large",
        "| small",
    ]


def test_metrics_csv_is_the_table() -> None:
    frame = hand_runs()
    read = pd.read_csv(io.StringIO(metrics_csv(frame)))
    pd.testing.assert_frame_equal(read, metrics_table(frame), check_dtype=False)


def test_step_summary(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    assert append_step_summary("# nothing") is None
    target = tmp_path / "step.md"
    target.write_text("earlier\n")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(target))
    assert append_step_summary("# one") == target
    assert append_step_summary("# two\n") == target
    assert target.read_text() == "earlier\n# one\n# two\n"
