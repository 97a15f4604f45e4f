"""Everything fake: the virtual clock, seeded random streams and ids, scripted models,
and Anthropic's Messages API served offline for the real SDK.

The fake API's names load on first use: they pull in the ``anthropic`` SDK, which
takes about a second to import.
"""

from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

from .loop import DeadlockError, HorizonError, VirtualLoop
from .scripted import ScriptedModel, ScriptError, ScriptStep, respond, submit, tool_call
from .sim import DEFAULT_HORIZON, Sim, derive_seed
from .soc_tools import DEFAULT_LATENCY, READ_TOOLS, SIEM_LIMIT, WRITE_TOOLS, Latency, soc_tools

if _TYPE_CHECKING:
    from .fake_api import (
        DEFAULT_API_KEY,
        DEFAULT_BASE_URL,
        FAULT_KINDS,
        Attempt,
        AttemptPlan,
        FakeAPIError,
        FakeMessagesAPI,
        Fault,
        FaultKind,
    )

_LAZY = {
    "DEFAULT_API_KEY",
    "DEFAULT_BASE_URL",
    "FAULT_KINDS",
    "Attempt",
    "AttemptPlan",
    "FakeAPIError",
    "FakeMessagesAPI",
    "Fault",
    "FaultKind",
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
    "DEFAULT_BASE_URL",
    "DEFAULT_HORIZON",
    "DEFAULT_LATENCY",
    "FAULT_KINDS",
    "READ_TOOLS",
    "SIEM_LIMIT",
    "WRITE_TOOLS",
    "Attempt",
    "AttemptPlan",
    "DeadlockError",
    "FakeAPIError",
    "FakeMessagesAPI",
    "Fault",
    "FaultKind",
    "HorizonError",
    "Latency",
    "ScriptError",
    "ScriptStep",
    "ScriptedModel",
    "Sim",
    "VirtualLoop",
    "derive_seed",
    "respond",
    "soc_tools",
    "submit",
    "tool_call",
]
