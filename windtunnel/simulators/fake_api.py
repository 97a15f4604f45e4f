"""`FakeMessagesAPI`: Anthropic's Messages API served offline, for the real SDK, with HTTP faults.

The real ``anthropic`` SDK talks to a respx router through an ``httpx2.MockTransport``:
no socket is opened and nothing is patched globally. The router answers
``POST /v1/messages`` from any :class:`~windtunnel.orchestrator.model.Model`, or
fails the attempt on demand (429, 529, 500, timeouts, a malformed body), so the
SDK's own retries, back-off and error classes run exactly as in production, in
the simulation's virtual time.

Secrets: :attr:`FakeMessagesAPI.attempts` holds no header and no key, so it may go
into a trace. respx's recorded calls (``api.route.calls``, ``api.router.calls``)
hold the requests with their headers, the API key included: read them in a test,
never serialize or log them.
"""

from __future__ import annotations

import asyncio
import inspect
import json
import random
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any, Literal, Self, TypeAlias, get_args

import anthropic
import httpx
import httpx2
import respx
from anthropic._base_client import get_platform
from anthropic._constants import INITIAL_RETRY_DELAY, MAX_RETRY_DELAY
from anthropic._models import FinalRequestOptions
from respx.patterns import M, Pattern

from windtunnel.orchestrator.anthropic_model import AnthropicModel
from windtunnel.orchestrator.errors import InvalidArgument, SimulationError
from windtunnel.orchestrator.model import (
    Model,
    ModelRequest,
    ModelResponse,
    request_from_api,
    request_to_api,
    response_from_api,
    response_to_api,
)
from windtunnel.orchestrator.validation import check_choice, check_number

__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_BASE_URL",
    "HTTP_FAULT_KINDS",
    "Attempt",
    "AttemptPlan",
    "FakeAPIError",
    "FakeMessagesAPI",
    "HttpFault",
    "HttpFaultKind",
]

HttpFaultKind: TypeAlias = Literal[
    "rate_limit", "overloaded", "server_error", "connect_timeout", "read_timeout", "malformed_json"
]
HTTP_FAULT_KINDS: tuple[HttpFaultKind, ...] = get_args(HttpFaultKind)
_STATUS: dict[HttpFaultKind, tuple[int, str]] = {
    "rate_limit": (429, "rate_limit_error"),
    "overloaded": (529, "overloaded_error"),
    "server_error": (500, "api_error"),
}
# A 200 whose JSON stops mid-way, as when a proxy cuts the connection.
_TRUNCATED = b'{"id": "msg_fake", "type": "message", "role": "assistant", "content": [{"type": "te'

DEFAULT_BASE_URL = "https://fake-messages-api.invalid"  # `.invalid` never resolves: no accidental network
DEFAULT_API_KEY = "sk-ant-fake-windtunnel"


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpFault:
    """One failed HTTP attempt: ``HttpFault(kind="rate_limit", retry_after=3)``."""

    kind: HttpFaultKind
    retry_after: float | None = None
    """Seconds sent in ``retry-after`` with a 429, 529 or 500; None sends none, so the SDK backs off
    with jitter (drawn from the client's ``rng``)."""

    def __post_init__(self) -> None:
        check_choice("kind", self.kind, HTTP_FAULT_KINDS)
        check_number("retry_after", self.retry_after, low=0, finite=True, optional=True)
        if self.retry_after is not None and self.kind not in _STATUS:
            raise InvalidArgument(
                f"retry_after applies to {', '.join(_STATUS)} faults, not kind={self.kind!r}"
            )


AttemptPlan: TypeAlias = Callable[[int, httpx2.Request | None], HttpFault | HttpFaultKind | None]
"""Decides per attempt, given its 1-based number and request, whether to fail it (see ``plan=``);
the request is None for the first attempt of a :meth:`FakeMessagesAPI.direct_model` call,
decided before any HTTP request is built."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Attempt:
    """One HTTP attempt the fake answered; holds no header or key, so it is safe to trace."""

    number: int
    """1-based, in arrival order, across every client of this API."""
    at: float
    """Loop time when the attempt arrived."""
    model: str | None
    """The body's ``model`` field, when the body could be read."""
    retry_count: int | None
    """The SDK's ``x-stainless-retry-count``: 0 for a first try, 1 for the first retry, ..."""
    fault: HttpFaultKind | None
    status: int | None
    """HTTP status answered; None when no response came (a timeout or a failure of the fake)."""
    request_id: str | None


