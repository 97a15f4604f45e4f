"""What a hostile review of scenario files found: each is a file problem with its
line and path, never a traceback, and a valid file is valid for every seed."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.scenarios import validate

from .test_loader import VALID

runner = CliRunner()

BROKEN_DOMAIN = "tests.scenarios.fixtures.raising_domain:DOMAIN"
RAISES = f"cannot import {BROKEN_DOMAIN!r}: RuntimeError: the domain's module is broken"
SECONDS = "unknown key; did you mean 'seconds'? (valid keys: id, kind, seconds, target, trigger)"
NOT_FIT = VALID.replace("amount: {number: [5, 50]}", "amount: {choice: [0.4, lots]}")

CASES = [
    ("domain raises", VALID.replace("tests.scenarios.shop:DOMAIN", BROKEN_DOMAIN), "domain", RAISES),
    ("vary ip not a network", VALID.replace("order: {choice: [o-1, o-2]}", "order: {ip: not-a-net}"),
     "vary.order", "ip='not-a-net' is not an IPv4 network"),
    ("a draw that does not fit on another seed",
     NOT_FIT.replace("final_states: [done]", "final_states: [done]\n  difficulty: ${amount}"),
     "truth", "vary gives a truth that does not fit"),
    ("kind-specific key", VALID.replace("seconds: 30", "second: 30"), "faults[0].second", SECONDS),
    ("unknown tier", VALID.replace('target: "tool:order_lookup"\n    seconds: 30', 'target: "tier:hugee"')
     .replace("kind: latency_spike", "kind: hallucinated_tool_call"),
     "faults[0].target", "unknown tier 'tier:hugee'"),
    ("workflow that does not import", VALID.replace("tags:", "workflow: nosuch.module:factory\ntags:"),
     "workflow", "workflow='nosuch.module:factory': cannot import it: ModuleNotFoundError"),
    ("a NUL byte", VALID.replace("description: ", "description: \x00"), "", "not valid YAML"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "path", "message"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_a_problem_not_a_traceback(tmp_path: Path, text: str, path: str, message: str) -> None:
    file = tmp_path / "s.yaml"
    file.write_text(text)
    problems = [p for p in validate([file]) if p.path == path]
    assert problems, validate([file])
    assert message in problems[0].message, problems[0]
    result = runner.invoke(app, ["validate", str(file)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output


def test_a_directory_checks_its_suite_files_and_includes_stay_inside(tmp_path: Path) -> None:
    (tmp_path / "ok.yaml").write_text(VALID)
    (tmp_path / "typo.yaml").write_text("suite: s\nincludes: [ok.yaml]\n")
    (tmp_path / "abs.yaml").write_text(f"suite: t\ninclude: [{tmp_path / 'ok.yaml'}]\n")
    messages = [p.message for p in validate([tmp_path])]
    assert any("include patterns are relative to the suite file" in m for m in messages)
    assert any(m.startswith("unknown key; did you mean 'include'?") for m in messages)


def test_validate_and_scenario_run_usage_errors(tmp_path: Path) -> None:
    assert runner.invoke(app, ["validate", str(tmp_path / "nope.yaml")]).exit_code == 2
    file = tmp_path / "s.yaml"
    file.write_text(VALID)
    for factory in ("nosuch:factory", "tests.scenarios.shop:Strict", "json:loads"):
        result = runner.invoke(app, ["scenario", "run", str(file), "--workflow", factory])
        assert result.exit_code == 2, (factory, result.output)
        assert "Traceback" not in result.output
        assert result.output.startswith("windtunnel: ")


def test_duplicate_fault_ids_are_reported_at_the_faults(tmp_path: Path) -> None:
    twice = VALID + "  - {id: slow-lookup, kind: timeout, target: 'tool:order_lookup'}\n"
    file = tmp_path / "s.yaml"
    file.write_text(twice)
    [problem] = validate([file])
    assert (problem.path, problem.line) == ("faults", 22)
    assert "fault ids must be unique; repeated: ['slow-lookup']" in problem.message


def test_a_one_rung_ladder_is_a_ladder() -> None:
    from windtunnel.scenarios import parse_play

    assert parse_play("ladder:small@0.9").ladder
    assert not parse_play("small").ladder
