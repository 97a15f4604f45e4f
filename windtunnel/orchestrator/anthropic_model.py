"""`AnthropicModel`: the `Model` protocol over the official ``anthropic`` SDK."""

from __future__ import annotations

import asyncio
import json
import os
import re
from typing import TYPE_CHECKING, Any

from .errors import (
    ModelConnectionError,
    ModelError,
    ModelOverloaded,
    ModelRateLimited,
    ModelRequestError,
    ModelResponseError,
    ModelServerError,
    ModelTimeout,
)
from .model import ModelRequest, ModelResponse, request_to_api, response_from_api

if TYPE_CHECKING:
    import anthropic

__all__ = ["AnthropicModel", "redact"]

_KEY = re.compile(r"sk-ant-[A-Za-z0-9_-]+")
_REDACTED = "[redacted]"


def redact(text: str, *secrets: str | None) -> str:
    """``text`` without ``secrets``, the key variables' values, or anything shaped like an API key.

    >>> redact("invalid x-api-key: sk-ant-api03-abc_DEF-1 (my-token)", "my-token")
    'invalid x-api-key: [redacted] ([redacted])'
    """
    known = {*secrets, os.environ.get("ANTHROPIC_API_KEY"), os.environ.get("ANTHROPIC_AUTH_TOKEN")}
    for secret in sorted((s for s in known if s), key=len, reverse=True):
        text = text.replace(secret, _REDACTED)
    return _KEY.sub(_REDACTED, text)


class AnthropicModel:
    """Answers requests through ``anthropic.AsyncAnthropic``'s Messages API.

    SDK errors become typed windtunnel errors (:class:`ModelRateLimited`,
    :class:`ModelOverloaded`, ...); each response carries the request id, token
    usage, the SDK's retry count and the latency on the event loop's clock. The
    API key never leaves the client: errors carry the status, the request id and the
    API's message with the key (and anything shaped like one) redacted — a proxy or a
    server may echo the request's headers in its error body.

    Example:
        >>> import anthropic
        >>> model = AnthropicModel("claude-haiku-4-5", client=anthropic.AsyncAnthropic(api_key="sk-..."))
        >>> model.name
        'claude-haiku-4-5'
    """

    def __init__(self, name: str, *, client: anthropic.AsyncAnthropic | None = None) -> None:
        """Args:
        name: the model id sent to the API.
        client: a configured SDK client; by default one reading ``ANTHROPIC_API_KEY``.
        """
        # The SDK takes about a second to import: load it only when a model is made.
        import anthropic

        self._name = name
        self._client = anthropic.AsyncAnthropic() if client is None else client

    @property
    def name(self) -> str:
        """The model id sent to the API."""
        return self._name

    def __repr__(self) -> str:
        return f"AnthropicModel({self._name!r})"

    async def create(self, request: ModelRequest) -> ModelResponse:
        """Send ``request``; raise a :class:`ModelError` subclass when the call fails."""
        import anthropic

        loop = asyncio.get_running_loop()
        started = loop.time()
        body = request_to_api(request, model=self._name)
        try:
            raw = await self._client.messages.with_raw_response.create(**body)
            message = await raw.parse()
        except anthropic.APIError as exc:
            raise self._error(exc) from None
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            # Only raw.parse() raises these, so the raw response is there to describe.
            raise ModelResponseError(
                self._redact(f"{self._name}: the response body is not JSON: {exc}"),
                model=self._name,
                status=raw.status_code,
                request_id=raw.request_id,
                retries=raw.retries_taken,
            ) from None
        if not isinstance(message, anthropic.types.Message):
            raise ModelResponseError(
                f"{self._name}: expected a Message, got {type(message).__name__}", model=self._name
            )
        return response_from_api(
            message.model_dump(),
            request_id=raw.request_id,
            retries=raw.retries_taken,
            latency=loop.time() - started,
        )

    def _redact(self, text: str) -> str:
        client = self._client
        return redact(text, getattr(client, "api_key", None), getattr(client, "auth_token", None))

    def _error(self, exc: anthropic.APIError) -> ModelError:
        """The windtunnel error for an SDK error, without the request (it holds the key)."""
        import anthropic

        status: int | None = getattr(exc, "status_code", None)
        request_id: str | None = getattr(exc, "request_id", None)
        retries = _retries(exc)
        kind: type[ModelError]
        if isinstance(exc, anthropic.RateLimitError):
            kind = ModelRateLimited
        elif status == 529 or type(exc).__name__ == "OverloadedError":
            kind = ModelOverloaded
        elif isinstance(exc, anthropic.APITimeoutError):
            kind = ModelTimeout
        elif isinstance(exc, anthropic.APIConnectionError):
            kind = ModelConnectionError
        elif isinstance(exc, anthropic.APIResponseValidationError):
            kind = ModelResponseError
        elif isinstance(exc, anthropic.RequestTimeoutError):
            kind = ModelTimeout
        elif status is not None and 400 <= status < 500:
            kind = ModelRequestError
        else:
            kind = ModelServerError
        where = f" (HTTP {status})" if status is not None else ""
        after = f" after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else ""
        return kind(
            self._redact(f"{self._name}: {type(exc).__name__}{where}{after}: {_message(exc)}"),
            model=self._name,
            status=status,
            request_id=request_id,
            retries=retries,
        )


def _retries(exc: anthropic.APIError) -> int:
    # The SDK numbers its attempts in a request header; read that one header only.
    try:
        return int(exc.request.headers.get("x-stainless-retry-count", 0))
    except (AttributeError, RuntimeError, ValueError):
        return 0


def _message(exc: anthropic.APIError) -> str:
    body: Any = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return str(exc.message)
