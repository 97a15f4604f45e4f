"""``windtunnel calibrate``: a tier profile measured from a results directory.

Exit codes: 0 the profile was written; 2 bad input (no such directory or config,
too few runs, scenario files that do not load, or that changed since the experiment
without ``--allow-changed-scenarios``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from windtunnel.orchestrator import WindtunnelError

from ._app import app, fail

__all__ = ["calibrate_command"]


@app.command("calibrate")
def calibrate_command(
    results: Annotated[Path, typer.Argument(help="A results directory (of `windtunnel run`).")],
    out: Annotated[Path, typer.Option(help="Where to write the profile: a .json or .yaml file.")],
    config: Annotated[
        str | None,
        typer.Option(help="The config whose runs to fit; needed when the directory holds several."),
    ] = None,
    name: Annotated[str | None, typer.Option(help="The profile's name; default: calibrated-CONFIG.")] = None,
    confidence: Annotated[float, typer.Option(min=0.5, max=0.999, help="Coverage of the intervals.")] = 0.95,
    allow_changed_scenarios: Annotated[
        bool,
        typer.Option(
            "--allow-changed-scenarios",
            help="Fit even when scenario files changed since the experiment (refused otherwise).",
        ),
    ] = False,
) -> None:
    """Fit a tier profile (accuracy, confidence, tool-call fumbles, tokens, latency) to one
    config's runs, print every parameter with its interval, and write the profile, for
    `windtunnel run --config PROFILE.json` or a `profile` under [tool.windtunnel]."""
    from windtunnel.evals.calibration import calibrate
    from windtunnel.evals.profile_file import is_profile_file

    if not is_profile_file(out):
        raise fail(f"--out {str(out)!r}: name the profile file .json, .yaml or .yml")
    try:
        calibration = calibrate(
            results,
            config=config,
            name=name,
            confidence=confidence,
            allow_changed_scenarios=allow_changed_scenarios,
        )
        written = calibration.write(out)
    except WindtunnelError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"--out {str(out)!r}: cannot write it: {exc.strerror or exc}") from None
    typer.echo(
        f"{calibration.profile.name}: {calibration.runs} runs, {calibration.decisions} decisions "
        f"of config {calibration.config!r}, model {calibration.profile.model}"
    )
    typer.echo(calibration.table())
    for warning in calibration.warnings:
        typer.echo(f"warning: {warning}")
    typer.echo(f"wrote {written}")
    summary = {
        "profile": str(written),
        "name": calibration.profile.name,
        "config": calibration.config,
        "runs": calibration.runs,
        "decisions": calibration.decisions,
        "kept": [fit.parameter for fit in calibration.parameters if not fit.fitted],
        "confidence_test_p": calibration.confidence_test_p,
        "parameters": {
            fit.parameter: {"estimate": fit.estimate, "low": fit.low, "high": fit.high, "n": fit.n}
            for fit in calibration.parameters
        },
    }
    typer.echo(json.dumps(summary, sort_keys=True))
