"""The fake Messages API: the real SDK path offline, its retries and faults, in virtual time."""

from __future__ import annotations

import itertools
import random
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field

import anthropic
import httpx
import httpx2
import pytest
import respx

from windtunnel.orchestrator import InvalidArgument
from windtunnel.orchestrator.errors import (
    ModelError,
    ModelOverloaded,
    ModelRateLimited,
    ModelRequestError,
    ModelResponseError,
    ModelServerError,
    ModelTimeout,
)
from windtunnel.orchestrator.model import (
    Message,
    ModelRequest,
    ModelResponse,
    TextBlock,
    ToolSpec,
    ToolUseBlock,
    Usage,
)
from windtunnel.simulators import Sim
from windtunnel.simulators.fake_api import Attempt, FakeAPIError, FakeMessagesAPI, HttpFault, HttpFaultKind

NAME = "claude-haiku-4-5"
CANARY = "sk-ant-CANARY-5d1e0c7b93a24f6e"
REQUEST = ModelRequest(
    system="You triage security alerts.",
    messages=(
        Message(role="user", content=(TextBlock(text="Alert 42: 300 failed logins from 203.0.113.9"),)),
    ),
    tools=(
        ToolSpec(
            name="lookup_ip",
            description="Reputation of an IP address.",
            input_schema={"type": "object", "properties": {"ip": {"type": "string"}}, "required": ["ip"]},
        ),
    ),
    max_tokens=256,
)
ANSWER = ModelResponse(
    model=NAME,
    content=(
        TextBlock(text="Checking the source first."),
        ToolUseBlock(id="toolu_01", name="lookup_ip", input={"ip": "203.0.113.9"}),
    ),
    stop_reason="tool_use",
    usage=Usage(input_tokens=120, output_tokens=34, cache_read_input_tokens=7, cache_creation_input_tokens=5),
    id="msg_01",
)


@dataclass
class Canned:
    """A Model that answers every request with ``answer`` and remembers what it was asked."""

    name: str = NAME
    answer: ModelResponse = ANSWER
    seen: list[ModelRequest] = field(default_factory=list)

    async def create(self, request: ModelRequest) -> ModelResponse:
        self.seen.append(request)
        return self.answer


def retry_counts(api: FakeMessagesAPI) -> list[str]:
    return [call.request.headers["x-stainless-retry-count"] for call in api.route.calls]


def test_the_sdk_goes_through_respx_and_the_answer_comes_back_whole() -> None:
    served = Canned()
    api = FakeMessagesAPI(served)
    sim = Sim(seed=0)

    response = sim.run(api.model(NAME, rng=sim.rng("fake_api/jitter")).create(REQUEST))

    assert api.route.called
    assert api.route.call_count == 1
    assert response == ModelResponse(
        model=NAME,
        content=ANSWER.content,
        stop_reason="tool_use",
        usage=ANSWER.usage,
        id="msg_01",
        request_id="req_fake_000001",
        retries=0,
    )
    assert served.seen == [REQUEST]
    assert api.route.calls.last.request.headers["user-agent"].startswith("AsyncAnthropic/Python ")
    assert api.attempts == (
        Attempt(
            number=1, at=0.0, model=NAME, retry_count=0, fault=None, status=200, request_id="req_fake_000001"
        ),
    )
    api.check()


def test_a_429_with_retry_after_is_retried_after_exactly_that_long() -> None:
    api = FakeMessagesAPI(Canned())
    api.fail_next(HttpFault(kind="rate_limit", retry_after=3))
    sim = Sim(seed=0, start=100.0)

    response = sim.run(api.model(NAME, rng=sim.rng("fake_api/jitter")).create(REQUEST))

    assert response.retries == 1
    assert response.request_id == "req_fake_000002"
    assert api.route.call_count == 2
    assert sim.now == 103.0
    assert retry_counts(api) == ["0", "1"]
    assert [(a.at, a.status, a.fault) for a in api.attempts] == [
        (100.0, 429, "rate_limit"),
        (103.0, 200, None),
    ]


