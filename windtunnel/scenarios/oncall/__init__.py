"""The built-in on-call domain: incident response for a web service.

A page arrives for a service; agents detect and diagnose (metrics, logs, deploy
history), the workflow rolls back, restarts or scales, reads health back while the
service soaks, and pages a human when it must not or cannot fix it alone. Its
faults are its own: a slow metrics backend, a rollback acknowledged but never
applied, another operator deploying at the same time, health read stale after a
restart. The same shape as ``soc``, none of its vocabulary.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from windtunnel.scenarios.domain import Case, Domain
from windtunnel.scenarios.schema import ActionRef

from .playbook import MITIGATIONS, OnCallPlaybook
from .tools import READ_TOOLS, WRITE_TOOLS, oncall_tools
from .workflow import OPTIONS, oncall_workflow
from .world import MetricPoint, OnCallWorld, Page, Service, health

__all__ = [
    "DOMAIN",
    "MITIGATIONS",
    "OPTIONS",
    "READ_TOOLS",
    "WRITE_TOOLS",
    "OnCallPlaybook",
    "OnCallWorld",
    "Page",
    "build",
    "in_effect",
    "oncall_tools",
    "oncall_workflow",
]

_STEP = 300.0  # seconds between generated metric points
_HISTORY = 3600.0  # seconds of generated history


def in_effect(world: OnCallWorld, action: ActionRef) -> bool:
    """Whether ``action`` is in effect in ``world``: the version runs, the service was
    restarted, at least that many replicas run, an incident is open."""
    service = world.services.get(str(action.args.get("service")))
    if service is None:
        return False
    if action.tool == "rollback_deploy":
        return service.version == str(action.args["version"])
    if action.tool == "restart_service":
        return service.restarts > 0
    if action.tool == "scale_service":
        return service.replicas >= int(action.args["replicas"])
    return any(incident.service == service.name for incident in world.incidents)


def build(case: Case, rng: random.Random) -> Case:
    """Generate an hour of metrics, every five minutes, for each service that has none:
    normal before the page's ``started``, what its state implies after."""
    world: OnCallWorld = case.world
    started = case.input.started
    given = {point.service for point in world.metrics}
    points = list(world.metrics)
    for name in sorted(world.services):
        if name in given:
            continue
        service = world.services[name]
        now, normal = health(service), health(_normal(service))
        time = -_HISTORY
        while time < 0:
            if time >= started:
                state, traffic = now, service.traffic_rps
            else:
                busy = 0.7 * service.replicas * service.capacity_rps  # a normal load
                state, traffic = normal, min(service.traffic_rps, busy)
            values = {
                "error_rate": state.error_rate,
                "latency_ms": state.latency_ms,
                "memory_pct": state.memory_pct,
                "traffic_rps": traffic,
            }
            for metric, value in values.items():
                noisy = round(value * rng.uniform(0.97, 1.03), 4)
                points.append(MetricPoint(service=name, metric=metric, time=time, value=noisy))
            time += _STEP
    world.metrics = points
    return case


def _normal(service: Service) -> Service:
    """``service`` with nothing wrong: a good version, no leak, enough replicas."""
    fixed = {"bad_versions": [], "leaking": False, "traffic_rps": 0.0, "base_error_rate": 0.002}
    return service.model_copy(update=fixed)


def _check(case: Case) -> Iterator[tuple[tuple[str | int, ...], str]]:
    """The paged service, and every service and version actions name, exist in the world."""
    world, page = case.world, case.input
    services = sorted(world.services)
    if page.service not in world.services:
        yield ("input", "service"), f"service {page.service!r} is not in the world; services: {services}"
    for index, deploy in enumerate(world.deploys):
        if deploy.service not in world.services:
            yield ("world", "deploys", index, "service"), f"service {deploy.service!r} is not in the world"
    for section in ("required_actions", "forbidden_actions"):
        for index, action in enumerate(getattr(case.truth, section)):
            where = ("truth", section, index, "args")
            name = action.args.get("service")
            if name not in world.services:
                yield (*where, "service"), f"service {name!r} is not in the world; services: {services}"
                continue
            version = action.args.get("version")
            deployed = sorted({d.version for d in world.deploys if d.service == name})
            if action.tool == "rollback_deploy" and version not in deployed:
                yield (*where, "version"), f"version {version!r} of {name!r} was never deployed: {deployed}"


DOMAIN = Domain(
    name="oncall",
    description="On-call incident response: detect, diagnose, roll back, restart or scale, verify, page.",
    world=OnCallWorld,
    input=Page,
    tools=lambda world, sim: oncall_tools(world, rng=sim.rng),
    workflow=oncall_workflow,
    playbook=OnCallPlaybook,
    in_effect=in_effect,
    escalation_states=frozenset({"escalate"}),
    terminal_states=frozenset({"close", "resolved", "escalated"}),
    escalated_states=frozenset({"escalated"}),
    build=build,
    check=_check,
    scenarios=Path(__file__).with_name("scenarios"),
)
