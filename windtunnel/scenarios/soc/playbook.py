"""What a competent SOC analyst does in each state, for the simulated tiers to play."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from windtunnel.scenarios.domain import Case

__all__ = ["SocPlaybook"]


class SocPlaybook:
    """The read calls per state for this case's alert, and the right next state given its truth."""

    def __init__(self, case: Case) -> None:
        self.alert = case.input
        self.truth = case.truth
        self.hosts = list(case.world.hosts)

    def calls(self, state: str) -> list[tuple[str, dict[str, Any]]]:
        """The read-tool calls to make in ``state``."""
        alert = self.alert
        if state == "triage":
            return [
                ("siem_search", {"query": "", "ip": alert.dst_ip, "hours": 24}),
                ("asset_lookup", {"host": alert.host}),
            ]
        if state == "investigate":
            calls: list[tuple[str, dict[str, Any]]] = [
                ("threat_intel", {"ip": alert.dst_ip}),
                ("edr_process_tree", {"host": alert.host}),
            ]
            if alert.user:
                calls.append(("user_lookup", {"user": alert.user}))
            return calls
        if state == "scope":
            return [
                call
                for host in sorted(self.hosts)
                for call in (
                    ("siem_search", {"query": "", "host": host, "ip": alert.dst_ip, "hours": 24}),
                    ("edr_process_tree", {"host": host}),
                )
            ]
        return []

    def right_choice(self, state: str, allowed: Sequence[str]) -> str:
        """The next state the truth calls for."""
        truth = self.truth
        if truth.verdict == "benign":
            choice = "close"
        elif state == "triage":
            choice = "investigate"
        else:
            choice = "escalate" if truth.needs_human else "scope" if "scope" in allowed else "contain"
        return choice if choice in allowed else sorted(allowed)[0]
