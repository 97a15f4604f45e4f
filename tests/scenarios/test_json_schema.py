"""The JSON Schema of scenario files: shipped as generated; accepts valid files, rejects broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from ruamel.yaml import YAML
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.scenarios.json_schema import SCHEMA_FILE, scenario_schema, schema_text

from .test_loader import VALID

runner = CliRunner()


def test_the_shipped_schema_is_the_generated_one() -> None:
    assert SCHEMA_FILE.read_text() == schema_text(), "regenerate it: windtunnel schema --out " + str(
        SCHEMA_FILE
    )
    jsonschema.Draft202012Validator.check_schema(scenario_schema())


def test_windtunnel_schema_prints_it(tmp_path: Path) -> None:
    printed = runner.invoke(app, ["schema"])
    assert printed.exit_code == 0
    assert json.loads(printed.output) == scenario_schema()
    out = tmp_path / "s.json"
    assert runner.invoke(app, ["schema", "--out", str(out)]).exit_code == 0
    assert json.loads(out.read_text()) == scenario_schema()


BROKEN_FOR_SCHEMA = [
    VALID.replace("tags:", "tagz:"),
    VALID.replace("needs_human: false", "needs_human: maybe"),
    VALID.replace("id: shop-refund", "id: Shop Refund"),
    VALID.replace("{number: [5, 50]}", "{numbr: [5, 50]}"),
    VALID.replace("  needs_human: false\n", ""),
]


def test_the_schema_accepts_a_valid_file_and_rejects_broken_ones() -> None:
    validator = jsonschema.Draft202012Validator(scenario_schema())
    yaml = YAML(typ="safe")
    assert list(validator.iter_errors(yaml.load(VALID))) == []
    assert list(validator.iter_errors([yaml.load(VALID)])) == []
    for text in BROKEN_FOR_SCHEMA:
        assert list(validator.iter_errors(yaml.load(text))), text


def test_validate_exit_codes(tmp_path: Path) -> None:
    good = tmp_path / "good.yaml"
    good.write_text(VALID)
    ok = runner.invoke(app, ["validate", str(good)])
    assert (ok.exit_code, ok.output) == (0, "1 scenario(s) in 1 file(s): valid\n")
    bad = tmp_path / "bad.yaml"
    bad.write_text(VALID.replace("tags:", "tagz:"))
    failed = runner.invoke(app, ["validate", str(good), str(bad)])
    assert failed.exit_code == 1
    assert f"{bad}:4: tagz: unknown key; did you mean 'tags'?" in failed.output
    assert failed.output.rstrip().endswith("\n1 problem")
    assert runner.invoke(app, ["validate"]).exit_code == 2


@pytest.mark.parametrize("args", [["schema", "--out", "/nonexistent/dir/s.json"]])
def test_schema_bad_output_path(args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert "cannot write it" in result.output
