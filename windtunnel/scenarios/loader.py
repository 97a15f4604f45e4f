"""Loading scenario files and suites, strictly: every problem of a file at once, each
with its file, line and field path, never a traceback.

A scenario file is YAML (or JSON): one scenario, a list of scenarios, or several
YAML documents. A *suite* is a directory of scenario files (searched recursively),
or a suite file — ``suite: NAME``, ``include: [globs]`` relative to it, and
optionally ``tags: [...]`` — and scenarios are selected by tag and by id pattern.

Loading checks, beyond the schema: the domain exists; every ``${name}`` is a
declared ``vary``; the world and input validate against the domain's models; every
fault's target is a tool, human or run of the domain (write faults on write
tools); required and forbidden actions name write tools with valid arguments;
final states are the workflow's terminal states; key evidence names read tools;
the domain's own reference checks pass; ids are unique in a suite.
"""

from __future__ import annotations

import dataclasses
import difflib
import fnmatch
import io
import random
import weakref
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from windtunnel.orchestrator import InvalidArgument, WindtunnelError
from windtunnel.simulators import DEFAULT_TIERS, Fault, FaultPlan, Sim, derive_seed

from .domain import Case, Domain, load_domain, load_factory
from .problems import FileProblem, ScenarioError, format_path, line_of, problems_from
from .schema import Scenario, Truth
from .vary import Template, draw, placeholders, substitute

__all__ = [
    "LoadedScenario",
    "Suite",
    "load_file",
    "load_suite",
    "overlay",
    "resolve",
    "scenario_files",
    "validate",
]

_SUFFIXES = {".yaml", ".yml", ".json"}


@dataclass(frozen=True, slots=True, kw_only=True)
class LoadedScenario:
    """A scenario as loaded: its model, its domain, and where it came from."""

    scenario: Scenario
    domain: Domain
    file: str
    line: int | None

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled with its domain's name, not the domain (whose functions may be lambdas):
        # a pool worker gets the checked scenario without reading and checking files again.
        return (_reloaded, (self.scenario, self.file, self.line))


def _reloaded(scenario: Scenario, file: str, line: int | None) -> LoadedScenario:
    return LoadedScenario(scenario=scenario, domain=load_domain(scenario.domain), file=file, line=line)


@dataclass(frozen=True, slots=True, kw_only=True)
class Suite:
    """Scenarios selected from files and directories, in a stable order."""

    scenarios: tuple[LoadedScenario, ...]
    files: tuple[str, ...] = field(default=())
    """Every file read."""

    def __len__(self) -> int:
        return len(self.scenarios)

    def __iter__(self) -> Iterator[LoadedScenario]:
        return iter(self.scenarios)


def _yaml() -> YAML:
    yaml = YAML(typ="rt", pure=True)
    yaml.allow_duplicate_keys = False
    return yaml


def load_file(path: str | Path) -> list[LoadedScenario]:
    """Every scenario in one file, checked.

    Raises:
        ScenarioError: listing every problem of the file.
    """
    loaded, problems = _load(Path(path))
    if problems:
        raise ScenarioError(problems)
    return loaded


def validate(paths: Iterable[str | Path]) -> list[FileProblem]:
    """Every problem of the files and suites at ``paths`` (none: all valid)."""
    try:
        load_suite(paths)
    except ScenarioError as exc:
        return list(exc.problems)
    return []


