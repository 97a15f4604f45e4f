"""``windtunnel fuzz``: find the smallest fault plan that breaks a workflow; keep it as a scenario.

Exit codes: 0 no failure found; 1 a failure found (a saved regression that still
fails counts); 2 bad input. With ``--breaking-point`` it searches one fault's
severity instead, and exits 0 (a breaking point is a measurement, not a failure).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from windtunnel.orchestrator import WindtunnelError

from ._app import app, fail

__all__ = ["describe", "fuzz_command"]


@app.command("fuzz")
def fuzz_command(
    paths: Annotated[list[Path], typer.Argument(help="Suites, scenario files or folders to fuzz.")],
    out: Annotated[
        Path, typer.Option(help="Where regression files go (OUT/regressions); saved ones are replayed first.")
    ],
    time_limit: Annotated[
        float | None, typer.Option("--time", min=0.0, help="Seconds of wall time to fuzz for.")
    ] = None,
    trials: Annotated[
        int | None, typer.Option(min=1, help="Trials to run (with --time: whichever ends first).")
    ] = None,
    seed: Annotated[
        int, typer.Option(min=0, help="The campaign seed: same seed, same trials and findings.")
    ] = 0,
    config: Annotated[
        str,
        typer.Option(
            help="How decision states are played: a tier, a ladder, or 'oracle' (the playbook played"
            " perfectly: only the orchestration can fail)."
        ),
    ] = "large",
    workflow: Annotated[
        str | None, typer.Option(help="Your workflow factory, module:function, instead of the scenarios'.")
    ] = None,
    oracle: Annotated[str, typer.Option(help="invariants, truth (the grader), or both.")] = "both",
    max_faults: Annotated[int, typer.Option(min=1, help="The most faults a trial generates.")] = 4,
    kind: Annotated[list[str] | None, typer.Option(help="Only this fault kind (repeatable).")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only scenarios with this tag (repeatable).")] = None,
    max_failures: Annotated[
        int | None, typer.Option(min=1, help="Stop once this many distinct failures are found.")
    ] = None,
    breaking_point: Annotated[
        str | None,
        typer.Option(help="Search one fault's severity instead, e.g. rate_limit@tier:large."),
    ] = None,
    seeds: Annotated[int, typer.Option(min=1, help="With --breaking-point: seeds per scenario.")] = 10,
) -> None:
    """Fuzz fault plans against a workflow; shrink each failure and write it as a scenario.

    Prints a progress line, a table of the failures found (oracle, shrunk plan,
    faults, replay command) and, last, one line of JSON."""
    from windtunnel.evals.fuzz import breaking_point as search
    from windtunnel.evals.fuzz import fuzz
    from windtunnel.scenarios import ScenarioError

    if oracle not in ("invariants", "truth", "both"):
        raise fail(f"--oracle {oracle!r} must be one of invariants, truth, both")
    try:
        if breaking_point is not None:
            given = {"--time": time_limit, "--trials": trials, "--kind": kind, "--max-failures": max_failures}
            extra = [name for name, value in given.items() if value] + (
                ["--max-faults"] if max_faults != 4 else []
            )
            if extra:
                raise fail(f"{', '.join(extra)}: not for --breaking-point, which searches one fault")
            found = search(
                paths, breaking_point, seeds=seeds, seed=seed, config=config, workflow=workflow,
                oracle=oracle, tags=tag or (),  # type: ignore[arg-type]  # checked above
            )  # fmt: skip
            _show_breaking(found, out)
            raise typer.Exit(0)
        if time_limit is None and trials is None:
            raise fail("give --time SECONDS or --trials N (or both): a campaign needs an end")
        report = fuzz(
            paths, trials=trials, seconds=time_limit, seed=seed, config=config, workflow=workflow,
            oracle=oracle, out=out, max_faults=max_faults, tags=tag or (), kinds=kind,  # type: ignore[arg-type]
            max_failures=max_failures, progress=_progress,
        )  # fmt: skip
    except ScenarioError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise typer.Exit(code=2) from None
    except WindtunnelError as exc:
        raise fail(str(exc)) from None
    _show(report, out)
    raise typer.Exit(1 if report.findings else 0)


def _progress(progress: Any) -> None:
    line = (
        f"fuzz: {progress.trials} trials, {progress.trials / max(progress.seconds, 1e-9):.0f}/s, "
        f"{progress.failures} failures, coverage {progress.coverage:.0%}"
    )
    end = "\r" if sys.stderr.isatty() else "\n"
    typer.echo(line + end, err=True, nl=False)


def describe(fault: Any) -> str:
    """A fault in one line: ``kind@target[trigger](parameters)``."""
    trigger = fault.trigger.model_dump(exclude_none=True)
    parameters = fault.model_dump(exclude_none=True, exclude={"id", "kind", "target", "trigger"})
    text = f"{fault.kind}@{fault.target}"
    if trigger:
        text += "[" + ",".join(f"{key}={value}" for key, value in trigger.items()) + "]"
    if parameters:
        text += "(" + ",".join(f"{key}={value}" for key, value in parameters.items()) + ")"
    return text


def _show(report: Any, out: Path) -> None:
    if sys.stderr.isatty():
        typer.echo("", err=True)
    if report.fixed:
        typer.echo(
            f"fixed: {len(report.fixed)} saved regression(s) no longer fail: " + ", ".join(report.fixed)
        )
    if report.findings:
        typer.echo(f"{len(report.findings)} failure(s):")
        for number, finding in enumerate(report.findings, 1):
            plan = "; ".join(describe(fault) for fault in finding.faults) or "(no fault: it fails as it is)"
            origin = "saved regression" if finding.trial is None else f"trial {finding.trial}"
            typer.echo(
                f"  {number}. {finding.failure.oracle} in {finding.failure.state} at {finding.failure.event}"
            )
            typer.echo(f"     {finding.failure.message}")
            typer.echo(f"     scenario {finding.scenario}, {origin}; {len(finding.faults)} fault(s): {plan}")
            if finding.confirmation is not None:
                typer.echo(f"     {finding.confirmation}")
            if finding.replay:
                typer.echo(f"     replay: {finding.replay}")
    else:
        typer.echo("no failure found")
    if report.noise:
        typer.echo(f"{len(report.noise)} grader failure(s) not confirmed on fresh seeds (the tier's noise):")
        for finding in report.noise:
            plan = "; ".join(describe(fault) for fault in finding.faults)
            typer.echo(
                f"  - {finding.failure.oracle} in {finding.scenario} under {plan}: {finding.confirmation}"
            )
    if report.inconclusive:
        typer.echo(
            f"{report.inconclusive} of {report.trials} trials inconclusive: none of their faults fired"
            " (not counted as passes)"
        )
    if report.harness_errors:
        typer.echo(f"{report.harness_errors} trial(s) failed in the harness (not the agent): ", nl=False)
        typer.echo("; ".join(report.harness_messages))
    if report.unreached:
        shown = ", ".join(f"{kind} in {state}" for state, kind in report.unreached[:12])
        more = f" and {len(report.unreached) - 12} more" if len(report.unreached) > 12 else ""
        typer.echo(f"never reached ({len(report.unreached)}): {shown}{more}")
    out.mkdir(parents=True, exist_ok=True)
    details = {**report.summary(), "findings": [f.summary() for f in report.findings]}
    details["noise"] = [f.summary() for f in report.noise]
    details["unreached"] = [list(pair) for pair in report.unreached]
    (out / "fuzz.json").write_text(json.dumps(details, indent=2) + "\n")
    typer.echo(json.dumps(report.summary()))


def _show_breaking(found: Any, out: Path) -> None:
    summary = found.summary()
    out.mkdir(parents=True, exist_ok=True)
    (out / "breaking.json").write_text(json.dumps(summary, indent=2) + "\n")
    typer.echo(f"breaking point of {summary['fault']} ({found.knob}):")
    for level in found.levels:
        typer.echo(
            f"  {level.severity:>8g}: {level.broken}/{level.of} broken"
            f" (95% CI {level.low:.0%}-{level.high:.0%})"
        )
    if found.median is None:
        typer.echo("  the fault never fired: no breaking point")
    else:
        interval = (
            "95% CI: too few pairs"
            if found.low is None or found.high is None
            else f"95% CI {found.low:g} to {found.high:g}"
        )
        typer.echo(f"  median breaking point {found.median:g} ({interval})")
    never = summary["never_broke"]
    typer.echo(
        f"  over {summary['pairs']} (scenario, seed) pairs, {never} never broke (inf);"
        f" {found.inconclusive} left out: the fault never fired"
    )
    typer.echo(json.dumps(summary))
