"""The pytest plugin: scenario files as test items, and fixtures for your own tests.

Registered through the ``pytest11`` entry point, so installing windtunnel enables it.
It collects nothing until ``windtunnel_paths`` names scenario files, folders or suite
files::

    [tool.pytest.ini_options]
    windtunnel_paths = ["scenarios"]
    windtunnel_configs = ["small", "ladder:small@0.85,large"]  # default: small
    windtunnel_seeds = 3                                         # the default

Each scenario x config is one test item, named ``SCENARIO_ID[CONFIG]`` (so ``-k``
selects them), run over seed indexes ``0..seeds-1`` with the seeds ``windtunnel run``
gives its cells. ``--wt-seeds N`` and ``--wt-config NAME`` (repeatable) override the
ini options. The paths are collected as ``testpaths`` are: when pytest is given no
path, as well as the ``testpaths``; when given paths, the scenario files under them.

Outcomes, as in windtunnel's own JUnit:

- an item *fails* when a seed's run is graded wrong: the report names the failing
  checks, the seed, the end of the trace and the command that replays the run;
- an item is an *error* when the harness could not run a seed (an exception out of
  ``run_scenario``): the seeds are run in the item's setup, the grading is its test;
- a scenario file with problems is a collection error listing them.

Fixtures: ``wt_sim``, a :class:`~windtunnel.simulators.Sim` seeded from the test's
node id, and ``wt_run_scenario``, which runs a scenario file (see
:class:`RunScenario`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import pytest

from windtunnel.orchestrator import InvalidArgument
from windtunnel.simulators import Sim, TierProfile, derive_seed

if TYPE_CHECKING:
    from _pytest._code.code import TerminalRepr, Traceback, TracebackStyle

    from windtunnel.scenarios import LoadedScenario, ScenarioRun

# The plugin loads in every pytest run of a project that installs windtunnel; the
# scenario machinery (and the reports' pandas) load only when scenarios are collected
# or a fixture is used.

__all__ = [
    "RunScenario",
    "ScenarioFailed",
    "ScenarioFile",
    "ScenarioItem",
    "pytest_addoption",
    "pytest_collect_file",
    "pytest_configure",
    "wt_run_scenario",
    "wt_sim",
]

_EXCERPT_LINES = 15
"""How many lines of a failing run's trace summary its report shows: the end of it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class _Settings:
    """What to collect and how to run it, from the ini options and the command line."""

    files: frozenset[Path]
    """Every file collected when pytest meets it: each named file, and the scenario
    files (not the suite files) under each named folder; resolved."""
    configs: tuple[str, ...]
    seeds: int


