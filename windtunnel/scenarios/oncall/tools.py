"""The on-call tools over an :class:`~.world.OnCallWorld`: four read sources and four actions.

| tool                | kind  | what it answers or does                  | verified by reading back |
|---------------------|-------|------------------------------------------|--------------------------|
| ``read_metrics``    | read  | a service's metric series                |                          |
| ``read_logs``       | read  | a service's log lines, newest first      |                          |
| ``deploy_history``  | read  | who deployed what when, newest first     |                          |
| ``service_health``  | read  | version, replicas, restarts, health now  |                          |
| ``rollback_deploy`` | write | run an earlier deployed version again    | the running version      |
| ``restart_service`` | write | restart every replica                    | the restart count        |
| ``scale_service``   | write | set the replica count                    | the replica count        |
| ``page_human``      | write | page the on-call human: open an incident | the incident exists      |

Rolling back or restarting a tier-0 service is high impact: a human decides. Each
call waits a latency drawn from its tool's own stream (``rng("latency/<tool>")``)
in virtual time; the metrics backend is the slowest (median 4 s, timeout 30 s).
Readers see the world through :meth:`~.world.OnCallWorld.observe`, so a stale-read
fault holds back what a write changed.
"""

from __future__ import annotations

import asyncio
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from windtunnel.orchestrator import ActionSpec, Tool, ToolRegistry
from windtunnel.orchestrator.actions import Impact

from .world import Incident, MetricName, OnCallWorld, Service, health

__all__ = ["LOG_LIMIT", "READ_TOOLS", "WRITE_TOOLS", "oncall_tools"]

READ_TOOLS = ("read_metrics", "read_logs", "deploy_history", "service_health")
"""The read tools' names."""

WRITE_TOOLS = ("rollback_deploy", "restart_service", "scale_service", "page_human")
"""The write tools' names; each carries an :class:`~windtunnel.orchestrator.ActionSpec`."""

LOG_LIMIT = 50
"""The most log lines one read returns."""

# (median seconds, timeout seconds) per tool; lognormal with sigma 0.4.
_LATENCY = {
    "read_metrics": (4.0, 30.0),
    "read_logs": (2.0, 20.0),
    "deploy_history": (0.5, 20.0),
    "service_health": (0.5, 20.0),
    "rollback_deploy": (20.0, 120.0),
    "restart_service": (15.0, 120.0),
    "scale_service": (8.0, 60.0),
    "page_human": (1.0, 20.0),
}


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ServiceArgs(_Args):
    """A service by name."""

    service: str = Field(min_length=1, description="The service, e.g. 'checkout'.")


class MetricsArgs(ServiceArgs):
    """A service's metrics over a window."""

    metric: MetricName | None = Field(None, description="One metric; omit for all.")
    minutes: int = Field(60, ge=1, le=1440, description="How far back, in minutes.")


class LogsArgs(ServiceArgs):
    """A service's log lines over a window."""

    level: Literal["debug", "info", "warning", "error"] | None = Field(
        None, description="Only lines of this level; omit for all."
    )
    minutes: int = Field(60, ge=1, le=1440, description="How far back, in minutes.")


class RollbackArgs(ServiceArgs):
    """A rollback: the version to run again."""

    version: str = Field(min_length=1, description="An earlier deployed version, e.g. 'v41'.")


class ScaleArgs(ServiceArgs):
    """A replica count to scale to."""

    replicas: int = Field(ge=1, le=500, description="Replicas to run.")


class PageArgs(ServiceArgs):
    """A page to the on-call human."""

    summary: str = Field("", max_length=500, description="One line: what is wrong and what was tried.")
    severity: Literal["sev1", "sev2", "sev3"] = Field("sev2", description="How urgent it is.")


