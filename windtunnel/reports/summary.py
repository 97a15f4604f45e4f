"""A readable, line-per-step summary of a trace, for terminals and logs."""

from __future__ import annotations

from collections.abc import Iterable

from windtunnel.orchestrator import Event

__all__ = ["summarize_trace"]


def summarize_trace(events: Iterable[Event], *, trace: Iterable[Event] | None = None) -> str:
    """One header line per run, then one line per notable event, timed from its run's
    start; last, a line for each run that did not finish.

    Args:
        events: the events to show.
        trace: the whole trace ``events`` were selected from, when they are a
            selection (by kind, state, field): times count from each run's first
            event in it, and its runs without a ``run_finished`` event are said not
            to have finished. By default, ``events`` themselves.

    Each line names its run when the trace holds several.

    Example:
        >>> summarize_trace([])
        '(no events)'
    """
    shown = list(events)
    whole = shown if trace is None else list(trace)
    starts: dict[str, float] = {}
    last: dict[str, Event] = {}
    finished: set[str] = set()
    for event in whole:
        # Times are shown from each run's start, whatever the simulation's clock read then.
        starts.setdefault(event.run_id, event.sim_time)
        last[event.run_id] = event
        if event.kind == "run_finished":
            finished.add(event.run_id)
    width = max(map(len, starts)) if len(starts) > 1 else 0
    lines: list[str] = []
    for event in shown:
        elapsed = event.sim_time - starts.get(event.run_id, event.sim_time)
        who = f"{event.run_id:<{width}}  " if width else ""
        line = _describe(event, elapsed, who)
        if line is not None:
            lines.append(line)
    for run_id, event in last.items():
        if run_id not in finished:
            lines.append(
                f"  => run {run_id} did not finish: its last event is seq {event.seq} ({event.kind}) "
                f"in {event.state!r} at t={event.sim_time - starts[run_id]:.1f}s"
            )
    return "\n".join(lines) if lines else "(no events)"


def _describe(event: Event, elapsed: float, who: str) -> str | None:
    at = f"  {who}t={elapsed:>8.1f}s  {event.state or '-':<12} "
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
        case "cost_charged":
            return f"{at}CHARGED ${event.cost:.4f} for {event.source}: {event.detail}"
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
        case "run_resumed":
            return f"{at}RESUMED ({event.status}) after {event.steps} steps, attempt {event.attempt}"
        case "approval_requested":
            return f"{at}APPROVAL requested ({event.approval_id}): {event.proposal}"
        case "approval_decided":
            by = "" if event.by is None else f" by {event.by}"
            return f"{at}APPROVAL {event.decision}{by} after {event.waited:g}s -> {event.next}"
        case "run_finished":
            reason = "" if event.reason is None else f" ({event.reason})"
            return (
                f"  {who}=> {event.status} in {event.state!r} after {event.steps} steps, "
                f"{event.duration:.1f} s simulated, ${event.total_cost:.4f}{reason}"
            )
    return f"{at}{event.kind}"


def _action(action: str, route_to: str | None) -> str:
    return {"retry": "retrying", "route": f"routing to {route_to!r}", "fail": "giving up"}[action]
