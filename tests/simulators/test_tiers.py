"""SimulatedModel: playbook calls then submit, faults at their rates, accuracy by tier,
evidence and difficulty, calibration, cost, determinism, and the fake Messages API."""

from __future__ import annotations

import asyncio
import functools
import statistics
import weakref
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

import pydantic
import pytest
from pydantic import BaseModel, Field

from windtunnel.orchestrator import (
    AgentNudged,
    Event,
    HandlerFailed,
    InvalidArgument,
    LLMAgent,
    Message,
    Model,
    ModelCalled,
    ModelRequest,
    ModelResponse,
    Policy,
    PriceTable,
    RunResult,
    SimulationError,
    TextBlock,
    Tool,
    ToolRegistry,
    ToolRejected,
    ToolResultBlock,
    ToolUseBlock,
    TransitionTaken,
    Usage,
    Workflow,
    run,
    submit_spec,
)
from windtunnel.orchestrator.context import _CURRENT
from windtunnel.scenarios import Truth
from windtunnel.scenarios.soc import Alert
from windtunnel.simulators import Sim, evidence
from windtunnel.simulators.model import HALLUCINATED_TOOLS, MAX_ATTEMPTS, SimulatedModel
from windtunnel.simulators.profiles import DEFAULT_TIERS, LogNormal, TierProfile, derive_tier

ALERT = Alert(
    id="A-7",
    rule="c2-beacon",
    severity="high",
    host="web-01",
    src_ip="10.0.0.5",
    dst_ip="203.0.113.9",
    user="svc-web",
)
MALICIOUS = Truth(
    verdict="malicious", needs_human=False, final_states=["close"], evidence=["threat_intel", "siem_search"]
)
BENIGN = MALICIOUS.model_copy(update={"verdict": "benign"})
PRICES = PriceTable()
EXACT = derive_tier(  # confidence is exactly the chance of being right
    "small",
    skill=0.9,
    difficulty_slope=0.0,
    evidence_weight=0.4,
    floor=0.0,
    overconfidence=0.0,
    confidence_noise=0.0,
    hallucination_rate=0.0,
    malformed_rate=0.0,
)

Behaviour = Literal["ok", "fail", "empty", "partial"]
E = TypeVar("E", bound=Event)


class ExamplePlaybook:
    """What an analyst does for a C2 alert: reputation, logs, asset; contain if malicious.

    The case (``alert``) and the truth are bound in, as a domain binds its own."""

    def __init__(self, truth: Truth = MALICIOUS, alert: Alert = ALERT) -> None:
        self.truth = truth
        self.alert = alert

    def calls(self, state: str) -> list[tuple[str, dict[str, Any]]]:
        return [
            ("threat_intel", {"ip": self.alert.dst_ip}),
            ("siem_search", {"query": f"host:{self.alert.host}", "hours": 24}),
            ("asset_lookup", {"host": self.alert.host}),
        ]

    def right_choice(self, state: str, allowed: Sequence[str]) -> str:
        return "contain" if self.truth.verdict == "malicious" else "close"


PLAYBOOK = ExamplePlaybook()
PLAN = PLAYBOOK.calls("investigate")


def simulated(
    profile: TierProfile, rng: Any, *, truth: Truth = MALICIOUS, playbook: Any = None
) -> SimulatedModel:
    """The model of ``profile`` playing the example playbook for ``truth``."""
    return SimulatedModel(
        profile,
        playbook=ExamplePlaybook(truth) if playbook is None else playbook,
        difficulty=float(truth.difficulty),
        evidence=truth.evidence,
        rng=rng,
    )


class _Step:
    def __init__(self, state: str) -> None:
        self.state = state


class _Run:
    def __init__(self, state: str) -> None:
        self.step = _Step(state)


def create(model: SimulatedModel, req: ModelRequest, *, state: str | None = "investigate") -> ModelResponse:
    """``model.create(req)`` as a handler of ``state`` calls it (outside any step when None)."""

    async def call() -> ModelResponse:
        # The run context that `current_step()` reads, without a whole workflow around it.
        here = _Run(state) if state is not None else None
        token = _CURRENT.set(weakref.ref(here) if here is not None else None)  # type: ignore[arg-type]
        try:
            return await model.create(req)
        finally:
            _CURRENT.reset(token)

    return Sim().run(call())


