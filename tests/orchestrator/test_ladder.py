"""Ladder and LadderAgent: confident tiers decide, unsure ones escalate, the human comes last."""

from __future__ import annotations

import math
from typing import Any

import pytest

from windtunnel.orchestrator import (
    Escalated,
    InvalidArgument,
    ModelCalled,
    Policy,
    RunResult,
    TransitionTaken,
    Workflow,
    run,
)
from windtunnel.orchestrator.ladder import HUMAN_TIER, Ladder, LadderAgent, Rung
from windtunnel.scenarios import Case, load_file, resolve
from windtunnel.scenarios.soc import DOMAIN, SocPlaybook, soc_tools
from windtunnel.simulators import (
    DEFAULT_TIERS,
    ScriptedModel,
    Sim,
    SimulatedModel,
    respond,
    submit,
    tool_call,
)

from .agent_kit import Sources

CASE = {"alert": "C2 beacon", "ip": "203.0.113.9"}
LOOK = respond("Checking the IP.", tool_call("threat_intel", {"ip": "203.0.113.9"}))


def workflow(agent: LadderAgent) -> Workflow:
    return Workflow(
        name="ladder-test",
        states={"investigate": agent},
        transitions={"investigate": ["close", "contain", "escalate"]},
        initial="investigate",
        terminal=["close", "contain", "escalate"],
        on_error=Policy(retries=0),  # a step that fails ends the run as failed: nothing hides here
        escalate_to="escalate",
    )


def decide(ladder: Ladder, *, seed: int = 0, **kwargs: Any) -> RunResult:
    agent = LadderAgent(ladder, system="You investigate alerts.", tools=Sources().registry(), **kwargs)
    sim = Sim(seed=seed)
    return sim.run(run(workflow(agent), CASE, env=sim))


def story(result: RunResult) -> list[tuple[Any, ...]]:
    """The run's model calls (by tier), escalations and transitions, in order."""
    told: list[tuple[Any, ...]] = []
    for event in result.trace:
        if isinstance(event, ModelCalled):
            told.append(("model", event.tier))
        elif isinstance(event, Escalated):
            told.append(("escalated", event.trigger, event.from_tier, event.to, event.confidence))
        elif isinstance(event, TransitionTaken):
            told.append(("transition", event.target, event.confidence, event.reason))
    return told


def two_tiers(small: ScriptedModel, mid: ScriptedModel, *, human_state: str | None = "escalate") -> Ladder:
    return Ladder(
        [
            Rung(tier="small", model=small, threshold=0.85),
            Rung(tier="mid", model=mid, threshold=0.6),
            Rung(tier="human"),
        ],
        human_state=human_state,
    )


def test_a_confident_small_tier_decides_alone() -> None:
    with (
        ScriptedModel([LOOK, respond(submit("close", 0.9, "known C2"))]) as small,
        ScriptedModel([]) as mid,
    ):
        result = decide(two_tiers(small, mid))
    assert (result.status, result.final_state) == ("completed", "close")
    assert story(result) == [("model", "small"), ("model", "small"), ("transition", "close", 0.9, None)]
    assert result.data == {"rationale": "known C2", "tier": "small"}


def test_low_confidence_goes_one_tier_up_in_a_fresh_conversation() -> None:
    with (
        ScriptedModel([respond(submit("close", 0.5, "looks quiet"))]) as small,
        ScriptedModel([LOOK, respond(submit("contain", 0.8, "beaconing to C2"))]) as mid,
    ):
        result = decide(two_tiers(small, mid))
    assert result.final_state == "contain"
    assert story(result) == [
        ("model", "small"),
        ("escalated", "low_confidence", "small", "mid", 0.5),
        ("model", "mid"),
        ("model", "mid"),
        ("transition", "contain", 0.8, None),
    ]
    [escalated] = result.trace.query(kind="escalated")
    assert escalated.detail == "'small' chose 'close' with confidence 0.5 < threshold 0.85"  # type: ignore[union-attr]
    assert escalated.state == "investigate"
    assert result.data == {"rationale": "beaconing to C2", "tier": "mid"}
    assert len(mid.requests[0].messages) == 1  # the small tier's conversation is not carried up


def test_both_tiers_unsure_go_to_the_human_state() -> None:
    with (
        ScriptedModel([respond(submit("close", 0.5, "looks quiet"))]) as small,
        ScriptedModel([respond(submit("contain", 0.4, "maybe C2"))]) as mid,
    ):
        result = decide(two_tiers(small, mid))
    assert (result.status, result.final_state) == ("completed", "escalate")
    assert story(result) == [
        ("model", "small"),
        ("escalated", "low_confidence", "small", "mid", 0.5),
        ("model", "mid"),
        ("escalated", "low_confidence", "mid", "human", 0.4),
        ("transition", "escalate", None, None),
    ]
    assert result.data == {
        "tier": "human",
        "proposed": {"tier": "mid", "next": "contain", "confidence": 0.4, "rationale": "maybe C2"},
    }


