"""The pytest plugin, run by pytest itself through ``pytester``: collection, outcomes,
reports, options, fixtures, xdist and JUnit."""

from __future__ import annotations

import shutil
import tomllib
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from typer.testing import CliRunner

import windtunnel
import windtunnel.reports  # loaded once here: inline runs drop the modules they import
from windtunnel.cli import app
from windtunnel.evals import cell_seed
from windtunnel.scenarios import validate
from windtunnel.simulators import derive_seed

pytest_plugins = ["pytester"]

PACKAGE = Path(windtunnel.__file__).parent
SOC = PACKAGE / "scenarios" / "soc" / "scenarios"
BEACON = "soc-c2-beacon"
"""Graded wrong on seed indexes 1 and 2 played small, on 0 and 1 played large."""
SCANNER = "soc-benign-scanner"
"""Graded right on seed indexes 0..2, played small or large."""

PLUGIN = ("-p", "windtunnel.pytest_plugin", "-p", "no:cacheprovider")


@pytest.fixture(autouse=True)
def _no_autoload(monkeypatch: pytest.MonkeyPatch) -> None:
    # Every installed plugin (hypothesis, langsmith, ...) would load into every inner
    # run again, ten times the cost of the run; the plugins a test needs are named.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A project with two scenario files in ``scenarios/``, collected, played small and large."""
    (pytester.path / "scenarios").mkdir()
    for name in ("c2-beacon.yaml", "benign-scanner.yaml"):
        shutil.copy(SOC / name, pytester.path / "scenarios" / name)
    pytester.makeini("[pytest]\nwindtunnel_paths = scenarios\nwindtunnel_configs = small large\n")
    return pytester


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    return pytester.runpytest(*PLUGIN, *args)


def collected(result: pytest.RunResult) -> list[str]:
    return [line for line in result.outlines if "::" in line]


def test_the_entry_point_is_declared() -> None:
    pyproject = tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())
    assert pyproject["project"]["entry-points"]["pytest11"] == {"windtunnel": "windtunnel.pytest_plugin"}


