"""The on-call world: services with their versions, replicas and health; deploy history,
metrics, logs and incidents; and the page that starts a run.

A service's health is computed from its state, never stored: a running version
listed in ``bad_versions`` fails requests, an unrestarted ``leaking`` service runs
out of memory, and too few replicas for the traffic saturate it. Rolling back,
restarting and scaling change that state, and every change is recorded with its
simulated time, so that a stale-read fault can hide it from readers for a while
(:meth:`OnCallWorld.observe` is what readers see, the fields are the truth).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = [
    "Change",
    "Deploy",
    "Health",
    "Incident",
    "LogLine",
    "MetricName",
    "MetricPoint",
    "OnCallWorld",
    "Page",
    "Service",
    "health",
]

MetricName = Literal["error_rate", "latency_ms", "memory_pct", "traffic_rps"]
"""The metrics the metrics backend keeps for every service."""

ChangedField = Literal["version", "replicas", "restarts"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


_ERROR_SLO = 0.05  # an error rate at or above this is unhealthy whatever the cause


class Service(_Model):
    """One service: what runs, how much of it, and what is wrong with it."""

    name: str = Field(min_length=1, description="The service's name, e.g. 'checkout'.")
    tier: int = Field(2, ge=0, le=3, description="0: critical; rolling back or restarting it is high impact.")
    version: str = Field(min_length=1, description="The version running now.")
    replicas: int = Field(ge=0, description="Replicas running now.")
    capacity_rps: float = Field(100.0, gt=0, description="Requests per second one replica serves.")
    traffic_rps: float = Field(200.0, ge=0, description="Requests per second the service receives.")
    bad_versions: list[str] = Field(default_factory=list, description="Versions that fail requests.")
    leaking: bool = Field(False, description="Leaks memory until restarted.")
    restarts: int = Field(0, ge=0, description="Restarts since the incident began.")
    base_error_rate: float = Field(
        0.002, ge=0, le=1, description="Error rate its own state does not explain (a failing dependency)."
    )
    base_latency_ms: float = Field(120.0, gt=0, description="p99 latency when nothing is wrong.")


class Health(_Model):
    """A service's health as computed from its state."""

    healthy: bool
    error_rate: float
    latency_ms: float
    memory_pct: float
    causes: list[str]


def health(service: Service) -> Health:
    """The health ``service``'s state implies, and what causes any trouble."""
    causes = []
    if service.version in service.bad_versions:
        causes.append("bad_version")
    if service.leaking and service.restarts == 0:
        causes.append("memory_leak")
    if service.replicas * service.capacity_rps < service.traffic_rps:
        causes.append("saturated")
    if service.base_error_rate >= _ERROR_SLO:
        causes.append("elevated_errors")  # from outside the service: none of its own changes help
    error_rate = service.base_error_rate
    error_rate += 0.25 * ("bad_version" in causes) + 0.08 * ("memory_leak" in causes)
    error_rate += 0.15 * ("saturated" in causes)
    latency = service.base_latency_ms * (1 + 2 * ("memory_leak" in causes) + 4 * ("saturated" in causes))
    return Health(
        healthy=not causes,
        error_rate=round(min(1.0, error_rate), 4),
        latency_ms=round(latency, 1),
        memory_pct=94.0 if "memory_leak" in causes else 55.0,
        causes=causes,
    )


class Deploy(_Model):
    """One deploy of a service: who shipped what, when, and whether it finished."""

    service: str
    version: str
    by: str = Field(description="Who deployed it.")
    time: float = Field(description="Simulated seconds; negative: before the run started.")
    status: Literal["done", "in_progress"] = "done"


class MetricPoint(_Model):
    """One point of a service's metric series."""

    service: str
    metric: MetricName
    time: float
    value: float


class LogLine(_Model):
    """One log line of a service."""

    service: str
    time: float
    level: Literal["debug", "info", "warning", "error"] = "info"
    message: str


class Incident(_Model):
    """An incident opened by paging a human."""

    id: str
    service: str
    summary: str = ""
    severity: Literal["sev1", "sev2", "sev3"] = "sev2"


class Change(_Model):
    """One change to a service's state, with the value before and after it."""

    time: float
    service: str
    field: ChangedField
    before: str | int
    after: str | int


class OnCallWorld(_Model):
    """The environment an on-call run works in.

    Example:
        >>> world = OnCallWorld(services={"api": Service(name="api", version="v2", replicas=2)})
        >>> world.set("api", "replicas", 4, at=10.0)
        >>> world.make_stale(0, until=60.0)
        1
        >>> world.services["api"].replicas, world.observe("api", now=30.0).replicas
        (4, 2)
    """

    services: dict[str, Service] = Field(description="The services, by name.")
    deploys: list[Deploy] = Field(default_factory=list, description="Deploy history, any order.")
    metrics: list[MetricPoint] = Field(
        default_factory=list, description="Metric points; a service with none gets a series generated."
    )
    logs: list[LogLine] = Field(default_factory=list, description="Log lines, any order.")
    incidents: list[Incident] = Field(default_factory=list, description="Incidents opened so far.")
    changes: list[Change] = Field(default_factory=list, description="Every change, in order.")
    # Index in `changes` -> simulated time until which readers still see the state
    # from before that change (a stale-read fault).
    _stale: dict[int, float] = PrivateAttr(default_factory=dict)

    def set(self, service: str, field: ChangedField, value: str | int, *, at: float) -> None:
        """Change ``field`` of ``service`` to ``value`` at simulated time ``at``, on record."""
        target = self.services[service]
        before = getattr(target, field)
        if before == value:
            return
        setattr(target, field, value)
        self.changes.append(Change(time=at, service=service, field=field, before=before, after=value))

    def observe(self, service: str, *, now: float) -> Service:
        """``service`` as a reader sees it at ``now``: the truth, with every change that
        is still stale at ``now`` undone."""
        current = self.services[service]
        if not self._stale:
            return current
        seen = current.model_copy()
        for index in range(len(self.changes) - 1, -1, -1):
            change = self.changes[index]
            if change.service == service and now < self._stale.get(index, -1.0):
                setattr(seen, change.field, change.before)
        return seen

    def make_stale(self, since: int, *, until: float) -> int:
        """Make the changes from index ``since`` on invisible to readers until ``until``;
        returns how many changes that covers."""
        for index in range(since, len(self.changes)):
            self._stale[index] = until
        return len(self.changes) - since

    def previous(self, service: str, field: ChangedField, value: str | int) -> str | int | None:
        """What ``field`` of ``service`` was before it last became ``value``; None if it never did."""
        for change in reversed(self.changes):
            if change.service == service and change.field == field and change.after == value:
                return change.before
        return None


class Page(_Model):
    """The alert that paged the on-call agent: what the workflow starts on."""

    id: str = Field(min_length=1, description="The alert's id.")
    service: str = Field(min_length=1, description="The service that alerted.")
    signal: Literal["error_rate", "latency", "memory", "saturation"] = Field(
        description="What crossed its threshold."
    )
    summary: str = Field("", description="The alert's text.")
    started: float = Field(-600.0, le=0, description="When the trouble began, seconds before the run.")
