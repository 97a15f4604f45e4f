"""The command line: version, demo, trace search, and clear errors."""

from __future__ import annotations

import json
import re
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


@pytest.fixture(scope="module")
def demo_jsonl(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's four runs (seed 1), as a JSON Lines trace."""
    path = tmp_path_factory.mktemp("demo") / "demo.jsonl"
    written = runner.invoke(app, ["demo", "--seed", "1", "--trace", str(path)])
    assert written.exit_code == 0, written.output
    return path


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["demo", "--variant", "chaos"], "unknown --variant 'chaos'"),
        (["demo", "--trace", "out.csv"], "use a .jsonl or .sqlite/.sqlite3/.db file"),
        (["demo", "--trace", "absent/x.jsonl"], "cannot write a trace to 'absent/x.jsonl': No such file"),
        (["demo", "--trace", "absent/x.sqlite"], "cannot write a trace to 'absent/x.sqlite': unable to open"),
        (["demo", "--trace", "folder.jsonl"], "--trace 'folder.jsonl': cannot replace it: Is a directory"),
        (["trace", "missing.jsonl"], "no trace file at 'missing.jsonl'"),
        (["trace", "folder.jsonl"], "folder.jsonl is a directory but not a results directory"),
        (["trace", "torn-inside.jsonl"], 'torn-inside.jsonl:1: not valid JSON: \'{"kind": "run_st\''),
        (["trace", "latin1.jsonl"], "latin1.jsonl:1: not valid UTF-8"),
        (["trace", "unknown-kind.jsonl"], "unknown-kind.jsonl:1: invalid event: unknown kind='teleported'"),
        (["trace", "text.sqlite"], "cannot read events from 'text.sqlite'"),
        (["trace", "{demo}", "--format", "xml"], "unknown --format 'xml'; choose summary, jsonl or table"),
        (
            ["trace", "{demo}", "--kind", "nonsense"],
            "unknown --kind 'nonsense'; known kinds: action_applied, ",
        ),
        (
            ["trace", "{demo}", "--kind", "transiton"],
            "unknown --kind 'transiton' (did you mean 'transition'?)",
        ),
        (["trace", "{demo}", "--where", "target"], "--where 'target': expected FIELD=VALUE"),
        (["trace", "{demo}", "--where", "=close"], "--where '=close': expected FIELD=VALUE"),
        (
            ["trace", "{demo}", "--where", "taget=close"],
            "--where 'taget=close': no event has a field 'taget'",
        ),
        (["trace", "{demo}", "--where", "taget=close"], "(did you mean 'target'?)"),
        (
            ["trace", "{demo}", "--where", "kind=transition"],
            "--where 'kind=transition': filter kind with --kind",
        ),
        (["trace", "{demo}", "--where", "run_id=x"], "--where 'run_id=x': filter run_id with --run instead"),
        (
            ["trace", "{demo}", "--kind", "transition", "--where", "tool=x"],
            "--where 'tool=x': no event of kind transition has a field 'tool'",
        ),
        (
            ["trace", "{demo}", "--run", "nope"],
            "unknown --run 'nope'; the trace holds run-1-1, run-1-2, run-1-3, ",
        ),
        (["trace", "{demo}", "--state", "clsoe"], "no event in --state 'clsoe' (did you mean 'close'?)"),
    ],
)
def test_bad_input_is_a_one_line_message_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, demo_jsonl: Path, args: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "folder.jsonl").mkdir()
    (tmp_path / "torn-inside.jsonl").write_text('{"kind": "run_st\n{"kind": "run_started"}\n')
    (tmp_path / "latin1.jsonl").write_bytes('{"state": "déjà"}\n'.encode("latin-1"))
    (tmp_path / "unknown-kind.jsonl").write_text('{"kind": "teleported", "run_id": "r", "seq": 0}\n')
    (tmp_path / "text.sqlite").write_text("not a database, " * 100)
    result = runner.invoke(app, [arg.format(demo=demo_jsonl) for arg in args])
    assert (result.exit_code, result.stdout) == (2, ""), result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    [line] = result.stderr.splitlines()
    assert line.startswith("windtunnel: ")
    assert message in line


def summary_lines(*args: str) -> list[str]:
    result = runner.invoke(app, ["trace", *args])
    assert (result.exit_code, result.stderr) == (0, ""), result.output
    return result.stdout.splitlines()