@pytest.mark.parametrize(
    ("kind", "error", "attempts", "status", "request_id", "retries"),
    [
        ("rate_limit", ModelRateLimited, 3, 429, "req_fake_000003", 2),
        ("overloaded", ModelOverloaded, 3, 529, "req_fake_000003", 2),
        ("server_error", ModelServerError, 3, 500, "req_fake_000003", 2),
        ("connect_timeout", ModelTimeout, 3, None, None, 2),
        ("read_timeout", ModelTimeout, 3, None, None, 2),
        # The SDK does not retry a body it cannot parse.
        ("malformed_json", ModelResponseError, 1, 200, "req_fake_000001", 0),
    ],
)
def test_a_fault_past_max_retries_raises_the_matching_model_error(
    kind: HttpFaultKind,
    error: type[ModelError],
    attempts: int,
    status: int | None,
    request_id: str | None,
    retries: int,
) -> None:
    served = Canned()
    api = FakeMessagesAPI(served, plan=lambda number, request: kind)
    sim = Sim(seed=0)
    model = api.model(NAME, rng=sim.rng("fake_api/jitter"), max_retries=2)

    with pytest.raises(error) as raised:
        sim.run(model.create(REQUEST))

    assert type(raised.value) is error
    assert (raised.value.status, raised.value.request_id, raised.value.retries) == (
        status,
        request_id,
        retries,
    )
    assert raised.value.model == NAME
    assert api.route.call_count == attempts
    assert retry_counts(api) == [str(n) for n in range(attempts)]
    assert [attempt.fault for attempt in api.attempts] == [kind] * attempts
    assert served.seen == []
    api.check()


def test_timeouts_take_the_clients_own_timeout_in_simulated_time() -> None:
    api = FakeMessagesAPI(Canned())
    api.fail_next("read_timeout", "connect_timeout")
    sim = Sim(seed=0)
    model = api.model(NAME, rng=sim.rng("fake_api/jitter"), timeout=30.0)

    response = sim.run(model.create(REQUEST))

    first, second, third = (attempt.at for attempt in api.attempts)
    assert response.retries == 2
    assert first == 0.0
    # Each timeout lasts the client's 30 s; the SDK then backs off 0.5 s, then 1 s,
    # each shortened by up to 25 % of jitter.
    assert 30.0 + 0.375 <= second <= 30.0 + 0.5
    assert second + 30.0 + 0.75 <= third <= second + 30.0 + 1.0


def jittered_timings(seed: int) -> list[float]:
    api = FakeMessagesAPI(Canned())
    api.fail_next(*[HttpFault(kind="server_error")] * 4)
    sim = Sim(seed=seed)
    sim.run(api.model(NAME, rng=sim.rng("fake_api/jitter"), max_retries=4).create(REQUEST))
    return [attempt.at for attempt in api.attempts]


def test_jittered_back_off_depends_on_the_seed_only() -> None:
    state = random.getstate()
    try:
        random.seed(1)
        first = jittered_timings(7)
        random.seed(2)  # the global generator must not matter
        again = jittered_timings(7)
    finally:
        random.setstate(state)

    assert first == again
    assert jittered_timings(8) != first
    # The SDK's back-off, 0.5 s doubling, each shortened by up to 25 % of jitter.
    gaps = [later - earlier for earlier, later in itertools.pairwise(first)]
    assert all(0.75 * full <= gap <= full for gap, full in zip(gaps, (0.5, 1.0, 2.0, 4.0), strict=True))


def test_copies_of_the_client_keep_the_seeded_jitter() -> None:
    def timings(seed: int) -> list[float]:
        api = FakeMessagesAPI(Canned())
        api.fail_next("server_error", "overloaded")
        sim = Sim(seed=seed)
        client = api.client(rng=sim.rng("fake_api/jitter"), max_retries=0).with_options(max_retries=2)

        async def call() -> None:
            await client.messages.create(
                model=NAME, max_tokens=8, messages=[{"role": "user", "content": "hi"}]
            )

        sim.run(call())
        return [attempt.at for attempt in api.attempts]

    assert timings(3) == timings(3)
    assert len(timings(3)) == 3


def test_the_api_key_is_sent_but_never_kept_or_shown() -> None:
    api = FakeMessagesAPI(Canned())
    sim = Sim(seed=0)
    model = api.model(NAME, rng=sim.rng("fake_api/jitter"), api_key=CANARY, max_retries=1)
    response = sim.run(model.create(REQUEST))
    failures: list[ModelError] = []
    for kind in ("rate_limit", "read_timeout", "malformed_json"):
        api.fail_next(kind, kind)
        with pytest.raises(ModelError) as raised:
            sim.run(model.create(REQUEST))
        failures.append(raised.value)

    # Proof that the key went out: respx holds it (which is why its calls are never serialized).
    assert [CANARY in value for value in api.route.calls.last.request.headers.values()].count(True) == 1
    shown = [repr(api), repr(model), repr(response), repr(api.attempts), repr(api.errors)]
    for failure in failures:
        shown += [str(failure), repr(failure), "".join(traceback.format_exception(failure))]
        shown += [repr(vars(failure))]
    assert not [text for text in shown if CANARY in text]


