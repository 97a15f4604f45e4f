"""The HTML report: self-contained, every section present, replay commands that replay."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.evals import read_events, read_runs
from windtunnel.orchestrator import InvalidArgument
from windtunnel.reports import write_report
from windtunnel.reports._html_data import transitions

from .conftest import HOSTILE

SECTIONS = [
    "headline",
    "configs",
    "cost",
    "escalation",
    "calibration",
    "matrix",
    "faults",
    "workflow",
    "failing",
]


@pytest.fixture(scope="module")
def page(results: Path) -> str:
    return write_report(results).read_text()


def test_the_report_is_one_self_contained_file_with_every_section(results: Path, page: str) -> None:
    assert (results / "report.html").is_file()
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=", page), "every script and style is inline"
    for section in SECTIONS:
        assert f'id="{section}"' in page
    roots = re.findall(r'data-root-id="([^"]+)"', page)
    failing = int(re.search(r"Failing runs \((\d+)\)", page).group(1))  # type: ignore[union-attr]
    runs = read_runs(results)
    assert failing == int((~runs["correct"].astype(bool)).sum()) > 0
    # cost, sweep, confusion, calibration, matrix, faults, graph; a timeline each for the first 10 failures
    assert len(roots) == 7 + min(failing, 10)
    assert "Ladder sweep" in page


def test_transition_targets_read_from_the_next_event_are_the_events_own(results: Path) -> None:
    edges, start, unmatched = transitions(results)
    events = read_events(results)
    taken = events[events["kind"] == "transition"]
    truth = (
        pd.DataFrame({"source": taken["state"], "target": [json.loads(e)["target"] for e in taken["event"]]})
        .groupby(["source", "target"], as_index=False)
        .size()
        .rename(columns={"size": "count"})
    )
    assert unmatched == 0
    assert start == "triage"
    key = ["source", "target"]
    assert edges.sort_values(key, ignore_index=True).equals(truth.sort_values(key, ignore_index=True))


def test_each_replay_command_replays_its_failing_run(page: str) -> None:
    commands = re.findall(r"<pre>(windtunnel scenario run [^<]+)</pre>", page)
    assert commands
    argv = shlex.split(commands[0].replace("&#39;", "'"))[1:]
    done = CliRunner().invoke(app, argv)
    assert done.exit_code == 1, done.output  # 1: the run is not correct, as the report said


def test_every_string_from_the_results_is_escaped(hostile: Path) -> None:
    page = write_report(hostile).read_text()
    assert HOSTILE not in page
    assert "alert(&#34;pwned&#34;)" in page or "alert(&quot;pwned&quot;)" in page
    assert "Harness errors (1)" in page
    assert "No events of this run are in events.parquet." in page  # its cell was renamed


def test_a_directory_without_results_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="not a results directory"):
        write_report(tmp_path)