def overlay(loaded: LoadedScenario, faults: Sequence[Fault], *, plan: str) -> LoadedScenario:
    """``loaded`` with the faults of an extra plan laid over its own, checked against
    its domain as a file's faults are. Each extra fault's id becomes ``plan/id``, so
    that it never collides with the scenario's own.

    Raises:
        ScenarioError: a fault names a target the scenario's domain does not have.
    """
    spec = loaded.scenario
    extra = [fault.model_copy(update={"id": f"{plan}/{fault.id}"}) for fault in faults]
    scenario = spec.model_copy(update={"faults": [*spec.faults, *extra]})
    problems: list[FileProblem] = []
    own = len(spec.faults)

    def problem(loc: tuple[str | int, ...], message: str) -> None:
        if loc[:1] == ("faults",) and isinstance(loc[1], int) and loc[1] >= own:
            rest = format_path(loc[2:])
            where = f"plan {plan!r} faults[{loc[1] - own}]" + (f".{rest}" if rest else "")
            problems.append(FileProblem(file=loaded.file, line=None, path=where, message=message))

    case = resolve(scenario, loaded.domain, seed=0)
    _check_references(scenario, loaded.domain, case, scenario.plan, problem)
    if problems:
        raise ScenarioError(
            [dataclasses.replace(p, message=f"over scenario {spec.id!r}: {p.message}") for p in problems]
        )
    return dataclasses.replace(loaded, scenario=scenario)


def scenario_files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileProblem]]:
    """The scenario files that ``paths`` (files, directories, suite files) stand for."""
    files, problems, _ = _files(paths)
    return files, problems


def _files(paths: Iterable[str | Path]) -> tuple[list[Path], list[FileProblem], dict[Path, list[str]]]:
    """The files, the problems, and the tags a suite file requires of each file it includes."""
    files: list[Path] = []
    problems: list[FileProblem] = []
    required: dict[Path, list[str]] = {}
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            listed = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES)
            files.extend(p for p in listed if not _is_suite(p))
            for suite in (p for p in listed if _is_suite(p)):  # checked, not expanded
                problems.extend(_suite_file(suite)[1])
        elif not path.exists():
            problems.append(
                FileProblem(file=str(path), line=None, path="", message="no such file or directory")
            )
        elif _is_suite(path):
            included, found, tags = _suite_file(path)
            files.extend(included)
            problems.extend(found)
            for file in included:
                required[file] = tags
        else:
            files.append(path)
    return list(dict.fromkeys(files)), problems, required


def load_suite(paths: Iterable[str | Path], *, tags: Sequence[str] = (), ids: Sequence[str] = ()) -> Suite:
    """The scenarios of ``paths``, those with every tag in ``tags`` and an id matching
    one of the ``ids`` patterns (``fnmatch``), when given.

    Raises:
        ScenarioError: listing every problem of every file.
    """
    files, problems, required = _files(paths)
    selected: list[LoadedScenario] = []
    seen: dict[str, LoadedScenario] = {}
    for path in files:
        loaded, found = _load(path)
        problems.extend(found)
        for item in loaded:
            first = seen.get(item.scenario.id)
            if first is not None:
                problems.append(
                    FileProblem(
                        file=item.file,
                        line=item.line,
                        path="id",
                        message=f"id {item.scenario.id!r} is already used at {first.file}:{first.line}",
                    )
                )
                continue
            seen[item.scenario.id] = item
            wanted = [*tags, *required.get(path, ())]
            if all(tag in item.scenario.tags for tag in wanted) and (
                not ids or any(fnmatch.fnmatchcase(item.scenario.id, pattern) for pattern in ids)
            ):
                selected.append(item)
    if problems:
        raise ScenarioError(problems)
    return Suite(scenarios=tuple(selected), files=tuple(str(path) for path in files))


def resolve(scenario: Scenario, domain: Domain, *, seed: int) -> Case:
    """The concrete case of ``scenario`` for ``seed``: variables drawn and written in,
    the world and input built with the domain's models, the domain's builder applied.

    Raises:
        pydantic.ValidationError: the world or input does not fit the domain's models
            (a file that loaded cleanly never does).
    """
    values = draw(scenario.vary, seed=seed, scenario=scenario.id)
    templates = _templates(scenario)
    world = domain.world.model_validate(templates.world.fill(values))
    given = domain.input.model_validate(templates.input.fill(values))
    truth = (
        scenario.truth  # frozen, and validated when the scenario was
        if templates.truth.constant
        else type(scenario.truth).model_validate(templates.truth.fill(values))
    )
    if isinstance(truth.difficulty, str):
        raise InvalidArgument(f"truth.difficulty={truth.difficulty!r} did not resolve to a number")
    case = Case(world=world, input=given, truth=truth)
    if domain.build is Domain.build:
        # The default builder (the class attribute is the field's default) draws nothing:
        # seeding its stream would cost more than the rest of building the case.
        return case
    return domain.build(case, random.Random(derive_seed(seed, f"build/{scenario.id}")))