class IpQuery(BaseModel):
    ip: str = Field(pattern=r"^\d+\.\d+\.\d+\.\d+$")


class SiemQuery(BaseModel):
    query: str
    hours: int = Field(1, ge=1, le=72)


class HostQuery(BaseModel):
    host: str


@dataclass
class Sources:
    """Fake read tools; each answers as its behaviour says."""

    behaviour: dict[str, Behaviour] = field(default_factory=dict)
    calls: list[tuple[str, dict[str, Any]]] = field(default_factory=list)

    async def _answer(self, tool: str, args: BaseModel) -> Any:
        self.calls.append((tool, args.model_dump()))
        await asyncio.sleep(2.0)
        behaviour = self.behaviour.get(tool, "ok")
        if behaviour == "fail":
            raise ConnectionError(f"{tool} backend refused")
        if behaviour == "empty":
            return []
        answer = {"tool": tool, "hits": 3}
        return evidence.partial(answer, 0.5) if behaviour == "partial" else answer

    def registry(self) -> ToolRegistry:
        def tool(name: str, model: type[BaseModel]) -> Tool:
            async def fn(args: BaseModel) -> Any:
                return await self._answer(name, args)

            return Tool(name=name, description=f"The {name} source.", input_model=model, fn=fn)

        return ToolRegistry(
            [tool("threat_intel", IpQuery), tool("siem_search", SiemQuery), tool("asset_lookup", HostQuery)]
        )


def workflow(agent: LLMAgent) -> Workflow:
    return Workflow(
        name="tiers-test",
        states={"investigate": agent},
        transitions={"investigate": ["close", "contain", "escalate"]},
        initial="investigate",
        terminal=["close", "contain", "escalate"],
        on_error=Policy(retries=0, route_to="escalate"),
    )


def run_case(
    profile: TierProfile,
    *,
    seed: int,
    truth: Truth = MALICIOUS,
    sources: Sources | None = None,
    serve: Callable[[SimulatedModel, Sim], Model] | None = None,
    **agent_kwargs: Any,
) -> RunResult:
    sim = Sim(seed=seed)
    model = simulated(profile, sim.rng(f"model/{profile.name}"), truth=truth)
    agent = LLMAgent(
        model=model if serve is None else serve(model, sim),
        system="You investigate alerts.",
        tools=(sources or Sources()).registry(),
        tier=profile.name,
        prices=PRICES,
        **agent_kwargs,
    )
    return sim.run(run(workflow(agent), ALERT, env=sim))


def events(result: RunResult, kind: type[E]) -> list[E]:
    """The run's events of one type, typed."""
    return [event for event in result.trace.events if isinstance(event, kind)]


def responses(result: RunResult) -> list[ModelResponse]:
    return [call.response for call in events(result, ModelCalled) if call.response is not None]


def confidence(result: RunResult) -> float:
    [transition] = events(result, TransitionTaken)
    assert transition.confidence is not None
    return transition.confidence


@dataclass(frozen=True)
class Batch:
    accuracy: float
    confidence: float
    cost: float


@functools.cache
def batch(profile: TierProfile, *, failing: tuple[str, ...] = (), runs: int = 300) -> Batch:
    """Accuracy, mean confidence and mean cost over seeded runs, half malicious, half benign."""
    right, stated, cost = 0, 0.0, 0.0
    for seed in range(runs):
        truth = MALICIOUS if seed % 2 else BENIGN
        sources = Sources(behaviour=dict.fromkeys(failing, "fail"))
        result = run_case(profile, seed=seed, truth=truth, sources=sources)
        right += result.final_state == ExamplePlaybook(truth).right_choice("investigate", ())
        stated += confidence(result)
        cost += result.cost
    return Batch(accuracy=right / runs, confidence=stated / runs, cost=cost / runs)