def oncall_tools(world: OnCallWorld, *, rng: Callable[[str], random.Random]) -> ToolRegistry:
    """The on-call read and write tools acting on ``world``.

    Example:
        >>> from windtunnel.simulators import Sim
        >>> from .world import Service
        >>> sim = Sim(seed=1)
        >>> world = OnCallWorld(services={"api": Service(name="api", version="v2", replicas=2)})
        >>> tools = oncall_tools(world, rng=sim.rng)
        >>> sim.run(tools.get("service_health").fn(ServiceArgs(service="api")))["healthy"]
        True
    """
    streams: dict[str, random.Random] = {}

    async def wait(tool: str) -> float:
        stream = streams.get(tool)
        if stream is None:
            stream = streams[tool] = rng(f"latency/{tool}")
        median = _LATENCY[tool][0]
        await asyncio.sleep(max(0.05, stream.lognormvariate(math.log(median), 0.4)))
        return asyncio.get_running_loop().time()

    def now() -> float:
        return asyncio.get_running_loop().time()

    def known(name: str) -> Service:
        service = world.services.get(name)
        if service is None:
            raise LookupError(f"unknown service={name!r}; services: {sorted(world.services)}")
        return service

    # --- reads -----------------------------------------------------------------------------

    async def read_metrics(args: MetricsArgs) -> list[dict[str, Any]]:
        at = await wait("read_metrics")
        known(args.service)
        since = at - args.minutes * 60.0
        points: list[dict[str, Any]] = [
            {"time": p.time, "metric": p.metric, "value": p.value}
            for p in world.metrics
            if p.service == args.service
            and since <= p.time <= at
            and (args.metric is None or p.metric == args.metric)
        ]
        seen = world.observe(args.service, now=at)
        state = health(seen)
        current: dict[str, float] = {
            "error_rate": state.error_rate,
            "latency_ms": state.latency_ms,
            "memory_pct": state.memory_pct,
            "traffic_rps": seen.traffic_rps,
        }
        points.sort(key=lambda point: point["time"])
        points.extend(
            {"time": at, "metric": name, "value": value}
            for name, value in current.items()
            if args.metric is None or name == args.metric
        )
        return points

    async def read_logs(args: LogsArgs) -> list[dict[str, Any]]:
        at = await wait("read_logs")
        known(args.service)
        since = at - args.minutes * 60.0
        lines = [
            line
            for line in world.logs
            if line.service == args.service
            and since <= line.time <= at
            and (args.level is None or line.level == args.level)
        ]
        lines.sort(key=lambda line: line.time, reverse=True)  # stable: ties keep the log's order
        return [{"time": x.time, "level": x.level, "message": x.message} for x in lines[:LOG_LIMIT]]

    async def deploy_history(args: ServiceArgs) -> list[dict[str, Any]]:
        at = await wait("deploy_history")
        known(args.service)
        deploys = [d for d in world.deploys if d.service == args.service and d.time <= at]
        deploys.sort(key=lambda deploy: deploy.time, reverse=True)
        return [{"version": d.version, "by": d.by, "time": d.time, "status": d.status} for d in deploys]

    async def service_health(args: ServiceArgs) -> dict[str, Any]:
        at = await wait("service_health")
        seen = world.observe(known(args.service).name, now=at)
        state = health(seen)
        return {
            "service": seen.name,
            "tier": seen.tier,
            "version": seen.version,
            "replicas": seen.replicas,
            "restarts": seen.restarts,
            "capacity_rps": seen.capacity_rps,
            "traffic_rps": seen.traffic_rps,
            **state.model_dump(exclude={"causes"}),
        }

    # --- writes ----------------------------------------------------------------------------

    def critical(args: ServiceArgs) -> Impact:
        # An unknown service cannot be shown to be harmless to touch: a human decides.
        service = world.services.get(args.service)
        return "low" if service is not None and service.tier > 0 else "high"

    def seen(name: str) -> Service:
        return world.observe(known(name).name, now=now())

    async def rollback(args: RollbackArgs) -> dict[str, Any]:
        at = await wait("rollback_deploy")
        known(args.service)
        if not any(d.service == args.service and d.version == args.version for d in world.deploys):
            raise LookupError(f"version={args.version!r} of {args.service!r} was never deployed")
        world.set(args.service, "version", args.version, at=at)
        return {"service": args.service, "version": args.version}

    async def running(args: RollbackArgs) -> bool:
        return seen(args.service).version == args.version

    async def roll_forward(args: RollbackArgs) -> None:
        before = world.previous(args.service, "version", args.version)
        if before is not None:
            world.set(args.service, "version", before, at=now())

    async def restart(args: ServiceArgs) -> dict[str, Any]:
        at = await wait("restart_service")
        restarts = known(args.service).restarts + 1
        world.set(args.service, "restarts", restarts, at=at)
        return {"service": args.service, "restarts": restarts}

    async def restarted(args: ServiceArgs) -> bool:
        return int(seen(args.service).restarts) > 0

    async def scale(args: ScaleArgs) -> dict[str, Any]:
        at = await wait("scale_service")
        known(args.service)
        world.set(args.service, "replicas", args.replicas, at=at)
        return {"service": args.service, "replicas": args.replicas}

    async def scaled(args: ScaleArgs) -> bool:
        return seen(args.service).replicas == args.replicas

    async def scale_back(args: ScaleArgs) -> None:
        before = world.previous(args.service, "replicas", args.replicas)
        if before is not None:
            world.set(args.service, "replicas", before, at=now())

    async def page(args: PageArgs) -> dict[str, Any]:
        await wait("page_human")
        known(args.service)
        incident = Incident(
            id=f"INC-{len(world.incidents) + 1:04d}",
            service=args.service,
            summary=args.summary,
            severity=args.severity,
        )
        world.incidents.append(incident)
        return incident.model_dump()

    async def paged(args: PageArgs) -> bool:
        return any(incident.service == args.service for incident in world.incidents)

    def resource(args: ServiceArgs) -> str:
        return f"service:{args.service}"

    return ToolRegistry(
        [
            _read("read_metrics", "A service's metric series: error rate, latency, memory, traffic.",
                  MetricsArgs, read_metrics),
            _read("read_logs", f"A service's log lines, newest first, at most {LOG_LIMIT}.",
                  LogsArgs, read_logs),
            _read("deploy_history", "Who deployed which version of a service when, newest first.",
                  ServiceArgs, deploy_history),
            _read("service_health", "A service's version, replicas, restarts and health now.",
                  ServiceArgs, service_health),
            _write("rollback_deploy", "Roll a service back to an earlier deployed version.", RollbackArgs,
                   rollback, ActionSpec(intent="rollback", opposite="deploy", resource=resource,
                                        precheck=running, verify=running, compensate=roll_forward,
                                        impact=critical)),
            _write("restart_service", "Restart every replica of a service.", ServiceArgs, restart,
                   ActionSpec(intent="restart", opposite=None, resource=resource, precheck=restarted,
                              verify=restarted, compensate=None, impact=critical)),
            _write("scale_service", "Set how many replicas of a service run.", ScaleArgs, scale,
                   ActionSpec(intent="scale", opposite=None, resource=resource, precheck=scaled,
                              verify=scaled, compensate=scale_back)),
            _write("page_human", "Page the on-call human: opens an incident for a service.", PageArgs, page,
                   ActionSpec(intent="page", opposite=None,
                              resource=lambda args: f"incident:{args.service}",
                              precheck=paged, verify=paged, compensate=None)),
        ]
    )  # fmt: skip


def _read(name: str, description: str, args: type[BaseModel], fn: Callable[[Any], Awaitable[Any]]) -> Tool:
    return Tool(name=name, description=description, input_model=args, fn=fn, timeout=_LATENCY[name][1])


def _write(
    name: str,
    description: str,
    args: type[BaseModel],
    fn: Callable[[Any], Awaitable[Any]],
    action: ActionSpec,
) -> Tool:
    return Tool(
        name=name,
        description=description,
        input_model=args,
        fn=fn,
        kind="write",
        timeout=_LATENCY[name][1],
        action=action,
    )
