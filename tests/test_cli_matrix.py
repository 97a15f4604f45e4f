"""`windtunnel run`, `report` and `compare` end to end: artifacts, gates, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pandas as pd
import pytest
from junitparser import JUnitXml
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.evals import MANIFEST_SCHEMA

runner = CliRunner()
SOC = str(Path("windtunnel/scenarios/soc/scenarios").resolve())
SMALL = ["--id", "soc-c2-beacon", "--id", "soc-benign-scanner", "--seeds", "2"]


def run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["run", *args])
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("cli") / "results"
    code, output = run(SOC, *SMALL, "--config", "small", "--config", "large", "--out", str(out))
    assert code == 0, output
    return out, output


def test_run_writes_every_artifact_readable(results: tuple[Path, str]) -> None:
    out, output = results
    for name in ("metrics.csv", "summary.md", "report.html", "junit.xml", "manifest.json"):
        assert (out / name).is_file(), name
    runs = pd.read_parquet(out / "runs.parquet")
    assert len(runs) == 2 * 2 * 2
    assert len(pd.read_parquet(out / "events.parquet")) > len(runs)
    jsonschema.validate(json.loads((out / "manifest.json").read_text()), MANIFEST_SCHEMA)
    junit = JUnitXml.fromfile(str(out / "junit.xml"))
    assert sum(suite.tests for suite in junit) == 2 * 2  # one case per scenario x config
    metrics = pd.read_csv(out / "metrics.csv")
    assert sorted(metrics["config"]) == ["large", "small"]
    assert "by config (95% intervals)" in output
    assert "8 runs in" in output


def test_report_renders_again_from_saved_results_only(results: tuple[Path, str]) -> None:
    out, _ = results
    before = pd.read_parquet(out / "runs.parquet")
    (out / "report.html").unlink()
    (out / "summary.md").unlink()
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output
    assert (out / "report.html").is_file()
    assert (out / "summary.md").is_file()
    pd.testing.assert_frame_equal(pd.read_parquet(out / "runs.parquet"), before)  # nothing re-ran


def test_a_failing_gate_exits_1_and_names_the_gate(results: tuple[Path, str]) -> None:
    out, _ = results
    result = runner.invoke(app, ["report", str(out), "--gate", "cost_per_run <= 0.0000001"])
    assert result.exit_code == 1, result.output
    assert "FAIL cost_per_run <= 1e-07 failed for config 'large'" in result.output.replace(
        "0.0000001", "1e-07"
    )


def test_bad_input_exits_2_with_a_message(tmp_path: Path) -> None:
    code, output = run(SOC, *SMALL, "--config", "huge", "--out", str(tmp_path / "x"))
    assert code == 2
    assert "--config 'huge'" in output
    code, output = run(str(tmp_path / "nowhere.yaml"), "--out", str(tmp_path / "y"))
    assert code == 2
    assert "windtunnel:" in output
    result = runner.invoke(app, ["report", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a results directory" in result.output


def test_compare_with_itself_is_no_difference_and_a_worse_config_regresses(
    results: tuple[Path, str], tmp_path: Path
) -> None:
    out, _ = results
    same = runner.invoke(app, ["compare", str(out), str(out), "--markdown", str(tmp_path / "c.md")])
    assert same.exit_code == 0, same.output
    assert "no significant change" in same.output
    assert "no significant change" in (tmp_path / "c.md").read_text()
    # The candidate names the small tier "large": a deliberately worse "large".
    worse = tmp_path / "worse"
    code, output = run(
        SOC, "--seeds", "4", "--config", "large", "--out", str(tmp_path / "base"),
        "--id", "soc-c2-*", "--id", "soc-benign-*",
    )  # fmt: skip
    assert code == 0, output
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.windtunnel]\nconfigs = [{name = "large", play = "small"}]\n')
    import os

    cwd = Path.cwd()
    os.chdir(tmp_path)
    try:
        code, output = run(
            SOC, "--seeds", "4", "--out", str(worse), "--id", "soc-c2-*", "--id", "soc-benign-*"
        )
    finally:
        os.chdir(cwd)
    assert code == 0, output
    result = runner.invoke(app, ["compare", str(tmp_path / "base"), str(worse)])
    assert result.exit_code == 1, result.output
    assert "REGRESSED" in result.output
    assert "pass -> fail:" in result.output
    # With a baseline, run and report check for a regression even when no gate asks for it.
    checked = runner.invoke(app, ["report", str(worse), "--baseline", str(tmp_path / "base")])
    assert checked.exit_code == 1, checked.output
    assert "FAIL no_significant_regression" in checked.output


def test_defaults_come_from_the_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "pyproject.toml").write_text(
        "[tool.windtunnel]\n"
        f'suites = ["{SOC}"]\n'
        'configs = ["mid"]\n'
        "seeds = 1\n"
        'out = "wt"\n'
        'gates = ["invariant_violations == 0"]\n'
    )
    monkeypatch.chdir(tmp_path)
    code, output = run("--id", "soc-c2-beacon")
    assert code == 0, output
    runs = pd.read_parquet(tmp_path / "wt" / "runs.parquet")
    assert list(runs["config"]) == ["mid"]
    assert "PASS invariant_violations == 0" in output


def test_trace_reads_a_results_directory_by_scenario_config_and_seed(results: tuple[Path, str]) -> None:
    out, _ = results
    result = runner.invoke(
        app, ["trace", str(out), "--scenario", "soc-c2-beacon", "--config", "large", "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "soc-c2-beacon/1/large" in result.output  # runs are named by their cell
    assert "soc-benign-scanner" not in result.output
    jsonl = runner.invoke(
        app, ["trace", str(out), "--config", "small", "--kind", "run_finished", "--format", "jsonl"]
    )
    assert jsonl.exit_code == 0, jsonl.output
    finished = [json.loads(line) for line in jsonl.output.splitlines()]
    assert sorted(event["run_id"] for event in finished) == [
        "soc-benign-scanner/0/small",
        "soc-benign-scanner/1/small",
        "soc-c2-beacon/0/small",
        "soc-c2-beacon/1/small",
    ]
    missing = runner.invoke(app, ["trace", str(out), "--scenario", "soc-nope"])
    assert missing.exit_code == 2
    assert "no run matches" in missing.output


def test_trace_exports_whole_runs_as_opentelemetry_spans(results: tuple[Path, str], tmp_path: Path) -> None:
    from google.protobuf import json_format
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    out, _ = results
    target = tmp_path / "spans.json"
    result = runner.invoke(
        app,
        [
            "trace",
            str(out),
            "--scenario",
            "soc-c2-beacon",
            "--kind",
            "model_called",
            "--otlp-json",
            str(target),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "4 runs written to" in result.output
    request = json_format.Parse(target.read_text(), ExportTraceServiceRequest())
    spans = [span for rs in request.resource_spans for ss in rs.scope_spans for span in ss.spans]
    assert len({span.trace_id for span in spans}) == 4  # one trace per run (cell)
    assert any(span.name.startswith("invoke_agent") for span in spans)  # whole runs, not only the chat spans
    assert any(span.name.startswith("chat ") for span in spans)


def test_bad_setups_exit_2_and_never_delete_results(results: tuple[Path, str], tmp_path: Path) -> None:
    import shutil

    out, _ = results
    code, output = run(SOC, "--id", "nothing-matches", "--out", str(tmp_path / "none"))
    assert (code, "no scenario selected" in output) == (2, True), output
    (tmp_path / "afile").write_text("")
    code, output = run(SOC, *SMALL, "--out", str(tmp_path / "afile"))
    assert (code, "is a file" in output) == (2, True), output
    kept = tmp_path / "kept"
    shutil.copytree(out, kept)
    code, output = run(str(tmp_path / "nowhere.yaml"), "--out", str(kept), "--fresh")
    assert code == 2
    assert (kept / "runs.parquet").is_dir()  # bad input is found before --fresh deletes anything
    code, output = run(SOC, *SMALL, "--out", str(tmp_path / "b"), "--baseline", str(tmp_path / "typo"))
    assert (code, "not a results directory" in output) == (2, True), output
    assert not (tmp_path / "b").exists()  # said before anything ran


def test_an_unfinished_results_directory_cannot_pass(tmp_path: Path) -> None:
    from windtunnel.evals import Experiment, run_experiment

    experiment = Experiment(
        name="part", scenarios=[SOC], ids=["soc-c2-beacon", "soc-benign-scanner"], seeds=2, configs=["small"]
    )
    run_experiment(experiment, tmp_path, stop_after=3)
    result = runner.invoke(app, ["report", str(tmp_path), "--gate", "accuracy >= 0"])
    assert result.exit_code == 2, result.output
    assert "holds 3 of the experiment's 4 runs" in result.output


def test_compare_refuses_what_does_not_pair(results: tuple[Path, str], tmp_path: Path) -> None:
    out, _ = results
    code, output = run(SOC, *SMALL, "--config", "small", "--seed", "7", "--out", str(tmp_path / "s7"))
    assert code == 0, output
    other_seed = runner.invoke(app, ["compare", str(out), str(tmp_path / "s7")])
    assert other_seed.exit_code == 2
    assert "differ in their seed" in other_seed.output
    code, output = run(
        SOC, "--id", "soc-benign-backup", "--config", "small", "--seeds", "1", "--out", str(tmp_path / "o")
    )
    assert code == 0, output
    disjoint = runner.invoke(app, ["compare", str(out), str(tmp_path / "o")])
    assert disjoint.exit_code == 2
    assert "shares no cell" in disjoint.output


def test_ci_conveniences(results: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    out, _ = results
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "missing" / "summary.md"))
    result = runner.invoke(app, ["report", str(out)])
    assert result.exit_code == 0, result.output  # the CI's file failing is a note, not the agent's failure
    assert "GITHUB_STEP_SUMMARY: cannot append" in result.output
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "summary.md"))
    runner.invoke(app, ["report", str(out)])
    assert (
        "by config" not in (tmp_path / "summary.md").read_text()
    )  # the Markdown summary, not the terminal's
    assert "| config |" in (tmp_path / "summary.md").read_text()
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.windtunnel]\nconfigs = [{name = "odd[b]", play = "small"}]\n'
        'gates = [{gate = "accuracy >= 0", config = "large"}]\n'
    )
    code, output = run(SOC, "--id", "soc-c2-beacon", "--seeds", "1", "--workers", "2", "--out", "w")
    assert code == 0, output  # markup in a name is text; workers alone ask for the pool
    assert "odd[b]" in output
    assert "gate 'accuracy >= 0' is for config 'large', which this run does not include; skipped" in output