@dataclass(frozen=True, slots=True)
class _Templates:
    """A scenario's world, input and truth, compiled to be filled in for each seed."""

    truth_of: weakref.ref[Truth]
    world_of: dict[str, Any]
    input_of: dict[str, Any]
    world: Template
    input: Template
    truth: Template


# A scenario runs with many seeds: its trees are compiled once, by the identity of its
# truth, world and input (a Scenario is not hashable), and forgotten with its truth. By
# those rather than the scenario's own: a copy with other faults (an extra plan, a fuzz
# trial) shares them, and its trees.
_TEMPLATES: dict[int, _Templates] = {}


def _templates(scenario: Scenario) -> _Templates:
    """The compiled trees of ``scenario``, compiled on first use."""
    truth = scenario.truth
    key = id(truth)
    found = _TEMPLATES.get(key)
    if (
        found is None
        or found.truth_of() is not truth
        or found.world_of is not scenario.world
        or found.input_of is not scenario.input
    ):
        found = _TEMPLATES[key] = _Templates(
            truth_of=weakref.ref(truth, lambda _: _TEMPLATES.pop(key, None)),
            world_of=scenario.world,
            input_of=scenario.input,
            world=Template(scenario.world),
            input=Template(scenario.input),
            truth=Template(truth.model_dump()),
        )
    return found


# -- one file ---------------------------------------------------------------------------


def _load(path: Path) -> tuple[list[LoadedScenario], list[FileProblem]]:
    file = str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [], [FileProblem(file=file, line=None, path="", message=f"cannot read it: {exc}")]
    try:
        documents = [doc for doc in _yaml().load_all(io.StringIO(text)) if doc is not None]
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = None if mark is None else mark.line + 1
        return [], [FileProblem(file=file, line=line, path="", message=f"not valid YAML: {exc.problem}")]
    except YAMLError as exc:  # e.g. a character YAML does not allow
        return [], [FileProblem(file=file, line=None, path="", message=f"not valid YAML: {exc}")]
    nodes: list[tuple[Any, int | None]] = []  # each scenario's node, and its line if a scalar
    for document in documents:
        if isinstance(document, list):
            nodes.extend((item, line_of(document, (i,))) for i, item in enumerate(document))
        else:
            nodes.append((document, 1))
    if not nodes:
        return [], [FileProblem(file=file, line=None, path="", message="holds no scenario")]
    loaded, problems = [], []
    for index, (node, line) in enumerate(nodes):
        item, found = _one(file, node, index if len(nodes) > 1 else None, line)
        problems.extend(found)
        if item is not None and not found:
            loaded.append(item)
    return loaded, problems