def clean(name: str, **changes: Any) -> TierProfile:
    """A default tier that never fumbles a tool call (so every run reaches a submit)."""
    return derive_tier(name, hallucination_rate=0.0, malformed_rate=0.0, **changes)


# --- the tool-use loop ----------------------------------------------------------------------------


def test_makes_the_playbook_calls_one_per_turn_then_submits() -> None:
    sources = Sources()
    result = run_case(clean("small"), seed=3, sources=sources)
    assert sources.calls == PLAN
    answers = responses(result)
    uses = [[b.name for b in r.content if isinstance(b, ToolUseBlock)] for r in answers]
    assert uses == [["threat_intel"], ["siem_search"], ["asset_lookup"], ["submit"]]
    text, use = answers[0].content
    assert isinstance(text, TextBlock)
    assert isinstance(use, ToolUseBlock)
    assert (answers[0].model, answers[0].stop_reason, use.id) == (
        "claude-haiku-5-5",
        "tool_use",
        "toolu_sim_small_0001",
    )
    assert result.final_state in {"close", "contain", "escalate"}
    assert 0.01 <= confidence(result) <= 0.99
    [transition] = events(result, TransitionTaken)
    assert transition.data["rationale"].startswith("Based on 100% of the key evidence")


def test_latency_is_simulated_time() -> None:
    profile = clean("large", latency=LogNormal(median=8.0))
    result = run_case(profile, seed=1)
    # Four model calls of 8 s and three tool calls of 2 s, all on the virtual clock.
    assert result.duration == pytest.approx(4 * 8.0 + 3 * 2.0)
    assert [c.latency for c in events(result, ModelCalled)] == [8.0] * 4


def test_input_tokens_grow_with_the_conversation() -> None:
    result = run_case(clean("small", input_tokens=LogNormal(median=300)), seed=2)
    tokens = [c.input_tokens for c in events(result, ModelCalled)]
    assert tokens == sorted(tokens)
    assert tokens[0] > 300 + 200  # the overhead plus the case and the tool definitions
    assert tokens[-1] - tokens[0] > 60  # three calls and their results


def test_told_to_submit_now_it_submits_with_what_it_has() -> None:
    sources = Sources()
    result = run_case(clean("small"), seed=4, sources=sources, max_turns=1)
    assert sources.calls == PLAN[:1]
    [nudge] = events(result, AgentNudged)
    assert (nudge.problem, nudge.gave_up) == ("max_turns", False)
    [transition] = events(result, TransitionTaken)
    assert transition.reason is None
    assert "50% of the key evidence" in transition.data["rationale"]


# --- hallucinated and malformed calls -----------------------------------------------------------


def test_hallucinated_calls_are_rejected_and_never_run() -> None:
    sources = Sources()
    result = run_case(
        derive_tier("small", hallucination_rate=1.0, malformed_rate=0.0), seed=5, sources=sources
    )
    rejected = events(result, ToolRejected)
    assert [r.reason for r in rejected] == ["unknown_tool"] * 3
    assert all(r.tool in HALLUCINATED_TOOLS for r in rejected)
    assert all(r.input == PLAN[0][1] for r in rejected)
    assert sources.calls == []
    # The agent's default max_rejections=3 ends the step; the policy escalates.
    assert result.final_state == "escalate"
    [failed] = events(result, HandlerFailed)
    assert failed.error == "AgentError"


def test_malformed_calls_are_rejected_with_the_validation_errors() -> None:
    sources = Sources()
    result = run_case(
        derive_tier("small", malformed_rate=1.0, hallucination_rate=0.0), seed=6, sources=sources
    )
    rejected = events(result, ToolRejected)
    assert [(r.tool, r.reason) for r in rejected] == [("threat_intel", "invalid_arguments")] * 3
    assert all(r.detail.startswith("invalid arguments for 'threat_intel': ip: ") for r in rejected)
    assert sources.calls == []


def test_a_call_is_tried_at_most_max_attempts_times_then_skipped() -> None:
    sources = Sources()
    profile = derive_tier(EXACT, hallucination_rate=1.0)
    result = run_case(profile, seed=7, sources=sources, max_rejections=100, max_turns=20)
    assert len(events(result, ToolRejected)) == MAX_ATTEMPTS * len(PLAN)
    assert len(events(result, ModelCalled)) == MAX_ATTEMPTS * len(PLAN) + 1
    assert sources.calls == []
    assert confidence(result) == pytest.approx(0.9 - 0.4)  # no evidence


