"""`vary`: draw a scenario's variable details from the seed and write them in.

Each variable draws from its own stream, named by the scenario and the variable,
so adding a variable never changes what another one draws. ``${name}`` as a whole
value is replaced by the drawn value with its type; inside a longer string (or a
mapping key) it is written in as text.

A tree filled in for many seeds is compiled once into a :class:`Template`.
"""

from __future__ import annotations

import functools
import ipaddress
import marshal
import random
import re
from collections.abc import Mapping
from typing import Any

from windtunnel.simulators import derive_seed

from .schema import Vary

__all__ = ["Template", "draw", "placeholders", "substitute"]

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
            network = _network(spec.ip or "")
            # Skip the network and broadcast addresses where there are any to skip.
            first, size = (
                (1, network.num_addresses - 2) if network.num_addresses > 2 else (0, network.num_addresses)
            )
            values[name] = str(network.network_address + first + rng.randrange(size))
    return values


# A scenario's networks are parsed for every seed it runs with: parse each once.
_network = functools.lru_cache(maxsize=1024)(functools.partial(ipaddress.ip_network, strict=False))


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


_PLAIN = (str, int, float, bool, type(None))


class Template:
    """A tree with ``${name}`` placeholders, compiled once, filled in for each seed.

    :meth:`fill` gives what :func:`substitute` gives, a fresh tree each time (nothing
    shared with the template or another filling), without walking the tree again.

    Example:
        >>> template = Template({"ips": {"${ip}": {"address": "${ip}", "port": 443}}})
        >>> template.fill({"ip": "203.0.113.7"})
        {'ips': {'203.0.113.7': {'address': '203.0.113.7', 'port': 443}}}
    """

    __slots__ = ("_frozen", "_keys", "_tree", "_values", "constant")

    def __init__(self, tree: Any) -> None:
        """Args:
        tree: plain data (dicts, lists, strings, numbers), as a scenario file holds it.
        """
        self._tree = tree
        self._values: list[tuple[tuple[Any, ...], _Text]] = []
        self._keys: list[tuple[Any, ...]] = []
        # marshal copies a plain tree at C speed; aliased parts would stay aliased in the copy.
        self._frozen = marshal.dumps(tree) if self._walk(tree, (), set()) else None
        self._keys.sort(key=len, reverse=True)  # renamed deepest first: the paths above stay valid
        self.constant = not placeholders(tree)
        """Whether the tree has no placeholder: every filling equals it."""

    def _walk(self, value: Any, path: tuple[Any, ...], seen: set[int]) -> bool:
        """Note every placeholder under ``path``; False if the tree is not plain, unaliased data."""
        kind = type(value)
        if kind is str:
            if _PLACEHOLDER.search(value):
                self._values.append((path, _Text(value)))
            return True
        if kind is dict or kind is list:
            if id(value) in seen:
                return False
            seen.add(id(value))
            if kind is list:
                return all(self._walk(item, (*path, index), seen) for index, item in enumerate(value))
            if any(type(key) is str and _PLACEHOLDER.search(key) for key in value):
                self._keys.append(path)
            return all(
                type(key) in _PLAIN and self._walk(item, (*path, key), seen) for key, item in value.items()
            )
        return kind in _PLAIN

    def fill(self, values: Mapping[str, Any]) -> Any:
        """A fresh copy of the tree with every placeholder replaced (``values`` must hold every name used)."""
        if self._frozen is None:
            return substitute(self._tree, values)
        tree = marshal.loads(self._frozen)
        for path, text in self._values:
            if not path:
                return text.fill(values)
            parent = tree
            for step in path[:-1]:
                parent = parent[step]
            parent[path[-1]] = text.fill(values)
        for path in self._keys:
            mapping = tree
            for step in path:
                mapping = mapping[step]
            items = list(mapping.items())
            mapping.clear()
            mapping.update((substitute(key, values), item) for key, item in items)
        return tree


class _Text:
    """A string with placeholders, split once: a whole ``${name}`` keeps its value's type."""

    __slots__ = ("_parts", "_whole")

    def __init__(self, text: str) -> None:
        whole = _PLACEHOLDER.fullmatch(text)
        self._whole = whole.group(1) if whole else None
        self._parts = _PLACEHOLDER.split(text)  # text, name, text, name, ..., text

    def fill(self, values: Mapping[str, Any]) -> Any:
        if self._whole is not None:
            return values[self._whole]
        parts = self._parts
        return "".join(part if index % 2 == 0 else str(values[part]) for index, part in enumerate(parts))