class FakeAPIError(SimulationError, anthropic.AnthropicError):
    """The fake API itself failed (a bug in the served Model or the fake), not a simulated fault.

    It derives from ``anthropic.AnthropicError`` so that the SDK neither wraps it as a
    connection error nor retries it: it reaches the caller as it is.
    """


class FakeMessagesAPI:
    """A fake ``POST /v1/messages``: the real SDK in, a windtunnel ``Model`` out, faults on demand.

    Example:
        >>> from windtunnel.orchestrator.model import ModelRequest, ModelResponse, TextBlock, Usage
        >>> from windtunnel.simulators import Sim
        >>> class Hello:
        ...     name = "hello"
        ...     async def create(self, request: ModelRequest) -> ModelResponse:
        ...         hi, usage = (TextBlock(text="hi"),), Usage(input_tokens=3, output_tokens=1)
        ...         return ModelResponse(model=self.name, content=hi, stop_reason="end_turn", usage=usage)
        >>> sim = Sim(seed=1)
        >>> api = FakeMessagesAPI(Hello())
        >>> api.fail_next(HttpFault(kind="rate_limit", retry_after=3))
        >>> model = api.model("claude-haiku-4-5", rng=sim.rng("fake_api/jitter"))
        >>> response = sim.run(model.create(ModelRequest(system="", messages=())))
        >>> response.retries, response.request_id, sim.now
        (1, 'req_fake_000002', 3.0)
    """

    def __init__(
        self,
        models: Model | Mapping[str, Model],
        *,
        plan: AttemptPlan | None = None,
        base_url: str = DEFAULT_BASE_URL,
    ) -> None:
        """Args:
        models: one Model answering every model name, or a mapping from the body's ``model``
            field to the Model that answers it (other names get the API's 404).
        plan: asked on each attempt that no queued fault claims; returns a fault or None.
        base_url: where the SDK clients send their requests.
        """
        if isinstance(models, Mapping) and not models:
            raise InvalidArgument(
                f"models={models!r} must be a Model or a non-empty mapping of model name -> Model"
            )
        self._models = models
        self._plan = plan
        self.base_url = base_url.rstrip("/")
        self._queue: deque[HttpFault] = deque()
        self._attempts: list[Attempt] = []
        self._count = 0
        self._errors: list[Exception] = []

    # The router and its route cost ~0.1 ms to build (four respx call lists, mostly): only an
    # SDK client needs them.
    @cached_property
    def router(self) -> respx.Router:
        """The respx router; its recorded calls hold the API key (never serialize them)."""
        router = respx.Router(base_url=self.base_url, assert_all_called=False, assert_all_mocked=True)
        router.route(_messages_pattern(self.base_url), name="messages").mock(side_effect=self._serve)
        return router

    @property
    def route(self) -> respx.Route:
        """The route of ``POST /v1/messages``: ``route.call_count`` is the SDK's attempts."""
        return self.router["messages"]

    def __repr__(self) -> str:
        names = sorted(self._models) if isinstance(self._models, Mapping) else [self._models.name]
        return f"FakeMessagesAPI(models={names!r}, attempts={self._count}, queued={len(self._queue)})"

    @property
    def attempts(self) -> tuple[Attempt, ...]:
        """Every attempt answered so far, by number; safe to put in a trace."""
        return tuple(sorted(self._attempts, key=lambda attempt: attempt.number))

    @property
    def errors(self) -> tuple[Exception, ...]:
        """Exceptions the fake hit while answering (bugs, not simulated faults)."""
        return tuple(self._errors)

    def check(self) -> None:
        """Raise :class:`FakeAPIError` if the fake failed while answering, even if a caller swallowed it."""
        if self._errors:
            first, count = self._errors[0], len(self._errors)
            raise FakeAPIError(
                f"the fake Messages API failed {count} time(s); the first: {type(first).__name__}: {first}"
            ) from first

    def fail_next(self, *faults: HttpFault | HttpFaultKind) -> None:
        """Fail the next attempts, one fault per attempt, before serving normally again."""
        self._queue.extend(_as_fault(fault) for fault in faults)

    def client(
        self,
        *,
        rng: random.Random,
        api_key: str = DEFAULT_API_KEY,
        max_retries: int = 2,
        timeout: float | None = None,
    ) -> anthropic.AsyncAnthropic:
        """A real ``AsyncAnthropic`` wired to this API and safe on the virtual loop.

        Args:
            rng: the stream for the SDK's retry jitter, e.g. ``sim.rng("fake_api/jitter")``.
            api_key: sent by the SDK in its auth header; the fake never keeps it.
            max_retries: the SDK's own retries.
            timeout: the SDK's request timeout in seconds (default: the SDK's, 600 s; a
                ``read_timeout`` fault waits this long in simulated time).
        """
        return _SimAsyncAnthropic(
            jitter=rng,
            api_key=api_key,
            base_url=self.base_url,
            http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(self._bridge), trust_env=False),
            max_retries=max_retries,
            timeout=anthropic.NOT_GIVEN if timeout is None else timeout,
            open_telemetry=False,  # no tracer lookup, no wall-clock span start
        )

    def model(
        self,
        name: str,
        *,
        rng: random.Random,
        api_key: str = DEFAULT_API_KEY,
        max_retries: int = 2,
        timeout: float | None = None,
    ) -> AnthropicModel:
        """An :class:`AnthropicModel` named ``name`` over :meth:`client` (same arguments)."""
        client = self.client(rng=rng, api_key=api_key, max_retries=max_retries, timeout=timeout)
        return AnthropicModel(name, client=client)

    async def handle(self, request: httpx2.Request) -> httpx2.Response:
        """Answer one HTTP request as the API would (what :mod:`.fake_server` serves over a socket)."""
        return await self._bridge(request)

    def direct_model(
        self,
        name: str,
        *,
        rng: random.Random,
        api_key: str = DEFAULT_API_KEY,
        max_retries: int = 2,
        timeout: float | None = None,
    ) -> Model:
        """Like :meth:`model`, but only a call whose first attempt fails takes the SDK.

        A call whose first attempt no fault claims is answered straight from the served
        Model, exactly as the SDK would have returned it (the request and response go
        through JSON, the request id and attempt are counted), in a fraction of the time;
        one whose first attempt fails takes the SDK, its retries and its back-off. The
        plan decides that first attempt when the call starts, with ``request`` None (the
        SDK builds its request without yielding to the loop: nothing can run between).
        Needs one served Model (not a mapping by name).
        """
        if isinstance(self._models, Mapping):
            raise InvalidArgument("direct_model() serves one Model; with models by name, use model()")
        served = self._models

        def sdk() -> AnthropicModel:
            return self.model(name, rng=rng, api_key=api_key, max_retries=max_retries, timeout=timeout)

        return _DirectModel(self, name, served, sdk)

    async def _bridge(self, request: httpx2.Request) -> httpx2.Response:
        # respx 0.23 speaks httpx; its patterns read httpx2 requests fine, but its
        # responses and exceptions must be translated for the SDK's httpx2 client.
        try:
            resolved = await self.router.async_handler(request)  # type: ignore[arg-type]
        except httpx2.TransportError:
            raise
        except httpx.TransportError as exc:
            twin = getattr(httpx2, type(exc).__name__, None)
            if isinstance(twin, type) and issubclass(twin, httpx2.TransportError):
                raise twin(str(exc), request=request) from None
            raise self._failed(exc, request) from exc
        except Exception as exc:
            # Raised as is, the SDK would call this a connection error and retry it.
            raise self._failed(exc, request) from exc
        return httpx2.Response(
            resolved.status_code, headers=resolved.headers.raw, content=resolved.content, request=request
        )

    def _failed(self, exc: Exception, request: httpx2.Request) -> FakeAPIError:
        self._errors.append(exc)
        return FakeAPIError(
            f"the fake Messages API failed answering {request.method} {request.url.path}: "
            f"{type(exc).__name__}: {exc}. This is a bug in the served Model or the fake, not a simulated "
            "fault; to fail an attempt on purpose use FakeMessagesAPI.fail_next() or plan="
        )

    def _failed_bare(self, exc: Exception) -> FakeAPIError:
        """What :meth:`_failed` says of the SDK's request, for a call answered without one."""
        return self._failed(exc, httpx2.Request("POST", f"{self.base_url}/v1/messages"))

    async def _serve(self, request: httpx2.Request) -> httpx.Response:
        self._count += 1
        number = self._count
        request_id = _request_id(number)
        at = asyncio.get_running_loop().time()
        model_name: str | None = None
        fault: HttpFault | None = None
        status: int | None = None
        try:
            body = json.loads(request.content)
            model_name = body.get("model") if isinstance(body, dict) else None
            fault = self._queue.popleft() if self._queue else self._planned(number, request)
            if fault is not None:
                response = await self._fault(fault, request, request_id)
            else:
                response = await self._answer(body, model_name, request_id)
            status = response.status_code
            return response
        finally:
            self._attempts.append(
                Attempt(
                    number=number,
                    at=at,
                    model=model_name if isinstance(model_name, str) else None,
                    retry_count=_retry_count(request),
                    fault=None if fault is None else fault.kind,
                    status=status,
                    request_id=None if status is None else request_id,
                )
            )

    # respx asks for the side effect's argspec on every attempt (to pass `route=` if it is
    # wanted); a signature given once makes that a lookup instead of ~15 us of introspection.
    _serve.__signature__ = inspect.signature(_serve)  # type: ignore[attr-defined]

    def _planned(self, number: int, request: httpx2.Request | None) -> HttpFault | None:
        if self._plan is None:
            return None
        decided = self._plan(number, request)
        return None if decided is None else _as_fault(decided)

    async def _fault(self, fault: HttpFault, request: httpx2.Request, request_id: str) -> httpx.Response:
        if fault.kind in _STATUS:
            status, error_type = _STATUS[fault.kind]
            headers = {} if fault.retry_after is None else {"retry-after": _seconds(fault.retry_after)}
            return _error(status, error_type, f"simulated {error_type}", request_id, headers)
        if fault.kind == "malformed_json":
            return httpx.Response(
                200,
                content=_TRUNCATED,
                headers={"content-type": "application/json", "request-id": request_id},
            )
        # A timeout takes the client's own timeout on the clock, then the client gives up.
        timeouts: dict[str, float | None] = request.extensions.get("timeout", {})
        if fault.kind == "connect_timeout":
            await asyncio.sleep(timeouts.get("connect") or 0.0)
            raise httpx2.ConnectTimeout("simulated connect timeout", request=request)
        await asyncio.sleep(timeouts.get("read") or 0.0)
        raise httpx2.ReadTimeout("simulated read timeout", request=request)

    async def _answer(self, body: Any, model_name: Any, request_id: str) -> httpx.Response:
        if isinstance(self._models, Mapping):
            served = self._models.get(model_name) if isinstance(model_name, str) else None
            if served is None:
                return _error(404, "not_found_error", f"model: {model_name}", request_id)
        else:
            served = self._models
        try:
            request = request_from_api(body)
        except (ValueError, KeyError, TypeError) as exc:
            return _error(400, "invalid_request_error", f"{type(exc).__name__}: {exc}", request_id)
        response = await served.create(request)
        return httpx.Response(
            200,
            content=json.dumps(response_to_api(response)).encode(),
            headers={"content-type": "application/json", "request-id": request_id},
        )


