"""The results directory: documented typed columns, streaming row groups, resume after a kill."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import cast

import pyarrow.parquet as pq  # type: ignore[import-untyped]
import pytest

from windtunnel.evals import COLUMNS, RUNS_SCHEMA, Cell, Experiment, read_events, read_runs, run_experiment
from windtunnel.evals.rows import event_rows
from windtunnel.orchestrator import InvalidArgument, Trace
from windtunnel.scenarios import ScenarioRun

SOC = "windtunnel/scenarios/soc/scenarios"


def small(**changes: object) -> Experiment:
    settings: dict[str, object] = {
        "name": "t",
        "scenarios": [SOC],
        "ids": ["soc-c2-beacon", "soc-benign-scanner", "soc-c2-block-silent-failure"],
        "seeds": 2,
        "configs": ["small", "large"],
        "recheck": 0.0,
    }
    settings.update(changes)
    return Experiment.model_validate(settings)


def test_runs_have_every_documented_column_typed(tmp_path: Path) -> None:
    run_experiment(small(), tmp_path)
    table = pq.read_table(tmp_path / "runs.parquet")
    assert table.schema.remove_metadata() == RUNS_SCHEMA.remove_metadata()
    assert table.schema.names == list(COLUMNS)
    assert all(field.metadata[b"description"] for field in RUNS_SCHEMA)
    runs = read_runs(tmp_path)
    assert len(runs) == 12
    assert runs["cell"].is_unique
    assert (runs["harness_error"] == "").all()
    assert runs["trace_digest"].str.len().eq(64).all()
    silent = runs[runs["scenario"] == "soc-c2-block-silent-failure"]
    assert (silent["silent_failures_injected"] >= 1).all()
    assert (silent["silent_failures_caught"] == silent["silent_failures_injected"]).all()
    assert (silent["faults_declared"] == 1).all()
    assert set(silent["faults_fired_by_kind"].map(json.loads).map(list).map(tuple)) == {("silent_failure",)}
    assert not runs["inconclusive"].any()


def test_events_hold_every_event_of_every_run(tmp_path: Path) -> None:
    run_experiment(small(ids=["soc-c2-beacon"], seeds=1), tmp_path)
    events = read_events(tmp_path)
    assert set(events["cell"]) == {"soc-c2-beacon/0/small", "soc-c2-beacon/0/large"}
    for _, group in events.groupby("cell"):
        assert list(group["seq"]) == list(range(len(group)))
        assert group["kind"].iloc[0] == "run_started"
        assert group["kind"].iloc[-1] == "run_finished"
        assert json.loads(group["event"].iloc[0])["kind"] == "run_started"


def test_an_event_with_a_line_separator_in_a_string_is_one_row() -> None:
    # JSON leaves U+2028 and U+0085 unescaped: the event lines are split on "\n" alone.
    trace = Trace()
    trace.append(("state_entered", "r", 0, 0.0, 5.0, "odd\u2028state\x85", {"step": 1, "attempt": 1}))
    trace.append(("state_entered", "r", 1, 1.0, 6.0, "next", {"step": 2, "attempt": 1}))
    run = cast(ScenarioRun, SimpleNamespace(trace=trace))
    rows = event_rows(Cell(scenario="s", seed_index=0, seed=1, config="small"), run, trace.dumps())
    assert [row["event"] for row in rows] == trace.dumps().split("\n")[:-1]
    assert [(row["seq"], row["state"], row["wall_time"]) for row in rows] == [
        (0, "odd\u2028state\x85", 5.0),
        (1, "next", 6.0),
    ]


def test_manifest_names_versions_files_and_experiment(tmp_path: Path) -> None:
    exp = small()
    run_experiment(exp, tmp_path)
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["experiment"] == exp.model_dump(mode="json")
    assert manifest["experiment_seed"] == 0
    assert manifest["seeds"] == 2
    assert all(len(digest) == 64 for digest in manifest["files"].values())
    assert any(name.endswith("c2-beacon.yaml") for name in manifest["files"])
    assert {"windtunnel", "python", "configs", "wall_s", "sessions"} <= set(manifest)
    assert manifest["sessions"][0]["cells_run"] == 12


def test_rows_stream_in_row_groups_and_parts(tmp_path: Path) -> None:
    run_experiment(small(seeds=5), tmp_path, row_group_size=4, groups_per_part=3)
    parts = sorted((tmp_path / "runs.parquet").glob("*.parquet"))
    assert [pq.ParquetFile(part).metadata.num_row_groups for part in parts] == [3, 3, 2]
    assert sorted(p.name for p in (tmp_path / "events.parquet").glob("*.parquet")) == [p.name for p in parts]
    assert len(read_runs(tmp_path)) == 30


def test_resume_after_a_kill_runs_only_the_missing_cells(tmp_path: Path) -> None:
    exp = small(seeds=3)
    first = run_experiment(exp, tmp_path, row_group_size=2, groups_per_part=1, stop_after=7)
    assert (first.ran, first.skipped) == (7, 0)
    # A kill mid-write leaves the open part without its footer: unreadable, so its cells run again.
    last = tmp_path / "runs.parquet" / "part-00000-00003.parquet"
    assert pq.ParquetFile(last).metadata.num_rows == 1
    last.write_bytes(last.read_bytes()[:100])
    second = run_experiment(exp, tmp_path, row_group_size=2, groups_per_part=1)
    assert (second.ran, second.skipped) == (12, 6)
    runs = read_runs(tmp_path)
    assert sorted(runs["cell"]) == sorted(cell.id for cell in exp.cells())
    assert set(read_events(tmp_path)["cell"]) == set(runs["cell"])
    again = run_experiment(exp, tmp_path)
    assert (again.ran, again.skipped) == (0, 18)
    whole = run_experiment(exp, tmp_path / "whole")
    columns = [c for c in COLUMNS if c != "wall_time"]
    resumed = runs.sort_values("cell")[columns].reset_index(drop=True)
    assert resumed.equals(read_runs(whole.path).sort_values("cell")[columns].reset_index(drop=True))


def test_a_directory_of_another_experiment_is_refused(tmp_path: Path) -> None:
    run_experiment(small(ids=["soc-c2-beacon"], seeds=1), tmp_path)
    with pytest.raises(InvalidArgument, match="another experiment"):
        run_experiment(small(ids=["soc-c2-beacon"], seeds=2), tmp_path)
