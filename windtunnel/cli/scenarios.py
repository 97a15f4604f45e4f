"""``windtunnel validate``, ``schema`` and ``scenario run``: scenario files."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from windtunnel.orchestrator import WindtunnelError
from windtunnel.reports import summarize_trace

from ._app import app, fail

__all__ = ["scenario_app", "schema", "validate"]


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
        raise fail(f"no such file or directory: {', '.join(missing)}")
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
        raise fail(f"--out {str(out)!r}: cannot write it: {exc.strerror or exc}") from None
    typer.echo(f"written to {out}")


scenario_app = typer.Typer(help="One scenario at a time.", no_args_is_help=True)
app.add_typer(scenario_app, name="scenario")


@scenario_app.command("run")
def scenario_run(
    path: Annotated[Path, typer.Argument(help="A scenario file (the first scenario in it, or --id).")],
    seed: Annotated[
        int | None,
        typer.Option(
            min=0, help="The seed: the case's details, the tiers, the faults. Default: the file's, or 0."
        ),
    ] = None,
    tier: Annotated[
        str,
        typer.Option(
            help="small, mid, large, a ladder (ladder:small@0.85,mid@0.6,large), or oracle (the"
            " playbook played perfectly)"
        ),
    ] = "small",
    scenario_id: Annotated[str | None, typer.Option("--id", help="Which scenario of the file.")] = None,
    workflow: Annotated[
        str | None, typer.Option(help="Your workflow factory, module:function, instead of the domain's.")
    ] = None,
    via_api: Annotated[
        bool, typer.Option(help="Route the models through the real SDK and the fake Messages API.")
    ] = False,
) -> None:
    """Run one scenario in simulation; print its trace summary, its graded verdict and
    any broken invariant.

    Exit 0 when the run is correct and broke no invariant, 1 when not, 2 when it could
    not be run."""
    from windtunnel.evals.invariants import check_all
    from windtunnel.scenarios import load_file, run_scenario
    from windtunnel.scenarios.oracle import oracle
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
        raise fail(f"no scenario --id {scenario_id!r} in {str(path)!r}; it holds: {ids}")
    seed = seed if seed is not None else chosen[0].scenario.seed or 0
    try:
        models = oracle() if tier == "oracle" else None
        play = "small" if models else tier  # with models, the tier is not used
        outcome = run_scenario(
            chosen[0], seed=seed, play=play, workflow=workflow, via_api=via_api, models=models
        )
    except WindtunnelError as exc:
        raise fail(str(exc)) from None
    typer.echo(summarize_trace(outcome.trace.events))
    fired = {fault_id: counts.fired for fault_id, counts in outcome.injector.counts().items()}
    if fired:
        typer.echo("    faults fired: " + ", ".join(f"{k} x{v}" for k, v in fired.items()))
    typer.echo(str(outcome.verdict))
    broken = check_all(outcome.trace.events, outcome.workflow)
    for violation in broken:
        typer.echo(f"  BROKEN {violation.check} (event {violation.seq}): {violation.message}")
    typer.echo(
        f"    replay: windtunnel scenario run {path} --id {outcome.scenario.id} --seed {seed} --tier {tier}"
    )
    raise typer.Exit(code=0 if outcome.verdict.correct and not broken else 1)
