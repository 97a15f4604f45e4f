"""The JSON Schema of scenario files, generated from the models and shipped in the package.

Editors that speak the YAML language server complete and check a scenario file
with this first line::

    # yaml-language-server: $schema=<path or URL of scenario.schema.json>

The shipped file (``windtunnel/scenarios/scenario.schema.json``) is what
``windtunnel schema`` prints; a test keeps it equal to the generated one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .schema import Scenario

__all__ = ["SCHEMA_FILE", "scenario_schema", "schema_text"]

SCHEMA_FILE = Path(__file__).with_name("scenario.schema.json")
"""The schema as shipped."""


def scenario_schema() -> dict[str, Any]:
    """The JSON Schema of a scenario file: one scenario, or a list of them."""
    one = Scenario.model_json_schema()
    definitions = one.pop("$defs", {})
    definitions["Scenario"] = one
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://windtunnel.dev/schemas/scenario.schema.json",
        "title": "windtunnel scenario file",
        "description": "One scenario, or a list of scenarios (several YAML documents work too).",
        "oneOf": [
            {"$ref": "#/$defs/Scenario"},
            {"type": "array", "items": {"$ref": "#/$defs/Scenario"}, "minItems": 1},
        ],
        "$defs": definitions,
    }


def schema_text() -> str:
    """The schema as the shipped file holds it."""
    return json.dumps(scenario_schema(), indent=2, sort_keys=True) + "\n"