def test_faults_happen_at_the_configured_rates() -> None:
    profile = derive_tier("small", hallucination_rate=0.2, malformed_rate=0.1)
    counts = {"unknown_tool": 0, "invalid_arguments": 0, "ran": 0}
    for seed in range(150):
        result = run_case(profile, seed=seed, max_rejections=100)
        for event in result.trace.query(kind=["tool_rejected", "tool_called"]):
            counts[getattr(event, "reason", "ran")] += 1
    attempts = sum(counts.values())
    assert attempts > 500
    assert counts["unknown_tool"] / attempts == pytest.approx(0.2, abs=0.035)
    assert counts["invalid_arguments"] / attempts == pytest.approx(0.1, abs=0.03)


# --- accuracy, evidence, calibration, cost -------------------------------------------------------


@pytest.mark.parametrize(
    ("results", "evidence"),
    [
        ({}, 1.0),
        ({"threat_intel": ToolResultBlock(tool_use_id="", content='{"partial": true, "hits": 1}')}, 0.75),
        ({"siem_search": ToolResultBlock(tool_use_id="", content="[]")}, 0.5),
        ({"siem_search": ToolResultBlock(tool_use_id="", content=" null ")}, 0.5),
        ({"threat_intel": ToolResultBlock(tool_use_id="", content="source unavailable", is_error=True)}, 0.5),
        (
            {
                "threat_intel": ToolResultBlock(tool_use_id="", content="{}"),
                "siem_search": ToolResultBlock(tool_use_id="", content=""),
                "asset_lookup": ToolResultBlock(tool_use_id="", content="", is_error=True),
            },
            0.0,
        ),
        ({"asset_lookup": ToolResultBlock(tool_use_id="", content="[]")}, 1.0),  # not key evidence
    ],
)
def test_tool_results_set_the_evidence_and_so_the_accuracy(
    results: Mapping[str, ToolResultBlock], evidence: float
) -> None:
    model = simulated(EXACT, Sim().rng("model"))
    response = create(model, request(results))
    [_, use] = response.content
    assert isinstance(use, ToolUseBlock)
    assert use.name == "submit"
    assert use.input["confidence"] == pytest.approx(0.9 - 0.4 * (1 - evidence))
    assert f"Based on {evidence:.0%} of the key evidence" in use.input["rationale"]


def test_lost_evidence_lowers_accuracy() -> None:
    full = batch(clean("small"))
    lost = batch(clean("small"), failing=("threat_intel", "siem_search"))
    assert full.accuracy > 0.7
    assert lost.accuracy < full.accuracy - 0.15
    assert lost.confidence < full.confidence - 0.15  # and the model says so


def test_difficulty_lowers_accuracy_down_to_the_floor() -> None:
    def accuracy(difficulty: float) -> float:
        profile = derive_tier(EXACT, difficulty_slope=0.5, floor=0.5)
        truth = MALICIOUS.model_copy(update={"difficulty": difficulty})
        right = sum(run_case(profile, seed=s, truth=truth).final_state == "contain" for s in range(150))
        return right / 150

    easy, hard = accuracy(0.0), accuracy(1.0)
    assert easy == pytest.approx(0.9, abs=0.06)
    assert hard == pytest.approx(0.5, abs=0.1)


def test_the_large_tier_is_more_accurate_and_costs_more() -> None:
    small, large = batch(clean("small")), batch(clean("large"))
    assert large.accuracy > small.accuracy + 0.1
    assert large.cost > 10 * small.cost


def test_run_cost_is_the_usage_priced_by_the_price_table() -> None:
    result = run_case(clean("mid"), seed=8)
    calls = events(result, ModelCalled)
    priced = sum(
        PRICES.cost(c.model, Usage(input_tokens=c.input_tokens, output_tokens=c.output_tokens)) for c in calls
    )
    assert {c.model for c in calls} == {"claude-sonnet-5-5"}
    assert result.cost == pytest.approx(priced)
    assert result.cost > 0


