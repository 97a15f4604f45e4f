"""``windtunnel run``, ``compare`` and ``report``: experiments, their artifacts and gates.

Exit codes, never confused: 0 everything measured and every gate passed; 1 a gate
failed or a run regressed against the baseline; 2 the harness could not measure
(bad input, or a harness error in any run); 130 interrupted (Ctrl-C; what finished
is written, the same command resumes).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated, Any

import typer

from windtunnel.orchestrator import WindtunnelError

from ._app import app, fail, note

__all__ = ["compare_command", "report_command", "run_command"]

ARTIFACTS = (
    "runs.parquet",
    "events.parquet",
    "manifest.json",
    "metrics.csv",
    "summary.md",
    "report.html",
    "junit.xml",
)

_SHOWN = (
    ("accuracy", "accuracy"),
    ("escalation_precision", "esc. precision"),
    ("escalation_recall", "esc. recall"),
    ("verification_coverage", "verified"),
    ("silent_failure_catch_rate", "silent caught"),
    ("cost_per_run", "$/run"),
    ("cost_per_correct", "$/correct"),
)


@app.command("run")
def run_command(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Suites, scenario files or folders; default: the project's.")
    ] = None,
    config: Annotated[
        list[str] | None,
        typer.Option(
            help="A config of the project, a tier, a ladder or a profile file (.json/.yaml; repeatable); "
            "default: the project's."
        ),
    ] = None,
    seeds: Annotated[int | None, typer.Option(min=1, help="Seeds per scenario and config.")] = None,
    workers: Annotated[int | None, typer.Option(min=1, help="Parallel workers (process or ray).")] = None,
    executor: Annotated[str | None, typer.Option(help="local, process or ray.")] = None,
    out: Annotated[Path | None, typer.Option(help="The results directory.")] = None,
    seed: Annotated[int | None, typer.Option(min=0, help="The experiment seed.")] = None,
    tag: Annotated[list[str] | None, typer.Option(help="Only scenarios with this tag (repeatable).")] = None,
    scenario_id: Annotated[
        list[str] | None, typer.Option("--id", help="Only scenarios whose id matches (fnmatch; repeatable).")
    ] = None,
    gate: Annotated[
        list[str] | None, typer.Option(help="A gate, e.g. 'escalation_recall.lower >= 0.95' (repeatable).")
    ] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="A results directory to check regressions against.")
    ] = None,
    fresh: Annotated[bool, typer.Option(help="Delete the results directory's old results first.")] = False,
    name: Annotated[str, typer.Option(help="The experiment's name in rows and reports.")] = "windtunnel",
    record: Annotated[
        Path | None, typer.Option(help="Call real models live and record every exchange into this directory.")
    ] = None,
    replay: Annotated[
        Path | None, typer.Option(help="Answer real models from the recordings in this directory, offline.")
    ] = None,
    replay_or_record: Annotated[
        Path | None, typer.Option(help="Replay from this directory; call live and record what it lacks.")
    ] = None,
    concurrency: Annotated[
        int | None, typer.Option(min=1, help="Real-model runs (and calls) at once; default 4.")
    ] = None,
    max_cost: Annotated[
        float | None, typer.Option(min=0, help="USD real-model calls may spend; checked before each call.")
    ] = None,
    rpm: Annotated[
        float | None, typer.Option(min=0.001, help="Real-model requests per minute at most.")
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(min=0.001, help="Seconds one real-model HTTP attempt may take; default 120."),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option(help="Estimate the real-model calls, tokens and cost; run nothing.")
    ] = False,
) -> None:
    """Run scenarios x seeds x configs, print the summary by config, and write every
    artifact into the results directory; then check the gates.

    A config naming a real model (claude-haiku-4-5, ladder:claude-haiku-4-5@0.8,claude-sonnet-4-5)
    calls the API (ANTHROPIC_API_KEY), or answers from recordings with --replay."""
    from windtunnel.evals import Experiment, run_experiment
    from windtunnel.reports import parse_gate
    from windtunnel.scenarios import ScenarioError

    project = _project()
    chosen = [_config(name, project.configs) for name in config] if config else list(project.configs)
    # Absolute: the manifest then names the files wherever `report` or a resume runs from.
    suites = [str(path.resolve()) for path in (paths or project.suites)]
    if not suites:
        raise fail(
            "no scenarios: give suites or files, or set suites under [tool.windtunnel] in pyproject.toml"
        )
    target = out or project.out
    if target.exists() and not target.is_dir():
        raise fail(f"--out {str(target)!r} is a file, not a results directory")
    # Workers only make sense in parallel: asking for them asks for the process pool.
    chosen_executor = executor or ("process" if workers and project.executor == "local" else project.executor)
    try:
        experiment = Experiment(
            name=name,
            scenarios=suites,
            tags=tag or [],
            ids=scenario_id or [],
            seeds=seeds or project.seeds,
            configs=chosen,
            seed=project.seed if seed is None else seed,
            recheck=project.recheck,
        )
        gates = _gates_for(
            [*project.gates, *(parse_gate(text) for text in gate or [])], [c.name for c in experiment.configs]
        )
        suite = experiment.load()  # every problem of the files, before anything is deleted or run
    except ScenarioError as exc:
        for problem in exc.problems:
            typer.echo(str(problem), err=True)
        raise fail(f"{len(exc.problems)} problem(s) in the scenario files; nothing ran") from None
    except (WindtunnelError, ValueError) as exc:
        raise fail(str(exc)) from None
    if not len(suite):
        raise fail("no scenario selected: check the paths, --id and --tag; nothing ran")
    if dry_run:
        _dry_run(experiment, max_cost)
        raise typer.Exit(0)
    limits = {"concurrency": concurrency, "max_cost": max_cost, "rpm": rpm, "timeout": timeout}
    live = _live(experiment, record, replay, replay_or_record, limits)
    if live is not None:
        if executor not in (None, "local") or workers is not None:
            given = " and ".join(
                flag
                for flag, value in (("--executor", executor), ("--workers", workers))
                if value is not None
            )
            raise fail(
                f"{given}: configs that play real models run every cell on threads (--concurrency N), "
                "not on a process pool or Ray; drop the option, or run the simulated configs apart"
            )
        chosen_executor = "local"  # the project's executor is for simulated experiments
    check = baseline or project.baseline
    if check is not None:
        _runs(check)  # a bad baseline is said now, not after the runs
    if fresh:
        _clear(target)
    with _ProgressBar() as show:
        try:
            summary = run_experiment(
                experiment,
                target,
                executor=chosen_executor,  # type: ignore[arg-type]  # checked by run_experiment
                workers=None if live is not None else workers or project.workers,
                progress=show,
                live=live,
            )
        except WindtunnelError as exc:
            raise fail(_one_line(exc)) from None
        except OSError as exc:
            raise fail(f"--out {str(target)!r}: cannot write results there: {exc.strerror or exc}") from None
        except KeyboardInterrupt:
            again = "the same command"
            if live is not None and live.mode == "record":  # --record would pay again for recorded calls
                again = f"it with --replay-or-record {live.recordings} instead of --record"
            note(f"interrupted: the runs that finished are written in {target}; run {again} to resume")
            raise typer.Exit(130) from None
    typer.echo(
        f"{summary.ran} runs in {summary.wall_s:.1f} s ({summary.skipped} already in {target})"
        + (f"; {summary.harness_errors} harness errors" if summary.harness_errors else "")
    )
    if live is not None:
        _live_summary(live, summary.cells - summary.ran - summary.skipped)
    code = _render(target, gates, check, project.error_prices.prices())
    raise typer.Exit(code)


def _live(
    experiment: Any,
    record: Path | None,
    replay: Path | None,
    replay_or_record: Path | None,
    limits: dict[str, Any],
) -> Any:
    """The ``Live`` of a run whose configs name real models (None for a simulated run)."""
    from windtunnel.evals.live import Live

    given = {"record": record, "replay": replay, "replay_or_record": replay_or_record}
    chosen = {mode: path for mode, path in given.items() if path is not None}
    if len(chosen) > 1:
        flags = " and ".join("--" + mode.replace("_", "-") for mode in chosen)
        raise fail(f"{flags}: give one of --record, --replay or --replay-or-record")
    real = [config.name for config in experiment.configs if config.real_models()]
    given_limits = {name: value for name, value in limits.items() if value is not None}
    if not real:
        ignored = [
            *("--" + mode.replace("_", "-") for mode in chosen),
            *("--" + n.replace("_", "-") for n in given_limits),
        ]
        if ignored:
            note(f"no config plays a real model: {', '.join(ignored)} do nothing in this run")
        return None
    mode, path = next(iter(chosen.items()), ("live", None))
    try:
        live = Live(mode=mode, recordings=path, **given_limits)  # type: ignore[arg-type]
        live.check(experiment)
    except WindtunnelError as exc:
        raise fail(f"configs {real} play real models: {exc}") from None
    return live


def _live_summary(live: Any, remaining: int) -> None:
    from windtunnel.evals.live import describe_stop

    spend = live.spend()
    if spend is None:
        return
    cap = f" of ${spend.max_cost:g}" if spend.max_cost is not None else ""
    typer.echo(f"real models: {spend.calls} calls, ${spend.spent:.4f} spent{cap}")
    if spend.refused:
        note(describe_stop(live, remaining))


def _dry_run(experiment: Any, max_cost: float | None) -> None:
    """Print what the real-model configs would cost; spend nothing."""
    from windtunnel.evals.live import estimate

    try:
        found = estimate(experiment)
    except WindtunnelError as exc:
        raise fail(_one_line(exc)) from None
    if not found:
        typer.echo("dry run: no config plays a real model; simulated runs cost nothing to run")
        return
    typer.echo("dry run: an ESTIMATE from simulated stand-in tiers, priced at the real models' prices")
    for item in found:
        stand = ", ".join(f"{model} as {tier}" for model, tier in item.stand_ins.items())
        typer.echo(
            f"  {item.config}: {item.cells} runs, ~{item.calls} calls, ~{item.input_tokens} input and "
            f"~{item.output_tokens} output tokens, ~${item.cost:.4f} (at most ${item.worst_cost:.4f} if "
            f"every call wrote max_tokens); stand-ins: {stand}"
        )
    total = sum(item.cost for item in found)
    typer.echo(f"  total: ~${total:.4f}")
    if max_cost is not None and total > max_cost:
        note(f"the estimate ${total:.4f} is over --max-cost ${max_cost:g}: the run would stop at the cap")


def _gates_for(gates: list[Any], configs: list[str]) -> list[Any]:
    """The gates that apply to the configs run; a gate on a config not run is noted, not fatal."""
    kept = []
    for gate in gates:
        if gate.config is not None and gate.config not in configs:
            note(
                f"gate {gate.text!r} is for config {gate.config!r}, which this run does not include; skipped"
            )
            continue
        kept.append(gate)
    return kept


@app.command("report")
def report_command(
    path: Annotated[Path, typer.Argument(help="A results directory.")],
    gate: Annotated[list[str] | None, typer.Option(help="A gate (repeatable); with the project's.")] = None,
    baseline: Annotated[
        Path | None, typer.Option(help="A results directory to check regressions against.")
    ] = None,
) -> None:
    """Render every artifact of a results directory again from its saved results only,
    never re-running; check the gates."""
    from windtunnel.reports import parse_gate

    project = _project()
    try:
        gates = [*project.gates, *(parse_gate(text) for text in gate or [])]
    except (WindtunnelError, ValueError) as exc:
        raise fail(str(exc)) from None
    raise typer.Exit(_render(path, gates, baseline or project.baseline, project.error_prices.prices()))


@app.command("compare")
def compare_command(
    baseline: Annotated[Path, typer.Argument(help="The baseline results directory.")],
    candidate: Annotated[Path, typer.Argument(help="The candidate results directory.")],
    markdown: Annotated[
        Path | None, typer.Option(help="Also write the comparison as Markdown (a pull request comment).")
    ] = None,
) -> None:
    """Per-config differences with intervals and significance, cell by cell, and the
    scenarios that regressed. Exit 1 when a config regressed significantly."""
    from windtunnel.reports import diff_results

    base, cand = _runs(baseline), _runs(candidate)
    for path, runs in ((baseline, base), (candidate, cand)):
        if runs.empty:
            raise fail(f"{path} holds no run; nothing to compare")
    try:
        found = diff_results(base, cand)
    except WindtunnelError as exc:
        raise fail(str(exc)) from None
    if not found.configs:
        raise fail(f"{baseline} and {candidate} share no config; nothing to compare")
    typer.echo(found.text())
    if markdown is not None:
        _write(markdown, found.markdown())
        typer.echo(f"Markdown written to {markdown}")
    raise typer.Exit(1 if found.regressed else 0)


def _project() -> Any:
    from windtunnel.reports import load_project

    try:
        return load_project(Path.cwd())
    except (WindtunnelError, ValueError) as exc:
        raise fail(str(exc)) from None


def _config(name: str, known: list[Any]) -> Any:
    """A config of the project by name, else the tier, ladder or profile file ``name`` stands for."""
    from windtunnel.evals import Config
    from windtunnel.evals.experiment import config_of

    for config in known:
        if config.name == name:
            return config
    try:
        return Config.model_validate(config_of(name))
    except (WindtunnelError, ValueError) as exc:
        names = ", ".join(config.name for config in known)
        raise fail(f"--config {name!r} is no config of the project ({names}) and {_one_line(exc)}") from None


def _runs(path: Path) -> Any:
    from pyarrow import ArrowException  # type: ignore[import-untyped]

    from windtunnel.evals import read_runs

    if not (path / "runs.parquet").is_dir():
        raise fail(f"{path} is not a results directory (no runs.parquet in it)")
    try:
        return read_runs(path)
    except (OSError, ValueError, ArrowException) as exc:  # a damaged part, an empty directory
        raise fail(f"{path}: cannot read its runs: {_one_line(exc)}") from None


def _render(path: Path, gates: list[Any], baseline: Path | None, prices: Any) -> int:
    """Write metrics.csv, summary.md, junit.xml and report.html into ``path``, print the
    summary table and the gates; the exit code."""
    from windtunnel.evals import read_manifest
    from windtunnel.reports import parse_gate

    runs = _runs(path)
    try:
        manifest = read_manifest(path).model_dump(mode="json")
    except WindtunnelError as exc:
        raise fail(str(exc)) from None
    if runs.empty:
        raise fail(f"{path} holds no run yet; run the experiment into it first")
    if baseline is not None and not any(gate.regression for gate in gates):
        gates = [*gates, parse_gate("no_significant_regression")]  # a baseline is given to be checked
    try:
        results = _artifacts(path, runs, manifest, gates, baseline, prices)
    except (WindtunnelError, ValueError, KeyError) as exc:
        raise fail(str(exc)) from None
    except OSError as exc:  # a full disk, a read-only directory, a step summary that cannot be written
        raise fail(f"cannot write {exc.filename or path}: {exc.strerror or exc}") from None
    for result in results:
        typer.echo(("PASS " if result.passed else "FAIL ") + result.message)
    typer.echo(f"artifacts: {', '.join(str(path / name) for name in ARTIFACTS)}")
    typer.echo(f"report: {path / 'report.html'}")
    errors = runs[runs["harness_error"].fillna("").astype(str) != ""]
    if len(errors):
        first = errors.iloc[0]
        note(
            f"{len(errors)} runs hit a harness error (not the agent's failures); first, {first['cell']}: "
            f"{first['harness_error']}"
        )
        return 2
    expected = manifest.get("cells")
    if expected is not None and len(runs) < expected:
        # A killed run: gates over part of the cells would say what the rest never showed.
        note(f"{path} holds {len(runs)} of the experiment's {expected} runs; run it again to finish them")
        return 2
    return 0 if all(result.passed for result in results) else 1


def _artifacts(
    path: Path, runs: Any, manifest: dict[str, Any], gates: list[Any], baseline: Path | None, prices: Any
) -> list[Any]:
    """Evaluate the gates, print the table, write every artifact; the gates' results."""
    from windtunnel.reports import (
        append_step_summary,
        evaluate,
        junit_xml,
        metrics_csv,
        metrics_table,
        replayer,
        summary_markdown,
    )
    from windtunnel.reports.html import write_report

    results = evaluate(gates, runs, None if baseline is None else _runs(baseline), prices=prices)
    _print_table(metrics_table(runs, prices=prices))
    summary = summary_markdown(runs, results, manifest)
    _write(path / "metrics.csv", metrics_csv(runs))
    _write(path / "summary.md", summary)
    junit = junit_xml(runs, replay=replayer(manifest), name=manifest["experiment"]["name"])
    _write(path / "junit.xml", junit)
    write_report(path)
    try:
        append_step_summary(summary)
    except OSError as exc:  # the CI's file, not the results: say so and go on to the gates
        note(f"GITHUB_STEP_SUMMARY: cannot append the summary to it: {exc.strerror or exc}")
    return list(results)


