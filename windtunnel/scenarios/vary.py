"""`vary`: draw a scenario's variable details from the seed and write them in.

Each variable draws from its own stream, named by the scenario and the variable,
so adding a variable never changes what another one draws. ``${name}`` as a whole
value is replaced by the drawn value with its type; inside a longer string (or a
mapping key) it is written in as text.
"""

from __future__ import annotations

import ipaddress
import random
import re
from collections.abc import Mapping
from typing import Any

from windtunnel.simulators import derive_seed

from .schema import Vary

__all__ = ["draw", "placeholders", "substitute"]

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def draw(variables: Mapping[str, Vary], *, seed: int, scenario: str) -> dict[str, Any]:
    """One value for each variable, for ``seed``."""
    values: dict[str, Any] = {}
    for name, spec in variables.items():
        rng = random.Random(derive_seed(seed, f"vary/{scenario}/{name}"))
        if spec.choice is not None:
            values[name] = spec.choice[rng.randrange(len(spec.choice))]
        elif spec.integer is not None:
            values[name] = rng.randint(*spec.integer)
        elif spec.number is not None:
            values[name] = round(rng.uniform(*spec.number), 2)
        else:
            network = ipaddress.ip_network(spec.ip or "", strict=False)
            # Skip the network and broadcast addresses where there are any to skip.
            first, size = (
                (1, network.num_addresses - 2) if network.num_addresses > 2 else (0, network.num_addresses)
            )
            values[name] = str(network.network_address + first + rng.randrange(size))
    return values


def substitute(value: Any, values: Mapping[str, Any]) -> Any:
    """``value`` with every ``${name}`` replaced (``values`` must hold every name used)."""
    if isinstance(value, str):
        whole = _PLACEHOLDER.fullmatch(value)
        if whole:
            return values[whole.group(1)]
        return _PLACEHOLDER.sub(lambda match: str(values[match.group(1)]), value)
    if isinstance(value, Mapping):
        return {substitute(key, values): substitute(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [substitute(item, values) for item in value]
    return value


def placeholders(value: Any, path: tuple[str | int, ...] = ()) -> list[tuple[tuple[str | int, ...], str]]:
    """Every (path, name) of a ``${name}`` in ``value``, keys included."""
    found: list[tuple[tuple[str | int, ...], str]] = []
    if isinstance(value, str):
        found.extend((path, name) for name in _PLACEHOLDER.findall(value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            if isinstance(key, str):
                found.extend(((*path, key), name) for name in _PLACEHOLDER.findall(key))
            found.extend(placeholders(item, (*path, key)))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found.extend(placeholders(item, (*path, index)))
    return found