@pytest.mark.parametrize(
    ("human_state", "why"),
    [(None, "no human_state is set"), ("review", "'review' is not allowed from 'investigate'")],
)
def test_without_an_allowed_human_state_the_engine_routes_to_escalate_to(
    human_state: str | None, why: str
) -> None:
    with (
        ScriptedModel([respond(submit("close", 0.5))]) as small,
        ScriptedModel([respond(submit("contain", 0.4))]) as mid,
    ):
        result = decide(two_tiers(small, mid, human_state=human_state))
    assert (result.status, result.final_state) == ("completed", "escalate")
    assert story(result) == [
        ("model", "small"),
        ("escalated", "low_confidence", "small", "mid", 0.5),
        ("model", "mid"),
        ("escalated", "low_confidence", "mid", "human", 0.4),
        ("escalated", "low_confidence", None, "escalate", None),
        ("transition", "escalate", None, "escalation: low_confidence"),
    ]
    engine = result.trace.query(kind="escalated")[-1]
    assert engine.detail == (  # type: ignore[union-attr]
        f"'mid' chose 'contain' with confidence 0.4 < threshold 0.6; the ladder is spent and {why}"
    )
    assert not result.trace.query(kind="handler_failed")


def test_a_ladder_without_a_human_rung_escalates_to_the_default_human_tier() -> None:
    with ScriptedModel([respond(submit("close", 0.3))]) as small:
        result = decide(Ladder([Rung(tier="small", model=small, threshold=0.85)], human_state="escalate"))
    assert story(result)[1:] == [
        ("escalated", "low_confidence", "small", HUMAN_TIER, 0.3),
        ("transition", "escalate", None, None),
    ]


def test_an_agent_that_gives_up_escalates_with_trigger_rejections() -> None:
    bad = tool_call("nmap", {"host": "web-01"})
    with (
        ScriptedModel([respond(bad, bad, bad)]) as small,
        ScriptedModel([respond(submit("close", 0.9, "benign scanner"))]) as mid,
    ):
        result = decide(two_tiers(small, mid), max_rejections=3)
    assert (result.status, result.final_state) == ("completed", "close")
    assert story(result) == [
        ("model", "small"),
        ("escalated", "rejections", "small", "mid", None),
        ("model", "mid"),
        ("transition", "close", 0.9, None),
    ]
    assert len(result.trace.query(kind="tool_rejected")) == 3
    [escalated] = result.trace.query(kind="escalated")
    assert escalated.detail.startswith("'small' gave up: agent in 'investigate' gave up: 3 tool calls")  # type: ignore[union-attr]
    assert not result.trace.query(kind="handler_failed")


def test_a_threshold_of_zero_always_stands() -> None:
    with ScriptedModel([respond(submit("close", 0.0))]) as small:
        result = decide(Ladder([Rung(tier="small", model=small)]))
    assert story(result) == [("model", "small"), ("transition", "close", 0.0, None)]


_M = ScriptedModel([])


@pytest.mark.parametrize(
    ("rungs", "kwargs", "message"),
    [
        ([], {}, "it has no rungs; give at least one Rung with a model"),
        ([Rung(tier="human")], {}, "it has no rung with a model; give at least one Rung a model"),
        (
            [Rung(tier="small", model=_M, threshold=1.5)],
            {},
            "rung 0 ('small'): threshold=1.5 must be a number in [0, 1]",
        ),
        (
            [Rung(tier="small", model=_M, threshold=-0.1)],
            {},
            "rung 0 ('small'): threshold=-0.1 must be a number in [0, 1]",
        ),
        (
            [Rung(tier="small", model=_M, threshold=math.nan)],
            {},
            "rung 0 ('small'): threshold=nan must be a number in [0, 1]",
        ),
        (
            [Rung(tier="small", model=_M, threshold=True)],
            {},
            "rung 0 ('small'): threshold=True must be a number in [0, 1]",
        ),
        (
            [Rung(tier="human"), Rung(tier="small", model=_M)],
            {},
            "rung 0 ('human') has no model; only the last rung, the human rung, may have none",
        ),
        (  # a model rung whose model was forgotten
            [Rung(tier="small", threshold=0.85), Rung(tier="mid", model=_M, threshold=0.6)],
            {},
            "rung 0 ('small') has no model; only the last rung, the human rung, may have none",
        ),
        (
            [Rung(tier="small", model=_M), Rung(tier="small", model=_M)],
            {},
            "rung 1 ('small') repeats the tier of rung 0; tier names must be unique",
        ),
        ([Rung(tier="", model=_M)], {}, "rung 0: tier='' must be a non-empty string"),
        (["small"], {}, "rungs[0]='small' must be a Rung"),
        (
            [Rung(tier="small", model=_M)],
            {"human_state": ""},
            "human_state='' must be a non-empty string, or None",
        ),
        (  # every problem at once
            [Rung(tier="small", model=_M, threshold=2), Rung(tier="small", model=_M)],
            {},
            "rung 0 ('small'): threshold=2 must be a number in [0, 1]; "
            "rung 1 ('small') repeats the tier of rung 0; tier names must be unique",
        ),
    ],
)
def test_invalid_ladders(rungs: list[Any], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=r"^invalid ladder: ") as raised:
        Ladder(rungs, **kwargs)
    assert str(raised.value) == f"invalid ladder: {message}"