class _DirectModel:
    """A model of :meth:`FakeMessagesAPI.direct_model`: the SDK only for a call whose first attempt fails."""

    def __init__(
        self, api: FakeMessagesAPI, name: str, served: Model, sdk: Callable[[], AnthropicModel]
    ) -> None:
        self._api = api
        self._name = name
        self._served = served
        self._make_sdk = sdk
        self._sdk: AnthropicModel | None = None

    @property
    def name(self) -> str:
        """The model id sent to the API."""
        return self._name

    def __repr__(self) -> str:
        return f"FakeMessagesAPI.direct_model({self._name!r})"

    async def create(self, request: ModelRequest) -> ModelResponse:
        """Answer ``request`` as an :class:`AnthropicModel` over the fake would."""
        api = self._api
        loop = asyncio.get_running_loop()
        started = loop.time()
        # The SDK's JSON (it refuses NaN too, before any attempt), read back as the fake reads it.
        body = json.dumps(request_to_api(request, model=self._name), ensure_ascii=False, allow_nan=False)
        fault = api._queue.popleft() if api._queue else api._planned(api._count + 1, None)
        if fault is not None:
            # Decided once: the SDK's first attempt meets this fault instead of asking the plan.
            api._queue.appendleft(fault)
            if self._sdk is None:
                self._sdk = self._make_sdk()
            return await self._sdk.create(request)
        api._count += 1
        number = api._count
        status: int | None = None
        try:
            try:
                response = await self._served.create(request_from_api(json.loads(body)))
                answer = json.dumps(response_to_api(response))
            except Exception as exc:  # the served Model's bug: FakeAPIError, as through the SDK
                raise api._failed_bare(exc) from exc
            status = 200
        finally:
            api._attempts.append(
                Attempt(
                    number=number,
                    at=started,
                    model=self._name,
                    retry_count=0,
                    fault=None,
                    status=status,
                    request_id=None if status is None else _request_id(number),
                )
            )
        return response_from_api(
            json.loads(answer),
            request_id=_request_id(number),
            retries=0,
            latency=loop.time() - started,
        )


