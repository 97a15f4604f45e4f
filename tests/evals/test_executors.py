"""Executors: the same rows in-process and on a process pool; harness errors are rows."""

from __future__ import annotations

import json
import os
import re
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
    assert (a["invariant_violations"] == 0).all()  # every invariant of evals.invariants holds
    assert (a["violations"] == "[]").all()
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

    def drifting(scenario: object, *, seed: int, **how: object) -> object:
        calls.append(seed)
        return run_scenario(scenario, seed=seed + (calls.count(seed) - 1), **how)  # type: ignore[arg-type]

    monkeypatch.setattr(executors, "run_scenario", drifting)
    summary = run_experiment(small(ids=["soc-c2-beacon"], seeds=1, recheck=1.0), tmp_path)
    runs = read_runs(summary.path)
    assert runs["rechecked"].all()
    assert runs["harness_error"].str.startswith("NondeterministicRun").all()
    assert summary.harness_errors == 2


def oracle_models(state: str, playbook: object) -> object:
    """A user's model factory, named by a config as 'tests.evals.test_executors:oracle_models'."""
    from windtunnel.scenarios.oracle import OracleModel

    return OracleModel(playbook)


def test_configs_of_a_users_profile_and_a_users_models(tmp_path: Path) -> None:
    from windtunnel.simulators import DEFAULT_TIERS

    mine = DEFAULT_TIERS["large"].model_copy(update={"name": "mine"})
    exp = small(
        configs=["large", mine, {"name": "oracle", "models": "tests.evals.test_executors:oracle_models"}],
        recheck=0.0,
    )
    summary = run_experiment(exp, tmp_path)
    assert summary.harness_errors == 0
    runs = read_runs(tmp_path).set_index("cell")
    oracle = runs[runs["config"] == "oracle"]
    assert oracle["correct"].all()  # the oracle plays every playbook right
    assert (oracle["model_cost"] == 0).all()
    assert set(json.loads(oracle["by_tier"].iloc[0])) == {"oracle"}
    # A profile that is the large tier renamed decides as the large tier does.
    for case in ("soc-c2-beacon/0", "soc-benign-scanner/1"):
        assert runs.loc[f"{case}/mine", "correct"] == runs.loc[f"{case}/large", "correct"]
        assert set(json.loads(runs.loc[f"{case}/mine", "by_tier"])) <= {"mine"}
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    prices = manifest["prices"]
    assert set(prices["models_usd_per_million_tokens"]) == {DEFAULT_TIERS["large"].model}
    assert prices["models_usd_per_million_tokens"][mine.model]["output"] > 0
    assert prices["humans_usd_per_minute"]["oncall"] > 0
    assert prices["own_models"] == ["oracle"]


def test_a_config_every_cell_would_fail_on_is_refused_before_any_run(tmp_path: Path) -> None:
    from windtunnel.simulators import DEFAULT_TIERS

    cases = [
        ({"name": "own", "models": "tests.evals.nowhere:factory"}, "models='tests.evals.nowhere:factory'"),
        (
            {"name": "wf", "play": "small", "workflow": "tests.evals.nowhere:wf"},
            "workflow='tests.evals.nowhere:wf'",
        ),
        (DEFAULT_TIERS["small"].model_copy(update={"name": "x", "model": "no-such-model"}), "no-such-model"),
    ]
    for config, message in cases:
        with pytest.raises(InvalidArgument, match=re.escape(message)):
            run_experiment(small(configs=[config], recheck=0.0), tmp_path / "x")
        assert not (tmp_path / "x").exists()  # nothing ran, nothing was written


def sys_exit_models(state: str, playbook: object) -> object:
    """A user's model factory that calls sys.exit: the harness's failure, one row each."""
    raise SystemExit(3)


def test_a_user_factory_that_exits_is_a_harness_error_not_the_end(tmp_path: Path) -> None:
    exp = small(
        configs=[{"name": "own", "models": "tests.evals.test_executors:sys_exit_models"}], recheck=0.0
    )
    summary = run_experiment(exp, tmp_path)
    runs = read_runs(tmp_path)
    assert summary.harness_errors == len(runs) == 6
    assert runs["harness_error"].str.startswith("SystemExit").all()