@pytest.mark.parametrize(
    ("ladder", "kwargs", "message"),
    [
        ("small", {}, "ladder='small' must be a Ladder"),
        (
            Ladder([Rung(tier="small", model=_M)]),
            {"tier": "x"},
            "LadderAgent takes model and tier from the ladder's rungs; do not pass ['tier']",
        ),
    ],
)
def test_bad_ladder_agent_arguments(ladder: Any, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        LadderAgent(ladder, system="s", **kwargs)
    assert str(raised.value) == message


def test_repr() -> None:
    ladder = Ladder([Rung(tier="small", model=_M, threshold=0.85), Rung(tier="human")], human_state="h")
    assert repr(ladder) == "Ladder(['small>=0.85', 'human'], human_state='h')"
    assert repr(LadderAgent(ladder, system="s")) == f"LadderAgent({ladder!r})"


# With simulated tiers: a real investigation state decided by a ladder.

INVESTIGATE_TOOLS = ["threat_intel", "edr_process_tree", "user_lookup", "siem_search"]
assert DOMAIN.scenarios is not None
TEMPLATES = [
    load_file(DOMAIN.scenarios / f"{name}.yaml")[0].scenario
    for name in ("c2-beacon", "critical-host-c2", "benign-scanner")
]


def simulated(seed: int, thresholds: dict[str, float]) -> tuple[RunResult, str]:
    """Run the investigate decision of a seeded case with a ladder of simulated tiers;
    return the result and the right next state."""
    sim = Sim(seed=seed)
    case = resolve(TEMPLATES[seed % len(TEMPLATES)], DOMAIN, seed=seed)
    # Only the investigate state runs here: its own tools hold the key evidence.
    truth = case.truth.model_copy(update={"evidence": ["threat_intel", "edr_process_tree"]})
    case = Case(world=case.world, input=case.input, truth=truth)
    findings: dict[str, float] = {}
    playbook = SocPlaybook(case)
    rungs = [
        Rung(
            tier=tier,
            model=SimulatedModel(
                DEFAULT_TIERS[tier],
                playbook=playbook,
                difficulty=float(case.truth.difficulty),
                evidence=case.truth.evidence,
                rng=sim.rng(f"model/{tier}"),
                findings=findings,
            ),
            threshold=threshold,
        )
        for tier, threshold in thresholds.items()
    ]
    agent = LadderAgent(
        Ladder(rungs),
        system="You investigate SOC alerts.",
        tools=soc_tools(case.world, rng=sim.rng),
        allow=INVESTIGATE_TOOLS,
    )
    result = sim.run(run(workflow(agent), case.input, env=sim))
    right = playbook.right_choice("investigate", ["close", "contain", "escalate"])
    return result, right


def test_simulated_ladder_is_deterministic_and_climbs_tier_by_tier() -> None:
    ladder = {"small": 0.95, "mid": 0.95, "large": 0.0}
    first, _ = simulated(1, ladder)
    second, _ = simulated(1, ladder)
    assert first.trace.dumps() == second.trace.dumps()
    # The seed was chosen so that the whole ladder is climbed; each hop is in the trace.
    hops = [(e.from_tier, e.to) for e in first.trace.query(kind="escalated")]  # type: ignore[union-attr]
    assert hops == [("small", "mid"), ("mid", "large")]
    tiers = [call.tier for call in first.trace.query(kind="model_called")]  # type: ignore[union-attr]
    assert list(dict.fromkeys(tiers)) == ["small", "mid", "large"]
    assert first.data["tier"] == "large"


def test_escalation_raises_accuracy_over_the_small_tier_alone_for_less_than_mid_costs() -> None:
    seeds = range(200)
    small = [simulated(seed, {"small": 0.0}) for seed in seeds]
    mid = [simulated(seed, {"mid": 0.0}) for seed in seeds]
    laddered = [simulated(seed, {"small": 0.85, "mid": 0.6, "large": 0.0}) for seed in seeds]

    def accuracy(runs: list[tuple[RunResult, str]]) -> float:
        assert all(result.status == "completed" for result, _ in runs)
        return sum(result.final_state == right for result, right in runs) / len(runs)

    def cost(runs: list[tuple[RunResult, str]]) -> float:
        return sum(result.cost for result, _ in runs)

    # Alone, the small tier escalates only when it gives up (to the human, via the engine).
    triggers = {e.trigger for result, _ in small for e in result.trace.query(kind="escalated")}  # type: ignore[union-attr]
    assert triggers <= {"rejections"}
    climbed = sum(bool(result.trace.query(kind="escalated")) for result, _ in laddered)
    assert 0.2 * len(laddered) < climbed < 0.8 * len(laddered)
    assert accuracy(laddered) > accuracy(small) + 0.05
    assert cost(laddered) < cost(mid)
