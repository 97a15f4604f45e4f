"""``[tool.windtunnel]`` in pyproject.toml: found upward, defaults, values, and errors naming key and file."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from windtunnel.evals import Config, ErrorPrices
from windtunnel.orchestrator import InvalidArgument
from windtunnel.reports import ProjectConfig, load_project, parse_gate

FULL = """
[project]
name = "mine"

[tool.windtunnel]
suites = ["scenarios", "/abs/more"]
configs = ["small", {name = "cheap", play = "ladder:small@0.85,large", workflow = "mine.flows:build"}]
seeds = 5
workers = 2
executor = "process"
out = "results/now"
seed = 7
recheck = 0.1
baseline = "results/main"
gates = [
    "escalation_recall.lower >= 0.95",
    {gate = "cost_per_correct <= 0.08", config = "small"},
    "no_significant_regression",
]

[tool.windtunnel.error_prices]
missed_escalation = 2000.0
"""


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pyproject.toml"
    path.write_text(text)
    return path


def test_every_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path, FULL)
    monkeypatch.chdir(tmp_path)
    project = load_project()
    assert project.model_dump(exclude={"gates"}) == {
        "suites": [Path("scenarios"), Path("/abs/more")],
        "configs": [
            Config(name="small", play="small").model_dump(),
            Config(name="cheap", play="ladder:small@0.85,large", workflow="mine.flows:build").model_dump(),
        ],
        "seeds": 5,
        "workers": 2,
        "executor": "process",
        "out": Path("results/now"),
        "seed": 7,
        "recheck": 0.1,
        "error_prices": {"missed_escalation": 2000.0, "wrong_action": 200.0},
        "baseline": Path("results/main"),
    }
    assert project.gates == [
        parse_gate("escalation_recall.lower >= 0.95"),
        parse_gate("cost_per_correct <= 0.08", config="small"),
        parse_gate("no_significant_regression"),
    ]
    assert project.error_prices.prices() == ErrorPrices(missed_escalation=2000.0)
    assert project.source == tmp_path / "pyproject.toml"


def test_found_upward_with_paths_from_its_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write(tmp_path / "repo", FULL)
    (tmp_path / "repo" / "deep" / "er").mkdir(parents=True)
    monkeypatch.chdir(tmp_path)
    project = load_project(tmp_path / "repo" / "deep" / "er")
    assert project.source == tmp_path / "repo" / "pyproject.toml"
    assert project.suites == [Path("repo/scenarios"), Path("/abs/more")]
    assert (project.out, project.baseline) == (Path("repo/results/now"), Path("repo/results/main"))


def test_defaults_without_the_table_or_the_file(tmp_path: Path) -> None:
    write(tmp_path / "plain", '[project]\nname = "x"\n')
    project = load_project(tmp_path / "plain")
    assert project.model_dump() == ProjectConfig(out=tmp_path / "plain" / "windtunnel-results").model_dump()
    assert project.source == tmp_path / "plain" / "pyproject.toml"
    defaults = ProjectConfig()
    assert [c.name for c in defaults.configs] == ["small", "mid", "large"]
    assert (defaults.seeds, defaults.executor, defaults.gates, defaults.baseline) == (3, "local", [], None)


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("seeds = 0", "tool.windtunnel.seeds: Input should be greater than or equal to 1"),
        ("sedes = 3", "tool.windtunnel.sedes: Extra inputs are not permitted"),
        ('executor = "dask"', "tool.windtunnel.executor: Input should be 'local', 'process' or 'ray'"),
        (
            'configs = ["small", {name = "x"}]',
            "tool.windtunnel.configs[1]: config 'x' needs exactly one of play, profile or models; "
            "given: none",
        ),
        (
            'configs = ["small", "small"]',
            "tool.windtunnel.configs: config names must be unique; repeated: ['small']",
        ),
        ('configs = ["tiny"]', "tool.windtunnel.configs[0].play: unknown tier='tiny'; choose one of"),
        (
            'gates = ["accuracy >= 0.9", "accuracy >= 0.9", "escalation_recal >= 0.9"]',
            "tool.windtunnel.gates[2]: unknown metric 'escalation_recal' "
            "in the gate 'escalation_recal >= 0.9'; the closest: 'escalation_recall'",
        ),
        (
            'gates = [{gate = "accuracy >= 1", cofig = "x"}]',
            'tool.windtunnel.gates[0]: a gate table reads {gate = "METRIC OP NUMBER", config = "NAME"}',
        ),
        ("gates = [3]", "tool.windtunnel.gates[0]: a gate is a string or a table {gate, config}; got 3"),
        ("[tool.windtunnel.error_prices]\nwrong_action = -1", "tool.windtunnel.error_prices.wrong_action: "),
        ("[tool.windtunnel.error_prices]\nwrong_action = nan", "tool.windtunnel.error_prices.wrong_action: "),
    ],
)
def test_bad_values_name_the_file_and_the_key(tmp_path: Path, table: str, message: str) -> None:
    section = table if table.startswith("[") else f"[tool.windtunnel]\n{table}"
    path = write(tmp_path, section + "\n")
    with pytest.raises(InvalidArgument) as caught:
        load_project(tmp_path)
    assert str(caught.value).startswith(f"{path}: {message}")


def test_every_problem_at_once(tmp_path: Path) -> None:
    path = write(tmp_path, '[tool.windtunnel]\nseeds = 0\ngates = ["nope > 1"]\n')
    with pytest.raises(InvalidArgument) as caught:
        load_project(tmp_path)
    assert [line.split(": ")[1] for line in str(caught.value).splitlines()] == [
        "tool.windtunnel.seeds",
        "tool.windtunnel.gates[0]",
    ]
    assert str(caught.value).startswith(str(path))


def test_not_toml(tmp_path: Path) -> None:
    path = write(tmp_path, "[tool.windtunnel\n")
    with pytest.raises(InvalidArgument, match=f"^{re.escape(str(path))}: cannot read it: "):
        load_project(tmp_path)
    write(tmp_path, "[tool]\nwindtunnel = 3\n")
    with pytest.raises(InvalidArgument, match=r"tool\.windtunnel must be a table, not int"):
        load_project(tmp_path)
