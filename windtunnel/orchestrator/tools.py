"""Tools: what an agent may call, and how a call is checked, run, retried and recorded.

A call is checked before anything runs — the tool must exist, be allowed in the
state, and its arguments must validate against the tool's input model — and a
refused call becomes a ``tool_rejected`` event and an error result that names the
available tools or the validation errors. A call that runs does so under the
tool's timeout (in simulated time under a Sim), with retries, exponential back-off
and jitter drawn from the run's random stream, behind a per-run circuit breaker
(a ``LookupError`` or ``ValueError`` is the source's answer, not its failure: it is
neither retried nor counted);
when the source stays down, the model gets an explicit "source unavailable" result,
never an exception.
"""

from __future__ import annotations

import asyncio
import functools
import json
import re
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from pydantic import BaseModel, ValidationError

from .actions import ActionSpec
from .context import StepContext
from .errors import Problem, SimulationError, WorkflowError
from .events import ToolRejection, ToolStatus
from .executor import execute_action
from .model import ToolResultBlock, ToolSpec, ToolUseBlock

__all__ = [
    "SUBMIT",
    "CircuitBreaker",
    "RetryPolicy",
    "Tool",
    "ToolKind",
    "ToolRegistry",
    "call_tool",
    "run_tool",
]

ToolKind: TypeAlias = Literal["read", "write"]

SUBMIT = "submit"
"""The reserved name of the tool an agent calls to conclude its state."""

_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")  # what the Messages API accepts


@dataclass(frozen=True, slots=True, kw_only=True)
class RetryPolicy:
    """How often a failing or timed-out tool call is tried, and how long to wait between.

    The n-th wait is ``min(max_delay, base_delay * 2**(n-1))``, shortened by up to
    ``jitter`` of itself at random.
    """

    attempts: int = 3
    base_delay: float = 1.0
    max_delay: float = 30.0
    jitter: float = 0.5

    def delay(self, attempt: int, draw: float) -> float:
        """The wait after failed ``attempt`` (from 1), for a uniform ``draw`` in [0, 1)."""
        backoff: float = min(self.max_delay, self.base_delay * 2.0 ** (attempt - 1))
        return backoff * (1 - self.jitter * draw)


@dataclass(frozen=True, slots=True, kw_only=True)
class CircuitBreaker:
    """Stop calling a source after ``failures`` consecutive failed attempts, for ``cooldown`` s.

    After the cool-down the breaker is half-open: one attempt is let through; its
    success closes the breaker, its failure opens it again.
    """

    failures: int = 5
    cooldown: float = 60.0


# Frozen, so every tool that keeps the defaults may share them (tools are built per run).
_RETRY = RetryPolicy()
_BREAKER = CircuitBreaker()


@dataclass(slots=True)
class _BreakerState:
    failures: int = 0
    open_until: float | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Tool:
    """A function an agent may call, described for the model by its input model.

    Example:
        >>> from pydantic import BaseModel
        >>> class Lookup(BaseModel):
        ...     ip: str
        >>> async def lookup(args: Lookup) -> dict[str, str]:
        ...     return {"ip": args.ip, "reputation": "malicious"}
        >>> tool = Tool(name="threat_intel", description="IP reputation.", input_model=Lookup, fn=lookup)
        >>> tool.spec.input_schema["required"]
        ['ip']
    """

    name: str
    description: str
    input_model: type[BaseModel]
    fn: Callable[[Any], Awaitable[Any]]
    """Called with a validated instance of ``input_model``; returns anything JSON-able."""
    kind: ToolKind = "read"
    timeout: float | None = 30.0
    """Seconds one attempt may take; None for no limit."""
    retry: RetryPolicy = _RETRY
    breaker: CircuitBreaker = _BREAKER
    action: ActionSpec | None = None
    """For a write tool: the resource, precheck, verifier and compensation of its change."""

    @property
    def spec(self) -> ToolSpec:
        """The tool as the model sees it."""
        return _spec(self.name, self.description, self.input_model)


@functools.lru_cache(maxsize=4096)
def _spec(name: str, description: str, model: type[BaseModel]) -> ToolSpec:
    # Building a JSON schema takes ~0.2 ms, and a simulation builds its registries per run;
    # a ToolSpec is frozen, so one serves every registry.
    return ToolSpec(name=name, description=description, input_schema=model.model_json_schema())


