"""What live, recorded and replayed runs raise.

```
WindtunnelError
└── LiveError                   a live or replayed experiment cannot go on as asked
    ├── MissingAPIKey           a config plays real models and ANTHROPIC_API_KEY is not set
    ├── APIRefused              the API refused a request no retry can fix (400, 401, 403, 404, ...)
    ├── RecordingError          a recording file cannot be read or written, or belongs to something else
    └── ReplayMiss              a replayed run asked what the recording does not hold
CellHalted (BaseException)      stops one cell dead: a replay miss, a corrupt recording, the cost
                                cap reached, a refused request, an interrupt
```

:class:`CellHalted` is a ``BaseException``, like a simulated crash, so that no
handler's ``except Exception`` and no workflow error policy can turn a halted run
into a graded one: the cell's row is then a harness error (a replay miss), or is
not written at all (the cost cap, a refusal, an interrupt: the cell runs again on resume).
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from windtunnel.orchestrator import WindtunnelError

__all__ = ["APIRefused", "CellHalted", "Halt", "LiveError", "MissingAPIKey", "RecordingError", "ReplayMiss"]

Halt: TypeAlias = Literal["miss", "cost_cap", "refused", "interrupted"]
"""Why a cell was halted: ``miss`` (a replay miss or a corrupt recording) writes its row as a
harness error; the others drop the row, so that the cell runs again on resume."""


class LiveError(WindtunnelError):
    """A live or replayed experiment cannot go on as asked."""


class MissingAPIKey(LiveError):
    """A config plays real models live and ``ANTHROPIC_API_KEY`` is not set."""


class APIRefused(LiveError):
    """The API refused a request with a client error the SDK does not retry (400, 401, 403,
    404, 413, ...): a bad or revoked key, a model the key may not use, a malformed request.
    The experiment stops at once; nothing of the cells it cut short is written or recorded."""


class RecordingError(LiveError):
    """A recording file cannot be read or written, or was made for another scenario or config."""


class ReplayMiss(LiveError):
    """A replayed run sent a request the recording does not hold; the message names the
    scenario, the state, and the first field where it differs from the closest recorded one."""


class CellHalted(BaseException):
    """Stops one cell dead (not an ``Exception``: no handler may catch it).

    ``why`` says what the harness does with the cell (see :data:`Halt`): ``"miss"`` writes
    its row with the error as ``harness_error``; the others drop the row, so the cell runs
    again when the experiment is resumed.
    """

    def __init__(self, error: LiveError, *, why: Halt) -> None:
        super().__init__(str(error))
        self.error = error
        self.why: Halt = why
