"""`LiveSession`: real Messages API calls for the cells of a live experiment.

The calls run on one real asyncio loop in a thread of their own (the *I/O loop*),
through one ``AsyncAnthropic`` client: its retries, a concurrency limit (a
semaphore over the calls in flight), a :class:`RateLimiter` gating every HTTP
attempt and pausing them all after a ``retry-after``, and the :class:`CostMeter`'s
cap, checked before each call. A cell's run calls :meth:`LiveSession.call` from its
own thread and waits for the answer (see :mod:`windtunnel.evals.live.models` for
why the run's clock stays virtual meanwhile).

The API key goes into the SDK client and nowhere else: the session keeps no copy,
and its ``repr`` names the base URL only.
"""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING, Any

from windtunnel.orchestrator import DEFAULT_PRICES, AnthropicModel, ModelError, ModelRequest, ModelResponse

from .errors import CellHalted, LiveError, MissingAPIKey
from .limits import CostMeter, RateLimiter, retry_after, worst_case_cost

if TYPE_CHECKING:
    import anthropic
    import httpx2

__all__ = ["LiveSession"]

KEY_VARIABLE = "ANTHROPIC_API_KEY"


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
    ) -> None:
        """Args:
        concurrency: model calls in flight at most.
        max_cost: USD the calls may spend in all (see :class:`CostMeter`); None for no cap.
        rpm: HTTP attempts per minute at most; None for no limit but ``retry-after``.
        max_retries: the SDK's retries of a failed attempt (429, 529, 5xx, timeouts).
        base_url: where the API is; by default ``ANTHROPIC_BASE_URL`` or Anthropic's.

        Raises:
            MissingAPIKey: ``ANTHROPIC_API_KEY`` is not set.
        """
        import anthropic

        if not os.environ.get(KEY_VARIABLE):
            raise MissingAPIKey(
                f"{KEY_VARIABLE} is not set: a config that plays a real model needs it to call the API; "
                "set it, or replay a recording instead (windtunnel run --replay DIR)"
            )
        if concurrency < 1:
            raise LiveError(f"concurrency={concurrency} must be >= 1")
        self.concurrency = concurrency
        self.meter = CostMeter(max_cost=max_cost)
        self.limiter = RateLimiter(rpm=rpm)
        self.peak = 0
        """The most calls that were in flight at once."""
        self._flying = 0
        http = anthropic.DefaultAsyncHttpxClient(
            event_hooks={"request": [self._before_attempt], "response": [self._after_attempt]}
        )
        self._http: httpx2.AsyncClient = http
        self._client: anthropic.AsyncAnthropic = anthropic.AsyncAnthropic(
            base_url=base_url, http_client=http, max_retries=max_retries
        )  # reads the key from the environment itself: no copy of it here
        self._base_url = str(self._client.base_url)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._semaphore: asyncio.Semaphore | None = None
        self._start = threading.Lock()

    def __repr__(self) -> str:
        return f"LiveSession(base_url={self._base_url!r}, concurrency={self.concurrency})"

    def call(self, model: str, request: ModelRequest) -> ModelResponse:
        """Send ``request`` to ``model`` and wait for the answer (from any thread but the I/O loop's).

        Raises:
            CellHalted: the cost cap refuses the call (``why="cost_cap"``).
            ModelError: the call failed after the SDK's retries.
        """
        worst = worst_case_cost(request, model=model)
        if not self.meter.reserve(worst):
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
        try:
            response = future.result()
        except ModelError:
            self.meter.settle(worst, actual=0.0)  # failed attempts are not billed
            raise
        except BaseException:
            future.cancel()
            self.meter.settle(worst, actual=0.0)
            raise
        self.meter.settle(worst, actual=DEFAULT_PRICES.cost(response.model or model, response.usage))
        return response

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
        with self._start:
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
        with self._start:
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
