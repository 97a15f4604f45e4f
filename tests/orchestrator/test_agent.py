"""LLMAgent: the tool-use loop, submit, nudges, rejections, costs, and the trace."""

from __future__ import annotations

import pytest

from windtunnel.orchestrator import (
    Budget,
    InvalidArgument,
    LLMAgent,
    ModelCalled,
    ModelOverloaded,
    ModelRequest,
    Price,
    PriceTable,
    ToolResultBlock,
)
from windtunnel.simulators import ScriptedModel, ScriptError, respond, submit, tool_call

from .agent_kit import Sources, agent, run_agent


def test_tool_call_then_submit() -> None:
    sources = Sources()
    with ScriptedModel(
        [
            respond("Checking the IP.", tool_call("threat_intel", {"ip": "203.0.113.9"})),
            respond("It is malicious.", submit("close", 0.92, "known C2")),
        ]
    ) as model:
        result = run_agent(agent(model, sources, tier="small"))
    assert (result.status, result.final_state, result.data) == (
        "completed",
        "close",
        {"rationale": "known C2"},
    )
    [transition] = result.trace.query(kind="transition")
    assert transition.confidence == 0.92  # type: ignore[union-attr]
    assert sources.calls == [("threat_intel", {"ip": "203.0.113.9"})]
    calls = result.trace.query(kind="model_called")
    assert [(c.tier, c.model, c.error) for c in calls] == [("small", "scripted", None)] * 2  # type: ignore[union-attr]
    # The second request carries the tool result back to the model.
    second: ModelRequest = calls[1].request  # type: ignore[union-attr]
    [tool_result] = second.messages[-1].content
    assert isinstance(tool_result, ToolResultBlock)
    assert tool_result.content == '{"ip": "203.0.113.9", "reputation": "malicious"}'
    assert [t.name for t in second.tools] == ["siem_search", "threat_intel", "submit"]
    submit_schema = second.tools[-1].input_schema
    assert submit_schema["properties"]["next"]["enum"] == ["close", "escalate"]  # type: ignore[index]
    [called] = result.trace.query(kind="tool_called")
    assert (called.tool, called.status, called.attempts, called.duration) == ("threat_intel", "ok", 1, 1.0)  # type: ignore[union-attr]


def test_reasoning_text_is_in_the_trace() -> None:
    with ScriptedModel([respond("Thinking hard about it.", submit("close"))]) as model:
        result = run_agent(agent(model, Sources()))
    [call] = result.trace.query(kind="model_called")
    assert "Thinking hard about it." in result.trace.dumps()
    assert call.response.content[0].text == "Thinking hard about it."  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("use", "reason", "detail"),
    [
        (
            tool_call("nmap", {"host": "x"}),
            "unknown_tool",
            "no tool named 'nmap'; available tools: ['threat_intel']",
        ),
        (
            tool_call("threat_intel", {"ip": "not-an-ip"}),
            "invalid_arguments",
            "invalid arguments for 'threat_intel': ip: String should match pattern",
        ),
        (
            tool_call("threat_intel", {}),
            "invalid_arguments",
            "invalid arguments for 'threat_intel': ip: Field required",
        ),
        (
            tool_call("siem_search", {"query": "x"}),
            "not_allowed",
            "tool 'siem_search' is not available in state 'investigate'; available: ['threat_intel']",
        ),
    ],
)
def test_bad_tool_calls_are_rejected_and_explained(use: object, reason: str, detail: str) -> None:
    sources = Sources()
    with ScriptedModel([respond(use), respond(submit("escalate", 0.3))]) as model:
        result = run_agent(agent(model, sources, allow=["threat_intel"]))
    [rejected] = result.trace.query(kind="tool_rejected")
    assert rejected.reason == reason  # type: ignore[union-attr]
    assert rejected.detail.startswith(detail)  # type: ignore[union-attr]
    assert sources.calls == []
    fed_back = model.requests[1].messages[-1].content[0]
    assert isinstance(fed_back, ToolResultBlock)
    assert (fed_back.is_error, fed_back.content) == (True, rejected.detail)  # type: ignore[union-attr]
    assert result.final_state == "escalate"


def test_repeated_rejections_make_the_agent_give_up() -> None:
    bad = tool_call("nmap")
    with ScriptedModel([respond(bad), respond(bad, bad)]) as model:
        result = run_agent(agent(model, Sources(), max_rejections=3))
    assert len(result.trace.query(kind="tool_rejected")) == 3
    [gave_up] = result.trace.query(kind="agent_nudged")
    assert (gave_up.problem, gave_up.gave_up) == ("rejections", True)  # type: ignore[union-attr]
    [failed] = result.trace.query(kind="handler_failed")
    assert failed.error == "AgentError"  # type: ignore[union-attr]
    assert result.final_state == "escalate"


def test_no_submit_is_nudged_then_given_up() -> None:
    with ScriptedModel([respond("I think it's fine."), respond("Still fine."), respond("Fine!")]) as model:
        result = run_agent(agent(model, Sources(), nudges=2))
    nudged = result.trace.query(kind="agent_nudged")
    assert [(n.problem, n.gave_up) for n in nudged] == [  # type: ignore[union-attr]
        ("no_submit", False),
        ("no_submit", False),
        ("no_submit", True),
    ]
    assert model.requests[1].messages[-1].content[0].text.startswith("You called no tool.")  # type: ignore[union-attr]
    assert result.final_state == "escalate"


