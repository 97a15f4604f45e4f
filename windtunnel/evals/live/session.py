"""`LiveSession`: real Messages API calls for the cells of a live experiment.

The calls run on one real asyncio loop in a thread of their own (the *I/O loop*),
through one ``AsyncAnthropic`` client: its retries, a concurrency limit (a
semaphore over the calls in flight), a :class:`RateLimiter` gating every HTTP
attempt and pausing them all after a ``retry-after``, and the :class:`CostMeter`'s
cap, checked before each call; a timeout per call. A cell's run calls :meth:`LiveSession.call` from its
own thread and waits for the answer (see :mod:`windtunnel.evals.live.models` for
why the run's clock stays virtual meanwhile).

The API key goes into the SDK client and nowhere else: the session keeps no copy,
and its ``repr`` names the base URL only.

Two things stop every call at once: a request the API refuses with a client error
no retry can fix (a bad or revoked key: :class:`APIRefused`, kept in
:attr:`LiveSession.refusal`), and :meth:`LiveSession.abort` (Ctrl-C), which also
cancels the calls in flight. Either way the cells cut short halt, and no call
starts after.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import CancelledError, Future
from typing import TYPE_CHECKING, Any

from windtunnel.orchestrator import (
    DEFAULT_PRICES,
    AnthropicModel,
    ModelError,
    ModelRequest,
    ModelRequestError,
    ModelResponse,
)

from .errors import APIRefused, CellHalted, LiveError, MissingAPIKey
from .limits import CostMeter, RateLimiter, retry_after, worst_case_cost

if TYPE_CHECKING:
    import anthropic
    import httpx2

__all__ = ["LiveSession", "require_key"]

KEY_VARIABLE = "ANTHROPIC_API_KEY"
TOKEN_VARIABLE = "ANTHROPIC_AUTH_TOKEN"
DEFAULT_TIMEOUT = 120.0
"""Seconds one HTTP attempt may take (the SDK's own default is 600)."""

# Client errors the SDK retries (a timeout, a lock, a rate limit); any other 4xx is final.
_RETRIED = frozenset({408, 409, 429})
_WHY = {
    400: "the API rejects the request itself",
    401: "the API key is wrong or revoked: check ANTHROPIC_API_KEY",
    403: "the key may not use this model or resource",
    404: "the API does not know this model id, or the base URL is wrong",
    413: "the request is too large",
}


def require_key() -> None:
    """Raise :class:`MissingAPIKey` unless ``ANTHROPIC_API_KEY`` or ``ANTHROPIC_AUTH_TOKEN`` is set."""
    if not (os.environ.get(KEY_VARIABLE) or os.environ.get(TOKEN_VARIABLE)):
        raise MissingAPIKey(
            f"{KEY_VARIABLE} is not set: a config that plays a real model needs it (or {TOKEN_VARIABLE}) "
            "to call the API; set it, or replay a recording instead (windtunnel run --replay DIR)"
        )


def refused(error: ModelError) -> bool:
    """Whether ``error`` is a client error no retry can fix (400, 401, 403, 404, 413, ...)."""
    status = error.status
    return isinstance(error, ModelRequestError) and status is not None and status not in _RETRIED


class LiveSession:
    """Real model calls, limited in concurrency, rate and cost; thread-safe; close it after use."""

    def __init__(
        self,
        *,
        concurrency: int = 4,
        max_cost: float | None = None,
        rpm: float | None = None,
        max_retries: int = 2,
        base_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        """Args:
        concurrency: model calls in flight at most.
        max_cost: USD the calls may spend in all (see :class:`CostMeter`); None for no cap.
        rpm: HTTP attempts per minute at most; None for no limit but ``retry-after``.
        max_retries: the SDK's retries of a failed attempt (429, 529, 5xx, timeouts).
        base_url: where the API is; by default ``ANTHROPIC_BASE_URL`` or Anthropic's.
        timeout: seconds one HTTP attempt may take before the SDK gives it up (and retries).

        Raises:
            MissingAPIKey: neither ``ANTHROPIC_API_KEY`` nor ``ANTHROPIC_AUTH_TOKEN`` is set.
        """
        import anthropic

        require_key()
        if concurrency < 1:
            raise LiveError(f"concurrency={concurrency} must be >= 1")
        if not timeout > 0:
            raise LiveError(f"timeout={timeout!r} must be a number of seconds > 0")
        self.concurrency = concurrency
        self.meter = CostMeter(max_cost=max_cost)
        self.limiter = RateLimiter(rpm=rpm)
        self.peak = 0
        """The most calls that were in flight at once."""
        self.refusal: APIRefused | None = None
        """The first request the API refused for good: it stopped every call after it."""
        self.aborted = False
        """True once :meth:`abort` was called."""
        self._flying = 0
        self._calls: set[Future[ModelResponse]] = set()
        http = anthropic.DefaultAsyncHttpxClient(
            event_hooks={"request": [self._before_attempt], "response": [self._after_attempt]}
        )
        self._http: httpx2.AsyncClient = http
        self._client: anthropic.AsyncAnthropic = anthropic.AsyncAnthropic(
            base_url=base_url, http_client=http, max_retries=max_retries, timeout=timeout
        )  # reads the key (or the token) from the environment itself: no copy of it here
        self._base_url = str(self._client.base_url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LiveSession(base_url={self._base_url!r}, concurrency={self.concurrency})"

    def call(self, model: str, request: ModelRequest) -> ModelResponse:
        """Send ``request`` to ``model`` and wait for the answer (from any thread but the I/O loop's).

        Raises:
            CellHalted: the cost cap refuses the call (``why="cost_cap"``), the API refused
                this or an earlier request for good (``"refused"``), or the session was
                aborted (``"interrupted"``).
            ModelError: the call failed after the SDK's retries.
        """
        self._go_on()
        worst = worst_case_cost(request, model=model)
        if not self.meter.reserve(worst):
            self._go_on()  # stopped for another reason while it waited
            spend = self.meter.spend()
            raise CellHalted(
                LiveError(
                    f"the cost cap max_cost=${spend.max_cost:g} is reached: ${spend.spent:.4f} spent in "
                    f"{spend.calls} calls, and this call may cost up to ${worst:.4f}"
                ),
                why="cost_cap",
            )
        future: Future[ModelResponse] = asyncio.run_coroutine_threadsafe(
            self._call(model, request), self._io()
        )
        with self._lock:
            self._calls.add(future)
        try:
            response = future.result()
        except ModelError as exc:
            self.meter.settle(worst, actual=0.0)  # failed attempts are not billed
            if refused(exc):
                self._refuse(exc)
                self._go_on()
            raise
        except CancelledError:
            self.meter.settle(worst, actual=0.0)
            self._go_on()
            raise
        except BaseException:
            future.cancel()
            self.meter.settle(worst, actual=0.0)
            raise
        finally:
            with self._lock:
                self._calls.discard(future)
        self.meter.settle(worst, actual=DEFAULT_PRICES.cost(response.model or model, response.usage))
        return response

    def _refuse(self, error: ModelError) -> None:
        status = error.status or 0
        why = _WHY.get(status, "a client error no retry can fix")
        with self._lock:
            if self.refusal is None:
                self.refusal = APIRefused(
                    f"the API refused a request with HTTP {status} ({why}): {error}. The experiment "
                    "stopped: the runs it cut short are not written; fix it and run the same command "
                    "again to resume"
                )
        self.meter.halt()

    def _go_on(self) -> None:
        """Raise :class:`CellHalted` if the session stopped for a refusal or an abort."""
        if self.refusal is not None:
            raise CellHalted(self.refusal, why="refused")
        if self.aborted:
            raise CellHalted(LiveError("the experiment was interrupted"), why="interrupted")

    def abort(self) -> None:
        """Start no call from now on and cancel the calls in flight (Ctrl-C); thread-safe."""
        with self._lock:
            self.aborted = True
            flying = list(self._calls)
        self.meter.halt()
        for future in flying:
            future.cancel()

    async def _call(self, model: str, request: ModelRequest) -> ModelResponse:
        assert self._semaphore is not None
        async with self._semaphore:
            self._flying += 1
            self.peak = max(self.peak, self._flying)
            try:
                return await AnthropicModel(model, client=self._client).create(request)
            finally:
                self._flying -= 1

    async def _before_attempt(self, request: httpx2.Request) -> None:
        await self.limiter.wait()

    async def _after_attempt(self, response: httpx2.Response) -> None:
        if response.status_code in (429, 503, 529):
            seconds = retry_after(dict(response.headers))
            if seconds is not None:
                self.limiter.pause(seconds)

    def _io(self) -> asyncio.AbstractEventLoop:
        """The I/O loop, started on first use (a replay never starts it)."""
        with self._lock:
            if self._loop is None:
                loop = asyncio.new_event_loop()
                self._semaphore = asyncio.Semaphore(self.concurrency)
                self._thread = threading.Thread(
                    target=loop.run_forever, name="windtunnel-live-io", daemon=True
                )
                self._thread.start()
                self._loop = loop
            return self._loop

    def close(self) -> None:
        """Close the client and stop the I/O loop."""
        with self._lock:
            loop, thread, self._loop = self._loop, self._thread, None
        if loop is None or thread is None:
            return
        asyncio.run_coroutine_threadsafe(self._client.close(), loop).result()
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()

    def __enter__(self) -> LiveSession:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
