"""``windtunnel demo`` and ``windtunnel trace``: the demo, and reading trace files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from windtunnel.orchestrator import (
    EVENT_TYPES,
    Event,
    Trace,
    WindtunnelError,
    query_events,
    read_trace,
)
from windtunnel.reports import summarize_trace
from windtunnel.scenarios import DemoVariant, run_demo
from windtunnel.simulators import Sim

from ._app import app, fail, iso, note, sink, suggest

__all__ = ["demo", "trace_command"]

_VARIANTS: tuple[str, ...] = get_args(DemoVariant)


@app.command()
def demo(
    seed: Annotated[
        int, typer.Option(min=0, help="Simulation seed; the same seed gives the same trace.")
    ] = 0,
    variant: Annotated[
        str, typer.Option(help=f"One of {', '.join(_VARIANTS)}, or 'all'.", show_default=True)
    ] = "all",
    trace_path: Annotated[
        Path | None, typer.Option("--trace", help="Also write the events to this .jsonl or .sqlite file.")
    ] = None,
) -> None:
    """Run the demo security-alert investigation in simulation and summarize its trace."""
    if variant != "all" and variant not in _VARIANTS:
        raise fail(
            f"unknown --variant {variant!r}{suggest(variant, _VARIANTS)}; "
            f"choose one of {', '.join(_VARIANTS)}, or 'all'"
        )
    variants = _VARIANTS if variant == "all" else (variant,)
    trace = Trace()
    if trace_path is not None:
        try:
            trace_path.unlink(missing_ok=True)  # the command's output: replaced, not appended to
        except OSError as exc:
            raise fail(f"--trace {str(trace_path)!r}: cannot replace it: {exc.strerror}") from None
        try:
            trace.attach(sink(trace_path))
        except WindtunnelError as exc:
            raise fail(str(exc)) from None
    sim = Sim(seed=seed)
    try:
        try:
            for name in variants:
                before = len(trace)
                result = run_demo(variant=name, sim=sim, trace=trace)  # type: ignore[arg-type]
                typer.echo(f"--- variant {name} (seed {seed}) ---")
                typer.echo(summarize_trace(trace.events[before:]))
                typer.echo(f"    status={result.status} final_state={result.final_state}\n")
        finally:
            trace.close()
    except OSError as exc:  # only the trace file is written to: a full disk, say
        raise fail(f"--trace {str(trace_path)!r}: cannot write to it: {exc.strerror or exc}") from None
    except WindtunnelError as exc:
        raise fail(str(exc)) from None
    if trace_path is not None:
        typer.echo(f"{len(trace)} events written to {trace_path}")


_FORMATS = ("summary", "jsonl", "table")
_OPTION_FIELDS = {"kind": "--kind", "run_id": "--run", "state": "--state"}  # fields with their own option


@app.command("trace")
def trace_command(
    path: Annotated[
        Path, typer.Argument(help="A trace file (.jsonl or .sqlite/.sqlite3/.db), or a results directory.")
    ],
    run_id: Annotated[
        str | None, typer.Option("--run", help="Only this run (in results: its cell id).")
    ] = None,
    scenario: Annotated[str | None, typer.Option(help="Results directory: only this scenario.")] = None,
    config: Annotated[str | None, typer.Option(help="Results directory: only this config.")] = None,
    seed: Annotated[int | None, typer.Option(help="Results directory: only this seed index.")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only events of this kind (repeatable).")] = None,
    state: Annotated[str | None, typer.Option(help="Only events in this state.")] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="FIELD=VALUE, VALUE read as JSON when it parses (repeatable).")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="summary, jsonl or table.")] = "summary",
    otlp_out: Annotated[
        Path | None,
        typer.Option(
            "--otlp-json",
            metavar="OUT",
            help="Also write the selected runs, whole, as OpenTelemetry spans (OTLP/JSON, GenAI semconv).",
        ),
    ] = None,
) -> None:
    """Search a trace file or a results directory: filter by run, kind, state and
    field values (and in results by scenario, config and seed index).

    Times in the summary count from each run's start; wall times in the table are
    ISO 8601, in UTC. A torn last line (a writer killed mid-line) and lines that a
    resumed run recorded again are left out, with a note on stderr.
    """
    if output not in _FORMATS:
        raise fail(f"unknown --format {output!r}{suggest(output, _FORMATS)}; choose summary, jsonl or table")
    kinds = _kinds(kind or [])
    fields = _fields(where or [], kinds)
    if path.is_dir():
        scope = _results(path, scenario=scenario, config=config, seed=seed)
    elif scenario is not None or config is not None or seed is not None:
        raise fail("--scenario, --config and --seed filter a results directory, not a trace file")
    else:
        scope = _trace_file(path)
    if run_id is not None:
        runs = list(dict.fromkeys(event.run_id for event in scope))
        if run_id not in runs:
            raise fail(f"unknown --run {run_id!r}{suggest(run_id, runs)}; the trace holds {', '.join(runs)}")
        scope = query_events(scope, run_id=run_id)
    if state is not None:
        states = sorted({event.state for event in scope if event.state is not None})
        if state not in states:
            raise fail(f"no event in --state {state!r}{suggest(state, states)}; states: {', '.join(states)}")
    events = query_events(scope, kind=kinds or None, state=state, **fields)
    if otlp_out is not None:
        # Whole runs: the filters choose runs, a span tree of only some events would mislead.
        chosen = {event.run_id for event in events}
        _write_otlp([event for event in scope if event.run_id in chosen], otlp_out)
    if output == "summary":
        typer.echo(summarize_trace(events, trace=scope))
    elif output == "jsonl":
        for event in events:
            typer.echo(event.model_dump_json(fallback=repr))
    elif events:
        frame = Trace.from_events(events).to_frame()
        frame["wall_time"] = [iso(wall) for wall in frame["wall_time"]]
        typer.echo(frame.to_string(index=False))
    else:
        typer.echo("(no events)")


def _write_otlp(events: list[Event], out: Path) -> None:
    from windtunnel.reports import write_otlp_json

    try:
        write_otlp_json(events, out)
    except OSError as exc:
        raise fail(f"--otlp-json {str(out)!r}: cannot write to it: {exc.strerror or exc}") from None
    except WindtunnelError as exc:
        raise fail(str(exc)) from None
    runs = len({event.run_id for event in events})
    note(f"{runs} run{'s' if runs != 1 else ''} written to {out} as OpenTelemetry spans (OTLP/JSON)")


def _trace_file(path: Path) -> list[Event]:
    try:
        read = read_trace(path)
    except WindtunnelError as exc:
        raise fail(str(exc)) from None
    if read.torn is not None:
        note(read.torn)
    if read.superseded:
        note(
            f"{path}: {read.superseded} line{'s' if read.superseded != 1 else ''} superseded by a later line "
            "for the same run and seq (a resumed run records again what its dead life had not committed)"
        )
    return read.trace.events


def _results(path: Path, *, scenario: str | None, config: str | None, seed: int | None) -> list[Event]:
    from windtunnel.evals import run_events

    if not (path / "events.parquet").is_dir():
        raise fail(f"{path} is a directory but not a results directory (no events.parquet in it)")
    try:
        return run_events(path, scenario=scenario, config=config, seed_index=seed)
    except (WindtunnelError, OSError) as exc:
        raise fail(str(exc)) from None


def _kinds(kinds: list[str]) -> list[str]:
    """The ``--kind`` values, each checked against the known event kinds."""
    for kind in kinds:
        if kind not in EVENT_TYPES:
            known = ", ".join(sorted(EVENT_TYPES))
            raise fail(f"unknown --kind {kind!r}{suggest(kind, EVENT_TYPES)}; known kinds: {known}")
    return kinds


def _fields(where: list[str], kinds: list[str]) -> dict[str, Any]:
    """The ``--where`` filters, each a field that events of the chosen kinds (any kind,
    when none is chosen) have; values are read as JSON when they parse."""
    names = sorted({name for kind in kinds or EVENT_TYPES for name in EVENT_TYPES[kind].model_fields})
    fields: dict[str, Any] = {}
    for item in where:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise fail(f"--where {item!r}: expected FIELD=VALUE, e.g. --where target=close")
        if name in _OPTION_FIELDS:
            raise fail(f"--where {item!r}: filter {name} with {_OPTION_FIELDS[name]} instead")
        if name not in names:
            which = f"of kind {', '.join(kinds)} " if kinds else ""
            raise fail(f"--where {item!r}: no event {which}has a field {name!r}{suggest(name, names)}")
        try:
            fields[name] = json.loads(raw)
        except ValueError:
            fields[name] = raw
    return fields