def test_a_filtered_summary_shows_run_ids_and_times_from_each_runs_start(demo_jsonl: Path) -> None:
    everything = summary_lines(str(demo_jsonl))
    escalations = summary_lines(str(demo_jsonl), "--where", "target=escalated")
    assert escalations == [line for line in everything if "-> escalated" in line]
    assert escalations == [
        "  run-1-2  t=   709.5s  escalate     -> escalated",
        "  run-1-3  t=   496.4s  escalate     -> escalated",
        "  run-1-4  t=  2700.0s  decide       -> escalated  [escalation: budget]",
    ]


def test_the_summary_says_which_runs_did_not_finish(demo_jsonl: Path, tmp_path: Path) -> None:
    cut = tmp_path / "cut.jsonl"
    lines = demo_jsonl.read_text().splitlines(keepends=True)
    cut.write_text("".join(lines[:20]))  # at a line boundary: run-1-2 never finished
    last = json.loads(lines[19])
    assert (last["run_id"], last["seq"]) == ("run-1-2", 7)
    summary = summary_lines(str(cut))
    assert summary[-1] == (
        f"  => run run-1-2 did not finish: its last event is seq 7 ({last['kind']}) "
        f"in {last['state']!r} at t={last['sim_time'] - json.loads(lines[12])['sim_time']:.1f}s"
    )
    assert sum("did not finish" in line for line in summary) == 1
    # A selection is judged against the whole run: the run still did not finish.
    assert summary_lines(str(cut), "--kind", "run_started")[-1] == summary[-1]
    assert "did not finish" not in "".join(summary_lines(str(demo_jsonl)))


def test_the_table_shows_wall_time_in_iso_8601_utc(demo_jsonl: Path) -> None:
    table = summary_lines(str(demo_jsonl), "--kind", "run_finished", "--format", "table")
    assert len(table) == 5
    for row in table[1:]:
        assert re.search(r" \d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z ", row), row
    assert "e+09" not in "".join(table)


def test_a_torn_or_resumed_trace_is_shown_with_a_note(demo_jsonl: Path, tmp_path: Path) -> None:
    path = tmp_path / "resumed.jsonl"
    lines = demo_jsonl.read_text().splitlines(keepends=True)
    # A line recorded again (a resumed life), and a last line torn by a kill.
    path.write_text("".join([*lines[:12], lines[11], lines[12][:40]]))
    result = runner.invoke(app, ["trace", str(path), "--format", "jsonl"])
    assert result.exit_code == 0, result.output
    assert [json.loads(line)["seq"] for line in result.stdout.splitlines()] == list(range(12))
    assert result.stderr.splitlines() == [
        f"windtunnel: note: {path}:14: not valid JSON: {lines[12][:40]!r}, and no newline: "
        "a torn last line, left out",
        f"windtunnel: note: {path}: 1 line superseded by a later line for the same run and seq "
        "(a resumed run records again what its dead life had not committed)",
    ]


SOC = Path(__file__).resolve().parent.parent / "windtunnel" / "scenarios" / "soc" / "scenarios"


def test_scenario_run_under_a_fault_is_graded_against_what_is_right_under_it() -> None:
    # The silent failure the README calls a catch: verification finds the block
    # missing, undoes it and escalates; that is right, since the block cannot land.
    file = SOC / "c2-block-silent-failure.yaml"
    result = runner.invoke(app, ["scenario", "run", str(file), "--seed", "2", "--tier", "large"])
    assert result.exit_code == 0, result.output
    assert "FAULT silent-block (silent_failure on tool:block_ip)" in result.output
    assert "VERIFICATION FAILED" in result.output
    assert "CORRECT (graded against what is right under faults silent-block)" in result.output


def test_scenario_run_resumes_a_crashed_run() -> None:
    file = SOC / "c2-crash-after-triage.yaml"
    result = runner.invoke(app, ["scenario", "run", str(file), "--seed", "2", "--tier", "large"])
    assert result.exit_code == 0, result.output
    assert "RESUMED (running) after 1 steps" in result.output
    assert "faults fired: killed x1" in result.output


def test_scenario_run_through_the_fake_api() -> None:
    file = SOC / "c2-intel-timeout-once.yaml"
    result = runner.invoke(app, ["scenario", "run", str(file), "--tier", "small", "--via-api"])
    assert result.exit_code in (0, 1), result.output
    assert "FAULT intel-timeout (timeout on tool:threat_intel)" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tier", "huge"], "unknown tier='huge'"),
        (["--tier", "ladder:small@x"], "threshold='x' must be a number"),
        (["--id", "soc-nope"], "no scenario --id 'soc-nope'"),
    ],
)
def test_scenario_run_bad_input(args: list[str], message: str) -> None:
    result = runner.invoke(app, ["scenario", "run", str(SOC / "c2-beacon.yaml"), *args])
    assert result.exit_code == 2
    assert message in result.output
