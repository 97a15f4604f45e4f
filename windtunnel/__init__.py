"""windtunnel: test LLM-agent orchestration under simulated, reproducible faults.

The names most users need first; everything else lives in the subpackages
``orchestrator``, ``simulators``, ``scenarios``, ``evals`` and ``reports``.
"""

from .orchestrator import (
    Budget,
    LLMAgent,
    Outcome,
    Policy,
    RunResult,
    StepContext,
    Trace,
    WindtunnelError,
    Workflow,
    WorkflowError,
    load_trace,
    resume,
    run,
)
from .simulators import Sim

__version__ = "0.1.0"

__all__ = [
    "Budget",
    "LLMAgent",
    "Outcome",
    "Policy",
    "RunResult",
    "Sim",
    "StepContext",
    "Trace",
    "WindtunnelError",
    "Workflow",
    "WorkflowError",
    "__version__",
    "load_trace",
    "resume",
    "run",
]