def test_models_are_chosen_by_name_and_an_unknown_name_gets_the_apis_404() -> None:
    haiku, opus = Canned(name=NAME), Canned(name="claude-opus-4-6")
    api = FakeMessagesAPI({haiku.name: haiku, opus.name: opus})
    sim = Sim(seed=0)
    rng = sim.rng("fake_api/jitter")

    sim.run(api.model("claude-opus-4-6", rng=rng).create(REQUEST))
    with pytest.raises(ModelRequestError, match=r"HTTP 404.*model: claude-nope") as raised:
        sim.run(api.model("claude-nope", rng=rng).create(REQUEST))

    assert (haiku.seen, opus.seen) == ([], [REQUEST])
    assert (raised.value.status, raised.value.request_id, raised.value.retries) == (404, "req_fake_000002", 0)
    assert api.route.call_count == 2


def test_the_plan_decides_each_attempt_that_no_queued_fault_claims() -> None:
    asked: list[tuple[int, str]] = []

    def plan(number: int, request: httpx2.Request | None) -> HttpFaultKind | None:
        assert request is not None
        asked.append((number, request.headers["x-stainless-retry-count"]))
        return "overloaded" if number == 2 else None

    api = FakeMessagesAPI(Canned(), plan=plan)
    api.fail_next(HttpFault(kind="rate_limit", retry_after=1.5))
    sim = Sim(seed=0)

    response = sim.run(api.model(NAME, rng=sim.rng("fake_api/jitter")).create(REQUEST))

    assert response.retries == 2
    assert asked == [(2, "1"), (3, "2")]
    assert [attempt.fault for attempt in api.attempts] == ["rate_limit", "overloaded", None]
    assert api.attempts[1].at == 1.5


class Broken:
    name = NAME

    async def create(self, request: ModelRequest) -> ModelResponse:
        raise RuntimeError("bug in the served model")


@pytest.mark.parametrize(
    "make",
    [
        lambda: FakeMessagesAPI(Broken()),
        lambda: FakeMessagesAPI(Canned(), plan=lambda number, request: "nope"),  # type: ignore[arg-type,return-value]
    ],
    ids=["model-raises", "plan-returns-a-bad-name"],
)
def test_a_failure_of_the_fake_itself_is_raised_at_once_not_retried(
    make: Callable[[], FakeMessagesAPI],
) -> None:
    api = make()
    sim = Sim(seed=0)

    with pytest.raises(FakeAPIError, match="not a simulated fault"):
        sim.run(api.model(NAME, rng=sim.rng("fake_api/jitter")).create(REQUEST))

    assert api.route.call_count == 1
    assert len(api.errors) == 1
    with pytest.raises(FakeAPIError, match="failed 1 time") as checked:
        api.check()
    assert checked.value.__cause__ is api.errors[0]


def test_a_direct_model_takes_the_sdk_only_for_a_call_whose_first_attempt_fails() -> None:
    def run(how: str) -> tuple[list[ModelResponse], list[ModelRequest], tuple[Attempt, ...], list[bool]]:
        asked: list[bool] = []  # whether the plan was shown a request

        def plan(number: int, request: httpx2.Request | None) -> HttpFaultKind | None:
            asked.append(request is not None)
            return "overloaded" if number == 1 else None

        served, sim = Canned(), Sim(seed=0)
        api = FakeMessagesAPI(served, plan=plan)
        model = getattr(api, how)(NAME, rng=sim.rng("fake_api/jitter"))
        responses = [sim.run(model.create(REQUEST)) for _ in range(2)]
        assert api.route.call_count == (2 if how == "direct_model" else 3)
        return responses, served.seen, api.attempts, asked

    *direct, asked = run("direct_model")
    *sdk, _ = run("model")

    assert direct == sdk
    assert [(r.request_id, r.retries) for r in direct[0]] == [("req_fake_000002", 1), ("req_fake_000003", 0)]
    assert asked == [False, True, False]  # each first attempt is decided before any request exists


