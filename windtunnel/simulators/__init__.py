"""Everything fake: the virtual clock, seeded random streams and ids, scripted models.

Later: the world, tools and faults, simulated models and humans.
"""

from .loop import DeadlockError, VirtualLoop
from .scripted import ScriptedModel, ScriptError, ScriptStep, respond, submit, tool_call
from .sim import Sim, derive_seed

__all__ = [
    "DeadlockError",
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