_SETTINGS = pytest.StashKey[_Settings]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the ``--wt-*`` options and the ``windtunnel_*`` ini options."""
    group = parser.getgroup("windtunnel", "windtunnel scenarios")
    group.addoption(
        "--wt-seeds",
        type=int,
        metavar="N",
        default=None,
        help="Seed indexes 0..N-1 per scenario and config (default: windtunnel_seeds).",
    )
    group.addoption(
        "--wt-config",
        action="append",
        metavar="NAME",
        default=None,
        help="A tier or a ladder to play the scenarios with, e.g. small or "
        "ladder:small@0.85,large (repeatable; default: windtunnel_configs).",
    )
    parser.addini(
        "windtunnel_paths",
        type="paths",
        default=[],
        help="Scenario files, folders and suite files to collect; nothing is collected without it.",
    )
    parser.addini(
        "windtunnel_configs",
        type="args",
        default=["small"],
        help="Tiers or ladders to play each scenario with, one test item each.",
    )
    parser.addini("windtunnel_seeds", type="int", default=3, help="Seed indexes per scenario and config.")


def pytest_configure(config: pytest.Config) -> None:
    """Check the options; when ``windtunnel_paths`` is set, add its paths to those
    pytest collects, as ``testpaths`` are, unless pytest was given paths."""
    paths: list[Path] = config.getini("windtunnel_paths")
    if not paths:
        return
    config.stash[_SETTINGS] = _settings(config, paths)
    if config.args_source is pytest.Config.ArgsSource.ARGS:
        return
    here = config.invocation_params.dir
    roots = [(here / arg).resolve() for arg in config.args]
    for path in (p.resolve() for p in paths):
        if not any(path.is_relative_to(root) for root in roots):
            config.args.append(str(path))
            roots.append(path)


def _settings(config: pytest.Config, paths: list[Path]) -> _Settings:
    """The settings, checked.

    Raises:
        pytest.UsageError: a path that does not exist, a bad config or seed count.
    """
    from windtunnel.scenarios import parse_play, scenario_files

    files: set[Path] = set()
    for path in paths:
        if not path.exists():
            raise pytest.UsageError(f"windtunnel_paths: {str(path)!r}: no such file or directory")
        if path.is_dir():
            # Suite files in a folder are left out, as `windtunnel run DIR` leaves them:
            # they select among the folder's own scenarios.
            files.update(file.resolve() for file in scenario_files([path])[0])
        else:
            files.add(path.resolve())
    configs: list[str] = config.getoption("wt_config") or config.getini("windtunnel_configs")
    for name in configs:
        try:
            parse_play(name)
        except InvalidArgument as exc:
            raise pytest.UsageError(f"--wt-config / windtunnel_configs: {exc}") from None
    twice = sorted({name for name in configs if configs.count(name) > 1})
    if twice:
        raise pytest.UsageError(f"--wt-config / windtunnel_configs: configs named twice: {twice}")
    seeds: int | None = config.getoption("wt_seeds")
    seeds = config.getini("windtunnel_seeds") if seeds is None else seeds
    if seeds < 1:
        raise pytest.UsageError(f"--wt-seeds / windtunnel_seeds: seeds={seeds!r} must be at least 1")
    return _Settings(files=frozenset(files), configs=tuple(configs), seeds=seeds)


def pytest_collect_file(file_path: Path, parent: pytest.Collector) -> ScenarioFile | None:
    """A scenario or suite file under ``windtunnel_paths`` as a :class:`ScenarioFile`."""
    settings = parent.config.stash.get(_SETTINGS, None)
    if settings is None or file_path.resolve() not in settings.files:
        return None
    file: ScenarioFile = ScenarioFile.from_parent(parent, path=file_path)
    return file


class ScenarioFile(pytest.File):
    """A scenario file (or a suite file) whose items are its scenarios x the configs."""

    def collect(self) -> Iterator[ScenarioItem]:
        """One :class:`ScenarioItem` per scenario and config.

        Raises:
            ScenarioError: the file's problems, reported as a collection error.
        """
        from windtunnel.scenarios import load_suite

        settings = self.config.stash[_SETTINGS]
        for loaded in load_suite([self.path]):
            for play in settings.configs:
                yield ScenarioItem.from_parent(
                    self, name=f"{loaded.scenario.id}[{play}]", loaded=loaded, play=play
                )

    def repr_failure(
        self,
        excinfo: pytest.ExceptionInfo[BaseException],
        style: TracebackStyle | None = None,  # Node's signature; a collector's report has one style
    ) -> str | TerminalRepr:
        """A file with problems: every problem, with its file, line and field path."""
        from windtunnel.scenarios import ScenarioError

        if isinstance(excinfo.value, ScenarioError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)


class ScenarioFailed(AssertionError):
    """A scenario's runs were graded wrong on some seeds; the message says how."""


