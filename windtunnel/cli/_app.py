"""The ``windtunnel`` application and what its commands share: one-line errors, notes."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated

import typer

from windtunnel import __version__
from windtunnel.orchestrator import JsonlSink, SqliteSink, TraceSink

__all__ = ["app", "fail", "iso", "note", "sink", "suggest"]

app = typer.Typer(
    name="windtunnel",
    help="Test LLM-agent orchestration under simulated, reproducible faults.",
    no_args_is_help=True,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"windtunnel {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """Test LLM-agent orchestration under simulated, reproducible faults."""


def fail(message: str) -> typer.Exit:
    # One line, whatever the message: a pydantic error, say, spans several.
    line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    typer.echo(f"windtunnel: {line}", err=True)
    return typer.Exit(code=2)


def note(message: str) -> None:
    typer.echo(f"windtunnel: note: {message}", err=True)


def suggest(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``value``, or nothing."""
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def sink(path: Path) -> TraceSink:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return JsonlSink(path)
    if suffix in {".sqlite", ".sqlite3", ".db"}:
        return SqliteSink(path)
    raise fail(f"--trace {str(path)!r}: use a .jsonl or .sqlite/.sqlite3/.db file")


def iso(wall_time: float) -> str:
    """A wall time (seconds since the epoch) in ISO 8601, UTC, to the microsecond."""
    return datetime.fromtimestamp(wall_time, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")