def test_a_calibrated_tier_states_its_accuracy_an_overconfident_one_more() -> None:
    calibrated = batch(clean("small", overconfidence=0.0))
    overconfident = batch(clean("small"))  # +0.12
    assert calibrated.confidence == pytest.approx(calibrated.accuracy, abs=0.04)
    assert overconfident.confidence > overconfident.accuracy + 0.08


def test_default_tiers_trade_accuracy_for_price_and_time() -> None:
    small, mid, large = (DEFAULT_TIERS[name] for name in ("small", "mid", "large"))
    assert [t.model for t in (small, mid, large)] == [
        "claude-haiku-5-5",
        "claude-sonnet-5-5",
        "claude-opus-5-5",
    ]
    assert small.skill < mid.skill < large.skill
    assert small.overconfidence > mid.overconfidence > large.overconfidence
    assert small.hallucination_rate > mid.hallucination_rate > large.hallucination_rate
    assert small.latency.median < mid.latency.median < large.latency.median
    prices = [PRICES.price(t.model).output for t in (small, mid, large)]
    assert prices == sorted(prices)


# --- determinism, the fake API, and errors ------------------------------------------------------


def test_same_seed_same_responses() -> None:
    profile = derive_tier("small", hallucination_rate=0.2, malformed_rate=0.2)
    first, again = run_case(profile, seed=11), run_case(profile, seed=11)
    assert first.trace.dumps() == again.trace.dumps()
    others = {run_case(profile, seed=seed).trace.dumps() for seed in range(12, 16)}
    assert first.trace.dumps() not in others


def test_runs_through_the_fake_messages_api() -> None:
    from windtunnel.simulators.fake_api import FakeMessagesAPI

    def serve(model: SimulatedModel, sim: Sim) -> Model:
        return FakeMessagesAPI(model).model(model.name, rng=sim.rng("fake_api/jitter"))

    profile = derive_tier("small", malformed_rate=0.3)
    direct_sources, api_sources = Sources(), Sources()
    direct = run_case(profile, seed=9, sources=direct_sources)
    via_api = run_case(profile, seed=9, sources=api_sources, serve=serve)
    assert via_api.status == "completed"
    # The SDK path changes nothing the model decides: same calls, same answers, same tokens.
    assert (via_api.final_state, api_sources.calls) == (direct.final_state, direct_sources.calls)

    def answers(result: RunResult) -> list[Any]:
        return [(r.content, r.usage) for r in responses(result)]

    assert answers(via_api) == answers(direct)
    assert all(c.request_id for c in events(via_api, ModelCalled))


def request(
    results: Mapping[str, ToolResultBlock] | None = None,
    *,
    first: str = "State: investigate\n\nCase:\n{}",
    made: int = len(PLAN),
) -> ModelRequest:
    """A request after the first ``made`` playbook calls, with ``results`` (else a full answer) for each."""
    messages = [Message(role="user", content=(TextBlock(text=first),))]
    for number, (tool, args) in enumerate(PLAN[:made]):
        use_id = f"toolu_{number}"
        result = (results or {}).get(tool) or ToolResultBlock(tool_use_id="", content='{"hits": 3}')
        messages.append(Message(role="assistant", content=(ToolUseBlock(id=use_id, name=tool, input=args),)))
        messages.append(
            Message(
                role="user",
                content=(
                    ToolResultBlock(tool_use_id=use_id, content=result.content, is_error=result.is_error),
                ),
            )
        )
    return ModelRequest(
        system="You investigate alerts.",
        messages=tuple(messages),
        tools=(*(spec for spec in SPECS), submit_spec(["close", "contain", "escalate"])),
    )


SPECS = [Sources().registry().spec(name) for name in ("asset_lookup", "siem_search", "threat_intel")]


class WrongPlaybook(ExamplePlaybook):
    def right_choice(self, state: str, allowed: Sequence[str]) -> str:
        return "block_ip"


