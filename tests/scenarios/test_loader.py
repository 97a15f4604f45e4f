"""Scenario files: strict loading with file, line and field path; vary; suites; round trip."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from windtunnel.scenarios import Scenario, ScenarioError, load_file, load_suite, resolve, validate

DOMAIN = "tests.scenarios.shop:DOMAIN"

VALID = f"""\
id: shop-refund
description: A customer whose parcel never came gets a refund, verified.
domain: {DOMAIN}
tags: [refund, smoke]
vary:
  order: {{choice: [o-1, o-2]}}
  amount: {{number: [5, 50]}}
world:
  orders:
    o-1: {{amount: 20}}
    o-2: {{amount: 40}}
input:
  order_id: ${{order}}
  claim: "order ${{order}} never arrived"
truth:
  needs_human: false
  final_states: [done]
  required_actions:
    - tool: refund
      args: {{order_id: "${{order}}"}}
  evidence: [order_lookup]
faults:
  - id: slow-lookup
    kind: latency_spike
    target: "tool:order_lookup"
    seconds: 30
"""


def write(tmp_path: Path, text: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_a_valid_file_loads_and_varies_with_the_seed(tmp_path: Path) -> None:
    [loaded] = load_file(write(tmp_path, VALID))
    scenario = loaded.scenario
    assert (scenario.id, loaded.line, scenario.tags) == ("shop-refund", 1, ["refund", "smoke"])
    cases = [resolve(scenario, loaded.domain, seed=seed) for seed in range(8)]
    orders = {case.input.order_id for case in cases}
    assert orders == {"o-1", "o-2"}  # the seed picks the order
    for case in cases:
        assert case.input.claim == f"order {case.input.order_id} never arrived"  # written into text
        assert case.truth.required_actions[0].args == {"order_id": case.input.order_id}
    again = resolve(scenario, loaded.domain, seed=3)
    assert again == cases[3]  # same seed, same case


BROKEN = [
    ("unknown top-level key", VALID.replace("tags:", "tagz:"), 4, "tagz",
     "unknown key; did you mean 'tags'? (valid keys: budget, description, domain, faults, id, input, seed, "
     "tags, truth, vary, workflow, world)"),
    ("missing truth field", VALID.replace("  needs_human: false\n", ""), 15, "truth.needs_human",
     "required, missing"),
    ("wrong type", VALID.replace("needs_human: false", "needs_human: maybe"), 16, "truth.needs_human",
     "Input should be a valid boolean, unable to interpret input"),
    ("bad id", VALID.replace("id: shop-refund", "id: Shop Refund"), 1, "id",
     "String should match pattern '^[a-z0-9][a-z0-9._-]*$'"),
    ("unknown domain", VALID.replace(DOMAIN, "shopping"), 3, "domain",
     "unknown domain='shopping'; choose one of ['oncall', 'soc'] or module:NAME"),
    ("undeclared variable", VALID.replace('order_id: "${order}"', 'order_id: "${ordr}"'), 20,
     "truth.required_actions[0].args.order_id",
     "${ordr} is not declared under vary; declared: ['amount', 'order']"),
    ("world field wrong", VALID.replace("o-2: {amount: 40}", "o-2: {amount: lots}"), 11,
     "world.orders.o-2.amount",
     "Input should be a valid number, unable to parse string as a number"),
    ("world key unknown", VALID.replace("o-2: {amount: 40}", "o-2: {amount: 40, refundd: true}"), 11,
     "world.orders.o-2.refundd", "unknown key; did you mean 'refunded'? (valid keys: amount, refunded)"),
    ("input key missing", VALID.replace("  claim: \"order ${order} never arrived\"\n", ""), 12, "input.claim",
     "required, missing"),
    ("fault field", VALID.replace("seconds: 30", "seconds: -1"), 26, "faults[0].seconds",
     "Input should be greater than 0"),
    ("fault trigger key", VALID.replace("seconds: 30", "seconds: 30\n    trigger: {probabilty: 0.5}"), 27,
     "faults[0].trigger.probabilty", "unknown key; did you mean 'probability'? (valid keys: after, nth, "
     "probability, times, window)"),
    ("fault on a missing tool", VALID.replace('"tool:order_lookup"', '"tool:order_lokup"'), 25,
     "faults[0].target",
     "unknown target 'tool:order_lokup'; did you mean 'tool:order_lookup'? (choose one of humans, run, "
     "tool:order_lookup, tool:refund)"),
    ("write fault on a read tool",
     VALID.replace("kind: latency_spike", "kind: silent_failure").replace("    seconds: 30\n", ""), 25,
     "faults[0].target", "kind 'silent_failure' needs a write tool; write tools: ['refund']"),
    ("action on a read tool", VALID.replace("- tool: refund", "- tool: order_lookup"), 19,
     "truth.required_actions[0].tool", "'order_lookup' is not a write tool of domain 'shop' (choose one of "
     "refund)"),
    ("action args", VALID.replace('args: {order_id: "${order}"}', "args: {order: 1}"), 20,
     "truth.required_actions[0].args.order_id", "Field required"),
    ("final state", VALID.replace("final_states: [done]", "final_states: [finished]"), 17,
     "truth.final_states[0]", "'finished' is not a terminal state (choose one of done, escalated)"),
    ("evidence", VALID.replace("evidence: [order_lookup]", "evidence: [refund]"), 21, "truth.evidence[0]",
     "'refund' is not a read tool (choose one of order_lookup)"),
    ("vary two kinds", VALID.replace("{number: [5, 50]}", "{number: [5, 50], integer: [1, 2]}"), 7,
     "vary.amount",
     "give exactly one of choice, integer, number, ip; got ['integer', 'number']"),
    ("yaml syntax", VALID.replace("tags: [refund, smoke]", "tags: [refund, smoke"), 5, "",
     "not valid YAML: expected ',' or ']', but got ':'"),
    ("not a mapping", "- just a string\n", 1, "", "a scenario must be a mapping"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "line", "path", "message"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_a_broken_file_says_where_and_what(
    tmp_path: Path, text: str, line: int, path: str, message: str
) -> None:
    file = write(tmp_path, text)
    with pytest.raises(ScenarioError) as info:
        load_file(file)
    [problem] = info.value.problems
    assert (problem.file, problem.line, problem.path) == (str(file), line, path), problem
    assert problem.message == message
    assert str(problem) == f"{file}:{line}: {path}: {message}" if path else f"{file}:{line}: {message}"


def test_every_problem_of_a_file_at_once(tmp_path: Path) -> None:
    text = VALID.replace("tags:", "tagz:").replace("needs_human: false", "needs_human: maybe")
    with pytest.raises(ScenarioError) as info:
        load_file(write(tmp_path, text))
    assert [p.path for p in info.value.problems] == ["truth.needs_human", "tagz"]


def test_many_scenarios_per_file_json_and_suites(tmp_path: Path) -> None:
    second = VALID.replace("id: shop-refund", "id: shop-escalate").replace("[refund, smoke]", "[escalate]")
    write(tmp_path, VALID + "---\n" + second, "two.yaml")
    data = YAML(typ="safe").load(VALID.replace("shop-refund", "shop-json"))
    (tmp_path / "more").mkdir()
    (tmp_path / "more" / "one.json").write_text(json.dumps([data]))
    suite = load_suite([tmp_path])
    assert sorted(item.scenario.id for item in suite) == ["shop-escalate", "shop-json", "shop-refund"]
    assert [item.scenario.id for item in load_suite([tmp_path], tags=["smoke"])] == [
        "shop-json",
        "shop-refund",
    ]
    assert [item.scenario.id for item in load_suite([tmp_path], ids=["*esc*"])] == ["shop-escalate"]
    suite_file = write(tmp_path, "suite: both\ninclude: [two.yaml]\n", "both.yaml")
    assert len(load_suite([suite_file])) == 2
    tagged = write(
        tmp_path, "suite: smoke\ninclude: ['*.yaml', 'more/*.json']\ntags: [smoke]\n", "smoke.yaml"
    )
    assert [item.scenario.id for item in load_suite([tagged])] == ["shop-refund", "shop-json"]


def test_duplicate_ids_and_missing_files_are_problems(tmp_path: Path) -> None:
    write(tmp_path, VALID, "a.yaml")
    write(tmp_path, VALID, "b.yaml")
    problems = validate([tmp_path, tmp_path / "nope.yaml"])
    assert [str(p).split(": ", 1)[1] for p in problems] == [
        "no such file or directory",
        f"id: id 'shop-refund' is already used at {tmp_path / 'a.yaml'}:1",
    ]


def test_a_scenario_round_trips_through_yaml_and_json(tmp_path: Path) -> None:
    [loaded] = load_file(write(tmp_path, VALID))
    scenario = loaded.scenario
    dumped = scenario.model_dump(mode="json", exclude_unset=True)
    yaml_file = tmp_path / "out.yaml"
    with yaml_file.open("w") as out:
        YAML(typ="safe").dump(dumped, out)
    [again] = load_file(yaml_file)
    assert again.scenario == scenario
    json_file = write(tmp_path, json.dumps(dumped), "out.json")
    assert load_file(json_file)[0].scenario == scenario
    assert Scenario.model_validate_json(scenario.model_dump_json()) == scenario


def test_unknown_files_are_a_clear_problem(tmp_path: Path) -> None:
    binary = tmp_path / "bad.yaml"
    binary.write_bytes(b"\xff\xfe\x00 not text")
    [problem] = validate([binary])
    assert problem.message.startswith("cannot read it:")
    empty = write(tmp_path, textwrap.dedent("# nothing here\n"), "empty.yaml")
    [problem] = validate([empty])
    assert problem.message == "holds no scenario"
