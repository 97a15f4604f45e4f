"""Recordings: every model exchange of a scenario × config, in one reviewable JSONL file.

Layout: ``DIR/<scenario id>/<config>.jsonl``. The first line is a header (format,
windtunnel version, scenario, config, the models it plays); each further line is
one exchange: the request as the API received it, the response as it came back
(usage inside), the latency, the request id and the retries, keyed by
:func:`request_digest` — sha256 of the normalized request (canonical JSON of the
API body: the model id, the system prompt, the tools and the whole conversation).
``prompt_digest`` hashes the system prompt and the tools alone, so that a miss can
say "the prompt of this state changed" rather than only "this request is new".

A request is answered by the exchange of the same digest, seed and occurrence (the
n-th time a cell sends that very request), else by any exchange of the same digest.
Nothing else matches: a changed prompt, model or tool result is a miss, reported
with the first field where the request differs from the closest recorded one.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError

import windtunnel
from windtunnel.orchestrator import ModelError, ModelRequest, ModelResponse, request_to_api, response_from_api
from windtunnel.orchestrator.model import response_to_api

from .errors import RecordingError

__all__ = [
    "Exchange",
    "Failure",
    "Recording",
    "RecordingHeader",
    "first_difference",
    "prompt_digest",
    "request_digest",
]

FORMAT = 1


class RecordingHeader(BaseModel):
    """The first line of a recording: what it was recorded for, and by which windtunnel."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["header"] = "header"
    format: int = Field(FORMAT, description="The recording format; 1.")
    windtunnel: str = Field(description="The windtunnel version that recorded it.")
    scenario: str = Field(description="The scenario id.")
    config: str = Field(description="The config's name.")
    models: list[str] = Field(description="The real model ids the config plays.")


class Failure(BaseModel):
    """A call that failed after the SDK's retries, as its windtunnel error."""

    model_config = ConfigDict(extra="forbid")

    type: str = Field(description="The ModelError subclass, e.g. ModelOverloaded.")
    message: str
    status: int | None = Field(None, description="The HTTP status, when there was a response.")


class Exchange(BaseModel):
    """One model call: the request as sent, the response as received, and how it went."""

    model_config = ConfigDict(extra="forbid")

    kind: Literal["exchange"] = "exchange"
    digest: str = Field(description="sha256 of the normalized request (see request_digest).")
    prompt_digest: str = Field(description="sha256 of the system prompt and the tools alone.")
    model: str = Field(description="The model id asked.")
    state: str = Field(description="The workflow state the call was made in.")
    seed: int = Field(description="The cell's simulation seed.")
    call: int = Field(description="0-based number of the call within its cell.")
    occurrence: int = Field(0, description="How many earlier calls of the cell sent this very request.")
    latency: float = Field(description="Seconds the call took, real time; replays wait it in simulated time.")
    request_id: str | None = Field(None, description="The API's request id.")
    retries: int = Field(0, description="The SDK's retries before this answer.")
    request: dict[str, Any] = Field(description="The Messages API body sent (no header: no key).")
    response: dict[str, Any] | None = Field(description="The Messages API answer, usage included.")
    error: Failure | None = Field(None, description="The failure, for a call that failed.")
    _line: int | None = PrivateAttr(None)  # where it was read from, for messages

    def answer(self) -> ModelResponse:
        """The recorded response, as the model returned it."""
        if self.response is None:
            raise RecordingError(f"exchange {self.digest[:12]} recorded a failure, not a response")
        return response_from_api(
            self.response, request_id=self.request_id, retries=self.retries, latency=self.latency
        )


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def request_digest(request: ModelRequest, *, model: str) -> str:
    """sha256 of ``request`` sent to ``model``, as canonical JSON of its API body."""
    return hashlib.sha256(_canonical(request_to_api(request, model=model))).hexdigest()


def prompt_digest(request: ModelRequest) -> str:
    """sha256 of the request's system prompt and tools: what a prompt change changes."""
    body = request_to_api(request, model="")
    return hashlib.sha256(_canonical({"system": body["system"], "tools": body.get("tools", [])})).hexdigest()


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._@,=+-]", "_", name)


