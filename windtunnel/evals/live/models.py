"""The models of one live, recorded or replayed cell, and why its clock stays virtual.

A cell's run always runs on windtunnel's virtual loop, live or not. When a state
asks a real model, :class:`CellModels` sends the request through the
:class:`LiveSession` (real HTTP on the session's own real loop) and *blocks the
run's thread* until the answer comes; the run's clock does not move meanwhile. Then
it waits the call's measured latency, rounded to the millisecond, in simulated
time. So:

- simulated tools answer at once (their latency advances the simulated clock,
  nothing is slept), and the model's latency is real: wall time passes during the
  call, and the simulated clock advances by exactly that much;
- a replay waits the recorded latency on the same virtual loop, so a replayed run
  meets the same clock, the same tool results, the same requests: its trace is the
  live run's, byte for byte (wall times aside);
- no clock abstraction and no change to the loop: the one cost is that two model
  calls made at the same moment by one run go out one after the other (runs of
  different cells still run in parallel, one thread each).
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from dataclasses import replace
from typing import Literal, TypeAlias

from windtunnel.orchestrator import Model, ModelError, ModelRequest, ModelResponse
from windtunnel.orchestrator import errors as model_errors

from .errors import CellHalted, LiveError, RecordingError, ReplayMiss
from .recording import Exchange, Recording, request_digest
from .session import LiveSession, refused

__all__ = ["CellModels", "Mode"]

Mode: TypeAlias = Literal["live", "record", "replay", "replay_or_record"]
"""``live`` calls the API; ``record`` calls it and records; ``replay`` answers from the
recording only; ``replay_or_record`` answers from it and calls (and records) what it lacks,
recorded failures included (a 529 recorded once is not an answer to keep)."""


class CellModels:
    """Who answers for the real models of one cell: ``(state, model id) -> Model``.

    Passed to :func:`~windtunnel.scenarios.run_scenario` as ``real=``.
    """

    def __init__(
        self,
        *,
        mode: Mode,
        scenario: str,
        cell: str,
        seed: int,
        session: LiveSession | None,
        recording: Recording | None,
    ) -> None:
        if mode != "live" and recording is None:
            raise LiveError(f"mode={mode!r} needs a recording")
        if mode != "replay" and session is None:
            raise LiveError(f"mode={mode!r} calls the API: it needs a LiveSession")
        self.mode = mode
        self.scenario = scenario
        self.cell = cell
        self.seed = seed
        self.session = session
        self.recording = recording
        self.calls = 0
        """Model calls this cell made (answered live or replayed)."""
        self.replayed = 0
        self._seen: Counter[str] = Counter()
        self._lock = threading.Lock()

    def __call__(self, state: str, model: str) -> Model:
        """The model that answers as ``model`` in ``state``."""
        return _Played(self, state, model)

    async def answer(self, state: str, model: str, request: ModelRequest) -> ModelResponse:
        """One call: from the recording, or live (then recorded); waits its latency in simulated time.

        Raises:
            CellHalted: the recording lacks the request in ``replay`` mode, holds a corrupt
                exchange, or cannot be written; the cost cap is reached; the API refused a
                request for good; the experiment was interrupted.
            ModelError: the call failed (live, or as recorded).
        """
        digest = request_digest(request, model=model)
        with self._lock:
            occurrence, call = self._seen[digest], self.calls
            self._seen[digest] += 1
            self.calls += 1
        if self.mode in ("replay", "replay_or_record"):
            assert self.recording is not None
            found = self.recording.find(
                digest, seed=self.seed, occurrence=occurrence, answered=self.mode == "replay_or_record"
            )
            if found is not None:
                self.replayed += 1
                response = self._replayed(found, state=state)
                await asyncio.sleep(found.latency)
                return response
            if self.mode == "replay":
                why = self.recording.miss(request, model=model, state=state, seed=self.seed)
                raise CellHalted(
                    ReplayMiss(
                        f"replay of scenario {self.scenario!r} (cell {self.cell}), state {state!r}, model "
                        f"{model!r}: request {digest[:12]} is not recorded. {why}"
                    ),
                    why="miss",
                )
        assert self.session is not None
        try:
            response = self.session.call(model, request)
        except ModelError as exc:
            self._record(
                Recording.failure(
                    request, exc, model=model, state=state, seed=self.seed, call=call, occurrence=occurrence
                )
            )
            raise
        latency = round(response.latency or 0.0, 3)
        response = replace(response, latency=latency)
        self._record(
            Recording.exchange(
                request,
                response,
                model=model,
                state=state,
                seed=self.seed,
                call=call,
                occurrence=occurrence,
                latency=latency,
            )
        )
        await asyncio.sleep(latency)
        return response

    def _record(self, exchange: Exchange) -> None:
        if self.mode == "live" or self.recording is None:
            return
        try:
            self.recording.add(exchange)
        except OSError as exc:
            raise CellHalted(
                RecordingError(
                    f"{self.recording.path}: cannot write the recording: {exc.strerror or exc} "
                    f"(cell {self.cell}, call {exchange.call}; the call was made and paid for)"
                ),
                why="miss",
            ) from None

    def _replayed(self, exchange: Exchange, *, state: str) -> ModelResponse:
        """The recorded answer, or the recorded failure raised again as the same error class.

        Raises:
            CellHalted: the exchange is corrupt, or records a refusal (no run meets one twice).
            ModelError: the recorded failure.
        """
        assert self.recording is not None
        where = self.recording.where(exchange)
        failure = exchange.error
        if failure is None:
            try:
                return exchange.answer()
            except Exception as exc:  # a hand-edited or damaged line: the harness's failure, not the run's
                error = RecordingError(
                    f"{where}: a corrupt exchange (state {state!r}, cell {self.cell}): "
                    f"{type(exc).__name__}: {_one_line(exc)}; fix the line or re-record it"
                )
                raise CellHalted(error, why="miss") from None
        kind = getattr(model_errors, failure.type, None)
        if not (isinstance(kind, type) and issubclass(kind, ModelError)):
            kind = ModelError
        replayed = kind(
            failure.message,
            model=exchange.model,
            status=failure.status,
            request_id=exchange.request_id,
            retries=exchange.retries,
        )
        if refused(replayed):
            error = RecordingError(
                f"{where}: records a request the API refused with HTTP {failure.status}, which no run "
                f"should meet again (state {state!r}, cell {self.cell}); re-record it "
                "(--replay-or-record DIR)"
            )
            raise CellHalted(error, why="miss")
        raise replayed


class _Played:
    """A real model as one state of one cell sees it."""

    def __init__(self, cell: CellModels, state: str, model: str) -> None:
        self._cell, self._state, self._name = cell, state, model

    @property
    def name(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"{self._cell.mode}({self._name!r}, state={self._state!r})"

    async def create(self, request: ModelRequest) -> ModelResponse:
        return await self._cell.answer(self._state, self._name, request)


def _one_line(exc: BaseException) -> str:
    return "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())
