"""The orchestrator under test: an explicit state machine with enforced transitions,
budgets, policies and a typed event trace.

It imports nothing else of windtunnel and never knows whether it is simulated:
time comes from the running event loop, randomness and ids from a ``Runtime``.
"""

from .budget import Budget
from .context import StepContext
from .engine import RunResult, active_runs, run
from .errors import (
    BudgetExhausted,
    Problem,
    RunError,
    SimulationError,
    TraceError,
    WindtunnelError,
    WorkflowError,
)
from .events import (
    EVENT_TYPES,
    BudgetExceeded,
    Event,
    EventBase,
    HandlerFailed,
    PolicyAction,
    RunFinished,
    RunStarted,
    RunStatus,
    StateEntered,
    TransitionRefused,
    TransitionTaken,
    event_adapter,
)
from .runtime import Runtime, SystemRuntime
from .sinks import JsonlSink, SqliteSink, load_trace
from .trace import Record, Trace, TraceSink, events_frame, query_events
from .workflow import Handler, Outcome, Policy, StateSpec, Workflow

__all__ = [
    "EVENT_TYPES",
    "Budget",
    "BudgetExceeded",
    "BudgetExhausted",
    "Event",
    "EventBase",
    "Handler",
    "HandlerFailed",
    "JsonlSink",
    "Outcome",
    "Policy",
    "PolicyAction",
    "Problem",
    "Record",
    "RunError",
    "RunFinished",
    "RunResult",
    "RunStarted",
    "RunStatus",
    "Runtime",
    "SimulationError",
    "SqliteSink",
    "StateEntered",
    "StateSpec",
    "StepContext",
    "SystemRuntime",
    "Trace",
    "TraceError",
    "TraceSink",
    "TransitionRefused",
    "TransitionTaken",
    "WindtunnelError",
    "Workflow",
    "WorkflowError",
    "active_runs",
    "event_adapter",
    "events_frame",
    "load_trace",
    "query_events",
    "run",
]
