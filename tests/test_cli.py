"""The command line: version, demo, trace search, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from windtunnel import __version__
from windtunnel.cli import app

runner = CliRunner()


def test_version() -> None:
    result = runner.invoke(app, ["--version"])
    assert (result.exit_code, result.output) == (0, f"windtunnel {__version__}\n")


def test_demo_runs_every_variant() -> None:
    result = runner.invoke(app, ["demo", "--seed", "2"])
    assert result.exit_code == 0, result.output
    for variant in ("nominal", "slow_source", "confused", "endless"):
        assert f"--- variant {variant} (seed 2) ---" in result.output
    assert "REFUSED next='block_ip'" in result.output
    assert "timed out after 300s" in result.output
    assert "BUDGET duration exceeded" in result.output


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_demo_writes_a_trace_that_trace_can_search(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"demo{suffix}"
    for _ in range(2):  # a second run replaces the file rather than clashing with it
        written = runner.invoke(app, ["demo", "--seed", "1", "--trace", str(path)])
        assert written.exit_code == 0, written.output
    count = int(written.output.splitlines()[-1].split()[0])

    everything = runner.invoke(app, ["trace", str(path), "--format", "jsonl"])
    assert len(everything.output.splitlines()) == count

    refused = runner.invoke(app, ["trace", str(path), "--kind", "transition_refused", "--format", "jsonl"])
    [line] = refused.output.splitlines()
    assert json.loads(line)["proposed"] == "block_ip"

    where = runner.invoke(
        app,
        ["trace", str(path), "--where", "timed_out=true", "--kind", "handler_failed", "--format", "table"],
    )
    assert where.exit_code == 0
    assert where.output.count("TimeoutError") == 2

    run = runner.invoke(app, ["trace", str(path), "--run", "run-1-3", "--state", "decide"])
    assert "REFUSED" in run.output
    assert "slow" not in run.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--variant", "chaos"], "unknown --variant 'chaos'"),
        (["demo", "--trace", "out.csv"], "use a .jsonl or .sqlite/.sqlite3/.db file"),
        (["trace", "missing.jsonl"], "no trace file at 'missing.jsonl'"),
        (["trace", "x.jsonl", "--format", "xml"], "unknown --format 'xml'"),
        (["trace", "x.jsonl", "--where", "target"], "expected FIELD=VALUE"),
    ],
)
def test_bad_input_is_a_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output


def test_investigate_under_a_fault() -> None:
    result = runner.invoke(
        app,
        [
            "investigate",
            "--seed",
            "2",
            "--tier",
            "large",
            "--case",
            "c2_beacon",
            "--fault",
            "silent_failure@tool:block_ip",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "FAULT f1 (silent_failure on tool:block_ip)" in result.output
    assert "VERIFICATION FAILED" in result.output
    assert "truth: malicious" in result.output


def test_investigate_crash_is_reported() -> None:
    result = runner.invoke(app, ["investigate", "--seed", "2", "--case", "c2_beacon", "--fault", "crash@run"])
    assert result.exit_code == 0, result.output
    assert "crashed: run 'run-2-1' crashed at transition 2" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["investigate", "--fault", "timeout"], "expected KIND@TARGET"),
        (["investigate", "--fault", "timeout@tier:small"], "does not fit kind='timeout'"),
        (["investigate", "--case", "ransomware"], "unknown --case 'ransomware'"),
        (["investigate", "--tier", "huge"], "unknown tier='huge'"),
    ],
)
def test_investigate_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