def test_the_entry_point_loads_the_plugin(pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    # The entry point as an installed distribution declares it, without installing one.
    declared = pytester.path / "site" / "windtunnel_entry_point-0.dist-info"
    declared.mkdir(parents=True)
    (declared / "METADATA").write_text("Metadata-Version: 2.1\nName: windtunnel-entry-point\nVersion: 0\n")
    (declared / "entry_points.txt").write_text("[pytest11]\nwindtunnel = windtunnel.pytest_plugin\n")
    pytester.syspathinsert(declared.parent)
    monkeypatch.delenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD")
    result = pytester.runpytest("-p", "no:cacheprovider", "--help")
    result.stdout.fnmatch_lines(["windtunnel scenarios:", "*--wt-seeds=N*", "*windtunnel_paths*"])


def test_scenarios_x_configs_are_items(project: pytest.Pytester) -> None:
    result = run(project, "--collect-only", "-q")
    assert collected(result) == [
        f"scenarios/benign-scanner.yaml::{SCANNER}[small]",
        f"scenarios/benign-scanner.yaml::{SCANNER}[large]",
        f"scenarios/c2-beacon.yaml::{BEACON}[small]",
        f"scenarios/c2-beacon.yaml::{BEACON}[large]",
    ]


def test_nothing_is_collected_without_windtunnel_paths(pytester: pytest.Pytester) -> None:
    shutil.copy(SOC / "c2-beacon.yaml", pytester.path / "c2-beacon.yaml")
    result = run(pytester, "--collect-only", "-q")
    assert collected(result) == []
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_only_yaml_under_windtunnel_paths_is_collected(project: pytest.Pytester) -> None:
    (project.path / "elsewhere").mkdir()
    shutil.copy(SOC / "c2-beacon.yaml", project.path / "elsewhere" / "c2-beacon.yaml")
    (project.path / "config.yaml").write_text("key: value\n")
    result = run(project, "--collect-only", "-q", "-k", "small")
    assert collected(result) == [
        f"scenarios/benign-scanner.yaml::{SCANNER}[small]",
        f"scenarios/c2-beacon.yaml::{BEACON}[small]",
    ]


def test_paths_outside_the_project_are_collected_when_no_path_is_given(pytester: pytest.Pytester) -> None:
    pytester.makeini(f"[pytest]\nwindtunnel_paths = {SOC / 'c2-beacon.yaml'}\n")
    (pytester.path / "tests").mkdir()
    assert collected(run(pytester, "--collect-only", "-q")) == [f"::{BEACON}[small]"]
    # Given paths, pytest collects what is under them, as it does with testpaths.
    assert collected(run(pytester, "--collect-only", "-q", "tests")) == []


def test_a_wrong_seed_fails_the_item_with_checks_trace_and_replay(project: pytest.Pytester) -> None:
    result = run(project, "-k", "small")
    result.assert_outcomes(passed=1, failed=1)
    seeds = [cell_seed(0, BEACON, index) for index in range(3)]
    result.stdout.fnmatch_lines(
        [
            f"*_ scenario {BEACON} [[]small[]] _*",
            f"{BEACON}[[]small[]] failed on 2 of 3 seeds (seed index 1, 2): required_actions",
            f"seed index 1 (seed {seeds[1]}): WRONG",
            "  FAIL required_actions: not applied and verified, or not in effect: block_ip(ip=*)",
            "  trace (*):",
            "    run run-*  workflow soc-investigation",
            "      => completed in 'close' after * steps*",
            f"  replay: windtunnel scenario run scenarios/c2-beacon.yaml --id {BEACON} --seed {seeds[1]} "
            "--tier small",
            f"seed index 2 (seed {seeds[2]}): WRONG",
            f"  replay: windtunnel scenario run scenarios/c2-beacon.yaml --id {BEACON} --seed {seeds[2]} "
            "--tier small",
            "*short test summary info*",
            f"FAILED scenarios/c2-beacon.yaml::{BEACON}[[]small[]] - *",
        ]
    )
    assert str(seeds[0]) not in result.stdout.str()


def test_the_replay_command_replays_the_failing_run(project: pytest.Pytester) -> None:
    seed = cell_seed(0, BEACON, 1)
    replayed = CliRunner().invoke(
        app,
        [
            "scenario",
            "run",
            "scenarios/c2-beacon.yaml",
            "--id",
            BEACON,
            "--seed",
            str(seed),
            "--tier",
            "small",
        ],
    )
    assert replayed.exit_code == 1
    assert "FAIL required_actions" in replayed.output


def test_options_override_the_ini(project: pytest.Pytester) -> None:
    result = run(project, "-v", "--wt-seeds", "1", "--wt-config", "large", "--wt-config", "mid")
    result.stdout.fnmatch_lines_random(
        [
            f"*::{SCANNER}[[]large[]] PASSED*",
            f"*::{SCANNER}[[]mid[]] PASSED*",
            f"*::{BEACON}[[]large[]] FAILED*",  # large is wrong on seed index 0, mid right
            f"*::{BEACON}[[]mid[]] PASSED*",
            f"{BEACON}[[]large[]] failed on 1 of 1 seeds (seed index 0): *",
        ]
    )
    result.assert_outcomes(passed=3, failed=1)


def test_a_bad_config_is_a_usage_error(project: pytest.Pytester) -> None:
    result = run(project, "--wt-config", "tiny")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --wt-config / windtunnel_configs: *'tiny'*"])


def test_x_stops_at_the_first_failure(project: pytest.Pytester) -> None:
    result = run(project, "-x", "-k", BEACON)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*stopping after 1 failures*"])


def test_junit_carries_the_failure_message(project: pytest.Pytester) -> None:
    run(project, "-k", "small", "--junitxml=junit.xml").assert_outcomes(passed=1, failed=1)
    cases = {case.get("name"): case for case in ET.parse(project.path / "junit.xml").iter("testcase")}
    assert sorted(cases) == [f"{SCANNER}[small]", f"{BEACON}[small]"]
    assert list(cases[f"{SCANNER}[small]"]) == []
    (failure,) = cases[f"{BEACON}[small]"]
    assert failure.tag == "failure"
    assert failure.get("message", "").startswith(
        f"{BEACON}[small] failed on 2 of 3 seeds (seed index 1, 2): required_actions\n"
    )
    assert f"--seed {cell_seed(0, BEACON, 2)} --tier small" in (failure.text or "")


def test_xdist_runs_items_in_workers(project: pytest.Pytester) -> None:
    result = project.runpytest_subprocess(*PLUGIN, "-p", "xdist.plugin", "-n", "2", "-k", "small")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([f"{BEACON}[[]small[]] failed on 2 of 3 seeds (seed index 1, 2): *"])


def test_a_file_with_problems_is_a_collection_error(project: pytest.Pytester) -> None:
    broken = project.path / "scenarios" / "broken.yaml"
    text = (SOC / "c2-beacon.yaml").read_text()
    broken.write_text(text.replace("id: soc-c2-beacon", "id: broken").replace("domain: soc", "domian: soc"))
    problems = validate([broken])
    assert problems
    result = run(project)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*ERROR collecting scenarios/broken.yaml*"])
    for problem in problems:
        assert f"  {problem}" in result.stdout.lines
    assert "Traceback" not in result.stdout.str()


def test_a_harness_failure_is_an_error_not_a_failure(project: pytest.Pytester) -> None:
    project.makepyfile(boom="def workflow(kit):\n    raise RuntimeError('no workflow today')\n")
    project.syspathinsert()
    text = (SOC / "c2-beacon.yaml").read_text()
    (project.path / "scenarios" / "c2-beacon.yaml").write_text(text + "workflow: boom:workflow\n")
    result = run(project, "-k", "small", "--junitxml=junit.xml")
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        [
            f"*_ ERROR at setup of scenario {BEACON} [[]small[]] _*",
            "    def run_scenario(",  # the traceback starts in the harness
            "E   *InvalidArgument: the workflow factory workflow raised RuntimeError: no workflow today",
            f"*windtunnel: the harness failed on seed index 0 (seed {cell_seed(0, BEACON, 0)}); replay: *",
        ]
    )
    (error,) = (case for case in ET.parse(project.path / "junit.xml").iter("error"))
    assert "no workflow today" in error.get("message", "")


def test_the_fixtures(pytester: pytest.Pytester) -> None:
    seed = cell_seed(0, BEACON, 1)
    pytester.makepyfile(
        test_mine=f"""
        from windtunnel.scenarios import load_file

        def test_sim(wt_sim):
            expected = type(wt_sim)(seed={derive_seed(0, "test_mine.py::test_sim")})
            assert wt_sim.rng("x").random() == expected.rng("x").random()

        def test_by_path(wt_run_scenario):
            run = wt_run_scenario({str(SOC / "c2-beacon.yaml")!r}, seed={seed}, play="small")
            assert (run.seed, run.play, run.verdict.correct) == ({seed}, "small", False)

        def test_loaded(wt_run_scenario):
            (loaded,) = load_file({str(SOC / "benign-scanner.yaml")!r})
            assert wt_run_scenario(loaded, play="large").verdict.correct
        """
    )
    run(pytester).assert_outcomes(passed=3)
