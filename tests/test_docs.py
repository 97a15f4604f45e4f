"""Every code block of the user guide (``docs/``) runs, so its examples cannot rot.

A page is one session, as a reader would type it: its blocks run in order, in a
scratch folder of its own where ``windtunnel/`` links to the package (so paths read
as in a clone of the repository: ``windtunnel/scenarios/oncall/scenarios/...``),
and with that folder on ``sys.path``. By the fence's language:

- ``python``: run; a page's blocks share one namespace. ``print(...)  # shown: why``
  promises that "shown" is printed, as in the README.
- ``sh``: every command is ``windtunnel ...`` (a line, or lines joined by a trailing
  backslash) ending in ``# exit N``; each runs through the CLI app
  (``typer.testing.CliRunner``) and must exit with N. A block that shows other
  tools (``make``, ``pip``, ``gh``) starts with ``# not run: REASON`` and is not run.
- ``toml``: parsed; a block with a ``[tool.windtunnel]`` table is loaded with
  `load_project` from a ``pyproject.toml`` of its own, so its configs and gates are
  checked; a ``[tool.pytest.ini_options]`` block's keys must be the plugin's.
- ``yaml``: parsed; a scenario or suite file is validated
  (`windtunnel.scenarios.validate`); a GitHub Actions workflow must have triggers
  and jobs of steps.
- ``text``: output as shown; not run.

Any block whose first line is ``# file: PATH`` is also written to PATH in the
page's folder, before it is checked (a ``python`` one is then not run: it is a
module of the page, imported by its other blocks). Any other language, or a fence
without one, fails: nothing in the guide goes unchecked by accident.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.reports import load_project
from windtunnel.scenarios import validate

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))
LANGUAGES = ("python", "sh", "toml", "yaml", "text")
_FENCE = re.compile(r"^```(?P<lang>[^\n`]*)\n(?P<code>.*?)^```$", re.MULTILINE | re.DOTALL)
_FILE = re.compile(r"^#\s*file:\s*(?P<path>\S+)\s*$")
_EXIT = re.compile(r"#\s*exit\s+(?P<code>\d+)\s*$")


@dataclass(frozen=True, slots=True)
class Block:
    lang: str
    code: str
    line: int
    """The line of the block's first line of code, in its page."""

    @property
    def file(self) -> str | None:
        first = self.code.split("\n", 1)[0]
        found = _FILE.match(first)
        return found.group("path") if found else None


def blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    return [
        Block(lang=m.group("lang").strip(), code=m.group("code"), line=text.count("\n", 0, m.start()) + 2)
        for m in _FENCE.finditer(text)
    ]


def _name(page: Path) -> str:
    return str(page.relative_to(DOCS))


def test_the_guide_has_its_pages() -> None:
    names = {_name(page) for page in PAGES}
    assert {
        "index.md",
        "domain.md",
        "reference/scenario-file.md",
        "metrics.md",
        "recipes/ci.md",
        "recipes/faults.md",
        "recipes/tiers.md",
        "exit-codes.md",
    } <= names


def test_every_page_is_in_the_nav() -> None:
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert [name for name in map(_name, PAGES) if f": {name}" not in nav] == []


def test_the_scenario_file_reference_is_generated() -> None:
    sys.path.insert(0, str(DOCS))
    try:
        import gen_reference
    finally:
        sys.path.remove(str(DOCS))
    page = DOCS / "reference" / "scenario-file.md"
    assert page.read_text(encoding="utf-8") == gen_reference.render(), (
        "docs/reference/scenario-file.md is stale: run python docs/gen_reference.py"
    )


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_every_block_is_checked(page: Path) -> None:
    for block in blocks(page):
        assert block.lang in LANGUAGES, f"{_name(page)}:{block.line}: a ```{block.lang} block is not checked"


