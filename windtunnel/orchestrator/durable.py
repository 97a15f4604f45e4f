"""Saving a run's checkpoint, and checking a store before a run resumes from it.

The engine calls :func:`save_checkpoint` at every transition of a durable run;
:func:`resumable_events` is what ``resume()`` reads back, checked to cover the
checkpoint exactly (see :mod:`~windtunnel.orchestrator.checkpoint` for the rules).
"""

from __future__ import annotations

import functools
from typing import Any

from .budget import Budget
from .checkpoint import Checkpoint, CheckpointStore
from .context import _Run
from .errors import StoreError
from .events import Event

__all__ = ["resumable_events", "save_checkpoint"]


def save_checkpoint(run: _Run, status: Any, state: str, attempt: int, feedback: list[str]) -> None:
    """Commit where ``run`` stands, with its events since the last checkpoint."""
    records = run.trace.records
    mine = [record for record in records[run.saved :] if record[1] == run.run_id]
    run.saved = len(records)
    run.durable.save(  # type: ignore[union-attr]
        Checkpoint(
            run_id=run.run_id,
            workflow=run.workflow,
            status=status,
            state=state,
            attempt=attempt,
            feedback=tuple(feedback),
            data=run.data,
            steps=run.steps,
            seq=run.seq,
            cost=run.cost,
            elapsed=run.elapsed(),
            case=run.case,
            budget=_budget(run.budget),
            incarnation=run.incarnation,
            started=run.started,
            saved_at=run.loop.time(),
            grants=tuple(sorted(run.grants, key=lambda g: (g.resource, g.intent))),
            fingerprint=run.fingerprint,
        ),
        mine,
    )


@functools.lru_cache(maxsize=64)
def _budget(budget: Budget) -> dict[str, Any]:
    """The budget as checkpointed: dumped once per budget (they are frozen, and a
    dump costs more than the rest of a checkpoint's fields together)."""
    return budget.model_dump()


def resumable_events(store: CheckpointStore, checkpoint: Checkpoint) -> list[Event]:
    """The run's committed events, checked to be exactly seq 0 .. checkpoint.seq - 1.

    Raises:
        StoreError: events are missing or in excess: resuming would leave a gap.
    """
    events = store.events(checkpoint.run_id)
    seqs = [event.seq for event in events]
    if seqs == list(range(checkpoint.seq)):
        return events
    have = set(seqs)
    missing = [seq for seq in range(checkpoint.seq) if seq not in have]
    extra = sorted(seq for seq in have if not 0 <= seq < checkpoint.seq)
    problems = []
    if missing:
        problems.append(f"seq {_spans(missing)} missing")
    if extra:
        problems.append(f"seq {_spans(extra)} beyond the checkpoint")
    path = getattr(store, "path", None)
    raise StoreError(
        f"{store!r}: the events of run {checkpoint.run_id!r} do not cover its checkpoint (seq 0.."
        f"{checkpoint.seq - 1}): {'; '.join(problems)}; resuming would leave a gap in its trace",
        path=path if isinstance(path, str) else None,
        run_id=checkpoint.run_id,
        seq=(missing or extra)[0],
    )


def _spans(numbers: list[int]) -> str:
    """``[3, 4, 5, 9]`` as ``"3..5, 9"``."""
    spans: list[str] = []
    start = previous = numbers[0]
    for number in [*numbers[1:], None]:
        if number is not None and number == previous + 1:
            previous = number
            continue
        spans.append(str(start) if start == previous else f"{start}..{previous}")
        if number is not None:
            start = previous = number
    return ", ".join(spans)