def _print_table(table: Any) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from windtunnel.reports.table import runs_label

    ks = [c.removeprefix("pass^") for c in table.columns if c.startswith("pass^")]
    k = max((int(k) for k in ks if k.isdigit()), default=0)  # the largest k every config ran
    shown = [*_SHOWN, *([(f"pass^{k}", f"pass^{k}")] if k else [])]
    view = Table(title="by config (95% intervals)", show_lines=False)
    view.add_column("config")
    view.add_column("runs", justify="right")
    for _, title in shown:
        view.add_column(title, justify="right")
    for _, row in table.iterrows():
        cells = [_cell(row, metric) for metric, _ in shown]
        view.add_row(escape(str(row["config"])), runs_label(row), *cells)
    Console(width=200).print(view)


def _cell(row: Any, metric: str) -> str:
    value = float(row.get(metric, math.nan))
    if math.isnan(value):
        return "n/a"
    low, high = float(row.get(f"{metric}_low", math.nan)), float(row.get(f"{metric}_high", math.nan))
    money = metric.startswith("cost")
    text = f"${value:.4f}" if money else f"{value:.2f}"
    if math.isnan(low):
        return text
    return f"{text} ({low:.4f}–{high:.4f})" if money else f"{text} ({low:.2f}–{high:.2f})"


class _ProgressBar:
    """A progress bar on stderr: runs done, runs/s, ETA, failures and cost so far."""

    def __enter__(self) -> Any:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        self._bar = Progress(
            TextColumn("running"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]:.0f} runs/s"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[failed]} failed, ${task.fields[cost]:.2f}"),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task("runs", total=None, rate=0.0, failed=0, cost=0.0)
        return self._update

    def _update(self, progress: Any) -> None:
        self._bar.update(
            self._task,
            completed=progress.done,
            total=progress.total,
            rate=progress.rate,
            failed=progress.failed,
            cost=progress.cost,
        )

    def __exit__(self, *exc: object) -> None:
        self._bar.stop()


def _clear(path: Path) -> None:
    import shutil

    for name in ("runs.parquet", "events.parquet"):
        shutil.rmtree(path / name, ignore_errors=True)
    for name in ARTIFACTS[2:]:
        (path / name).unlink(missing_ok=True)


def _write(path: Path, text: str) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"{path}: cannot write it: {exc.strerror or exc}") from None


def _one_line(exc: BaseException) -> str:
    return "; ".join(part.strip() for part in str(exc).splitlines() if part.strip())
