"""Experiments: cells are paired across configs and stable when the experiment grows."""

from __future__ import annotations

import pytest

from windtunnel.evals import Experiment, cell_seed, plan_digest
from windtunnel.orchestrator import InvalidArgument
from windtunnel.simulators import derive_seed

SOC = "windtunnel/scenarios/soc/scenarios"
THREE = ["soc-c2-beacon", "soc-benign-scanner", "soc-c2-block-silent-failure"]


def experiment(**changes: object) -> Experiment:
    settings: dict[str, object] = {
        "name": "t",
        "scenarios": [SOC],
        "ids": THREE[:2],
        "seeds": 2,
        "configs": ["small", "large"],
        "seed": 7,
    }
    settings.update(changes)
    return Experiment.model_validate(settings)


def seeds(exp: Experiment) -> dict[str, int]:
    return {cell.id: cell.seed for cell in exp.cells()}


def test_cells_are_seed_by_scenario_by_config_and_paired_across_configs() -> None:
    cells = experiment().cells()
    assert [cell.id for cell in cells] == [
        "soc-benign-scanner/0/small",
        "soc-benign-scanner/0/large",
        "soc-c2-beacon/0/small",
        "soc-c2-beacon/0/large",
        "soc-benign-scanner/1/small",
        "soc-benign-scanner/1/large",
        "soc-c2-beacon/1/small",
        "soc-c2-beacon/1/large",
    ]
    for cell in cells:
        assert cell.seed == derive_seed(7, f"{cell.scenario}/{cell.seed_index}")
        assert cell.seed == cell_seed(7, cell.scenario, cell.seed_index)
    by_case: dict[tuple[str, int], set[int]] = {(c.scenario, c.seed_index): set() for c in cells}
    for cell in cells:
        by_case[(cell.scenario, cell.seed_index)].add(cell.seed)
    assert all(len(found) == 1 for found in by_case.values())  # every config meets the same seed


@pytest.mark.parametrize(
    "bigger",
    [
        {"ids": THREE},
        {"configs": ["small", "large", "ladder:small@0.85,mid@0.6,large"]},
        {"seeds": 5},
    ],
    ids=["scenario", "config", "seeds"],
)
def test_growing_the_experiment_changes_no_other_cell(bigger: dict[str, object]) -> None:
    before = seeds(experiment())
    after = seeds(experiment(**bigger))
    assert {cell: after[cell] for cell in before} == before
    assert len(after) > len(before)


def test_another_experiment_seed_gives_other_cell_seeds() -> None:
    assert set(seeds(experiment()).values()).isdisjoint(seeds(experiment(seed=8)).values())


def test_configs_are_named_data() -> None:
    exp = experiment(configs=[{"name": "cheap", "play": "small"}, "ladder:small@0.85,large"])
    assert [(c.name, c.play) for c in exp.configs] == [
        ("cheap", "small"),
        ("ladder:small@0.85,large", "ladder:small@0.85,large"),
    ]
    assert Experiment.model_validate_json(exp.model_dump_json()) == exp


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"configs": ["huge"]}, "huge"),
        ({"configs": ["small", {"name": "small", "play": "large"}]}, "repeated"),
        ({"configs": []}, "configs"),
        ({"seeds": 0}, "seeds"),
        ({"recheck": 1.5}, "recheck"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_experiments_say_what(changes: dict[str, object], message: str) -> None:
    with pytest.raises((InvalidArgument, ValueError), match=message):
        experiment(**changes)


def test_the_recheck_share_is_chosen_from_the_experiment_seed() -> None:
    exp = experiment(ids=["soc-*"], seeds=10, recheck=0.05)
    cells = exp.cells()
    chosen = [cell.id for cell in cells if exp.rechecked(cell)]
    assert 0.02 < len(chosen) / len(cells) < 0.09
    assert chosen == [cell.id for cell in cells if experiment(ids=["soc-*"], seeds=10).rechecked(cell)]
    assert not any(experiment(recheck=0).rechecked(cell) for cell in cells)


def test_plan_digest_is_the_fault_plan_only() -> None:
    suite = experiment(ids=THREE).load()
    digests = {loaded.scenario.id: plan_digest(loaded) for loaded in suite}
    assert digests["soc-c2-beacon"] == digests["soc-benign-scanner"]  # neither has faults
    assert digests["soc-c2-block-silent-failure"] != digests["soc-c2-beacon"]
    assert len(digests["soc-c2-beacon"]) == 64


def test_a_config_is_played_by_exactly_one_of_play_profile_or_models() -> None:
    from windtunnel.evals import Config
    from windtunnel.simulators import DEFAULT_TIERS

    mine = DEFAULT_TIERS["small"].model_copy(update={"name": "mine", "skill": 0.9})
    exp = experiment(configs=["small", mine, {"name": "own", "models": "pkg.mod:factory"}])
    assert [(c.name, c.play, c.profile, c.models) for c in exp.configs] == [
        ("small", "small", None, None),
        ("mine", None, mine, None),
        ("own", None, None, "pkg.mod:factory"),
    ]
    assert exp.configs[1].who() is mine
    assert [p.name for p in Config(name="l", play="ladder:small@0.8,large").tiers()] == ["small", "large"]
    assert exp.configs[2].tiers() == []
    with pytest.raises(
        ValueError, match="exactly one of play, profile or models; given: \\['play', 'models'\\]"
    ):
        Config(name="x", play="small", models="a:b")
    with pytest.raises(ValueError, match="given: none"):
        Config(name="x")
    round_trip = Experiment.model_validate_json(exp.model_dump_json())
    assert round_trip == exp  # configs are data: they travel to pool workers as JSON


def test_extra_fault_plans_multiply_cells_on_the_same_seeds() -> None:
    plan = {"name": "slow", "faults": [{"id": "t", "kind": "timeout", "target": "tool:threat_intel"}]}
    exp = experiment(ids=THREE[:1], seeds=1, fault_plans=[plan])
    cells = exp.cells()
    assert [cell.id for cell in cells] == [
        "soc-c2-beacon/0/small",
        "soc-c2-beacon/0/large",
        "soc-c2-beacon/0/small/+slow",
        "soc-c2-beacon/0/large/+slow",
    ]
    assert len({cell.seed for cell in cells}) == 1  # with and without the plan: the same case
    by_plan = exp.scenarios_by_plan(exp.load())
    own, laid = by_plan[("soc-c2-beacon", "")], by_plan[("soc-c2-beacon", "slow")]
    assert [f.id for f in laid.scenario.faults] == [*(f.id for f in own.scenario.faults), "slow/t"]
    assert plan_digest(laid) != plan_digest(own)


def test_an_extra_plan_with_a_target_the_domain_lacks_is_refused_before_running() -> None:
    from windtunnel.scenarios import ScenarioError

    plan = {"name": "bad", "faults": [{"id": "t", "kind": "timeout", "target": "tool:threat_intell"}]}
    exp = experiment(fault_plans=[plan])
    with pytest.raises(ScenarioError) as caught:
        exp.scenarios_by_plan(exp.load())
    text = str(caught.value)
    assert "plan 'bad' faults[0].target" in text
    assert "over scenario 'soc-benign-scanner'" in text
    assert "did you mean 'tool:threat_intel'" in text
    with pytest.raises(ValueError, match="fault plan names must be unique"):
        experiment(fault_plans=[{**plan, "name": "a"}, {**plan, "name": "a"}])


def test_a_config_name_with_a_slash_is_refused_cell_ids_would_collide() -> None:
    from windtunnel.evals import Config

    with pytest.raises(ValueError, match="must not contain '/'"):
        Config(name="small/+slow", play="small")
