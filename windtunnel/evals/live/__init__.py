"""Real Claude models in the run matrix: live runs against simulated tools, recorded
once, replayed offline and deterministically.

- :class:`Live` says how an experiment's real-model configs run (``live``,
  ``record``, ``replay``, ``replay_or_record``), with a concurrency limit, a rate
  limit honouring ``retry-after`` and a cost cap; pass it to ``run_experiment(live=)``.
- :class:`Recording` is one scenario × config's exchanges, a JSONL file to review
  and commit; a replay that misses names the first field where the request differs.
- :func:`estimate` says what an experiment would cost before anything is spent.
"""

from .errors import APIRefused, CellHalted, Halt, LiveError, MissingAPIKey, RecordingError, ReplayMiss
from .estimate import Estimate, estimate
from .limits import CostMeter, RateLimiter, Spend, worst_case_cost
from .models import CellModels, Mode
from .recording import (
    Exchange,
    Failure,
    Recording,
    RecordingHeader,
    first_difference,
    prompt_digest,
    request_digest,
)
from .runner import Live, describe_stop
from .session import LiveSession

__all__ = [
    "APIRefused",
    "CellHalted",
    "CellModels",
    "CostMeter",
    "Estimate",
    "Exchange",
    "Failure",
    "Halt",
    "Live",
    "LiveError",
    "LiveSession",
    "MissingAPIKey",
    "Mode",
    "RateLimiter",
    "Recording",
    "RecordingError",
    "RecordingHeader",
    "ReplayMiss",
    "Spend",
    "describe_stop",
    "estimate",
    "first_difference",
    "prompt_digest",
    "request_digest",
    "worst_case_cost",
]
