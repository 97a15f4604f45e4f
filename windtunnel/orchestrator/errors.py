"""The exceptions windtunnel raises, one subclass per phase.

```
WindtunnelError                 root: catch this to catch anything windtunnel raises
├── InvalidArgument             an argument is invalid (also a ValueError): names it, its value, the rule
├── WorkflowError               a workflow definition is invalid (raised when it is built)
├── RunError                    a run could not be carried out (bad arguments to run())
├── StoreError                  a durable store is damaged, of an unknown version, or too busy; names the file
│   ├── StoreBusy               the store stayed locked by other processes past its busy timeout
│   └── RunTakenOver            this life of a run lost it to another owner: its writes are refused (fencing)
├── BudgetExhausted             raised inside a handler whose charge passes the cost budget
├── ModelError                  a model call failed (after the client's own retries)
│   ├── ModelRateLimited        429: too many requests
│   ├── ModelOverloaded         529: the API is overloaded
│   ├── ModelServerError        5xx, or another error status
│   ├── ModelRequestError       4xx other than 429: the request was refused (bad, unauthorized, not found)
│   ├── ModelTimeout            the call timed out
│   ├── ModelConnectionError    the API could not be reached
│   └── ModelResponseError      the answer could not be read (malformed body, wrong shape)
├── AgentError                  an agent gave up on its state (no submit, too many turns or rejections)
├── EscalationRequired          raised in a step that must go to a human whatever the confidence
├── RunPaused                   raised in a step that waits for a decision: the run checkpoints and returns
├── TraceError                  a trace file cannot be read, or an event is malformed
├── UnknownPriceError           no price is known for a model (windtunnel.orchestrator.pricing)
└── SimulationError             the simulation itself went wrong (windtunnel.simulators)
    ├── DeadlockError           nothing ready, no timer pending, work unfinished
    ├── HorizonError            simulated time passed the horizon, work unfinished
    ├── FakeAPIError            the fake Messages API itself failed (a bug, not a simulated fault)
    └── ScriptError             a scripted model was called more, or less, than scripted
```

Faults that a run is expected to survive — a handler raising, a timeout, a refused
transition, an exhausted budget — are never raised to the caller: they are events
in the trace and end the run through the workflow's declared policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .events import EscalationTrigger

__all__ = [
    "AgentError",
    "BudgetExhausted",
    "EscalationRequired",
    "InvalidArgument",
    "ModelConnectionError",
    "ModelError",
    "ModelOverloaded",
    "ModelRateLimited",
    "ModelRequestError",
    "ModelResponseError",
    "ModelServerError",
    "ModelTimeout",
    "Problem",
    "RunError",
    "RunPaused",
    "RunTakenOver",
    "SimulationError",
    "StoreBusy",
    "StoreError",
    "TraceError",
    "WindtunnelError",
    "WorkflowError",
]


class WindtunnelError(Exception):
    """Root of every exception windtunnel raises."""


class InvalidArgument(WindtunnelError, ValueError):
    """An argument is invalid; the message names it, its value and what it must be,
    e.g. ``threshold=1.5 must be a number in [0, 1]``."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with a workflow definition, and the states it involves."""

    message: str
    states: tuple[str, ...] = ()

    def __str__(self) -> str:
        return self.message


class WorkflowError(WindtunnelError):
    """A workflow definition is invalid; ``problems`` lists everything found at once."""

    def __init__(self, problems: Sequence[Problem], *, name: str = "workflow") -> None:
        self.problems = tuple(problems)
        self.name = name
        count = len(self.problems)
        lines = [f"{name!r} has {count} problem{'s' if count != 1 else ''}:"]
        lines.extend(f"  - {problem.message}" for problem in self.problems)
        super().__init__("\n".join(lines))


class RunError(WindtunnelError):
    """A run could not be carried out as asked (for example, bad arguments)."""


class StoreError(WindtunnelError):
    """A durable store cannot be used: damaged, of an unknown schema version, missing
    a table, holding an unreadable row, or with events that do not cover a checkpoint.

    The message names the file and, where it applies, the run and the sequence number.
    """

    def __init__(
        self, message: str, *, path: str | None = None, run_id: str | None = None, seq: int | None = None
    ) -> None:
        super().__init__(message)
        self.path = path
        self.run_id = run_id
        self.seq = seq


class StoreBusy(StoreError):
    """Other processes kept the store locked past its busy timeout."""


class RunTakenOver(StoreError):
    """Another owner took the run over (its lease had expired, or it was released):
    this life's writes are refused, and it stops before touching the world again."""


class BudgetExhausted(WindtunnelError):
    """A charge took the run past its cost budget; raised inside the handler.

    The engine ends the run after the step even if the handler swallows it.
    """


class ModelError(WindtunnelError):
    """A model call failed; raised by a ``Model`` after the client's own retries."""

    def __init__(
        self,
        message: str,
        *,
        model: str | None = None,
        status: int | None = None,
        request_id: str | None = None,
        retries: int = 0,
    ) -> None:
        super().__init__(message)
        self.model = model
        self.status = status
        """The HTTP status, when there was a response."""
        self.request_id = request_id
        self.retries = retries
        """How many times the client retried before giving up."""


class ModelRateLimited(ModelError):
    """429: the API asked the client to slow down."""


class ModelOverloaded(ModelError):
    """529: the API is overloaded."""


class ModelServerError(ModelError):
    """A 5xx response, or another error status."""


class ModelRequestError(ModelError):
    """A 4xx other than 429: the API refused the request (bad request, auth, unknown model)."""


class ModelTimeout(ModelError):
    """The call timed out."""


class ModelConnectionError(ModelError):
    """The API could not be reached."""


class ModelResponseError(ModelError):
    """The answer could not be read: a malformed body or an unexpected shape."""


class AgentError(WindtunnelError):
    """An agent gave up on its state; the engine records it and applies the error policy.

    ``trigger`` says why, for an escalation it leads to: ``"rejections"`` when too
    many of its tool calls were refused, ``"tool_failures"`` otherwise.
    """

    def __init__(self, message: str, *, trigger: EscalationTrigger = "tool_failures") -> None:
        super().__init__(message)
        self.trigger: EscalationTrigger = trigger


class EscalationRequired(WindtunnelError):
    """A forced escalation trigger fired inside a step (a conflict, a failed verification,
    a high-impact action); the engine routes the run to its escalation state."""

    def __init__(self, trigger: EscalationTrigger, detail: str) -> None:
        super().__init__(f"{trigger}: {detail}")
        self.trigger: EscalationTrigger = trigger
        self.detail = detail


class RunPaused(WindtunnelError):
    """The step waits for a human decision: the engine checkpoints the run as paused
    and returns; :func:`resume` picks it up once the decision is in."""


class TraceError(WindtunnelError):
    """A trace file cannot be read, or an event recorded in it is malformed."""


class SimulationError(WindtunnelError):
    """The simulation itself went wrong, as opposed to the system under test.

    A harness error, never the agent's failure: the engine and the tool layer let it
    propagate out of ``run()`` rather than handling it as a failed step or tool call.
    """
