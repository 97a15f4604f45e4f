"""Everything fake: the virtual clock, seeded random streams and ids.

Later: the world, tools and faults, simulated models, humans, the fake Anthropic API.
"""

from .loop import DeadlockError, VirtualLoop
from .sim import Sim, derive_seed

__all__ = ["DeadlockError", "Sim", "VirtualLoop", "derive_seed"]
