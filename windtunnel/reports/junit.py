"""JUnit XML of a results directory's runs, for CI systems to show as tests.

One ``<testsuite>`` per config, its headline metrics as ``<properties>``; one
``<testcase>`` per scenario and config (classname the config, name the scenario),
over all its seeds:

- ``<failure>`` when a seed's run was graded not correct: the message names the
  failing grader checks and seeds, the text each failing run and the command that
  replays it;
- ``<error>`` when the harness failed on a seed (it could not measure): that
  outranks a failure, whose runs the text still lists;
- a run whose declared faults did not all fire is a note in ``<system-out>``, not a
  failure: it says nothing about surviving them.
"""

from __future__ import annotations

import math
import re
import xml.etree.ElementTree as ET
from collections.abc import Hashable, Mapping
from typing import Any

import pandas as pd

from .replay import Replay
from .table import HEADLINE, metrics_table, pass_k_of

__all__ = ["junit_xml"]

# XML 1.0 cannot hold these characters at all, escaped or not.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _text(value: object) -> str:
    return _NOT_XML.sub("\N{REPLACEMENT CHARACTER}", str(value))


def _failed_checks(run: dict[str, Any]) -> list[str]:
    return [name for name, value in run.items() if name.startswith("check_") and value is False]


def _describe(run: dict[str, Any], replay: Replay | None) -> str:
    checks = _failed_checks(run)
    failed = ", ".join(checks) if checks else "a check of the domain's grader (no generic check failed)"
    lines = [
        f"seed index {run['seed_index']} (seed {run['seed']}): failed {failed}; "
        f"ended {run['status']} in state {run['final_state']!r}"
    ]
    if replay is not None:
        lines.append(f"  replay: {replay(run)}")
    return "\n".join(lines)


def _seeds(runs: list[dict[str, Any]]) -> str:
    return ", ".join(str(run["seed_index"]) for run in runs)


def _case(suite: ET.Element, config: str, scenario: str, group: pd.DataFrame, replay: Replay | None) -> str:
    """Add the test case; return its outcome: passed, failure or error."""
    rows = group.sort_values(["seed_index", *(["fault_plan"] if "fault_plan" in group else [])])
    records: list[dict[str, Any]] = [
        {
            str(key): (None if isinstance(value, float) and math.isnan(value) else value)
            for key, value in row.items()
        }
        for row in rows.to_dict("records")
    ]
    broken = [run for run in records if run.get("harness_error")]
    agent = [run for run in records if not run.get("harness_error")]
    wrong = [run for run in agent if run.get("correct") is False]
    case = ET.SubElement(
        suite,
        "testcase",
        classname=config,
        name=scenario,
        time=f"{sum(float(run.get('wall_time') or 0.0) for run in records):.3f}",
    )
    outcome = "passed"
    if broken:
        outcome = "error"
        kinds = sorted({str(run["harness_error"]).split(":", 1)[0] for run in broken})
        error = ET.SubElement(
            case,
            "error",
            message=_text(
                f"the harness failed on {len(broken)} of {len(records)} seeds (seed index {_seeds(broken)})"
                + (f"; {len(wrong)} more failed their checks" if wrong else "")
            ),
            type=_text(", ".join(kinds)),
        )
        lines = [f"seed index {run['seed_index']}: {run['harness_error']}" for run in broken]
        lines += [_describe(run, replay) for run in wrong]
        error.text = _text("\n".join(lines))
    elif wrong:
        outcome = "failure"
        checks = sorted({check for run in wrong for check in _failed_checks(run)})
        failure = ET.SubElement(
            case,
            "failure",
            message=_text(
                f"failed on {len(wrong)} of {len(agent)} seeds (seed index {_seeds(wrong)}): "
                + (", ".join(checks) if checks else "a check of the domain's grader")
            ),
            type="WrongDecision",
        )
        failure.text = _text("\n".join(_describe(run, replay) for run in wrong))
    notes = [
        f"inconclusive: seed index {run['seed_index']}: fault(s) {run['faults_not_fired']} never fired; "
        "the run says nothing about surviving them"
        for run in agent
        if run.get("inconclusive")
    ]
    if notes:
        ET.SubElement(case, "system-out").text = _text("\n".join(notes))
    return outcome


def _properties(suite: ET.Element, metrics: Mapping[Hashable, Any]) -> None:
    properties = ET.SubElement(suite, "properties")
    names = [
        *HEADLINE,
        *(str(name) for name in metrics if str(name).startswith("pass^") and pass_k_of(str(name))),
    ]
    for name in names:
        for column in (name, f"{name}_low", f"{name}_high"):
            if column in metrics and not math.isnan(float(metrics[column])):
                ET.SubElement(properties, "property", name=column, value=f"{float(metrics[column]):.6g}")


def junit_xml(runs: pd.DataFrame, *, replay: Replay | None = None, name: str = "windtunnel") -> str:
    """The runs as a JUnit XML document (a ``<testsuites>`` named ``name``).

    ``replay`` gives the command that replays a run (see `replayer`); without it the
    failure texts carry none.
    """
    table = metrics_table(runs)
    metrics = {str(row["config"]): row for row in table.to_dict("records")}
    root = ET.Element("testsuites", name=name)
    totals = {"tests": 0, "failures": 0, "errors": 0}
    for config, of_config in runs.groupby("config", sort=True):
        suite = ET.SubElement(root, "testsuite", name=str(config))
        _properties(suite, metrics[str(config)])
        counts = {"passed": 0, "failure": 0, "error": 0}
        for scenario, group in of_config.groupby("scenario", sort=True):
            counts[_case(suite, str(config), str(scenario), group, replay)] += 1
        tests = sum(counts.values())
        suite.set("tests", str(tests))
        suite.set("failures", str(counts["failure"]))
        suite.set("errors", str(counts["error"]))
        suite.set("skipped", "0")
        suite.set("time", f"{float(of_config['wall_time'].fillna(0).sum()):.3f}")
        totals["tests"] += tests
        totals["failures"] += counts["failure"]
        totals["errors"] += counts["error"]
    for key, value in totals.items():
        root.set(key, str(value))
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"