def os_exit_models(state: str, playbook: object) -> object:
    """A user's model factory that kills its process."""
    os._exit(1)


def test_a_worker_that_dies_stops_the_experiment_with_a_message_and_keeps_what_ran(tmp_path: Path) -> None:
    from windtunnel.orchestrator import SimulationError

    exp = small(configs=[{"name": "own", "models": "tests.evals.test_executors:os_exit_models"}], recheck=0.0)
    with pytest.raises(SimulationError, match="a worker process died"):
        run_experiment(exp, tmp_path, executor="process", workers=2)
    assert (tmp_path / "manifest.json").is_file()  # a rerun resumes


def test_an_extra_fault_plan_runs_paired_and_its_impact_is_measured(tmp_path: Path) -> None:
    from windtunnel.evals import fault_impact

    plan = {
        "name": "intel-down",
        "faults": [{"id": "down", "kind": "error", "target": "tool:threat_intel", "trigger": {"times": 99}}],
    }
    exp = small(configs=["large"], seeds=3, recheck=0.0, fault_plans=[plan])
    run_experiment(exp, tmp_path)
    runs = read_runs(tmp_path)
    assert sorted(runs["fault_plan"].unique()) == ["", "intel-down"]
    assert len(runs) == 18
    laid = runs[runs["fault_plan"] == "intel-down"]
    fired = laid["faults_fired_by_kind"].map(lambda v: json.loads(v).get("error", 0) > 0)
    assert fired.any()
    unfired = laid[~fired]  # the agent never called threat_intel: inconclusive for the fault, and named
    assert (unfired["inconclusive"] & unfired["faults_not_fired"].str.contains("intel-down/down")).all()
    pairs = runs.pivot_table(index=["scenario", "seed_index"], columns="fault_plan", values="seed")
    assert (pairs[""] == pairs["intel-down"]).all()  # the same case with and without the plan
    impact = fault_impact(runs).iloc[0]
    # Only the pairs in which the plan's fault fired are measured; the others are counted apart.
    assert (impact["fault_plan"], impact["pairs"], impact["unexercised"]) == (
        "intel-down",
        fired.sum(),
        (~fired).sum(),
    )
    exercised = laid[fired.to_numpy()]
    base = runs[runs["fault_plan"] == ""].set_index(["scenario", "seed_index"])
    partners = base.loc[list(zip(exercised["scenario"], exercised["seed_index"], strict=True))]
    assert impact["accuracy_without"] == pytest.approx(partners["correct"].mean())
    assert impact["accuracy_with"] == pytest.approx(exercised["correct"].mean())


def test_progress_is_reported_after_every_cell(tmp_path: Path) -> None:
    from windtunnel.evals import Progress

    seen: list[Progress] = []
    summary = run_experiment(small(recheck=0.0), tmp_path, progress=seen.append)
    assert [p.done for p in seen] == list(range(1, 13))
    assert {p.total for p in seen} == {12}
    runs = read_runs(tmp_path)
    assert seen[-1].failed == int((~runs["correct"]).sum())
    assert seen[-1].cost == pytest.approx(runs["cost"].sum())
    assert seen[-1].harness_errors == summary.harness_errors == 0
    assert seen[-1].eta == 0.0
    assert seen[-1].rate > 0


def test_a_fault_on_a_tier_the_config_does_not_play_is_not_applicable_not_inconclusive(
    tmp_path: Path,
) -> None:
    exp = small(ids=["soc-backup-rate-limited"], configs=["small", "ladder:small@0.85,large"], recheck=0.0)
    run_experiment(exp, tmp_path)
    runs = read_runs(tmp_path).set_index("cell")
    alone = runs.loc["soc-backup-rate-limited/0/small"]
    assert alone["faults_not_applicable"] == "rate-limit-mid,rate-limit-large"
    assert alone["faults_declared"] == 1
    assert (alone["faults_fired"], alone["inconclusive"], alone["faults_not_fired"]) == (1, False, "")
    ladder = runs.loc["soc-backup-rate-limited/0/ladder:small@0.85,large"]
    assert ladder["faults_not_applicable"] == "rate-limit-mid"
    assert ladder["faults_declared"] == 2
