"""The ``windtunnel`` command line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from windtunnel import __version__
from windtunnel.orchestrator import JsonlSink, SqliteSink, Trace, TraceSink, WindtunnelError, load_trace
from windtunnel.reports import summarize_trace
from windtunnel.scenarios import DemoVariant, run_demo
from windtunnel.simulators import Sim

__all__ = ["app"]

app = typer.Typer(
    name="windtunnel",
    help="Test LLM-agent orchestration under simulated, reproducible faults.",
    no_args_is_help=True,
    add_completion=False,
)

_VARIANTS: tuple[str, ...] = get_args(DemoVariant)


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


def _fail(message: str) -> typer.Exit:
    typer.echo(f"windtunnel: {message}", err=True)
    return typer.Exit(code=2)


def _sink(path: Path) -> TraceSink:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return JsonlSink(path)
    if suffix in {".sqlite", ".sqlite3", ".db"}:
        return SqliteSink(path)
    raise _fail(f"--trace {str(path)!r}: use a .jsonl or .sqlite/.sqlite3/.db file")


@app.command()
def demo(
    seed: Annotated[int, typer.Option(help="Simulation seed; the same seed gives the same trace.")] = 0,
    variant: Annotated[
        str, typer.Option(help=f"One of {', '.join(_VARIANTS)}, or 'all'.", show_default=True)
    ] = "all",
    trace_path: Annotated[
        Path | None, typer.Option("--trace", help="Also write the events to this .jsonl or .sqlite file.")
    ] = None,
) -> None:
    """Run the demo security-alert investigation in simulation and summarize its trace."""
    if variant != "all" and variant not in _VARIANTS:
        raise _fail(f"unknown --variant {variant!r}; choose one of {', '.join(_VARIANTS)}, or 'all'")
    variants = _VARIANTS if variant == "all" else (variant,)
    if trace_path is not None:
        trace_path.unlink(missing_ok=True)  # the command's output: replaced, not appended to
    trace = Trace(_sink(trace_path)) if trace_path is not None else Trace()
    sim = Sim(seed=seed)
    try:
        for name in variants:
            before = len(trace)
            result = run_demo(variant=name, sim=sim, trace=trace)  # type: ignore[arg-type]
            typer.echo(f"--- variant {name} (seed {seed}) ---")
            typer.echo(summarize_trace(trace.events[before:]))
            typer.echo(f"    status={result.status} final_state={result.final_state}\n")
    finally:
        trace.close()
    if trace_path is not None:
        typer.echo(f"{len(trace)} events written to {trace_path}")


@app.command("trace")
def trace_command(
    path: Annotated[Path, typer.Argument(help="A trace file (.jsonl or .sqlite/.sqlite3/.db).")],
    run_id: Annotated[str | None, typer.Option("--run", help="Only this run.")] = None,
    kind: Annotated[list[str] | None, typer.Option(help="Only events of this kind (repeatable).")] = None,
    state: Annotated[str | None, typer.Option(help="Only events in this state.")] = None,
    where: Annotated[
        list[str] | None, typer.Option(help="FIELD=VALUE, VALUE read as JSON when it parses (repeatable).")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="summary, jsonl or table.")] = "summary",
) -> None:
    """Search a trace file: filter by run, kind, state and field values."""
    if output not in {"summary", "jsonl", "table"}:
        raise _fail(f"unknown --format {output!r}; choose summary, jsonl or table")
    fields: dict[str, Any] = {}
    for item in where or []:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise _fail(f"--where {item!r}: expected FIELD=VALUE, e.g. --where target=close")
        try:
            fields[name] = json.loads(raw)
        except ValueError:
            fields[name] = raw
    try:
        events = load_trace(path).query(run_id=run_id, kind=kind or None, state=state, **fields)
    except WindtunnelError as exc:
        raise _fail(str(exc)) from None
    if output == "summary":
        typer.echo(summarize_trace(events))
    elif output == "jsonl":
        for event in events:
            typer.echo(event.model_dump_json(fallback=repr))
    else:
        frame = Trace.from_events(events).to_frame()
        typer.echo(frame.to_string(index=False) if len(frame) else "(no events)")


@app.command()
def investigate(
    seed: Annotated[int, typer.Option(help="Simulation seed (also picks the case).")] = 0,
    tier: Annotated[
        str, typer.Option(help="The model tier that investigates: small, mid or large.")
    ] = "small",
    case: Annotated[
        str | None,
        typer.Option(help="c2_beacon, critical_host or benign_scanner; drawn from the seed by default."),
    ] = None,
    fault: Annotated[
        list[str] | None,
        typer.Option(help="KIND@TARGET, e.g. timeout@tool:threat_intel or human_absent@humans (repeatable)."),
    ] = None,
    via_api: Annotated[
        bool, typer.Option(help="Route the models through the real SDK and the fake API.")
    ] = False,
) -> None:
    """Run the agent investigation once, under the given faults, and summarize its trace."""
    from pydantic import ValidationError

    from windtunnel.scenarios.investigation import CASE_TEMPLATES, run_investigation
    from windtunnel.simulators import Fault, FaultPlan, SimulatedCrash

    if case is not None and case not in CASE_TEMPLATES:
        raise _fail(f"unknown --case {case!r}; choose one of {', '.join(CASE_TEMPLATES)}")
    faults = []
    for number, spec in enumerate(fault or [], start=1):
        kind, sep, target = spec.partition("@")
        if not sep:
            raise _fail(f"--fault {spec!r}: expected KIND@TARGET, e.g. timeout@tool:threat_intel")
        extra: dict[str, Any] = (
            {"seconds": 60.0} if kind in {"latency_spike", "stale_read", "human_slow"} else {}
        )
        if kind == "crash":
            extra["at_transition"] = 2
        try:
            faults.append(Fault(id=f"f{number}", kind=kind, target=target, **extra))
        except ValidationError as exc:
            raise _fail(f"--fault {spec!r}: {exc.errors()[0]['msg']}") from None
    trace = Trace()
    try:
        result = run_investigation(
            seed=seed,
            tier=tier,
            case=case,
            plan=FaultPlan(faults=faults),
            via_api=via_api,
            trace=trace,
        )
    except SimulatedCrash as exc:
        typer.echo(summarize_trace(trace.events))
        typer.echo(f"    crashed: {exc}")
        return
    except (ValueError, WindtunnelError) as exc:
        raise _fail(str(exc)) from None
    typer.echo(summarize_trace(trace.events))
    truth = result.case.truth
    typer.echo(
        f"    truth: {truth.verdict}, needs a human: {truth.needs_human}; "
        f"the run was {'right' if result.correct else 'WRONG'}"
    )
