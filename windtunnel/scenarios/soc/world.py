"""The simulated security-operations world: assets, identities, logs, and the state
that actions change (firewall blocklist, EDR isolation, disabled accounts, tickets).

Everything here is pydantic, because scenario files describe worlds. The mutable
parts record every change with its simulated time, so that a stale-read fault can
show a reader the state as it was before a recent write.
"""

from __future__ import annotations

from typing import Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

__all__ = [
    "Alert",
    "Change",
    "Criticality",
    "Host",
    "IpInfo",
    "LogEvent",
    "Process",
    "Reputation",
    "StateSet",
    "Ticket",
    "User",
    "World",
]

Criticality: TypeAlias = Literal["low", "medium", "high", "critical"]
Reputation: TypeAlias = Literal["benign", "unknown", "suspicious", "malicious"]
StateSet: TypeAlias = Literal["blocklist", "isolated", "disabled"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Host(_Model):
    """A machine the SOC protects."""

    name: str
    ip: str = Field(description="Its address on the internal network.")
    criticality: Criticality = "medium"
    owner: str = Field(description="The team or person responsible for it.")
    os: str = "linux"


class IpInfo(_Model):
    """What threat intelligence knows about an address."""

    address: str
    reputation: Reputation = "unknown"
    note: str = ""


class User(_Model):
    """An account in the identity provider."""

    name: str
    role: str = "employee"
    privileged: bool = False


class Process(_Model):
    """A process the EDR saw on a host."""

    host: str
    pid: int
    parent: int | None = None
    name: str
    cmdline: str = ""
    user: str = ""


class LogEvent(_Model):
    """One line of the SIEM."""

    time: float = Field(description="Simulated seconds, relative to the start of the scenario.")
    source: Literal["firewall", "edr", "idp", "proxy", "dns"]
    host: str = ""
    user: str = ""
    src_ip: str = ""
    dst_ip: str = ""
    action: str = Field(description="What happened, e.g. 'allowed', 'login_failed', 'process_start'.")
    detail: str = ""


class Ticket(_Model):
    """A ticket opened in the case-management system."""

    id: str
    title: str
    severity: Literal["low", "medium", "high", "critical"] = "medium"
    body: str = ""


class Change(_Model):
    """One change to the world's mutable state."""

    time: float
    set: StateSet
    key: str
    present: bool = Field(description="True when ``key`` was added to the set, False when removed.")


class World(_Model):
    """The environment an investigation runs against.

    Example:
        >>> world = World(hosts={"web-01": Host(name="web-01", ip="10.0.0.5", owner="web")})
        >>> world.change("blocklist", "203.0.113.9", True, at=30.0)
        >>> world.has("blocklist", "203.0.113.9"), world.had("blocklist", "203.0.113.9", at=10.0)
        (True, False)
        >>> world.make_stale(0, until=60.0)
        1
        >>> [world.observe("blocklist", "203.0.113.9", now=t) for t in (45.0, 61.0)]
        [False, True]
    """

    hosts: dict[str, Host] = Field(default_factory=dict)
    ips: dict[str, IpInfo] = Field(default_factory=dict)
    users: dict[str, User] = Field(default_factory=dict)
    processes: list[Process] = Field(default_factory=list)
    logs: list[LogEvent] = Field(default_factory=list)
    blocklist: set[str] = Field(default_factory=set, description="Addresses the firewall blocks.")
    isolated: set[str] = Field(default_factory=set, description="Hosts the EDR has isolated.")
    disabled: set[str] = Field(default_factory=set, description="Accounts the identity provider disabled.")
    tickets: list[Ticket] = Field(default_factory=list)
    changes: list[Change] = Field(default_factory=list, description="Every change, in order.")
    # Index in `changes` -> simulated time until which readers still see the state
    # from before that change (a stale-read fault).
    _stale: dict[int, float] = PrivateAttr(default_factory=dict)

    def has(self, name: StateSet, key: str) -> bool:
        """Whether ``key`` is in the set ``name`` now: the truth, as evaluators see it."""
        return key in self._set(name)

    def observe(self, name: StateSet, key: str, *, now: float) -> bool:
        """Whether ``key`` is in the set ``name`` as a reader sees it at ``now``: the
        truth, unless the last change to it is still stale (then, the state before)."""
        present = key in self._set(name)
        if self._stale:
            for index in range(len(self.changes) - 1, -1, -1):
                change = self.changes[index]
                if change.set == name and change.key == key:
                    if now < self._stale.get(index, -1.0):
                        return not present  # changes are only recorded when they toggle
                    break
        return present

    def make_stale(self, since: int, *, until: float) -> int:
        """Make the changes from index ``since`` on invisible to readers until ``until``;
        returns how many changes that covers."""
        for index in range(since, len(self.changes)):
            self._stale[index] = until
        return len(self.changes) - since

    def had(self, name: StateSet, key: str, *, at: float) -> bool:
        """Whether ``key`` was in the set ``name`` at simulated time ``at``."""
        present = key in self._set(name)
        # Undo, newest first, the changes made after `at`.
        for change in reversed(self.changes):
            if change.time <= at:
                break
            if change.set == name and change.key == key:
                present = not change.present
        return present

    def last_change(self, name: StateSet, key: str) -> float | None:
        """When ``key`` last entered or left the set ``name``; None if it never did."""
        for change in reversed(self.changes):
            if change.set == name and change.key == key:
                return change.time
        return None

    def change(self, name: StateSet, key: str, present: bool, *, at: float) -> None:
        """Add ``key`` to (or remove it from) the set ``name`` at simulated time ``at``."""
        target = self._set(name)
        if (key in target) == present:
            return
        if present:
            target.add(key)
        else:
            target.discard(key)
        self.changes.append(Change(time=at, set=name, key=key, present=present))

    def _set(self, name: StateSet) -> set[str]:
        if name == "blocklist":
            return self.blocklist
        if name == "isolated":
            return self.isolated
        return self.disabled


class Alert(_Model):
    """What the SIEM raised: the case an investigation starts from."""

    id: str
    rule: str
    severity: Literal["low", "medium", "high", "critical"]
    host: str
    src_ip: str = Field(description="The internal address involved.")
    dst_ip: str = Field(description="The external address involved.")
    user: str = ""
    time: float = 0.0
    description: str = ""
