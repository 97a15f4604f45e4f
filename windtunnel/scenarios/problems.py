"""What is wrong with a scenario file, where: file, line, field path, and a fix.

Pydantic reports a validation error at a location (``('faults', 2, 'trigger',
'probability')``); this module turns it into the path a person reads
(``faults[2].trigger.probability``), finds the line of that field in the YAML or
JSON source, and for an unknown key suggests the closest key the model accepts.
"""

from __future__ import annotations

import difflib
import types
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Union

from pydantic import BaseModel, ValidationError

from windtunnel.orchestrator import WindtunnelError
from windtunnel.simulators import Fault, fault_kinds

__all__ = ["FileProblem", "ScenarioError", "format_path", "line_of", "problems_from"]

Loc = tuple[str | int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class FileProblem:
    """One problem in a scenario file."""

    file: str
    line: int | None
    """1-based; None when the problem has no place in the file (e.g. a missing file)."""
    path: str
    """The field path, e.g. ``faults[2].trigger.probability``; empty for the whole file."""
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ScenarioError(WindtunnelError):
    """Scenario files are invalid; ``problems`` lists every one found, each with its
    file, line and field path."""

    def __init__(self, problems: Sequence[FileProblem]) -> None:
        self.problems = tuple(problems)
        count = len(self.problems)
        lines = [f"{count} problem{'s' if count != 1 else ''} in scenario files:"]
        lines.extend(f"  {problem}" for problem in self.problems)
        super().__init__("\n".join(lines))


def format_path(loc: Iterable[str | int]) -> str:
    """``('faults', 2, 'trigger')`` as ``faults[2].trigger``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def line_of(node: Any, loc: Loc) -> int | None:
    """The 1-based line of the field at ``loc`` in a ruamel.yaml node tree: the
    deepest part of the path that exists there."""
    line = _start(node)
    for part in loc:
        try:
            if isinstance(part, int) and isinstance(node, list):
                found = node.lc.item(part)[0] if part < len(node) else None  # type: ignore[attr-defined]
                node = node[part] if part < len(node) else None
            elif isinstance(node, Mapping) and part in node:
                found = node.lc.key(part)[0]  # type: ignore[attr-defined]
                node = node[part]
            else:
                return line
        except (AttributeError, KeyError, IndexError, TypeError):
            return line
        if found is None:
            return line
        line = found + 1
    return line


def _start(node: Any) -> int | None:
    lc = getattr(node, "lc", None)
    return None if lc is None or lc.line is None else lc.line + 1


def problems_from(
    error: ValidationError,
    *,
    file: str,
    node: Any,
    data: Any,
    model: Any,
    prefix: Loc = (),
) -> list[FileProblem]:
    """One :class:`FileProblem` per error of ``error``, raised validating ``data``
    (at ``prefix`` in the file's node tree) with ``model``."""
    found = []
    for item in error.errors():
        loc = _data_loc(data, item["loc"])
        full = (*prefix, *loc)
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            message = "unknown key" + _suggestion(
                str(loc[-1]) if loc else "", _keys_at(model, item["loc"][:-1], data)
            )
        elif item["type"] == "missing":
            message = "required, missing"
        elif item["type"] in ("value_error", "assertion_error"):
            message = message.removeprefix("Value error, ")
        found.append(
            FileProblem(file=file, line=line_of(node, full), path=format_path(full), message=message)
        )
    return found


def _data_loc(data: Any, loc: Sequence[str | int]) -> Loc:
    """``loc`` without the union tags pydantic inserts (parts that are not in the data)."""
    kept: list[str | int] = []
    last = len(loc) - 1
    for index, part in enumerate(loc):
        if isinstance(data, Mapping):
            if part in data:
                kept.append(part)
                data = data[part]
            elif index == last or not kept or isinstance(part, int):
                kept.append(part)  # a missing key, say
                data = None
            # else: a union member's name or tag; not a place in the file
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            kept.append(part)
            data = data[part]
        else:
            kept.append(part)
            data = None
    return tuple(kept)


def _keys_at(model: Any, loc: Sequence[str | int], data: Any = None) -> list[str]:
    """The keys the model accepts at ``loc`` (for suggesting one); [] when unknown.
    ``data`` is what was validated: a fault's keys depend on its kind."""
    annotation: Any = model
    for part in loc:
        if isinstance(data, Mapping) and isinstance(part, str) and part not in data:
            continue  # a union member's tag, not a place in the data
        annotation = _unwrap(annotation, part)
        if annotation is None:
            return []
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and isinstance(part, int) and part < len(data):
            data = data[part]
        else:
            data = None
    annotation = _unwrap(annotation, None)
    if isinstance(annotation, type) and issubclass(annotation, Fault) and isinstance(data, Mapping):
        kinds = fault_kinds()
        if data.get("kind") in kinds:
            annotation = kinds[data["kind"]].model
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [info.alias or name for name, info in annotation.model_fields.items()]
    return []


def _unwrap(annotation: Any, part: str | int | None) -> Any:
    """The annotation one step down ``part`` (None: just strip Optional/Annotated)."""
    origin = typing.get_origin(annotation)
    if origin is typing.Annotated:
        return _unwrap(typing.get_args(annotation)[0], part)
    if origin in (Union, types.UnionType):
        members = [a for a in typing.get_args(annotation) if a is not type(None)]
        if isinstance(part, str):
            for member in members:  # a discriminated union: the part is a member's tag
                if isinstance(member, type) and issubclass(member, BaseModel):
                    kind = member.model_fields.get("kind")
                    if kind is not None and kind.default == part:
                        return member
        return _unwrap(members[0], part) if len(members) == 1 else (members[0] if part is None else None)
    if part is None:
        return annotation
    if isinstance(annotation, type) and issubclass(annotation, BaseModel) and isinstance(part, str):
        info = annotation.model_fields.get(part)
        return None if info is None else info.annotation
    if origin in (list, tuple, Sequence) and isinstance(part, int):
        return typing.get_args(annotation)[0]
    if origin in (dict, Mapping) and isinstance(part, str):
        return typing.get_args(annotation)[1]
    return None


def _suggestion(key: str, keys: Sequence[str]) -> str:
    if not keys:
        return ""
    close = difflib.get_close_matches(key, keys, n=1, cutoff=0.5)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return f"{hint} (valid keys: {', '.join(sorted(keys))})"
