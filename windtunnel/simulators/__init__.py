"""Everything fake: the virtual clock, seeded random streams and ids; the SOC world
and its tools; fault plans and their injector; simulated model tiers and human
approvers; scripted models; and Anthropic's Messages API served offline for the
real SDK.

The fake API's names load on first use: they pull in the ``anthropic`` SDK, which
takes about a second to import.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .faults import Fault, FaultKind, FaultPlan, Trigger
from .humans import DEFAULT_APPROVERS, HumanDecision, HumanProfile, SimulatedHuman
from .injection import FaultInjector, SimulatedCrash
from .loop import DeadlockError, HorizonError, VirtualLoop
from .scripted import ScriptedModel, ScriptError, ScriptStep, respond, submit, tool_call
from .sim import DEFAULT_HORIZON, Sim, derive_seed
from .soc_tools import DEFAULT_LATENCY, READ_TOOLS, SIEM_LIMIT, WRITE_TOOLS, Latency, soc_tools
from .tiers import (
    DEFAULT_TIERS,
    HALLUCINATED_TOOLS,
    MAX_ATTEMPTS,
    LogNormal,
    Playbook,
    SimulatedModel,
    TierProfile,
    derive_tier,
)
from .world import ActionRef, Alert, Host, IpInfo, LogEvent, Process, Ticket, Truth, User, World

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
    "DEFAULT_LATENCY",
    "DEFAULT_TIERS",
    "HALLUCINATED_TOOLS",
    "HTTP_FAULT_KINDS",
    "MAX_ATTEMPTS",
    "READ_TOOLS",
    "SIEM_LIMIT",
    "WRITE_TOOLS",
    "ActionRef",
    "Alert",
    "Attempt",
    "AttemptPlan",
    "DeadlockError",
    "FakeAPIError",
    "FakeMessagesAPI",
    "Fault",
    "FaultInjector",
    "FaultKind",
    "FaultPlan",
    "HorizonError",
    "Host",
    "HttpFault",
    "HttpFaultKind",
    "HumanDecision",
    "HumanProfile",
    "IpInfo",
    "Latency",
    "LogEvent",
    "LogNormal",
    "Playbook",
    "Process",
    "ScriptError",
    "ScriptStep",
    "ScriptedModel",
    "Sim",
    "SimulatedCrash",
    "SimulatedHuman",
    "SimulatedModel",
    "Ticket",
    "TierProfile",
    "Trigger",
    "Truth",
    "User",
    "VirtualLoop",
    "World",
    "derive_seed",
    "derive_tier",
    "respond",
    "soc_tools",
    "submit",
    "tool_call",
]