class ScenarioItem(pytest.Item):
    """One scenario played by one config, over the configured seeds.

    The runs happen in setup, so that an exception out of the harness is an error of
    the item; the test grades them, so that a wrong run is its failure.
    """

    def __init__(self, *, loaded: LoadedScenario, play: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.loaded = loaded
        self.play = play
        self.runs: list[tuple[int, ScenarioRun]] = []
        """(seed index, run) of each seed run so far."""

    def setup(self) -> None:
        """Run the scenario once per seed index, with the seeds of ``windtunnel run``."""
        from windtunnel.evals import cell_seed
        from windtunnel.scenarios import run_scenario

        scenario_id, pinned = self.loaded.scenario.id, self.loaded.scenario.seed
        for index in range(1 if pinned is not None else self.config.stash[_SETTINGS].seeds):
            seed = cell_seed(0, scenario_id, index) if pinned is None else pinned
            try:
                run = run_scenario(self.loaded, seed=seed, play=self.play)
            except Exception as exc:
                exc.add_note(
                    f"windtunnel: the harness failed on seed index {index} (seed {seed}); "
                    f"replay: {self._replay(seed)}"
                )
                raise
            self.runs.append((index, run))

    def runtest(self) -> None:
        """Fail when any seed's run was graded wrong.

        Raises:
            ScenarioFailed: naming the failing checks, seeds, trace ends and replays.
        """
        wrong = [(index, run) for index, run in self.runs if not run.verdict.correct]
        if wrong:
            raise ScenarioFailed(self._describe(wrong))

    def teardown(self) -> None:
        """Let go of the runs: a session holds every item until it ends."""
        self.runs = []

    def repr_failure(
        self, excinfo: pytest.ExceptionInfo[BaseException], style: TracebackStyle | None = None
    ) -> str | TerminalRepr:
        """The report of a wrong run without the plugin's traceback; anything else as usual."""
        if isinstance(excinfo.value, ScenarioFailed):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def _traceback_filter(self, excinfo: pytest.ExceptionInfo[BaseException]) -> Traceback:
        # A harness error's traceback from `run_scenario` down: the frames of pytest and of
        # this plugin above it say nothing (pytest's own filter keeps pluggy's).
        traceback = excinfo.traceback
        ours = traceback.cut(path=Path(__file__))  # from this plugin's first frame; all if none
        harness = ours[1:] if ours != traceback else traceback
        return (harness or traceback).filter(excinfo)

    def reportinfo(self) -> tuple[Path, int | None, str]:
        """Where the scenario is: its file and line."""
        line = None if self.loaded.line is None else self.loaded.line - 1
        return Path(self.loaded.file), line, f"scenario {self.loaded.scenario.id} [{self.play}]"

    def _describe(self, wrong: list[tuple[int, ScenarioRun]]) -> str:
        from windtunnel.reports import summarize_trace

        checks = sorted({check.name for _, run in wrong for check in run.verdict.failed})
        indexes = ", ".join(str(index) for index, _ in wrong)
        lines = [
            f"{self.name} failed on {len(wrong)} of {len(self.runs)} seeds (seed index {indexes}): "
            + (", ".join(checks) or "the domain's grader")
        ]
        for index, run in wrong:
            under = run.verdict.decided_by
            decided = f" (graded under faults {', '.join(under)})" if under else ""
            lines += ["", f"seed index {index} (seed {run.seed}): WRONG{decided}"]
            lines.extend(f"  FAIL {check.name}: {check.reason}" for check in run.verdict.failed)
            summary = summarize_trace(run.trace.events).splitlines()
            shown = summary[-_EXCERPT_LINES:]
            of = f"last {len(shown)} of {len(summary)} lines" if len(shown) < len(summary) else "whole"
            lines.append(f"  trace ({of}):")
            lines.extend(f"    {line}" for line in shown)
            lines.append(f"  replay: {self._replay(run.seed)}")
        return "\n".join(lines)

    def _replay(self, seed: int) -> str:
        from windtunnel.evals import Config
        from windtunnel.reports import replay_command

        file = Path(self.loaded.file)
        here = self.config.invocation_params.dir
        shown = file.relative_to(here) if file.is_relative_to(here) else file
        run = {"scenario": self.loaded.scenario.id, "seed": seed}
        return replay_command(run, file=str(shown), config=Config(name=self.play, play=self.play))


class RunScenario(Protocol):
    """What ``wt_run_scenario`` is: runs a scenario once and returns the graded run.

    Example::

        def test_blocks_the_beacon(wt_run_scenario: RunScenario) -> None:
            run = wt_run_scenario("scenarios/c2-beacon.yaml", seed=3, play="large")
            assert run.verdict.correct, run.verdict
    """

    def __call__(
        self,
        scenario: str | Path | LoadedScenario,
        *,
        seed: int = 0,
        play: str | TierProfile = "small",
        scenario_id: str | None = None,
    ) -> ScenarioRun:
        """Run ``scenario`` (a file: its first scenario, or the one with ``scenario_id``;
        or a scenario as loaded) with ``seed``, its decision states played as ``play``."""
        ...


@pytest.fixture
def wt_sim(request: pytest.FixtureRequest) -> Sim:
    """A simulation seeded from the test's node id: the same for the same test, every run."""
    return Sim(seed=derive_seed(0, request.node.nodeid))


@pytest.fixture
def wt_run_scenario() -> RunScenario:
    """Run a scenario file in simulation, as ``windtunnel scenario run`` does (see :class:`RunScenario`)."""
    from windtunnel.scenarios import LoadedScenario, load_file, run_scenario

    def run(
        scenario: str | Path | LoadedScenario,
        *,
        seed: int = 0,
        play: str | TierProfile = "small",
        scenario_id: str | None = None,
    ) -> ScenarioRun:
        if isinstance(scenario, LoadedScenario):
            return run_scenario(scenario, seed=seed, play=play)
        loaded = load_file(scenario)
        chosen = [s for s in loaded if scenario_id is None or s.scenario.id == scenario_id]
        if not chosen:
            ids = ", ".join(s.scenario.id for s in loaded)
            raise InvalidArgument(f"scenario_id={scenario_id!r} is not in {str(scenario)!r}; it holds: {ids}")
        return run_scenario(chosen[0], seed=seed, play=play)

    return run
