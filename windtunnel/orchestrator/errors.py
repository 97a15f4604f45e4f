"""The exceptions windtunnel raises, one subclass per phase.

```
WindtunnelError                 root: catch this to catch anything windtunnel raises
├── WorkflowError               a workflow definition is invalid (raised when it is built)
├── RunError                    a run could not be carried out (bad arguments to run())
├── BudgetExhausted             raised inside a handler whose charge passes the cost budget
├── TraceError                  a trace file cannot be read, or an event is malformed
└── SimulationError             the simulation itself went wrong
    └── DeadlockError           nothing ready, no timer pending, work unfinished
                                (windtunnel.simulators)
```

Faults that a run is expected to survive — a handler raising, a timeout, a refused
transition, an exhausted budget — are never raised to the caller: they are events
in the trace and end the run through the workflow's declared policy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "BudgetExhausted",
    "Problem",
    "RunError",
    "SimulationError",
    "TraceError",
    "WindtunnelError",
    "WorkflowError",
]


class WindtunnelError(Exception):
    """Root of every exception windtunnel raises."""


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


class BudgetExhausted(WindtunnelError):  # noqa: N818 - names the condition, like TimeoutError
    """A charge took the run past its cost budget; raised inside the handler.

    The engine ends the run after the step even if the handler swallows it.
    """


class TraceError(WindtunnelError):
    """A trace file cannot be read, or an event recorded in it is malformed."""


class SimulationError(WindtunnelError):
    """The simulation itself went wrong, as opposed to the system under test."""