class ToolRegistry:
    """The tools of one workflow, by name; checked when built.

    Raises:
        WorkflowError: for duplicate names, names the API would refuse, the reserved
            name ``submit``, a write tool without an action spec (so without a
            verifier), or bad timeouts and retry settings — all at once.
    """

    def __init__(self, tools: Iterable[Tool] = ()) -> None:
        self._tools: dict[str, Tool] = {}
        self._specs: dict[str, ToolSpec] = {}
        problems: list[Problem] = []
        for tool in tools:
            problems.extend(_check_tool(tool, self._tools))
            self._tools.setdefault(tool.name, tool)
        if problems:
            raise WorkflowError(problems, name="tool registry")
        self._specs = {name: tool.spec for name, tool in self._tools.items()}

    def __contains__(self, name: object) -> bool:
        return name in self._tools

    def __iter__(self) -> Iterator[Tool]:
        return iter(self._tools.values())

    def __len__(self) -> int:
        return len(self._tools)

    def get(self, name: str) -> Tool | None:
        """The tool called ``name``, or None."""
        return self._tools.get(name)

    def spec(self, name: str) -> ToolSpec:
        """The cached spec of tool ``name``."""
        return self._specs[name]

    @property
    def names(self) -> list[str]:
        """Every tool's name, sorted."""
        return sorted(self._tools)

    def replacing(self, tools: Iterable[Tool]) -> ToolRegistry:
        """A copy of this registry with ``tools`` in place of its tools of the same names,
        in the same order (say, its tools wrapped to misbehave).

        Only the replacements are checked, and only their specs built: a simulation
        copies a registry per run to inject faults, mostly into one tool or none.

        Raises:
            WorkflowError: a replacement names no tool of this registry, or fails the
                checks a new registry's tools must pass.
        """
        copy = ToolRegistry.__new__(ToolRegistry)
        copy._tools = dict(self._tools)
        copy._specs = dict(self._specs)
        problems: list[Problem] = []
        for tool in tools:
            if tool.name not in self._tools:
                problems.append(
                    Problem(message=f"no tool named {tool.name!r} to replace", states=(tool.name,))
                )
                continue
            problems.extend(_check_tool(tool, {}))  # its name is taken by the tool it replaces
            copy._tools[tool.name] = tool
            copy._specs[tool.name] = tool.spec
        if problems:
            raise WorkflowError(problems, name="tool registry")
        return copy


def _check_tool(tool: Tool, seen: Mapping[str, Tool]) -> list[Problem]:
    where = (tool.name,)
    problems = []
    if tool.name in seen:
        problems.append(Problem(message=f"two tools are named {tool.name!r}", states=where))
    if tool.name == SUBMIT:
        problems.append(
            Problem(message=f"tool name {SUBMIT!r} is reserved for concluding a state", states=where)
        )
    if not _NAME.match(tool.name):
        problems.append(
            Problem(
                message=f"tool name {tool.name!r} must match {_NAME.pattern} (the API's rule)", states=where
            )
        )
    if tool.timeout is not None and not tool.timeout > 0:
        problems.append(
            Problem(message=f"tool {tool.name!r}: timeout={tool.timeout!r} must be > 0", states=where)
        )
    if tool.retry.attempts < 1:
        problems.append(
            Problem(
                message=f"tool {tool.name!r}: retry.attempts={tool.retry.attempts} must be >= 1", states=where
            )
        )
    if tool.kind == "write" and tool.action is None:
        problems.append(
            Problem(
                message=f"write tool {tool.name!r} declares no action (resource, precheck, verify): "
                "an unverified write cannot be trusted",
                states=where,
            )
        )
    if tool.action is not None and not (callable(tool.action.verify) and callable(tool.action.precheck)):
        problems.append(
            Problem(
                message=f"write tool {tool.name!r}: its action needs a precheck and a verify callable, "
                "to tell whether it is done and to read it back",
                states=where,
            )
        )
    if tool.breaker.failures < 1:
        problems.append(
            Problem(
                message=f"tool {tool.name!r}: breaker.failures={tool.breaker.failures} must be >= 1",
                states=where,
            )
        )
    return problems


