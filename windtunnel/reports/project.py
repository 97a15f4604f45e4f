"""A project's defaults for ``windtunnel run``: the ``[tool.windtunnel]`` table of its pyproject.toml.

Example ``pyproject.toml``::

    [tool.windtunnel]
    suites = ["scenarios"]
    configs = ["small", "large", {name = "cheap", play = "ladder:small@0.85,large"},
               "profiles/calibrated-mid.json"]  # a profile file, e.g. from `windtunnel calibrate`
    seeds = 5
    baseline = "results/main"
    gates = [
        "escalation_recall.lower >= 0.95",
        {gate = "cost_per_correct <= 0.08", config = "small"},
        "no_significant_regression",
    ]

    [tool.windtunnel.error_prices]
    missed_escalation = 2000.0

Relative paths are read from the pyproject.toml's folder. Every key is optional; a
project without the table runs with the defaults below.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    ValidationError,
    field_validator,
)

from windtunnel.evals import Config, ErrorPrices, Executor
from windtunnel.evals.experiment import config_of
from windtunnel.evals.profile_file import is_profile_file
from windtunnel.orchestrator import InvalidArgument
from windtunnel.orchestrator.validation import check_unique

from .gates import Gate, parse_gate

__all__ = ["ErrorPricesTable", "ProjectConfig", "load_project"]

_DEFAULT_PRICES = ErrorPrices()


class ErrorPricesTable(BaseModel):
    """``[tool.windtunnel.error_prices]``: what an error costs, for ``tco_per_1000``
    (the fields of `windtunnel.evals.ErrorPrices`)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    missed_escalation: float = Field(
        _DEFAULT_PRICES.missed_escalation, ge=0, allow_inf_nan=False, description="USD per missed escalation."
    )
    wrong_action: float = Field(
        _DEFAULT_PRICES.wrong_action,
        ge=0,
        allow_inf_nan=False,
        description="USD per forbidden action applied.",
    )

    def prices(self) -> ErrorPrices:
        """These prices as the metrics take them."""
        return ErrorPrices(missed_escalation=self.missed_escalation, wrong_action=self.wrong_action)


def _gate_of(value: Any) -> Any:
    # A string or a table becomes a parsed Gate here, so that a bad gate is reported at its index.
    if isinstance(value, str):
        return parse_gate(value)
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"gate", "config"})
        if unknown or not isinstance(value.get("gate"), str) or not isinstance(value.get("config", ""), str):
            raise InvalidArgument(
                'a gate table reads {gate = "METRIC OP NUMBER", config = "NAME"}, config optional; '
                f"got {value!r}"
            )
        return parse_gate(value["gate"], config=value.get("config"))
    raise InvalidArgument(f"a gate is a string or a table {{gate, config}}; got {value!r}")


class ProjectConfig(BaseModel):
    """The defaults ``windtunnel run`` takes from ``[tool.windtunnel]``; flags override them."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suites: list[Path] = Field(default_factory=list, description="Scenario files, folders or suite files.")
    configs: list[Annotated[Config, BeforeValidator(config_of)]] = Field(
        default_factory=lambda: [Config(name=tier, play=tier) for tier in ("small", "mid", "large")],
        min_length=1,
        description="Play specs ('small', 'ladder:small@0.85,large') or tables {name, play|profile|models, "
        "workflow}.",
    )
    seeds: int = Field(3, ge=1, description="Seeds per scenario and config.")
    workers: int | None = Field(None, ge=1, description="Parallel workers; omitted: one per CPU.")
    executor: Executor = Field("local", description="Where cells run: 'local', 'process' or 'ray'.")
    out: Path = Field(Path("windtunnel-results"), description="The results directory.")
    seed: int = Field(0, description="The experiment seed every cell's simulation seed derives from.")
    recheck: float = Field(0.05, ge=0, le=1, description="Share of cells run twice to check determinism.")
    error_prices: ErrorPricesTable = Field(default_factory=ErrorPricesTable, description="What errors cost.")
    gates: list[Annotated[Gate, BeforeValidator(_gate_of, json_schema_input_type=str | dict[str, str])]] = (
        Field(
            default_factory=list,
            description="Gates: 'METRIC[.lower|.upper] OP NUMBER', 'no_significant_regression', "
            "or tables {gate, config}.",
        )
    )
    baseline: Path | None = Field(None, description="A results directory to check for regressions against.")

    _source: Path | None = PrivateAttr(None)

    @field_validator("configs")
    @classmethod
    def _unique_names(cls, configs: list[Config]) -> list[Config]:
        check_unique("config names", [config.name for config in configs])
        return configs

    @property
    def source(self) -> Path | None:
        """The pyproject.toml read; None when there was none."""
        return self._source


def _find(start: Path) -> Path | None:
    for folder in (start, *start.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            return candidate
    return None


def _where(loc: tuple[int | str, ...]) -> str:
    text = "tool.windtunnel"
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else f".{part}"
    return text


def _message(error: Any) -> str:
    message = str(error["msg"])
    # pydantic prefixes a validator's own error; the message itself says what is wrong.
    return message.removeprefix("Value error, ")


def _near(path: Path) -> Path:
    """An absolute ``path`` relative to the working folder when under it (as a user
    types it, and as the manifest then names files); absolute otherwise."""
    here = Path.cwd().resolve()
    return path.relative_to(here) if path.is_relative_to(here) else path


def _rooted(item: Any, root: Path) -> Any:
    """A config whose profile is a file's relative path, with the path under ``root``."""
    if isinstance(item, str) and is_profile_file(item):
        return str(_near(root / item))
    if isinstance(item, dict) and isinstance(item.get("profile"), str):
        return {**item, "profile": str(_near(root / item["profile"]))}
    return item


def load_project(start_dir: str | Path = ".") -> ProjectConfig:
    """The ``[tool.windtunnel]`` table of the pyproject.toml nearest ``start_dir`` (it or
    a parent); the defaults when there is no such file or table.

    Raises:
        InvalidArgument: the file is not TOML, or a value is wrong; the message names
            the file and the key path of every problem, e.g.
            ``pyproject.toml: tool.windtunnel.gates[2]: unknown metric ...``.
    """
    found = _find(Path(start_dir).resolve())
    if found is None:
        return ProjectConfig()
    shown = str(_near(found))
    try:
        document = tomllib.loads(found.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise InvalidArgument(f"{shown}: cannot read it: {exc}") from None
    tool = document.get("tool", {})
    table = tool.get("windtunnel", {}) if isinstance(tool, dict) else None
    if not isinstance(table, dict):
        what = type(table).__name__ if table is not None else f"under tool = {type(tool).__name__}"
        raise InvalidArgument(f"{shown}: tool.windtunnel must be a table, not {what}")
    root = found.parent
    if isinstance(table.get("configs"), list):  # profile files are read from the pyproject's folder too
        table = {**table, "configs": [_rooted(item, root) for item in table["configs"]]}
    try:
        config = ProjectConfig.model_validate(table)
    except ValidationError as exc:
        problems = [f"{shown}: {_where(error['loc'])}: {_message(error)}" for error in exc.errors()]
        raise InvalidArgument("\n".join(problems)) from None
    config = config.model_copy(
        update={
            "suites": [_near(root / path) for path in config.suites],
            "out": _near(root / config.out),
            "baseline": None if config.baseline is None else _near(root / config.baseline),
        }
    )
    config._source = found
    return config
