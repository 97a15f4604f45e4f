"""A readable, line-per-step summary of a trace, for terminals and logs."""

from __future__ import annotations

from collections.abc import Iterable

from windtunnel.orchestrator import Event

__all__ = ["summarize_trace"]


def summarize_trace(events: Iterable[Event]) -> str:
    """One header line per run, then one line per notable event, timed from the run's start.

    Example:
        >>> summarize_trace([])
        '(no events)'
    """
    lines: list[str] = []
    starts: dict[str, float] = {}
    for event in events:
        # Times are shown from each run's start, whatever the simulation's clock read then.
        start = starts.setdefault(event.run_id, event.sim_time)
        line = _describe(event, event.sim_time - start)
        if line is not None:
            lines.append(line)
    return "\n".join(lines) if lines else "(no events)"


def _describe(event: Event, elapsed: float) -> str | None:
    at = f"  t={elapsed:>8.1f}s  {event.state or '-':<12} "
    match event.kind:
        case "run_started":
            return f"run {event.run_id}  workflow {event.workflow}"
        case "state_entered":
            return None if event.attempt == 1 else f"{at}re-entered (attempt {event.attempt})"
        case "transition":
            confidence = "" if event.confidence is None else f"  confidence {event.confidence:.2f}"
            via = "" if event.reason is None else f"  [{event.reason}]"
            return f"{at}-> {event.target}{confidence}{via}"
        case "transition_refused":
            return (
                f"{at}REFUSED next={event.proposed!r} (allowed {event.allowed}); "
                f"{_action(event.action, event.route_to)}"
            )
        case "handler_failed":
            return f"{at}FAILED {event.error}: {event.message}; {_action(event.action, event.route_to)}"
        case "budget_exceeded":
            return f"{at}BUDGET {event.budget} exceeded: used {event.used:g} of {event.limit:g}"
        case "model_called":
            tier = "" if event.tier is None else f" ({event.tier})"
            if event.error is not None:
                return f"{at}model {event.model}{tier} FAILED: {event.error}"
            retries = f", {event.retries} retries" if event.retries else ""
            return (
                f"{at}model {event.model}{tier}: {event.input_tokens}+{event.output_tokens} tokens, "
                f"${event.cost:.4f}, {event.latency:.1f}s{retries}"
            )
        case "tool_called":
            attempts = f"{event.attempts} attempt{'s' if event.attempts != 1 else ''}"
            return f"{at}tool {event.tool} {event.status} ({attempts}, {event.duration:.1f}s)"
        case "tool_rejected":
            return f"{at}REJECTED tool {event.tool!r} ({event.reason}): {event.detail}"
        case "tool_timeout":
            return f"{at}TIMEOUT tool {event.tool} attempt {event.attempt} after {event.timeout:g}s"
        case "agent_nudged":
            what = "GAVE UP" if event.gave_up else "NUDGED"
            return f"{at}{what} ({event.problem}): {event.detail}"
        case "fault_injected":
            return f"{at}FAULT {event.fault_id} ({event.fault_kind} on {event.target}): {event.detail}"
        case "escalated":
            return f"{at}ESCALATED ({event.trigger}) to {event.to}: {event.detail}"
        case "action_applied":
            how = " (from the ledger)" if event.from_ledger else (" (no-op)" if event.noop else "")
            return f"{at}action {event.intent} {event.resource} applied{how}"
        case "action_verified":
            return f"{at}action on {event.resource} verified after {event.attempts} read(s)"
        case "verification_failed":
            return f"{at}VERIFICATION FAILED on {event.resource} after {event.attempts} reads; {event.action}"
        case "action_compensated":
            return f"{at}action on {event.resource} compensated{'' if event.ok else ' (FAILED)'}"
        case "conflict_detected":
            return (
                f"{at}CONFLICT on {event.resource}: wants {event.intent}, run {event.held_by} "
                f"holds it to {event.held_intent}; {event.policy}"
            )
        case "run_finished":
            reason = "" if event.reason is None else f" ({event.reason})"
            return (
                f"  => {event.status} in {event.state!r} after {event.steps} steps, "
                f"{event.duration:.1f} s simulated, ${event.total_cost:.4f}{reason}"
            )
    return f"{at}{event.kind}"


def _action(action: str, route_to: str | None) -> str:
    return {"retry": "retrying", "route": f"routing to {route_to!r}", "fail": "giving up"}[action]