async def call_tool(
    ctx: StepContext, registry: ToolRegistry, allowed: Iterable[str], use: ToolUseBlock
) -> tuple[ToolResultBlock, bool]:
    """Check, run and record one tool call; return the result for the model and
    whether the call was rejected (it never ran)."""
    tool = registry.get(use.name)
    allowed = sorted(allowed)
    if tool is None:
        return _reject(ctx, use, "unknown_tool", f"no tool named {use.name!r}; available tools: {allowed}")
    if use.name not in allowed:
        return _reject(
            ctx,
            use,
            "not_allowed",
            f"tool {use.name!r} is not available in state {ctx.state!r}; available: {allowed}",
        )
    try:
        args = tool.input_model.model_validate(use.input)
    except ValidationError as exc:
        errors = "; ".join(
            f"{'.'.join(map(str, error['loc'])) or '(input)'}: {error['msg']}" for error in exc.errors()
        )
        return _reject(ctx, use, "invalid_arguments", f"invalid arguments for {use.name!r}: {errors}")
    if tool.action is not None:
        # Writes go through the ledger, the lease and the verifier.
        result = await execute_action(
            ctx,
            tool=tool.name,
            spec=tool.action,
            args=args,
            use=use,
            apply=lambda: run_tool(ctx, tool, args, use),
            store=ctx.store,
            policy=ctx.action_policy,
        )
        return result, False
    return await run_tool(ctx, tool, args, use), False


def _reject(
    ctx: StepContext, use: ToolUseBlock, reason: ToolRejection, detail: str
) -> tuple[ToolResultBlock, bool]:
    ctx._record("tool_rejected", tool=use.name, call_id=use.id, input=use.input, reason=reason, detail=detail)
    return ToolResultBlock(tool_use_id=use.id, content=detail, is_error=True), True


async def run_tool(ctx: StepContext, tool: Tool, args: BaseModel, use: ToolUseBlock) -> ToolResultBlock:
    """Run a checked call behind the tool's circuit breaker, with its timeout and
    retries, and record it as ``tool_called``."""
    breakers: dict[str, _BreakerState] = ctx.shared("tools/breakers", dict)
    breaker = breakers.setdefault(tool.name, _BreakerState())
    started = ctx.now()
    status: ToolStatus
    attempts = 0
    if breaker.open_until is not None and ctx.now() < breaker.open_until:
        status = "unavailable"
        output = (
            f"source unavailable: {tool.name!r} failed {breaker.failures} times in a row; "
            f"not called again before t={breaker.open_until:g}s"
        )
    else:
        status, output, attempts = await _attempts(ctx, tool, args, use, breaker)
    ctx._record(
        "tool_called",
        tool=tool.name,
        call_id=use.id,
        input=args.model_dump(mode="json"),
        status=status,
        output=output,
        attempts=attempts,
        duration=ctx.now() - started,
    )
    return ToolResultBlock(tool_use_id=use.id, content=output, is_error=status != "ok")


async def _attempts(
    ctx: StepContext, tool: Tool, args: BaseModel, use: ToolUseBlock, breaker: _BreakerState
) -> tuple[ToolStatus, str, int]:
    """Try the call until it succeeds, the retries run out or the breaker opens.

    A write is tried once: a write that timed out or failed may have landed all the
    same, and trying it again blindly could apply it twice. The action executor
    reads it back to settle the outcome, and its policy decides any reapplication.
    """
    retry = tool.retry
    tries = 1 if tool.action is not None else retry.attempts
    status: ToolStatus = "error"
    problem = ""
    attempt = 0
    for attempt in range(1, tries + 1):
        try:
            if tool.timeout is None:
                value = await tool.fn(args)
            else:
                async with asyncio.timeout(tool.timeout):
                    value = await tool.fn(args)
        except TimeoutError:
            status, problem = "timeout", f"timed out after {tool.timeout:g}s"
            ctx._record("tool_timeout", tool=tool.name, call_id=use.id, attempt=attempt, timeout=tool.timeout)
        except SimulationError:
            raise  # the harness failed, not the source
        except (LookupError, ValueError) as exc:
            # The source answered: what was asked for does not exist or cannot be. Asking
            # again cannot help, and the source is not failing.
            return "error", f"{type(exc).__name__}: {exc}", attempt
        except Exception as exc:
            status, problem = "error", f"{type(exc).__name__}: {exc}"
        else:
            breaker.failures, breaker.open_until = 0, None
            return "ok", _render(value), attempt
        breaker.failures += 1
        if breaker.failures >= tool.breaker.failures:
            breaker.open_until = ctx.now() + tool.breaker.cooldown
            break
        if attempt < tries:
            # The stream is fetched only when needed: making one costs more than a call.
            draw = ctx.stream(f"tools/{tool.name}").random()
            await asyncio.sleep(retry.delay(attempt, draw))
    return (
        status,
        f"source unavailable: {tool.name!r} {problem} (attempt {attempt} of {tries})",
        attempt,
    )


def _render(value: Any) -> str:
    """A tool's return value as the text the model reads."""
    if isinstance(value, str):
        return value
    if isinstance(value, BaseModel):
        return value.model_dump_json()
    return json.dumps(value, default=str, sort_keys=True)
