"""What live, recorded and replayed runs raise.

```
WindtunnelError
└── LiveError                   a live or replayed experiment cannot go on as asked
    ├── MissingAPIKey           a config plays real models and ANTHROPIC_API_KEY is not set
    ├── RecordingError          a recording file cannot be read, or belongs to something else
    └── ReplayMiss              a replayed run asked what the recording does not hold
CellHalted (BaseException)      stops one cell dead: a replay miss, or the cost cap reached
```

:class:`CellHalted` is a ``BaseException``, like a simulated crash, so that no
handler's ``except Exception`` and no workflow error policy can turn a halted run
into a graded one: the cell's row is then a harness error (a replay miss), or is
not written at all (the cost cap: the cell runs again on resume).
"""

from __future__ import annotations

from typing import Literal

from windtunnel.orchestrator import WindtunnelError

__all__ = ["CellHalted", "LiveError", "MissingAPIKey", "RecordingError", "ReplayMiss"]


class LiveError(WindtunnelError):
    """A live or replayed experiment cannot go on as asked."""


class MissingAPIKey(LiveError):
    """A config plays real models live and ``ANTHROPIC_API_KEY`` is not set."""


class RecordingError(LiveError):
    """A recording file cannot be read, or was made for another scenario or config."""


class ReplayMiss(LiveError):
    """A replayed run sent a request the recording does not hold; the message names the
    scenario, the state, and the first field where it differs from the closest recorded one."""


class CellHalted(BaseException):
    """Stops one cell dead (not an ``Exception``: no handler may catch it).

    ``why`` says what the harness does with the cell: ``"miss"`` writes its row with
    the error as ``harness_error``; ``"cost_cap"`` drops the row, so the cell runs again
    when the experiment is resumed.
    """

    def __init__(self, error: LiveError, *, why: Literal["miss", "cost_cap"]) -> None:
        super().__init__(str(error))
        self.error = error
        self.why: Literal["miss", "cost_cap"] = why
