"""What a competent on-call engineer does in each state, for the simulated tiers to play."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from windtunnel.scenarios.domain import Case

__all__ = ["MITIGATIONS", "OnCallPlaybook"]

MITIGATIONS = {"bad_deploy": "rollback", "memory_leak": "restart", "traffic_spike": "scale"}
"""The mitigation each diagnosis (a truth's ``verdict``) calls for."""


class OnCallPlaybook:
    """The read calls per state for this case's page, and the right next state given its truth.

    In ``detect``: look at health and the error rate, then diagnose, or close a false
    alarm. In ``diagnose``: read deploys, logs and memory, then the mitigation the
    diagnosis calls for; a case without a diagnosis (``verdict`` unset) that needs a
    human is escalated. Whether the mitigation may go ahead (a tier-0 service, another
    operator's deploy) is the workflow's to find out, not the agent's.
    """

    def __init__(self, case: Case) -> None:
        self.service = case.input.service
        self.truth = case.truth

    def calls(self, state: str) -> list[tuple[str, dict[str, Any]]]:
        """The read-tool calls to make in ``state``."""
        service = self.service
        if state == "detect":
            return [
                ("service_health", {"service": service}),
                ("read_metrics", {"service": service, "metric": "error_rate", "minutes": 60}),
            ]
        if state == "diagnose":
            return [
                ("deploy_history", {"service": service}),
                ("read_logs", {"service": service, "minutes": 60}),
                ("read_metrics", {"service": service, "minutes": 60}),
            ]
        return []

    def right_choice(self, state: str, allowed: Sequence[str]) -> str:
        """The next state the truth calls for."""
        verdict = self.truth.verdict
        if verdict == "false_alarm":
            choice = "close"
        elif state == "detect":
            choice = "diagnose"
        elif verdict in MITIGATIONS:
            choice = MITIGATIONS[verdict]
        else:
            choice = "escalate" if self.truth.needs_human else "close"
        return choice if choice in allowed else sorted(allowed)[0]
