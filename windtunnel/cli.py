"""The ``windtunnel`` command line."""

from __future__ import annotations

import difflib
import json
from collections.abc import Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, get_args

import typer

from windtunnel import __version__
from windtunnel.orchestrator import (
    EVENT_TYPES,
    JsonlSink,
    RunInfo,
    SqliteSink,
    SqliteStore,
    Trace,
    TraceSink,
    WindtunnelError,
    query_events,
    read_trace,
)
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
    # One line, whatever the message: a pydantic error, say, spans several.
    line = "; ".join(part.strip() for part in message.splitlines() if part.strip())
    typer.echo(f"windtunnel: {line}", err=True)
    return typer.Exit(code=2)


def _note(message: str) -> None:
    typer.echo(f"windtunnel: note: {message}", err=True)


def _suggest(value: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the choice closest to ``value``, or nothing."""
    close = difflib.get_close_matches(value, list(choices), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _sink(path: Path) -> TraceSink:
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return JsonlSink(path)
    if suffix in {".sqlite", ".sqlite3", ".db"}:
        return SqliteSink(path)
    raise _fail(f"--trace {str(path)!r}: use a .jsonl or .sqlite/.sqlite3/.db file")


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
        raise _fail(
            f"unknown --variant {variant!r}{_suggest(variant, _VARIANTS)}; "
            f"choose one of {', '.join(_VARIANTS)}, or 'all'"
        )
    variants = _VARIANTS if variant == "all" else (variant,)
    trace = Trace()
    if trace_path is not None:
        try:
            trace_path.unlink(missing_ok=True)  # the command's output: replaced, not appended to
        except OSError as exc:
            raise _fail(f"--trace {str(trace_path)!r}: cannot replace it: {exc.strerror}") from None
        try:
            trace.attach(_sink(trace_path))
        except WindtunnelError as exc:
            raise _fail(str(exc)) from None
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
        raise _fail(f"--trace {str(trace_path)!r}: cannot write to it: {exc.strerror or exc}") from None
    except WindtunnelError as exc:
        raise _fail(str(exc)) from None
    if trace_path is not None:
        typer.echo(f"{len(trace)} events written to {trace_path}")


_FORMATS = ("summary", "jsonl", "table")
_OPTION_FIELDS = {"kind": "--kind", "run_id": "--run", "state": "--state"}  # fields with their own option


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
    """Search a trace file: filter by run, kind, state and field values.

    Times in the summary count from each run's start; wall times in the table are
    ISO 8601, in UTC. A torn last line (a writer killed mid-line) and lines that a
    resumed run recorded again are left out, with a note on stderr.
    """
    if output not in _FORMATS:
        raise _fail(
            f"unknown --format {output!r}{_suggest(output, _FORMATS)}; choose summary, jsonl or table"
        )
    kinds = _kinds(kind or [])
    fields = _fields(where or [], kinds)
    try:
        read = read_trace(path)
    except WindtunnelError as exc:
        raise _fail(str(exc)) from None
    if read.torn is not None:
        _note(read.torn)
    if read.superseded:
        _note(
            f"{path}: {read.superseded} line{'s' if read.superseded != 1 else ''} superseded by a later line "
            "for the same run and seq (a resumed run records again what its dead life had not committed)"
        )
    scope = read.trace.events
    if run_id is not None:
        runs = list(dict.fromkeys(event.run_id for event in scope))
        if run_id not in runs:
            raise _fail(
                f"unknown --run {run_id!r}{_suggest(run_id, runs)}; the trace holds {', '.join(runs)}"
            )
        scope = query_events(scope, run_id=run_id)
    if state is not None:
        states = sorted({event.state for event in scope if event.state is not None})
        if state not in states:
            raise _fail(
                f"no event in --state {state!r}{_suggest(state, states)}; states: {', '.join(states)}"
            )
    events = query_events(scope, kind=kinds or None, state=state, **fields)
    if output == "summary":
        typer.echo(summarize_trace(events, trace=scope))
    elif output == "jsonl":
        for event in events:
            typer.echo(event.model_dump_json(fallback=repr))
    elif events:
        frame = Trace.from_events(events).to_frame()
        frame["wall_time"] = [_iso(wall) for wall in frame["wall_time"]]
        typer.echo(frame.to_string(index=False))
    else:
        typer.echo("(no events)")


def _kinds(kinds: list[str]) -> list[str]:
    """The ``--kind`` values, each checked against the known event kinds."""
    for kind in kinds:
        if kind not in EVENT_TYPES:
            known = ", ".join(sorted(EVENT_TYPES))
            raise _fail(f"unknown --kind {kind!r}{_suggest(kind, EVENT_TYPES)}; known kinds: {known}")
    return kinds


def _fields(where: list[str], kinds: list[str]) -> dict[str, Any]:
    """The ``--where`` filters, each a field that events of the chosen kinds (any kind,
    when none is chosen) have; values are read as JSON when they parse."""
    names = sorted({name for kind in kinds or EVENT_TYPES for name in EVENT_TYPES[kind].model_fields})
    fields: dict[str, Any] = {}
    for item in where:
        name, sep, raw = item.partition("=")
        if not sep or not name:
            raise _fail(f"--where {item!r}: expected FIELD=VALUE, e.g. --where target=close")
        if name in _OPTION_FIELDS:
            raise _fail(f"--where {item!r}: filter {name} with {_OPTION_FIELDS[name]} instead")
        if name not in names:
            which = f"of kind {', '.join(kinds)} " if kinds else ""
            raise _fail(f"--where {item!r}: no event {which}has a field {name!r}{_suggest(name, names)}")
        try:
            fields[name] = json.loads(raw)
        except ValueError:
            fields[name] = raw
    return fields


def _iso(wall_time: float) -> str:
    """A wall time (seconds since the epoch) in ISO 8601, UTC, to the microsecond."""
    return datetime.fromtimestamp(wall_time, UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


runs_app = typer.Typer(
    help="The runs in a durable store: list them, release abandoned ones.", no_args_is_help=True
)
app.add_typer(runs_app, name="runs")


def _store(path: Path) -> SqliteStore:
    if not path.is_file():
        raise _fail(f"no store at {str(path)!r}")
    try:
        return SqliteStore(path)
    except WindtunnelError as exc:
        raise _fail(str(exc)) from None


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
        raise _fail(str(exc)) from None
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
            owner = f"owner {info.owner} ({lease}, until {_iso(info.owner_expires)})"
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
            raise _fail("name the runs to release, or pass --abandoned")
        for run_id in dict.fromkeys(targets):
            info = store.release_run(run_id, force=force)
            held = len(info.leases)
            typer.echo(
                f"released {run_id} ({info.checkpoint.status} in {info.checkpoint.state!r}; {held} lease(s))"
            )
    except WindtunnelError as exc:
        raise _fail(str(exc)) from None


@app.command()
def validate(
    paths: Annotated[list[Path], typer.Argument(help="Scenario files, directories and suite files.")],
) -> None:
    """Check scenario files and suites: exit 0 when all are valid, 1 when any is not
    (every problem listed with its file, line and field path), 2 for bad usage."""
    from windtunnel.scenarios import load_suite
    from windtunnel.scenarios.problems import ScenarioError

    missing = [str(path) for path in paths if not path.exists()]
    if missing:
        raise _fail(f"no such file or directory: {', '.join(missing)}")
    try:
        suite = load_suite(paths)
    except ScenarioError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        count = len(exc.problems)
        typer.echo(f"{count} problem{'s' if count != 1 else ''}", err=True)
        raise typer.Exit(code=1) from None
    typer.echo(f"{len(suite)} scenario(s) in {len(suite.files)} file(s): valid")


@app.command()
def schema(
    out: Annotated[Path | None, typer.Option("--out", help="Write it to this file instead.")] = None,
) -> None:
    """Print the JSON Schema of scenario files (for editors: `# yaml-language-server: $schema=...`)."""
    from windtunnel.scenarios.json_schema import schema_text

    text = schema_text()
    if out is None:
        typer.echo(text, nl=False)
        return
    try:
        out.write_text(text)
    except OSError as exc:
        raise _fail(f"--out {str(out)!r}: cannot write it: {exc.strerror or exc}") from None
    typer.echo(f"written to {out}")


scenario_app = typer.Typer(help="One scenario at a time.", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("run")
def scenario_run(
    path: Annotated[Path, typer.Argument(help="A scenario file (the first scenario in it, or --id).")],
    seed: Annotated[
        int, typer.Option(min=0, help="The seed: the case's details, the tiers, the faults.")
    ] = 0,
    tier: Annotated[
        str, typer.Option(help="small, mid, large, or a ladder: ladder:small@0.85,mid@0.6,large")
    ] = "small",
    scenario_id: Annotated[str | None, typer.Option("--id", help="Which scenario of the file.")] = None,
    workflow: Annotated[
        str | None, typer.Option(help="Your workflow factory, module:function, instead of the domain's.")
    ] = None,
    via_api: Annotated[
        bool, typer.Option(help="Route the models through the real SDK and the fake Messages API.")
    ] = False,
) -> None:
    """Run one scenario in simulation; print its trace summary and its graded verdict.

    Exit 0 when the run is correct, 1 when it is not, 2 when it could not be run."""
    from windtunnel.scenarios import load_file, run_scenario
    from windtunnel.scenarios.problems import ScenarioError

    try:
        scenarios = load_file(path)
    except ScenarioError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(code=2) from None
    chosen = [s for s in scenarios if scenario_id is None or s.scenario.id == scenario_id]
    if not chosen:
        ids = ", ".join(s.scenario.id for s in scenarios)
        raise _fail(f"no scenario --id {scenario_id!r} in {str(path)!r}; it holds: {ids}")
    try:
        outcome = run_scenario(chosen[0], seed=seed, play=tier, workflow=workflow, via_api=via_api)
    except WindtunnelError as exc:
        raise _fail(str(exc)) from None
    typer.echo(summarize_trace(outcome.trace.events))
    fired = {fault_id: counts.fired for fault_id, counts in outcome.injector.counts().items()}
    if fired:
        typer.echo("    faults fired: " + ", ".join(f"{k} x{v}" for k, v in fired.items()))
    typer.echo(str(outcome.verdict))
    typer.echo(
        f"    replay: windtunnel scenario run {path} --id {outcome.scenario.id} --seed {seed} --tier {tier}"
    )
    raise typer.Exit(code=0 if outcome.verdict.correct else 1)