@pytest.mark.parametrize(
    ("bad_input", "problem"),
    [
        (
            {"next": "block_ip", "confidence": 0.9, "rationale": "x"},
            "next='block_ip' is not one of ['close', 'escalate']",
        ),
        ({"next": "close", "confidence": 1.7, "rationale": "x"}, "confidence=1.7 must be a number in [0, 1]"),
        ({"next": "close", "confidence": 0.5}, "rationale must be a non-empty string"),
        (
            {"next": "close", "confidence": 0.5, "rationale": "x", "mood": "good"},
            "unexpected fields ['mood']",
        ),
        ("not json", "'submit' input must be a JSON object"),
    ],
)
def test_malformed_submit_is_fed_back_and_retried(bad_input: object, problem: str) -> None:
    with ScriptedModel([respond(tool_call("submit", bad_input)), respond(submit("close", 0.8))]) as model:
        result = run_agent(agent(model, Sources()))
    [nudge] = result.trace.query(kind="agent_nudged")
    assert nudge.problem == "malformed_submit"  # type: ignore[union-attr]
    assert problem in nudge.detail  # type: ignore[union-attr]
    assert result.final_state == "close"


def test_max_turns_asks_for_a_submit_then_gives_up() -> None:
    look = respond(tool_call("siem_search", {"query": "beacon"}))
    with ScriptedModel([look, look, look, look]) as model:
        result = run_agent(agent(model, Sources(), max_turns=2, nudges=2))
    nudged = result.trace.query(kind="agent_nudged")
    assert [(n.problem, n.gave_up) for n in nudged] == [  # type: ignore[union-attr]
        ("max_turns", False),
        ("max_turns", False),
        ("max_turns", True),
    ]
    assert "You have used all 2 turns" in model.requests[2].messages[-1].content[0].text  # type: ignore[union-attr]


def test_every_model_call_is_priced_and_charged() -> None:
    prices = PriceTable({"scripted": Price(input=3.0, output=15.0)})
    with ScriptedModel(
        [
            respond(tool_call("siem_search", {"query": "q"}), input_tokens=1000, output_tokens=100),
            respond(submit("close"), input_tokens=2000, output_tokens=200),
        ]
    ) as model:
        result = run_agent(agent(model, Sources(), prices=prices))
    costs = [c.cost for c in result.trace.query(kind="model_called")]  # type: ignore[union-attr]
    assert costs == pytest.approx([0.0045, 0.009])
    assert result.cost == pytest.approx(0.0135)


def test_cost_budget_stops_an_expensive_agent() -> None:
    prices = PriceTable({"scripted": Price(input=3.0, output=15.0)})
    look = respond(tool_call("siem_search", {"query": "q"}), input_tokens=10_000, output_tokens=1000)
    with ScriptedModel([look, look]) as model:
        result = run_agent(agent(model, Sources(), prices=prices), budget=Budget(max_cost=0.05))
    assert result.status == "budget_exceeded"
    assert [e.budget for e in result.trace.query(kind="budget_exceeded")] == ["cost"]  # type: ignore[union-attr]


def test_model_error_is_recorded_and_handled_by_policy() -> None:
    with ScriptedModel(
        [ModelOverloaded("claude: overloaded", model="claude", status=529, retries=2)]
    ) as model:
        result = run_agent(agent(model, Sources()))
    [call] = result.trace.query(kind="model_called")
    assert (call.error, call.response, call.retries) == ("claude: overloaded", None, 2)  # type: ignore[union-attr]
    [failed] = result.trace.query(kind="handler_failed")
    assert failed.error == "ModelOverloaded"  # type: ignore[union-attr]
    assert result.final_state == "escalate"


def test_scripted_model_fails_loudly() -> None:
    model = ScriptedModel([respond(submit("close")), respond(submit("close"))])
    run_agent(agent(model, Sources()))
    with pytest.raises(ScriptError, match=r"has 1 unused step of 2 \(called 1 times\)"):
        model.verify()
    short = ScriptedModel([respond("hmm")])
    # A script that runs out is the test's mistake, not the agent's failure: it is
    # not retried or escalated by the engine, it ends the run loudly...
    with pytest.raises(ScriptError, match="got call 2 but its script has 1 step"):
        run_agent(agent(short, Sources()))
    with pytest.raises(ScriptError, match="got call 2 but its script has 1 step"):
        short.verify()  # ...and the model still reports it


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"allow": ["nope", "threat_intl"]},
            "allow names unknown ['nope', 'threat_intl']; choose from ['siem_search', 'threat_intel']; "
            "did you mean 'threat_intel' for 'threat_intl'?",
        ),
        ({"max_turns": 0}, "max_turns=0 must be an int >= 1"),
        ({"max_turns": 1.5}, "max_turns=1.5 must be an int >= 1"),
        ({"max_tokens": "1024"}, "max_tokens='1024' must be an int >= 1"),
        ({"max_rejections": True}, "max_rejections=True must be an int >= 1"),
        ({"nudges": -1}, "nudges=-1 must be an int >= 0"),
        ({"nudges": None}, "nudges=None must be an int >= 0"),
    ],
)
def test_bad_agent_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        LLMAgent(model=ScriptedModel([]), system="s", tools=Sources().registry(), **kwargs)  # type: ignore[arg-type]
    assert str(raised.value) == message


def test_model_called_events_round_trip_through_json() -> None:
    with ScriptedModel(
        [respond("x", tool_call("siem_search", {"query": "q"})), respond(submit("close"))]
    ) as model:
        result = run_agent(agent(model, Sources()))
    from windtunnel.orchestrator import Trace, event_adapter

    loaded = [event_adapter.validate_json(line) for line in result.trace.dumps(wall_time=True).splitlines()]
    assert Trace.from_events(loaded).dumps() == result.trace.dumps()
    assert isinstance(loaded[2], ModelCalled)