class GreedyPlaybook(ExamplePlaybook):
    def calls(self, state: str) -> list[tuple[str, dict[str, Any]]]:
        return [("nmap", {"host": self.alert.host})]


@pytest.mark.parametrize(
    ("playbook", "req", "message"),
    [
        (
            PLAYBOOK,
            ModelRequest(system="", messages=request().messages, tools=tuple(SPECS)),
            "needs a 'submit' tool whose input schema lists the allowed next states",
        ),
        (WrongPlaybook(), request(), "right choice 'block_ip' in state 'investigate' is not one of"),
        (GreedyPlaybook(), request(made=0), "the playbook calls 'nmap' but the request offers only"),
    ],
)
def test_a_request_it_cannot_play_fails_loudly(playbook: Any, req: ModelRequest, message: str) -> None:
    model = simulated(EXACT, Sim().rng("model"), playbook=playbook)
    with pytest.raises(SimulationError, match=message.replace("(", r"\(").replace(")", r"\)")):
        create(model, req)


def test_outside_a_step_it_fails_loudly() -> None:
    model = simulated(EXACT, Sim().rng("model"))
    with pytest.raises(SimulationError) as raised:
        create(model, request(), state=None)
    assert str(raised.value).startswith(
        "SimulatedModel 'small' was called outside a run's step: it plays the state of "
        "windtunnel.orchestrator.current_step()"
    )


class StatePlaybook(ExamplePlaybook):
    """Calls one tool per state, named after it: shows which state the model plays."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: list[str] = []

    def calls(self, state: str) -> list[tuple[str, dict[str, Any]]]:
        self.seen.append(state)
        return [("siem_search", {"query": state, "hours": 1})]


def test_the_state_is_the_current_steps_not_the_prompts() -> None:
    playbook = StatePlaybook()
    model = simulated(EXACT, Sim().rng("model"), playbook=playbook)
    # The prompt names another state: the model plays the step's.
    response = create(model, request(first="State: investigate\n", made=0), state="triage")
    assert playbook.seen == ["triage"]
    [_, use] = response.content
    assert isinstance(use, ToolUseBlock)
    assert (use.name, use.input) == ("siem_search", {"query": "triage", "hours": 1})


def test_its_texts_name_no_domain() -> None:
    result = run_case(clean("small"), seed=3)
    texts = [b.text for r in responses(result) for b in r.content if isinstance(b, TextBlock)]
    assert texts
    assert not any(ALERT.id in text or "alert" in text.lower() for text in texts)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"skill": 1.5}, "skill\n  Input should be less than or equal to 1"),
        ({"floor": 1.0}, "floor\n  Input should be less than or equal to 0.99"),
        ({"hallucination_rate": 0.7, "malformed_rate": 0.5}, r"hallucination_rate=0.7 \+ malformed_rate=0.5"),
        ({"latency": {"median": 0}}, "latency.median\n  Input should be greater than 0"),
        ({"temperature": 0.2}, "temperature\n  Extra inputs are not permitted"),
    ],
)
def test_invalid_profiles_are_refused(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(pydantic.ValidationError, match=message):
        derive_tier("small", **changes)


def test_derive_tier_names_the_known_tiers() -> None:
    with pytest.raises(InvalidArgument) as raised:
        derive_tier("huge")
    assert (
        str(raised.value) == "unknown base='huge'; choose one of ['large', 'mid', 'small'] or a TierProfile"
    )
    with pytest.raises(InvalidArgument, match=r"did you mean 'small'\?$"):
        derive_tier("smal")
    assert derive_tier("large", skill=0.9).model_dump() == {
        **DEFAULT_TIERS["large"].model_dump(),
        "skill": 0.9,
    }


def test_confidence_is_stated_as_the_profile_says() -> None:
    truths = [MALICIOUS.model_copy(update={"difficulty": d / 10}) for d in range(11)]
    stated = []
    for seed, truth in enumerate(truths):
        result = run_case(clean("small", overconfidence=0.0), seed=seed, truth=truth)
        stated.append(confidence(result))
    # Harder cases, lower stated confidence (noise aside).
    assert statistics.correlation([float(d) for d in range(11)], stated) < -0.8