class Recording:
    """The recording of one scenario × config: read on open, appended as calls are made.

    Thread-safe: cells of several seeds of one scenario and config may record at once;
    :meth:`close` rewrites the file sorted by seed and call, so that it diffs well.
    """

    def __init__(self, root: str | Path, *, scenario: str, config: str, models: list[str]) -> None:
        self.path = Path(root) / _slug(scenario) / f"{_slug(config)}.jsonl"
        self.header = RecordingHeader(
            windtunnel=windtunnel.__version__, scenario=scenario, config=config, models=models
        )
        self.recorded_by: str | None = None
        """The windtunnel version of the file read, if any."""
        self._lock = threading.Lock()
        self._exchanges: list[Exchange] = []
        self._changed = False
        if self.path.exists():
            self._read()

    def __repr__(self) -> str:
        return f"Recording({str(self.path)!r}, exchanges={len(self._exchanges)})"

    def _read(self) -> None:
        try:
            lines = self.path.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise RecordingError(f"{self.path}: cannot read the recording: {exc}") from None
        if not lines:
            return
        try:
            raw = json.loads(lines[0])
        except json.JSONDecodeError:
            raw = None
        if isinstance(raw, dict) and raw.get("kind") == "header" and raw.get("format") != FORMAT:
            raise RecordingError(
                f"{self.path}:1: recording format {raw.get('format')!r} (windtunnel "
                f"{raw.get('windtunnel')}); this windtunnel ({windtunnel.__version__}) reads format "
                f"{FORMAT}: re-record it (--record or --replay-or-record into a new directory)"
            )
        try:
            header = RecordingHeader.model_validate_json(lines[0])
        except ValidationError as exc:
            raise RecordingError(
                f"{self.path}:1: not a windtunnel recording header: {_first_error(exc)}"
            ) from None
        exchanges = []
        for number, line in enumerate(lines[1:], start=2):
            if not line.strip():
                continue
            try:
                exchange = Exchange.model_validate_json(line)
            except ValidationError as exc:
                raise RecordingError(
                    f"{self.path}:{number}: not a recorded exchange: {_first_error(exc)}; fix or delete "
                    "the line (a cut-off last line is a killed write: delete it)"
                ) from None
            exchange._line = number
            exchanges.append(exchange)
        if (header.scenario, header.config) != (self.header.scenario, self.header.config):
            raise RecordingError(
                f"{self.path} records scenario {header.scenario!r} × config {header.config!r}, not "
                f"{self.header.scenario!r} × {self.header.config!r}; use another directory"
            )
        self.recorded_by = header.windtunnel
        self._exchanges = exchanges

    def where(self, exchange: Exchange) -> str:
        """``path:line`` of ``exchange`` in the file (as read, or as it will be written)."""
        with self._lock:
            line = exchange._line
            if line is None and exchange in self._exchanges:
                line = self._exchanges.index(exchange) + 2
        return f"{self.path}:{line}" if line is not None else str(self.path)

    @property
    def exchanges(self) -> tuple[Exchange, ...]:
        """Every exchange held, in the order recorded."""
        with self._lock:
            return tuple(self._exchanges)

    def find(self, digest: str, *, seed: int, occurrence: int, answered: bool = False) -> Exchange | None:
        """The exchange answering ``digest``: same seed and occurrence first, else any;
        ``answered=True`` skips recorded failures (a gap to fill live)."""
        with self._lock:
            same = [
                exchange
                for exchange in self._exchanges
                if exchange.digest == digest and not (answered and exchange.response is None)
            ]
        for exchange in same:
            if exchange.seed == seed and exchange.occurrence == occurrence:
                return exchange
        return same[0] if same else None

    def add(self, exchange: Exchange) -> None:
        """Keep ``exchange``, replacing one recorded for the same seed, call and digest."""
        key = (exchange.seed, exchange.call, exchange.digest)
        with self._lock:
            self._exchanges = [e for e in self._exchanges if (e.seed, e.call, e.digest) != key]
            self._exchanges.append(exchange)
            self._changed = True
            self._write()

    def close(self) -> None:
        """Write the file sorted by seed and call (only when something was added)."""
        with self._lock:
            if self._changed:
                self._exchanges.sort(key=lambda e: (e.seed, e.call))
                self._write()
                self._changed = False

    def _write(self) -> None:
        # The whole file each time: a kill leaves the previous complete version (rename is atomic).
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lines = [self.header.model_dump_json(), *(e.model_dump_json() for e in self._exchanges)]
        partial = self.path.with_suffix(".jsonl.partial")
        partial.write_text("\n".join(lines) + "\n", encoding="utf-8")
        partial.replace(self.path)

    def miss(self, request: ModelRequest, *, model: str, state: str, seed: int) -> str:
        """Why ``request`` is not in the recording: the closest recorded request and the
        first field where they differ, or that the state's prompt changed."""
        body = request_to_api(request, model=model)
        candidates = [e for e in self.exchanges if e.state == state] or list(self.exchanges)
        where = f"{self.path}"
        if self.recorded_by is not None and self.recorded_by != windtunnel.__version__:
            where += f" (recorded by windtunnel {self.recorded_by}; this is {windtunnel.__version__})"
        if not candidates:
            return f"{where} holds no exchange at all: record it (--record or --replay-or-record)"
        others = sorted({e.model for e in candidates if e.model != model})
        if not any(e.model == model for e in candidates) and others:
            return (
                f"{where} holds exchanges for model {', '.join(map(repr, others))}, not {model!r}: the "
                "config's model changed since it was recorded; re-record it (--replay-or-record DIR)"
            )
        prompt = prompt_digest(request)
        best = max(candidates, key=lambda e: (_common_prefix(e.request, body), e.seed == seed))
        path, old, new = first_difference(best.request, body)
        if isinstance(old, str) and isinstance(new, str):
            old, new = _around_difference(old, new)
        stale = ""
        if not any(e.prompt_digest == prompt for e in candidates):
            stale = f"; the system prompt or tools of state {state!r} changed since it was recorded"
        return (
            f"{where} holds no such request{stale}. The closest recorded one (seed {best.seed}, call "
            f"{best.call}, state {best.state!r}) differs first at {path}: "
            f"recorded {_show(old)}, now {_show(new)}"
        )

    @staticmethod
    def failure(
        request: ModelRequest,
        error: ModelError,
        *,
        model: str,
        state: str,
        seed: int,
        call: int,
        occurrence: int,
    ) -> Exchange:
        """The exchange to record for a call that failed."""
        return Exchange(
            **_where(request, model=model, state=state, seed=seed, call=call, occurrence=occurrence),
            latency=0.0,
            request_id=error.request_id,
            retries=error.retries,
            response=None,
            error=Failure(type=type(error).__name__, message=str(error), status=error.status),
        )

    @staticmethod
    def exchange(
        request: ModelRequest,
        response: ModelResponse,
        *,
        model: str,
        state: str,
        seed: int,
        call: int,
        occurrence: int,
        latency: float,
    ) -> Exchange:
        """The exchange to record for one call."""
        return Exchange(
            **_where(request, model=model, state=state, seed=seed, call=call, occurrence=occurrence),
            latency=latency,
            request_id=response.request_id,
            retries=response.retries,
            response=response_to_api(response),
        )


