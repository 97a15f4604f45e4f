"""Executors: the same rows in-process and on a process pool; harness errors are rows."""

from __future__ import annotations

from pathlib import Path

import pytest

from windtunnel.evals import COLUMNS, Executor, Experiment, read_events, read_runs, run_experiment
from windtunnel.orchestrator import InvalidArgument, Workflow
from windtunnel.scenarios import Kit

SOC = "windtunnel/scenarios/soc/scenarios"
THREE = ["soc-c2-beacon", "soc-benign-scanner", "soc-c2-block-silent-failure"]


def broken_workflow(kit: Kit) -> Workflow:
    """A workflow factory that fails: the harness's failure, not the agent's."""
    raise RuntimeError("the factory broke")


def small(**changes: object) -> Experiment:
    settings: dict[str, object] = {
        "name": "t",
        "scenarios": [SOC],
        "ids": THREE,
        "seeds": 2,
        "configs": ["small", "ladder:small@0.85,mid@0.6,large"],
        "recheck": 0.5,
    }
    settings.update(changes)
    return Experiment.model_validate(settings)


def test_local_and_process_pool_give_identical_runs(tmp_path: Path) -> None:
    exp = small()
    local = run_experiment(exp, tmp_path / "local")
    pooled = run_experiment(exp, tmp_path / "pool", executor="process", workers=2)
    assert (local.ran, pooled.ran, local.harness_errors, pooled.harness_errors) == (12, 12, 0, 0)
    columns = [c for c in COLUMNS if c != "wall_time"]
    a = read_runs(local.path).sort_values("cell")[columns].reset_index(drop=True)
    b = read_runs(pooled.path).sort_values("cell")[columns].reset_index(drop=True)
    assert a.equals(b)
    assert a["rechecked"].any()  # the self-check ran, and found the traces equal
    events = ["cell", "seq", "event"]
    ea = read_events(local.path).sort_values(["cell", "seq"])[events].reset_index(drop=True)
    eb = read_events(pooled.path).sort_values(["cell", "seq"])[events].reset_index(drop=True)
    assert ea.equals(eb)


def test_paired_configs_meet_the_same_case(tmp_path: Path) -> None:
    run_experiment(small(recheck=0.0), tmp_path)
    runs = read_runs(tmp_path)
    by_case = runs.groupby(["scenario", "seed_index"])
    assert (by_case["seed"].nunique() == 1).all()
    assert (by_case["plan_digest"].nunique() == 1).all()


def test_a_harness_error_is_a_row_never_the_agents(tmp_path: Path) -> None:
    source = (Path(SOC) / "c2-beacon.yaml").read_text()
    broken = source.replace(
        "id: soc-c2-beacon", "id: broken\nworkflow: tests.evals.test_executors:broken_workflow"
    )
    (tmp_path / "broken.yaml").write_text(broken)
    exp = small(scenarios=[str(tmp_path / "broken.yaml"), SOC], ids=["broken", "soc-c2-beacon"], seeds=1)
    executors: list[Executor] = ["local", "process"]
    for executor in executors:
        summary = run_experiment(exp, tmp_path / executor, executor=executor, workers=1)
        assert (summary.ran, summary.harness_errors) == (4, 2)
        runs = read_runs(summary.path).set_index("cell")
        bad = runs.loc["broken/0/small"]
        assert bad["harness_error"].startswith("InvalidArgument: the workflow factory")
        assert "the factory broke" in bad["harness_error"]
        assert bad["correct"] is None or bad.isna()["correct"]  # not graded: neither right nor wrong
        assert bad["scenario"] == "broken"
        assert runs.loc["soc-c2-beacon/0/small", "harness_error"] == ""


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"executor": "dask"}, "executor"),
        ({"workers": 0, "executor": "process"}, "workers"),
        ({"workers": 2}, "workers"),
        ({"stop_after": -1}, "stop_after"),
    ],
)
def test_invalid_arguments_say_what(tmp_path: Path, arguments: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        run_experiment(small(), tmp_path, **arguments)  # type: ignore[arg-type]


def test_a_determinism_mismatch_is_a_harness_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from windtunnel.evals import executors
    from windtunnel.scenarios import run_scenario

    calls: list[int] = []

    def drifting(scenario: object, *, seed: int, play: str) -> object:
        calls.append(seed)
        return run_scenario(scenario, seed=seed + (calls.count(seed) - 1), play=play)  # type: ignore[arg-type]

    monkeypatch.setattr(executors, "run_scenario", drifting)
    summary = run_experiment(small(ids=["soc-c2-beacon"], seeds=1, recheck=1.0), tmp_path)
    runs = read_runs(summary.path)
    assert runs["rechecked"].all()
    assert runs["harness_error"].str.startswith("NondeterministicRun").all()
    assert summary.harness_errors == 2