@contextlib.contextmanager
def _session(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    (folder / "windtunnel").symlink_to(ROOT / "windtunnel", target_is_directory=True)
    monkeypatch.chdir(folder)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    before = set(sys.modules)
    try:
        yield
    finally:
        # The page's own modules go with its folder.
        for name in set(sys.modules) - before:
            module = sys.modules[name]
            if str(getattr(module, "__file__", "") or "").startswith(str(folder)):
                del sys.modules[name]


@pytest.mark.parametrize("page", PAGES, ids=_name)
def test_page_runs(
    page: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    namespace: dict[str, object] = {"__name__": "docs"}
    with _session(tmp_path, monkeypatch):
        for block in blocks(page):
            where = f"{_name(page)}:{block.line}"
            if block.file is not None:
                target = tmp_path / block.file
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(block.code, encoding="utf-8")
            if block.lang == "python" and block.file is None:
                _run_python(block, page, namespace, capsys, where)
            elif block.lang == "sh":
                _run_sh(block, where)
            elif block.lang == "toml":
                _check_toml(block, tmp_path / "toml", where)
            elif block.lang == "yaml":
                _check_yaml(block, tmp_path, where)


def _run_python(
    block: Block, page: Path, namespace: dict[str, object], capsys: pytest.CaptureFixture[str], where: str
) -> None:
    # Padded so that a traceback names the page's own line; dont_inherit: as a user runs it.
    code = compile("\n" * (block.line - 1) + block.code, str(page), "exec", dont_inherit=True)
    exec(code, namespace)
    out = capsys.readouterr().out
    promised = [c.split(":")[0].strip() for c in re.findall(r"^print\(.*\)\s+#\s*(.+)$", block.code, re.M)]
    for text in promised:
        assert text in out, f"{where}: promised {text!r}, printed:\n{out}"


def _commands(block: Block, where: str) -> list[tuple[list[str], int]]:
    joined = block.code.replace("\\\n", " ")
    commands = []
    for line in joined.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        found = _EXIT.search(line)
        assert found, f"{where}: {line.strip()!r} states no '# exit N'"
        words = shlex.split(line[: found.start()])
        assert words[0] == "windtunnel", f"{where}: {line.strip()!r} is not a windtunnel command"
        commands.append((words[1:], int(found.group("code"))))
    return commands


def _run_sh(block: Block, where: str) -> None:
    first = block.code.split("\n", 1)[0]
    if first.startswith("# not run:"):
        assert first.removeprefix("# not run:").strip(), f"{where}: say why the block is not run"
        return
    commands = _commands(block, where)
    assert commands, f"{where}: a sh block runs windtunnel commands, or starts with '# not run: REASON'"
    for args, code in commands:
        result = CliRunner().invoke(app, args, env={"COLUMNS": "200"})
        if result.exception is not None and not isinstance(result.exception, SystemExit):
            raise result.exception
        assert result.exit_code == code, (
            f"{where}: windtunnel {shlex.join(args)} exited {result.exit_code}, not {code}:\n{result.output}"
        )


def _check_toml(block: Block, folder: Path, where: str) -> None:
    data = tomllib.loads(block.code)
    tool = data.get("tool", {})
    if "windtunnel" in tool:
        folder.mkdir(exist_ok=True)
        (folder / "pyproject.toml").write_text(block.code, encoding="utf-8")
        load_project(folder)  # raises on a bad config or gate, naming the key
    if "pytest" in tool:
        keys = set(tool["pytest"]["ini_options"])
        assert keys <= {"windtunnel_paths", "windtunnel_configs", "windtunnel_seeds"}, where
    assert tool.keys() & {"windtunnel", "pytest"} or "project" in data, f"{where}: what is this TOML for?"


def _check_yaml(block: Block, folder: Path, where: str) -> None:
    data = YAML(typ="safe").load(block.code)
    assert isinstance(data, dict), f"{where}: expected a mapping"
    if "jobs" in data:
        assert data.get("on"), f"{where}: a workflow needs triggers"
        assert all(job.get("steps") for job in data["jobs"].values()), f"{where}: jobs need steps"
        return
    assert "suite" in data or {"id", "domain"} <= data.keys(), f"{where}: neither a scenario nor a suite"
    path = folder / block.file if block.file else folder / f"block-{block.line}.yaml"
    if not block.file:
        path.write_text(block.code, encoding="utf-8")
    problems = validate([path])
    assert not problems, f"{where}:\n" + "\n".join(map(str, problems))
    if not block.file:
        os.remove(path)