_MISSING = object()


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{where + ': ' if where else ''}{error['msg']}"


def _flatten(value: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _flatten(value[key], f"{path}.{key}" if path else str(key))
        yield f"{path}.<end>", None
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from _flatten(item, f"{path}[{index}]")
        yield f"{path}[<end>]", None
    else:
        yield path, value


def _common_prefix(a: Any, b: Any) -> int:
    count = 0
    for left, right in zip(_flatten(a), _flatten(b), strict=False):
        if left != right:
            break
        count += 1
    return count


def first_difference(recorded: Any, now: Any) -> tuple[str, Any, Any]:
    """The first field (a path like ``messages[2].content[0].content``) where two API
    bodies differ, with its value in each (``<absent>`` where one has no such field).

    >>> first_difference({"a": [1, 2]}, {"a": [1, 3]})
    ('a[1]', 2, 3)
    """
    old_items, new_items = list(_flatten(recorded)), list(_flatten(now))
    for (old_path, old), (new_path, new) in zip(old_items, new_items, strict=False):
        if old_path != new_path:
            # One side has a field (or an item) the other does not: name the earlier path.
            path = min(old_path, new_path)
            return (
                path.replace(".<end>", "").replace("[<end>]", ""),
                _at(old_items, path),
                _at(new_items, path),
            )
        if old != new:
            return old_path, old, new
    return "<nothing>", None, None


def _at(items: list[tuple[str, Any]], path: str) -> Any:
    for item_path, value in items:
        if item_path == path and not path.endswith("<end>") and not path.endswith("<end>]"):
            return value
    return "<absent>"


def _around_difference(old: str, new: str, *, before: int = 30) -> tuple[str, str]:
    """Two long strings cut to where they start to differ, so that the difference shows.

    >>> _around_difference("x" * 50 + "abc", "x" * 50 + "abd", before=3)
    ('...xabc', '...xabd')
    """
    index = next(
        (i for i, (a, b) in enumerate(zip(old, new, strict=False)) if a != b), min(len(old), len(new))
    )
    start = max(0, index - before)
    prefix = "..." if start else ""
    return prefix + old[start:], prefix + new[start:]


def _show(value: Any) -> str:
    text = value if value == "<absent>" else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 160 else text[:157] + "..."


def _where(
    request: ModelRequest, *, model: str, state: str, seed: int, call: int, occurrence: int
) -> dict[str, Any]:
    """The fields every exchange has: what was asked, where and when in the run."""
    return {
        "digest": request_digest(request, model=model),
        "prompt_digest": prompt_digest(request),
        "model": model,
        "state": state,
        "seed": seed,
        "call": call,
        "occurrence": occurrence,
        "request": request_to_api(request, model=model),
    }