class _SimAsyncAnthropic(anthropic.AsyncAnthropic):
    """``AsyncAnthropic`` that needs no thread and draws its retry jitter from a seeded stream."""

    def __init__(self, *, jitter: random.Random | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # The SDK would fetch this on the first request with asyncio.to_thread, which a
        # virtual loop cannot wait for (the worker races the clock, or deadlocks it).
        self._platform = get_platform()
        # The SDK's copy() constructs without `jitter`; our copy() then sets the parent's.
        self._jitter = jitter if jitter is not None else random.Random(0)

    @property
    def user_agent(self) -> str:
        """What production's ``AsyncAnthropic`` sends, not this class's name."""
        return f"AsyncAnthropic/Python {self._version}"

    def copy(self, *args: Any, **kwargs: Any) -> Self:
        """The SDK's ``copy``/``with_options``, keeping the jitter stream."""
        client = super().copy(*args, **kwargs)
        client._jitter = self._jitter
        return client

    with_options = copy

    def _calculate_retry_timeout(
        self,
        remaining_retries: int,
        options: FinalRequestOptions,
        response_headers: httpx2.Headers | None = None,
    ) -> float:
        # The SDK's formula (anthropic 2.14), except that jitter comes from the seeded
        # stream instead of the global `random`, so back-off is the same for the same seed.
        retry_after = self._parse_retry_after_header(response_headers)
        if retry_after is not None and retry_after > 0:
            return min(retry_after, 4_294_967.0)
        nb_retries = min(options.get_max_retries(self.max_retries) - remaining_retries, 1000)
        sleep_seconds = min(INITIAL_RETRY_DELAY * pow(2.0, nb_retries), MAX_RETRY_DELAY)
        return max(sleep_seconds * (1 - 0.25 * self._jitter.random()), 0.0)


@lru_cache(maxsize=16)
def _messages_pattern(base_url: str) -> Pattern:
    """``POST {base_url}/v1/messages``, as ``router.post("/v1/messages")`` would match it.

    Parsed once per URL: a pattern never changes once built (an absolute one is not
    merged with the router's base), so every router may share it.
    """
    return M(method="POST", url=f"{base_url}/v1/messages")


def _request_id(number: int) -> str:
    return f"req_fake_{number:06d}"


def _as_fault(fault: HttpFault | HttpFaultKind) -> HttpFault:
    return fault if isinstance(fault, HttpFault) else HttpFault(kind=fault)


def _error(
    status: int, error_type: str, message: str, request_id: str, headers: Mapping[str, str] | None = None
) -> httpx.Response:
    """An error response in the API's shape: ``{"type": "error", "error": {...}, "request_id": ...}``."""
    body = {"type": "error", "error": {"type": error_type, "message": message}, "request_id": request_id}
    return httpx.Response(
        status,
        content=json.dumps(body).encode(),
        headers={"content-type": "application/json", "request-id": request_id, **(headers or {})},
    )


def _seconds(value: float) -> str:
    # Whole seconds as the API sends them ("3"); otherwise every digit, never an HTTP date.
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _retry_count(request: httpx2.Request) -> int | None:
    try:
        return int(request.headers["x-stainless-retry-count"])
    except (KeyError, ValueError):
        return None