def _one(
    file: str, node: Any, index: int | None, at: int | None
) -> tuple[LoadedScenario | None, list[FileProblem]]:
    where: tuple[str | int, ...] = () if index is None else (index,)
    if not isinstance(node, dict):
        return None, [
            FileProblem(
                file=file,
                line=line_of(node, ()) or at,
                path=format_path(where),
                message="a scenario must be a mapping",
            )
        ]
    data = _plain(node)
    try:
        scenario = Scenario.model_validate(data)
    except ValidationError as exc:
        return None, problems_from(exc, file=file, node=node, data=data, model=Scenario)
    line = line_of(node, ())
    problems: list[FileProblem] = []

    def problem(loc: tuple[str | int, ...], message: str) -> None:
        problems.append(
            FileProblem(file=file, line=line_of(node, loc), path=format_path(loc), message=message)
        )

    try:
        domain = load_domain(scenario.domain)
    except WindtunnelError as exc:
        problem(("domain",), str(exc))
        return None, problems
    declared = set(scenario.vary)
    for section in ("world", "input", "truth"):
        for loc, name in placeholders(data.get(section), (section,)):
            if name not in declared:
                problem(
                    loc, f"${{{name}}} is not declared under vary; declared: {sorted(declared) or 'none'}"
                )
    if problems:
        return None, problems
    # What vary draws must fit wherever it goes, for any seed: a few seeds are tried.
    for seed in _SEEDS_CHECKED if scenario.vary else (0,):
        values = draw(scenario.vary, seed=seed, scenario=scenario.id)
        for section, model in (("world", domain.world), ("input", domain.input)):
            try:
                model.model_validate(substitute(getattr(scenario, section), values))
            except ValidationError as exc:
                given = getattr(scenario, section)
                found = problems_from(exc, file=file, node=node, data=given, model=model, prefix=(section,))
                problems.extend(_at_seed(found, seed, scenario))
        if problems:
            return None, problems
        try:
            case = resolve(scenario, domain, seed=seed)
        except (ValidationError, InvalidArgument) as exc:
            problem(("truth",), f"with seed {seed}, vary gives a truth that does not fit: {_first(exc)}")
            return None, problems
        except Exception as exc:  # the domain's builder is the user's code
            problem((), f"the domain's build() raised {type(exc).__name__}: {exc}")
            return None, problems
    if scenario.workflow is not None:
        try:
            load_factory(scenario.workflow)
        except InvalidArgument as exc:
            problem(("workflow",), str(exc))
    try:
        _check_references(scenario, domain, case, scenario.plan, problem)
        for loc, message in domain.check(case):
            problem(loc, message)
    except Exception as exc:  # the domain's tools() and check() are the user's code
        problem((), f"domain {domain.name!r} failed while checking the scenario: {type(exc).__name__}: {exc}")
    return (
        LoadedScenario(scenario=scenario, domain=domain, file=file, line=line) if not problems else None
    ), problems


_SEEDS_CHECKED = range(8)
"""Seeds whose draws a scenario with ``vary`` is checked with when loaded."""


def _at_seed(problems: list[FileProblem], seed: int, scenario: Scenario) -> list[FileProblem]:
    """``problems`` found with the values vary drew for ``seed`` (say so past seed 0)."""
    if seed == 0 or not scenario.vary:
        return problems
    return [dataclasses.replace(p, message=f"{p.message} (with seed {seed}'s vary draws)") for p in problems]


