"""The evidence codec: how a tool result says it is partial or empty, and how much evidence it carries.

The one place that defines it. The fault injector builds degraded answers with
:func:`partial` and :func:`empty`; the simulated model weighs what came back with
:func:`strength`. A tool of a user's domain that can itself answer in part
(a paged search cut short, say) returns ``partial(result, fraction)`` too.

| tool result                                  | strength |
|----------------------------------------------|----------|
| missing, an error, or empty (``""``, ``[]``, ``{}``, ``null``) | 0        |
| ``partial(...)``: a JSON object with ``"partial": true``        | :data:`PARTIAL_STRENGTH` |
| anything else                                | 1        |
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from windtunnel.orchestrator.model import ToolResultBlock

__all__ = ["PARTIAL", "PARTIAL_STRENGTH", "empty", "partial", "strength"]

PARTIAL = "partial"
"""The key whose value ``true`` marks a partial answer."""

PARTIAL_STRENGTH = 0.5
"""Evidence a partial answer carries: half, whatever share of it was kept."""

_EMPTY = frozenset({"", "[]", "{}", "null"})


def partial(result: Any, fraction: float) -> dict[str, Any]:
    """``result`` marked partial; a list keeps its first ``fraction`` (rounded down).

    Example:
        >>> partial([1, 2, 3, 4], 0.5)
        {'partial': True, 'result': [1, 2]}
    """
    kept = result[: int(len(result) * fraction)] if isinstance(result, list) else result
    return {PARTIAL: True, "result": kept}


def empty(result: Any) -> Any:
    """An empty answer of the same shape as ``result``: ``[]``, ``{}`` or ``""``."""
    if isinstance(result, list):
        return []
    if isinstance(result, Mapping):
        return {}
    return ""


def strength(result: ToolResultBlock | None) -> float:
    """How much evidence a tool result carries: 0, :data:`PARTIAL_STRENGTH` or 1 (see the table)."""
    if result is None or result.is_error:
        return 0.0
    content = result.content.strip()
    if content in _EMPTY:
        return 0.0
    # Only a JSON object can be marked; parse it only when the key is there at all.
    if content.startswith("{") and PARTIAL in content:
        try:
            decoded = json.loads(content)
        except ValueError:
            return 1.0
        if isinstance(decoded, dict) and decoded.get(PARTIAL) is True:
            return PARTIAL_STRENGTH
    return 1.0
