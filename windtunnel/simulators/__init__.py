"""Everything fake, and nothing of any domain: the virtual clock, seeded random
streams and ids; fault plans, the registry of fault kinds and their injector; the
evidence codec; simulated model tiers and human approvers; scripted models; and
Anthropic's Messages API served offline for the real SDK. Domains (their worlds and
tools) live under :mod:`windtunnel.scenarios`.

The fake API's names load on first use: they pull in the ``anthropic`` SDK, which
takes about a second to import.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .evidence import PARTIAL_STRENGTH
from .fault_kinds import (
    ConflictingActor,
    Crash,
    EmptyResult,
    Error,
    HallucinatedToolCall,
    HumanAbsent,
    HumanSlow,
    HumanWrong,
    LatencySpike,
    MalformedArguments,
    Overloaded,
    PartialResult,
    RateLimit,
    SilentFailure,
    SimulatedCrash,
    StaleRead,
    StaleWorld,
    Timeout,
)
from .faults import (
    Family,
    Fault,
    FaultBehaviour,
    FaultPlan,
    Hit,
    ToolCall,
    Trigger,
    fault_kinds,
    register_fault_kind,
)
from .humans import DEFAULT_APPROVERS, Human, HumanDecision, HumanProfile, Review, SimulatedHuman
from .injection import FaultCounts, FaultInjector
from .loop import DeadlockError, HorizonError, VirtualLoop
from .model import HALLUCINATED_TOOLS, MAX_ATTEMPTS, Playbook, SimulatedModel
from .profiles import DEFAULT_TIERS, LogNormal, TierProfile, derive_tier
from .scripted import ScriptedModel, ScriptError, ScriptStep, respond, submit, tool_call
from .sim import DEFAULT_HORIZON, Sim, derive_seed

if _TYPE_CHECKING:
    from .fake_api import (
        DEFAULT_API_KEY,
        DEFAULT_BASE_URL,
        HTTP_FAULT_KINDS,
        Attempt,
        AttemptPlan,
        FakeAPIError,
        FakeMessagesAPI,
        HttpFault,
        HttpFaultKind,
    )

_LAZY = {
    "DEFAULT_API_KEY",
    "DEFAULT_BASE_URL",
    "HTTP_FAULT_KINDS",
    "Attempt",
    "AttemptPlan",
    "FakeAPIError",
    "FakeMessagesAPI",
    "HttpFault",
    "HttpFaultKind",
}


def __getattr__(name: str) -> _Any:
    if name in _LAZY:
        from . import fake_api

        value = getattr(fake_api, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "DEFAULT_API_KEY",
    "DEFAULT_APPROVERS",
    "DEFAULT_BASE_URL",
    "DEFAULT_HORIZON",
    "DEFAULT_TIERS",
    "HALLUCINATED_TOOLS",
    "HTTP_FAULT_KINDS",
    "MAX_ATTEMPTS",
    "PARTIAL_STRENGTH",
    "Attempt",
    "AttemptPlan",
    "ConflictingActor",
    "Crash",
    "DeadlockError",
    "EmptyResult",
    "Error",
    "FakeAPIError",
    "FakeMessagesAPI",
    "Family",
    "Fault",
    "FaultBehaviour",
    "FaultCounts",
    "FaultInjector",
    "FaultPlan",
    "HallucinatedToolCall",
    "Hit",
    "HorizonError",
    "HttpFault",
    "HttpFaultKind",
    "Human",
    "HumanAbsent",
    "HumanDecision",
    "HumanProfile",
    "HumanSlow",
    "HumanWrong",
    "LatencySpike",
    "LogNormal",
    "MalformedArguments",
    "Overloaded",
    "PartialResult",
    "Playbook",
    "RateLimit",
    "Review",
    "ScriptError",
    "ScriptStep",
    "ScriptedModel",
    "SilentFailure",
    "Sim",
    "SimulatedCrash",
    "SimulatedHuman",
    "SimulatedModel",
    "StaleRead",
    "StaleWorld",
    "TierProfile",
    "Timeout",
    "ToolCall",
    "Trigger",
    "VirtualLoop",
    "derive_seed",
    "derive_tier",
    "fault_kinds",
    "register_fault_kind",
    "respond",
    "submit",
    "tool_call",
]
