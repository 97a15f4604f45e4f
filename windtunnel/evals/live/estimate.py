"""`estimate`: what an experiment's real-model configs would cost, before anything is spent.

An estimate, not a quote: each real model is stood in for by the simulated tier of
its family (haiku → small, sonnet → mid, opus → large; any other → mid), every cell
of the config is run in simulation with those tiers (milliseconds each, offline),
and the calls and tokens the simulated runs made are priced at the real models'
prices. The stand-in play is built from the parsed rungs, one profile per real model
(the family's tier, renamed to the model id): two models of one family play the
same profile under their own names, so a ladder of them climbs as a ladder of two
equal tiers would. A real model may take more or fewer turns than its stand-in, and
its prompts carry what the simulated tiers' token profiles only approximate; the
worst case column prices every call at its ``max_tokens`` of output.
"""

from __future__ import annotations

from dataclasses import dataclass

from windtunnel.orchestrator import DEFAULT_PRICES, ModelCalled, Usage
from windtunnel.scenarios import Play, parse_play, run_scenario
from windtunnel.simulators import DEFAULT_TIERS

from ..experiment import Experiment

__all__ = ["Estimate", "estimate", "stand_in"]

_FAMILIES = (("haiku", "small"), ("sonnet", "mid"), ("opus", "large"))


@dataclass(frozen=True, slots=True, kw_only=True)
class Estimate:
    """The estimated calls, tokens and cost of one config's cells."""

    config: str
    cells: int
    calls: int
    input_tokens: int
    output_tokens: int
    cost: float
    """USD, at the real models' prices."""
    worst_cost: float
    """USD if every call wrote its ``max_tokens`` of output."""
    stand_ins: dict[str, str]
    """Each real model id and the simulated tier that stood in for it."""


def stand_in(model: str) -> str:
    """The simulated tier that stands in for ``model`` in an estimate.

    >>> stand_in("claude-haiku-4-5"), stand_in("claude-opus-4-1"), stand_in("my-model")
    ('small', 'large', 'mid')
    """
    return next((tier for family, tier in _FAMILIES if family in model), "mid")


def estimate(experiment: Experiment) -> list[Estimate]:
    """One :class:`Estimate` per config that plays real models, from simulated stand-in runs.

    Raises:
        ScenarioError: the experiment's scenario files have problems.
    """
    suite = experiment.load()
    scenarios = experiment.scenarios_by_plan(suite)
    cells = experiment.cells(suite)
    found = []
    for config in experiment.configs:
        models = config.real_models()
        if not models:
            continue
        tiers = {model: stand_in(model) for model in models}
        played = parse_play(config.who())
        # Each rung's profile is its family's tier named as the model: events name the model.
        rungs = tuple(
            (DEFAULT_TIERS[tiers[model]].model_copy(update={"name": model, "model": model}), threshold)
            for model, threshold in played.models
        )
        play = Play(name=played.name, rungs=rungs, ladder=played.ladder)
        mine = [cell for cell in cells if cell.config == config.name]
        calls = input_tokens = output_tokens = 0
        cost = worst = 0.0
        for cell in mine:
            run = run_scenario(scenarios[(cell.scenario, cell.plan)], seed=cell.seed, play=play)
            for event in run.trace.query(kind="model_called"):
                assert isinstance(event, ModelCalled)
                model = event.tier if event.tier in tiers else models[0]
                usage = Usage(input_tokens=event.input_tokens, output_tokens=event.output_tokens)
                price = DEFAULT_PRICES.price(model)
                calls += 1
                input_tokens += usage.input_tokens
                output_tokens += usage.output_tokens
                cost += price.cost(usage)
                most = Usage(input_tokens=usage.input_tokens, output_tokens=event.request.max_tokens)
                worst += price.cost(most)
        found.append(
            Estimate(
                config=config.name,
                cells=len(mine),
                calls=calls,
                input_tokens=input_tokens,
                output_tokens=output_tokens,
                cost=cost,
                worst_cost=worst,
                stand_ins=tiers,
            )
        )
    return found