class Unserializable:
    name = NAME

    async def create(self, request: ModelRequest) -> ModelResponse:
        use = ToolUseBlock(id="toolu_01", name="lookup_ip", input={"ip": object()})
        return ModelResponse(model=NAME, content=(use,), stop_reason="tool_use", usage=ANSWER.usage)


@pytest.mark.parametrize("served", [Broken(), Unserializable()], ids=["model-raises", "answer-not-json"])
def test_a_direct_model_raises_a_failure_of_the_served_model_as_the_sdk_path_does(served: object) -> None:
    failures = {}
    for how in ("model", "direct_model"):
        api = FakeMessagesAPI(served)  # type: ignore[arg-type]
        sim = Sim(seed=0)
        with pytest.raises(FakeAPIError, match=r"POST /v1/messages.*not a simulated fault") as raised:
            sim.run(getattr(api, how)(NAME, rng=sim.rng("fake_api/jitter")).create(REQUEST))
        failures[how] = str(raised.value), type(api.errors[0]), api.attempts

    assert failures["direct_model"] == failures["model"]
    assert [(a.number, a.status) for a in failures["model"][2]] == [(1, None)]


def test_routes_added_with_httpx_exceptions_work_and_unrouted_requests_fail_loudly() -> None:
    api = FakeMessagesAPI(Canned())
    sim = Sim(seed=0)
    client = api.client(rng=sim.rng("fake_api/jitter"), max_retries=1)

    async def list_models() -> object:
        return await client.models.list()

    with pytest.raises(FakeAPIError, match="not mocked"):
        sim.run(list_models())
    route = api.router.get("/v1/models").mock(side_effect=httpx.ConnectTimeout)
    with pytest.raises(anthropic.APITimeoutError):
        sim.run(list_models())

    assert route.call_count == 2
    assert len(api.errors) == 1


@pytest.mark.parametrize("base_url", ["https://fake-messages-api.invalid", "http://127.0.0.1:8080/api"])
def test_the_messages_route_matches_what_a_relative_route_on_the_base_url_matches(base_url: str) -> None:
    api = FakeMessagesAPI(Canned(), base_url=base_url)
    relative = respx.Router(base_url=base_url).post("/v1/messages")
    urls = [f"{base_url}/v1/messages", f"{base_url}/v1/messages?beta=true", f"{base_url}/v1/models"]
    urls += ["https://fake-messages-api.invalid/v1/messages", "http://127.0.0.1:8080/v1/messages"]
    requests = [httpx.Request(method, url) for method in ("POST", "GET") for url in urls]

    matched = [bool(api.route.pattern.match(request)) for request in requests]

    assert matched == [bool(relative.pattern.match(request)) for request in requests]
    assert matched[:2] == [True, True]  # POST to the messages path, with or without a query
    assert not any(matched[len(urls) :])  # never a GET


KINDS = "['rate_limit', 'overloaded', 'server_error', 'connect_timeout', 'read_timeout', 'malformed_json']"


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (
            lambda: FakeMessagesAPI(Canned()).fail_next("nope"),  # type: ignore[arg-type]
            f"unknown kind='nope'; choose one of {KINDS}",
        ),
        (
            lambda: HttpFault(kind="timeout"),  # type: ignore[arg-type]
            f"unknown kind='timeout'; choose one of {KINDS}; did you mean 'read_timeout'?",
        ),
        (
            lambda: HttpFault(kind="read_timeout", retry_after=1),
            "retry_after applies to rate_limit, overloaded, server_error faults, not kind='read_timeout'",
        ),
        (
            lambda: HttpFault(kind="rate_limit", retry_after=-1),
            "retry_after=-1 must be a finite number >= 0, or None",
        ),
        (
            lambda: HttpFault(kind="overloaded", retry_after=float("inf")),
            "retry_after=inf must be a finite number >= 0, or None",
        ),
        (
            lambda: HttpFault(kind="overloaded", retry_after="3"),  # type: ignore[arg-type]
            "retry_after='3' must be a finite number >= 0, or None",
        ),
        (
            lambda: FakeMessagesAPI({}),
            "models={} must be a Model or a non-empty mapping of model name -> Model",
        ),
        (
            lambda: FakeMessagesAPI({NAME: Canned()}).direct_model(NAME, rng=random.Random(0)),
            "direct_model() serves one Model; with models by name, use model()",
        ),
    ],
)
def test_invalid_arguments_are_refused_with_a_useful_message(
    build: Callable[[], object], message: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        build()
    assert str(raised.value) == message
