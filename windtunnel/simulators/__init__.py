"""Everything fake: the virtual clock, seeded random streams and ids, scripted models.

Later: the world, tools and faults, simulated models and humans.
"""

from .loop import DeadlockError, HorizonError, VirtualLoop
from .scripted import ScriptedModel, ScriptError, ScriptStep, respond, submit, tool_call
from .sim import DEFAULT_HORIZON, Sim, derive_seed

__all__ = [
    "DEFAULT_HORIZON",
    "DeadlockError",
    "HorizonError",
    "ScriptError",
    "ScriptStep",
    "ScriptedModel",
    "Sim",
    "VirtualLoop",
    "derive_seed",
    "respond",
    "submit",
    "tool_call",
]