def _first(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{format_path(first['loc'])}: {first['msg']}"
    return str(exc)


def _check_references(scenario: Scenario, domain: Domain, case: Case, plan: FaultPlan, problem: Any) -> None:
    """Everything the scenario names exists in its domain."""
    registry = domain.tools(case.world, Sim(seed=0))
    writes = {tool.name: tool for tool in registry if tool.action is not None}
    reads = sorted(tool.name for tool in registry if tool.action is None)
    targets = sorted({*(f"tool:{name}" for name in registry.names), *domain.humans, "run"})
    for index, fault in enumerate(plan.faults):
        kind, target = fault.kind, fault.target
        if target.startswith("tier:"):
            # The built-in tiers; a fault on a tier of your own is written in code, not a file.
            if target.removeprefix("tier:") not in DEFAULT_TIERS:
                tiers = sorted(f"tier:{name}" for name in DEFAULT_TIERS)
                problem(("faults", index, "target"), f"unknown tier {target!r}{_closest(target, tiers)}")
            continue
        if target not in targets:
            problem(("faults", index, "target"), f"unknown target {target!r}{_closest(target, targets)}")
        elif (
            kind in ("stale_read", "silent_failure", "conflicting_actor")
            and target.removeprefix("tool:") not in writes
        ):
            problem(
                ("faults", index, "target"),
                f"kind {kind!r} needs a write tool; write tools: {sorted(writes)}",
            )
    truth = scenario.truth
    for section in ("required_actions", "forbidden_actions"):
        for index, action in enumerate(getattr(truth, section)):
            tool = writes.get(action.tool)
            loc = ("truth", section, index)
            if tool is None:
                hint = _closest(action.tool, sorted(writes))
                problem(
                    (*loc, "tool"), f"{action.tool!r} is not a write tool of domain {domain.name!r}{hint}"
                )
                continue
            args = substitute(action.args, draw(scenario.vary, seed=0, scenario=scenario.id))
            try:
                tool.input_model.model_validate(args)
            except ValidationError as exc:
                for item in exc.errors():
                    problem((*loc, "args", *item["loc"]), item["msg"])
    for index, state in enumerate(truth.final_states):
        if state not in domain.terminal_states:
            problem(
                ("truth", "final_states", index),
                f"{state!r} is not a terminal state{_closest(state, sorted(domain.terminal_states))}",
            )
    for index, tool_name in enumerate(truth.evidence):
        if tool_name not in reads:
            problem(
                ("truth", "evidence", index), f"{tool_name!r} is not a read tool{_closest(tool_name, reads)}"
            )


def _closest(value: str, choices: Sequence[str]) -> str:
    close = difflib.get_close_matches(value, choices, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (choose one of {', '.join(choices)})" if choices else hint


def _plain(node: Any) -> Any:
    """A ruamel node tree as plain dicts, lists and scalars."""
    if isinstance(node, dict):
        return {
            str(key) if not isinstance(key, int | float | bool) else key: _plain(value)
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


# -- suite files ------------------------------------------------------------------------


class _SuiteFile(BaseModel):
    model_config = {"extra": "forbid"}

    suite: str
    include: list[str]
    tags: list[str] = []
    """Only the scenarios of the included files that have every one of these tags."""
    description: str = ""


def _is_suite(path: Path) -> bool:
    if path.suffix not in {".yaml", ".yml"}:
        return False
    try:
        head = path.read_text(encoding="utf-8")[:2000]
    except (OSError, UnicodeDecodeError):
        return False
    return any(line.startswith("suite:") for line in head.splitlines())


def _suite_file(path: Path) -> tuple[list[Path], list[FileProblem], list[str]]:
    file = str(path)
    try:
        node = _yaml().load(path.read_text(encoding="utf-8"))
        suite = _SuiteFile.model_validate(_plain(node))
    except MarkedYAMLError as exc:
        line = None if exc.problem_mark is None else exc.problem_mark.line + 1
        return [], [FileProblem(file=file, line=line, path="", message=f"not valid YAML: {exc.problem}")], []
    except ValidationError as exc:
        return [], problems_from(exc, file=file, node=node, data=_plain(node), model=_SuiteFile), []
    files: list[Path] = []
    problems: list[FileProblem] = []
    for index, pattern in enumerate(suite.include):
        if Path(pattern).is_absolute() or ".." in Path(pattern).parts:
            problems.append(
                FileProblem(
                    file=file,
                    line=line_of(node, ("include", index)),
                    path=f"include[{index}]",
                    message=f"{pattern!r}: include patterns are relative to the suite file, in its folder",
                )
            )
            continue
        matched = sorted(p for p in path.parent.glob(pattern) if p.suffix in _SUFFIXES and not _is_suite(p))
        if not matched:
            problems.append(
                FileProblem(
                    file=file,
                    line=line_of(node, ("include", index)),
                    path=f"include[{index}]",
                    message=f"{pattern!r} matches no scenario file",
                )
            )
        files.extend(matched)
    return files, problems, suite.tags
