"""``windtunnel runs``: the runs in a durable store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from windtunnel.orchestrator import RunInfo, SqliteStore, WindtunnelError

from ._app import app, fail, iso

__all__ = ["runs_app"]


runs_app = typer.Typer(
    help="The runs in a durable store: list them, release abandoned ones.", no_args_is_help=True
)
app.add_typer(runs_app, name="runs")


def _store(path: Path) -> SqliteStore:
    if not path.is_file():
        raise fail(f"no store at {str(path)!r}")
    try:
        return SqliteStore(path)
    except WindtunnelError as exc:
        raise fail(str(exc)) from None


@runs_app.command("list")
def runs_list(
    path: Annotated[Path, typer.Argument(help="A SqliteStore file.")],
    abandoned: Annotated[
        bool, typer.Option("--abandoned", help="Only unfinished runs whose owner is gone.")
    ] = False,
) -> None:
    """List the runs in a store: status, state, owner and its lease, leases held, pending approvals."""
    store = _store(path)
    try:
        infos = store.runs()
    except WindtunnelError as exc:
        raise fail(str(exc)) from None
    if abandoned:
        infos = [info for info in infos if _abandoned(info)]
    if not infos:
        typer.echo("(no runs)")
        return
    for info in infos:
        cp = info.checkpoint
        if info.owner is None:
            owner = "no owner"
        else:
            lease = "live" if info.owner_alive else "lapsed"
            owner = f"owner {info.owner} ({lease}, until {iso(info.owner_expires)})"
        held = ", ".join(f"{lease.intent} {lease.resource}" for lease in info.leases) or "none"
        approvals = ", ".join(info.pending_approvals) or "none"
        flag = "  ABANDONED" if _abandoned(info) else ""
        typer.echo(
            f"{cp.run_id}  {cp.status} in {cp.state!r} (life {cp.incarnation}, {cp.steps} steps){flag}\n"
            f"    {owner}; leases: {held}; pending approvals: {approvals}"
        )


def _abandoned(info: RunInfo) -> bool:
    """Unfinished, not paused for a human, and nobody drives it."""
    return info.checkpoint.status == "running" and not info.owner_alive


@runs_app.command("release")
def runs_release(
    path: Annotated[Path, typer.Argument(help="A SqliteStore file.")],
    run_ids: Annotated[list[str] | None, typer.Argument(help="The runs to release.")] = None,
    abandoned: Annotated[bool, typer.Option("--abandoned", help="Release every abandoned run.")] = False,
    force: Annotated[
        bool, typer.Option("--force", help="Release even a run whose owner's lease is live.")
    ] = False,
) -> None:
    """Release runs: their owner lease and resource leases, so they can be resumed and
    others may act on what they held."""
    store = _store(path)
    targets = list(run_ids or [])
    try:
        if abandoned:
            targets += [info.checkpoint.run_id for info in store.runs() if _abandoned(info)]
        if not targets:
            raise fail("name the runs to release, or pass --abandoned")
        for run_id in dict.fromkeys(targets):
            info = store.release_run(run_id, force=force)
            held = len(info.leases)
            typer.echo(
                f"released {run_id} ({info.checkpoint.status} in {info.checkpoint.state!r}; {held} lease(s))"
            )
    except WindtunnelError as exc:
        raise fail(str(exc)) from None
