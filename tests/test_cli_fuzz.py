"""`windtunnel fuzz` end to end: the table, the regression files, the JSON line, exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from windtunnel.cli import app

runner = CliRunner()
SOC = "windtunnel/scenarios/soc/scenarios"
BEACONS = [f"{SOC}/c2-beacon.yaml", f"{SOC}/c2-rate-limited.yaml", f"{SOC}/benign-scanner.yaml"]
BUG = "tests.evals.planted_bugs:unverified_write"


def fuzz(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["fuzz", *args])
    return result.exit_code, result.output


def test_a_found_failure_exits_1_with_a_table_files_and_json(tmp_path: Path) -> None:
    code, output = fuzz(*BEACONS, "--workflow", BUG, "--trials", "60", "--out", str(tmp_path))
    assert code == 1, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["trials"] == 60
    assert summary["failures"] >= 1
    assert set(summary) >= {"trials", "trials_per_s", "failures", "min_faults", "coverage"}
    assert all(1 <= n <= 2 for n in summary["min_faults"])
    assert "replay: windtunnel scenario run" in output
    files = sorted((tmp_path / "regressions").glob("*.yaml"))
    assert len(files) == summary["failures"]
    assert json.loads((tmp_path / "fuzz.json").read_text())["failures"] == summary["failures"]
    # Each file is a valid scenario that fails when run as the table says.
    assert runner.invoke(app, ["validate", str(files[0])]).exit_code == 0
    replay = runner.invoke(app, ["scenario", "run", str(files[0]), "--tier", "large"])
    assert replay.exit_code == 1, replay.output


def test_nothing_found_exits_0(tmp_path: Path) -> None:
    code, output = fuzz(
        f"{SOC}/benign-scanner.yaml", "--trials", "5", "--oracle", "invariants", "--out", str(tmp_path)
    )
    assert code == 0, output
    assert "no failure found" in output
    assert json.loads(output.strip().splitlines()[-1])["failures"] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--trials", "1", "--oracle", "vibes"], "--oracle"),
        ([], "--time SECONDS or --trials N"),
        (["--trials", "1", "--config", "huge"], "tier"),
        (["--trials", "1", "--workflow", "no.such:thing"], "workflow"),
        (["--breaking-point", "timeout"], "KIND@TARGET"),
        (["--breaking-point", "nosuch@tool:x"], "fault kind"),
        (["--breaking-point", "crash@run"], "no one severity"),
        (["--breaking-point", "timeout@tool:siem_search", "--trials", "5"], "not for --breaking-point"),
        (["--trials", "5", "--kind", "nosuchkind"], "fault kind"),
        (["--trials", "5", "--kind", "rate_limit", "--config", "oracle"], "nothing to fuzz"),
        (["--time", "0"], "seconds=0.0 must be more than 0"),
        (["--trials", "5", "--tag", "nosuchtag"], "no scenario to fuzz"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    code, output = fuzz(f"{SOC}/c2-beacon.yaml", "--out", str(tmp_path), *args)
    assert code == 2, output
    assert message in output
    assert "Traceback" not in output


def test_an_out_that_is_a_file_is_refused_before_any_trial(tmp_path: Path) -> None:
    afile = tmp_path / "afile"
    afile.write_text("mine\n")
    code, output = fuzz(f"{SOC}/c2-beacon.yaml", "--trials", "5", "--out", str(afile))
    assert code == 2, output
    assert "is a file" in output
    assert afile.read_text() == "mine\n"


def test_a_broken_scenario_file_exits_2(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("id: x\n")
    code, output = fuzz(str(broken), "--trials", "1", "--out", str(tmp_path / "out"))
    assert code == 2
    assert "broken.yaml" in output


def test_breaking_point_prints_levels_and_json(tmp_path: Path) -> None:
    code, output = fuzz(
        f"{SOC}/privileged-login.yaml", "--breaking-point", "human_slow@humans", "--seeds", "12",
        "--workflow", "tests.evals.planted_bugs:timeout_approves", "--out", str(tmp_path),
    )  # fmt: skip
    assert code == 0, output
    summary = json.loads(output.strip().splitlines()[-1])
    assert summary["fault"] == "human_slow@humans"
    assert summary["knob"] == "seconds"
    # The review times out after two hours: an approver that late is taken for a yes.
    assert 1000 < summary["median"] <= 7200
    assert summary["low"] <= summary["median"] <= summary["high"]
    assert "median breaking point" in output
    assert json.loads((tmp_path / "breaking.json").read_text()) == summary
