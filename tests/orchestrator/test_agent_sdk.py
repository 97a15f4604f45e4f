"""The agent end to end through the real anthropic SDK and the fake Messages API."""

from __future__ import annotations

from windtunnel.orchestrator import LLMAgent, Trace, run
from windtunnel.reports import summarize_trace
from windtunnel.simulators import FakeMessagesAPI, HttpFault, ScriptedModel, Sim, respond, submit, tool_call

from .agent_kit import Sources, agent_workflow

CANARY = "sk-ant-canary-7f3a9c1e5b2d4f60"


def sdk_agent(api: FakeMessagesAPI, sim: Sim, sources: Sources, **kwargs: object) -> LLMAgent:
    model = api.model("claude-haiku-4-5", rng=sim.rng("fake_api/jitter"), api_key=CANARY, max_retries=2)
    return LLMAgent(
        model=model, system="You investigate alerts.", tools=sources.registry(), tier="small", **kwargs
    )  # type: ignore[arg-type]


def test_agent_through_the_sdk_with_a_429_and_an_unknown_tool() -> None:
    sources = Sources()
    script = ScriptedModel(
        [
            respond("Let me scan it.", tool_call("nmap", {"host": "web-01"})),
            respond("Reputation, then.", tool_call("threat_intel", {"ip": "203.0.113.9"})),
            respond("Malicious.", submit("escalate", 0.88, "known C2")),
        ],
        name="claude-haiku-4-5",
    )
    api = FakeMessagesAPI(script)
    api.fail_next(HttpFault(kind="rate_limit", retry_after=3))
    sim = Sim(seed=4)
    trace = Trace()
    with script:
        result = sim.run(
            run(agent_workflow(sdk_agent(api, sim, sources)), {"ip": "203.0.113.9"}, env=sim, trace=trace)
        )
    api.check()

    assert (result.status, result.final_state) == ("completed", "escalate")
    # The respx route really served the SDK: three answers plus the 429.
    assert api.route.called
    assert api.route.call_count == 4
    calls = trace.query(kind="model_called")
    assert [(c.retries, c.request_id, c.model) for c in calls] == [  # type: ignore[union-attr]
        (1, "req_fake_000002", "claude-haiku-4-5"),
        (0, "req_fake_000003", "claude-haiku-4-5"),
        (0, "req_fake_000004", "claude-haiku-4-5"),
    ]
    assert calls[0].latency == 3.0  # type: ignore[union-attr]  # the retry-after, in simulated time
    assert all(c.cost > 0 for c in calls)  # type: ignore[union-attr]  # real haiku prices
    [rejected] = trace.query(kind="tool_rejected")
    assert (rejected.tool, rejected.reason) == ("nmap", "unknown_tool")  # type: ignore[union-attr]
    assert sources.calls == [("threat_intel", {"ip": "203.0.113.9"})]
    # The served model saw the rejection as a tool_result error.
    fed_back = script.requests[1].messages[-1].content[0]
    assert fed_back.is_error  # type: ignore[union-attr]


def test_the_api_key_never_reaches_a_trace_or_a_report(tmp_path: object) -> None:
    sources = Sources()
    script = ScriptedModel([respond(submit("close"))], name="claude-haiku-4-5")
    api = FakeMessagesAPI(script)
    sim = Sim(seed=1)
    trace = Trace()
    with script:
        sim.run(run(agent_workflow(sdk_agent(api, sim, sources)), {"ip": "x"}, env=sim, trace=trace))
    # And a failing call: its error message must not carry the key either.
    failing = FakeMessagesAPI(ScriptedModel([], name="claude-haiku-4-5"), plan=lambda n, r: "server_error")
    sim.run(run(agent_workflow(sdk_agent(failing, sim, sources)), {"ip": "x"}, env=sim, trace=trace))

    # The canary really was sent (so its absence below means something)...
    assert CANARY in api.route.calls[0].request.headers["authorization"]
    assert trace.query(kind="model_called", error=None)
    assert [e for e in trace.query(kind="model_called") if e.error]  # type: ignore[union-attr]
    # ...and appears in none of what windtunnel writes.
    for text in (
        trace.dumps(wall_time=True),
        summarize_trace(trace),
        trace.to_frame().to_csv(),
        repr(api.attempts),
        repr(failing.attempts),
    ):
        assert CANARY not in text
