"""Shared plumbing of the metrics: checking the runs frame, grouping it, filling rate columns.

Every metric groups by ``config`` first and then by whatever ``by=`` names: any
column of the runs frame, or one of two derived keys — ``tag`` (a run counts under
each of its comma-joined tags) and ``fault_kind`` (a run counts under each fault
kind that fired in it, ``none`` when none did). Rows with a non-empty
``harness_error`` are the harness's failures, not the agent's: they are left out of
every metric and counted in a ``harness_errors`` column.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

import pandas as pd

from windtunnel.orchestrator import InvalidArgument

from .stats import Estimate, wilson

__all__ = ["By", "add_estimate", "add_rate", "grouped", "require", "rows_frame"]

By = str | Sequence[str]
"""Extra grouping keys after ``config``: a column name, ``tag``, ``fault_kind``, or several."""

DERIVED = ("tag", "fault_kind")


def require(frame: pd.DataFrame, *columns: str) -> None:
    """Raise `InvalidArgument` naming the columns the runs frame lacks."""
    missing = [column for column in ("config", "scenario", "harness_error", *columns) if column not in frame]
    if missing:
        raise InvalidArgument(f"the runs frame lacks the columns {missing!r}; it has {list(frame.columns)!r}")


def _keys(by: By) -> list[str]:
    extra = [by] if isinstance(by, str) else list(by)
    return ["config", *(key for key in extra if key != "config")]


def _fired_kinds(value: object) -> list[str]:
    counts = json.loads(value) if isinstance(value, str) and value else {}
    kinds = sorted(kind for kind, count in counts.items() if count)
    return kinds or ["none"]


def _expand(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    for key in keys:
        if key in DERIVED and key not in frame:
            if key == "tag":
                require(frame, "tags")
                tags = frame["tags"].fillna("").astype(str).str.split(",")
                stripped = pd.Series(
                    [[t.strip() for t in row] for row in tags], index=frame.index, dtype=object
                )
                frame = frame.assign(tag=stripped).explode("tag")
            else:
                require(frame, "faults_fired_by_kind")
                kinds = pd.Series(
                    [_fired_kinds(value) for value in frame["faults_fired_by_kind"]],
                    index=frame.index,
                    dtype=object,
                )
                frame = frame.assign(fault_kind=kinds).explode("fault_kind")
        elif key not in frame:
            raise InvalidArgument(f"by={key!r} is neither a column of the runs frame nor one of {DERIVED!r}")
    return frame


def grouped(frame: pd.DataFrame, by: By) -> Iterator[tuple[dict[str, Any], pd.DataFrame, int]]:
    """Yield ``(keys, agent_rows, harness_errors)`` per group, in sorted key order."""
    keys = _keys(by)
    frame = _expand(frame, keys)
    failed = frame["harness_error"].fillna("").astype(str) != ""
    frame = frame.assign(_failed=failed)
    for values, group in frame.groupby(keys, sort=True, dropna=False):
        agent = group[~group["_failed"]].drop(columns="_failed")
        yield dict(zip(keys, values, strict=True)), agent, int(group["_failed"].sum())


def add_estimate(row: dict[str, Any], name: str, estimate: Estimate) -> None:
    """Set ``name``, ``name_low`` and ``name_high`` in ``row``."""
    row[name], row[f"{name}_low"], row[f"{name}_high"] = estimate


def add_rate(row: dict[str, Any], name: str, successes: int, n: int) -> None:
    """Set ``name`` to ``successes / n`` with its Wilson interval (NaN when ``n == 0``)."""
    add_estimate(row, name, wilson(int(successes), int(n)))


def rows_frame(rows: list[dict[str, Any]], by: By, columns: Sequence[str] = ()) -> pd.DataFrame:
    """The rows as a frame, key columns first; an empty frame keeps its columns."""
    keys = _keys(by)
    if not rows:
        return pd.DataFrame(columns=[*keys, *columns])
    return pd.DataFrame(rows)
