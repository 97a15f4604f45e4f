"""Typed trace events: one pydantic discriminated union on ``kind``.

Every event carries the run id, its sequence number within the run, the simulated
time (the event loop's clock), the wall time, and the state the run was in. The
engine records events as plain tuples on the hot path (see ``trace.py``); these
models are what a reader gets back, what the sinks write, and what loads from a
file, validated.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .model import ModelRequest, ModelResponse

__all__ = [
    "EVENT_TYPES",
    "ActionApplied",
    "ActionCompensated",
    "ActionUnknown",
    "ActionVerified",
    "AgentNudged",
    "AgentProblem",
    "ApprovalDecided",
    "ApprovalRequested",
    "BudgetExceeded",
    "ConflictDetected",
    "ConflictPolicy",
    "CostCharged",
    "Escalated",
    "EscalationTrigger",
    "Event",
    "EventBase",
    "FaultInjected",
    "HandlerFailed",
    "ModelCalled",
    "PolicyAction",
    "RunFinished",
    "RunResumed",
    "RunStarted",
    "RunStatus",
    "StateEntered",
    "ToolCalled",
    "ToolRejected",
    "ToolRejection",
    "ToolStatus",
    "ToolTimedOut",
    "TransitionRefused",
    "TransitionTaken",
    "VerificationFailed",
    "VerificationStep",
    "event_adapter",
]

RunStatus: TypeAlias = Literal["completed", "budget_exceeded", "failed", "cancelled", "paused"]
"""How a run ended: reached a terminal state, ran out of budget, gave up, was cancelled
— or stopped for now, waiting for a decision (``paused``)."""

PolicyAction: TypeAlias = Literal["retry", "route", "fail"]
"""What a policy did: re-run the state, route to its declared state, or end the run failed."""


class EventBase(BaseModel):
    """Fields every event carries."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    run_id: str = Field(description="The run this event belongs to.")
    seq: int = Field(description="Position of the event within its run, from 0.")
    sim_time: float = Field(description="Simulated seconds on the run's event-loop clock.")
    wall_time: float = Field(description="Wall-clock seconds since the epoch; not deterministic.")
    state: str | None = Field(description="The state the run was in when the event happened.")


class RunStarted(EventBase):
    """A run began in its initial state."""

    kind: Literal["run_started"] = "run_started"
    workflow: str = Field(description="The workflow's name.")
    case: Any = Field(description="The case the run works on, as given to run().")
    max_steps: int | None = Field(description="Step budget; None for unlimited.")
    max_duration: float | None = Field(description="Simulated-seconds budget; None for unlimited.")
    max_cost: float | None = Field(description="Cost budget in USD; None for unlimited.")


class StateEntered(EventBase):
    """The engine is about to run the state's handler."""

    kind: Literal["state_entered"] = "state_entered"
    step: int = Field(description="Steps taken in this run, this one included.")
    attempt: int = Field(description="1 on first entry; higher when a policy retries the state.")


class TransitionTaken(EventBase):
    """The run moved from ``state`` to ``target``."""

    kind: Literal["transition"] = "transition"
    target: str = Field(description="The state the run moves to.")
    confidence: float | None = Field(description="The handler's confidence in its choice, if given.")
    data: dict[str, Any] = Field(description="Data the handler added to the run.")
    reason: str | None = Field(
        description="None when the handler chose the target; otherwise why a policy routed there."
    )


class TransitionRefused(EventBase):
    """A handler chose a next state the transition table does not allow from ``state``."""

    kind: Literal["transition_refused"] = "transition_refused"
    proposed: str = Field(description="The next state the handler asked for.")
    allowed: list[str] = Field(description="The next states the table allows from here.")
    attempt: int = Field(description="The attempt of the state that made the choice.")
    action: PolicyAction = Field(description="What the refusal policy did about it.")
    route_to: str | None = Field(description="Where the policy routed the run, for action 'route'.")


class HandlerFailed(EventBase):
    """A handler raised, returned something other than an Outcome, or timed out."""

    kind: Literal["handler_failed"] = "handler_failed"
    error: str = Field(description="The exception's type name, or 'InvalidOutcome'.")
    message: str = Field(description="What went wrong.")
    timed_out: bool = Field(description="True when the state's timeout expired.")
    attempt: int = Field(description="The attempt of the state that failed.")
    action: PolicyAction = Field(description="What the error policy did about it.")
    route_to: str | None = Field(description="Where the policy routed the run, for action 'route'.")


class BudgetExceeded(EventBase):
    """A budget ran out; the run ends."""

    kind: Literal["budget_exceeded"] = "budget_exceeded"
    budget: Literal["steps", "duration", "cost"] = Field(description="Which budget ran out.")
    limit: float = Field(description="The budget's limit.")
    used: float = Field(description="How much had been used when it was detected.")


class RunFinished(EventBase):
    """The run ended; ``state`` is its final state."""

    kind: Literal["run_finished"] = "run_finished"
    status: RunStatus = Field(description="How the run ended.")
    steps: int = Field(description="Steps taken.")
    duration: float = Field(description="Simulated seconds from start to end.")
    total_cost: float = Field(
        description="Total USD charged to the run: the sum of its model_called and cost_charged costs."
    )
    reason: str | None = Field(description="Why the run did not complete, if it did not.")


class ModelCalled(EventBase):
    """An agent called a model: the whole request and response, reasoning text included."""

    kind: Literal["model_called"] = "model_called"
    tier: str | None = Field(description="The escalation tier the model played, if any.")
    model: str = Field(description="The model id.")
    request: ModelRequest = Field(description="What was sent: system prompt, messages, tools.")
    response: ModelResponse | None = Field(description="What came back; None when the call failed.")
    input_tokens: int = Field(description="Input tokens billed (0 when the call failed).")
    output_tokens: int = Field(description="Output tokens billed (0 when the call failed).")
    cost: float = Field(description="USD charged for the call.")
    latency: float = Field(description="Seconds on the event loop's clock, retries included.")
    request_id: str | None = Field(description="The API's request id, when there was one.")
    retries: int = Field(description="HTTP retries the client made within this call.")
    error: str | None = Field(description="Why the call failed; None when it succeeded.")


ToolStatus: TypeAlias = Literal["ok", "error", "timeout", "unavailable"]
"""How a tool call ended: a result, an error after retries, a timeout after retries,
or not run because the tool's circuit breaker was open."""


class ToolCalled(EventBase):
    """A tool call ran (or found its source unavailable) and its result went back to the model."""

    kind: Literal["tool_called"] = "tool_called"
    tool: str = Field(description="The tool's name.")
    call_id: str = Field(description="The model's tool_use id.")
    input: dict[str, Any] = Field(description="The validated arguments.")
    status: ToolStatus = Field(description="How the call ended.")
    output: str = Field(description="What the model was told.")
    attempts: int = Field(description="Attempts made (0 when the circuit was open).")
    duration: float = Field(description="Seconds on the event loop's clock, back-off included.")


ToolRejection: TypeAlias = Literal["unknown_tool", "not_allowed", "invalid_arguments"]


class ToolRejected(EventBase):
    """A tool call was refused before anything ran; the model was told why."""

    kind: Literal["tool_rejected"] = "tool_rejected"
    tool: str = Field(description="The tool name the model used.")
    call_id: str = Field(description="The model's tool_use id.")
    input: Any = Field(description="The arguments as the model sent them.")
    reason: ToolRejection = Field(description="Why the call was refused.")
    detail: str = Field(description="The error fed back to the model.")


class ToolTimedOut(EventBase):
    """One attempt of a tool call ran past the tool's timeout."""

    kind: Literal["tool_timeout"] = "tool_timeout"
    tool: str = Field(description="The tool's name.")
    call_id: str = Field(description="The model's tool_use id.")
    attempt: int = Field(description="Which attempt timed out, from 1.")
    timeout: float = Field(description="The tool's timeout in seconds.")


AgentProblem: TypeAlias = Literal["no_submit", "malformed_submit", "max_turns", "rejections"]


class AgentNudged(EventBase):
    """An agent's model did not conclude properly; it was told so, or the agent gave up."""

    kind: Literal["agent_nudged"] = "agent_nudged"
    problem: AgentProblem = Field(description="What went wrong.")
    detail: str = Field(description="The feedback given to the model, or why the agent gave up.")
    gave_up: bool = Field(description="True when the agent stopped and raised AgentError.")


class CostCharged(EventBase):
    """Something other than a model call was charged to the run: a human's review
    time, a paid API. (A model call's cost is on its ``model_called`` event.)"""

    kind: Literal["cost_charged"] = "cost_charged"
    cost: float = Field(description="USD charged.")
    source: str = Field(description="Who or what it pays for, e.g. 'human:analyst'.")
    detail: str = Field(description="What exactly, e.g. '4.3 minutes of review at $2.50/min'.")


class FaultInjected(EventBase):
    """A simulated fault fired; the events after it show how the orchestrator reacted."""

    kind: Literal["fault_injected"] = "fault_injected"
    fault_id: str = Field(description="The fault's id in its fault plan.")
    fault_kind: str = Field(description="What kind of fault it is, e.g. 'timeout', 'silent_failure'.")
    target: str = Field(description="What it hit, e.g. 'tool:threat_intel', 'tier:small', 'humans', 'run'.")
    detail: str = Field(description="What exactly it did.")


class ActionApplied(EventBase):
    """A write action took effect — or was already in effect (``noop``), or was found
    applied in the idempotency ledger (``from_ledger``) and not applied again."""

    kind: Literal["action_applied"] = "action_applied"
    tool: str = Field(description="The write tool.")
    key: str = Field(description="The idempotency key: run, action and normalized arguments.")
    resource: str = Field(description="What the action touches, e.g. 'ip:203.0.113.9'.")
    intent: str = Field(description="What it does to the resource, e.g. 'block'.")
    noop: bool = Field(description="True when the precheck found it already done.")
    from_ledger: bool = Field(description="True when the ledger showed it applied before.")
    attempt: int = Field(1, description="2 and up: applied again after its verification failed.")
    recovered: bool = Field(
        False, description="True when a crash left the outcome unknown and the precheck found it applied."
    )


class ActionUnknown(EventBase):
    """A life of the run that died had started this action (or its undo) and not
    recorded the outcome: whether the world changed is unknown. What follows says how
    it was resolved: the precheck (or a read-back) decides, and nothing is done twice."""

    kind: Literal["action_unknown"] = "action_unknown"
    tool: str = Field(description="The write tool.")
    key: str = Field(description="The idempotency key.")
    resource: str = Field(description="What the action touches.")
    intent: str = Field(description="What it does to the resource.")
    attempt: int = Field(description="Which application it was.")
    detail: str = Field(description="What is unknown and how it is decided.")


class ActionVerified(EventBase):
    """Reading the resource back confirmed the action."""

    kind: Literal["action_verified"] = "action_verified"
    tool: str = Field(description="The write tool.")
    key: str = Field(description="The idempotency key.")
    resource: str = Field(description="What the action touches.")
    attempts: int = Field(description="Read-backs it took (stale reads need more than one).")


VerificationStep: TypeAlias = Literal["reapply", "compensate", "escalate"]


class VerificationFailed(EventBase):
    """Reading the resource back did not show the action; ``action`` is what follows."""

    kind: Literal["verification_failed"] = "verification_failed"
    tool: str = Field(description="The write tool.")
    key: str = Field(description="The idempotency key.")
    resource: str = Field(description="What the action touches.")
    attempts: int = Field(description="Read-backs made.")
    action: VerificationStep = Field(description="What the executor does next.")


class ActionCompensated(EventBase):
    """An action that could not be verified was undone."""

    kind: Literal["action_compensated"] = "action_compensated"
    tool: str = Field(description="The write tool.")
    key: str = Field(description="The idempotency key.")
    resource: str = Field(description="What the action touched.")
    ok: bool = Field(description="False when the compensation itself failed.")
    recovered: bool = Field(
        False, description="True when a crash left the undo's outcome unknown and a read-back found it done."
    )


ConflictPolicy: TypeAlias = Literal["refuse", "wait", "escalate"]


class ConflictDetected(EventBase):
    """Another run holds the resource with a conflicting intent; detected before committing."""

    kind: Literal["conflict_detected"] = "conflict_detected"
    tool: str = Field(description="The write tool that wanted the resource.")
    resource: str = Field(description="The contested resource.")
    intent: str = Field(description="What this run wanted to do.")
    held_by: str = Field(description="The run holding the conflicting lease.")
    held_intent: str = Field(description="What that run intends.")
    policy: ConflictPolicy = Field(description="What this run does about it.")


EscalationTrigger: TypeAlias = Literal[
    "low_confidence",
    "high_impact",
    "conflict",
    "verification_failed",
    "budget",
    "rejections",
    "tool_failures",
    "refused_transition",
]


class Escalated(EventBase):
    """A decision went one tier up, or the run went to its escalation state."""

    kind: Literal["escalated"] = "escalated"
    trigger: EscalationTrigger = Field(description="Why.")
    to: str = Field(description="The tier or state it went to.")
    from_tier: str | None = Field(description="The tier that decided before, if any.")
    confidence: float | None = Field(description="That tier's confidence, if it had one.")
    detail: str = Field(description="What exactly triggered it.")


class RunResumed(EventBase):
    """A run picked up from its last checkpoint (after a crash, or a pause)."""

    kind: Literal["run_resumed"] = "run_resumed"
    status: str = Field(
        description="The checkpoint's status: 'running' after a crash, 'paused' after a pause."
    )
    attempt: int = Field(description="The attempt of ``state`` that runs again.")
    steps: int = Field(description="Steps the run had taken.")


class ApprovalRequested(EventBase):
    """The run asks a human to decide, and pauses until someone does."""

    kind: Literal["approval_requested"] = "approval_requested"
    approval_id: str = Field(description="The request's id, for deciding it.")
    proposal: str = Field(description="What the human is asked to approve.")
    deadline: float = Field(description="Simulated time after which the fail-safe applies.")


class ApprovalDecided(EventBase):
    """A human decided (or the request timed out and the fail-safe applied)."""

    kind: Literal["approval_decided"] = "approval_decided"
    approval_id: str = Field(description="The request's id.")
    decision: str = Field(description="approve, reject, modify, or timeout.")
    by: str | None = Field(description="Who decided; None for a timeout.")
    waited: float = Field(description="Simulated seconds from the request to the decision.")
    next: str = Field(description="The state the decision leads to.")
    grants: list[tuple[str, str]] = Field(
        default_factory=list, description="(resource, intent) pairs an approval authorizes."
    )


Event = Annotated[
    RunStarted
    | StateEntered
    | TransitionTaken
    | TransitionRefused
    | HandlerFailed
    | BudgetExceeded
    | RunFinished
    | ModelCalled
    | ToolCalled
    | ToolRejected
    | ToolTimedOut
    | AgentNudged
    | CostCharged
    | FaultInjected
    | ActionApplied
    | ActionUnknown
    | ActionVerified
    | VerificationFailed
    | ActionCompensated
    | ConflictDetected
    | Escalated
    | RunResumed
    | ApprovalRequested
    | ApprovalDecided,
    Field(discriminator="kind"),
]
"""Any trace event, discriminated on ``kind``."""

EVENT_TYPES: dict[str, type[EventBase]] = {
    cls.model_fields["kind"].default: cls
    for cls in (
        RunStarted,
        StateEntered,
        TransitionTaken,
        TransitionRefused,
        HandlerFailed,
        BudgetExceeded,
        RunFinished,
        ModelCalled,
        ToolCalled,
        ToolRejected,
        ToolTimedOut,
        AgentNudged,
        CostCharged,
        FaultInjected,
        ActionApplied,
        ActionUnknown,
        ActionVerified,
        VerificationFailed,
        ActionCompensated,
        ConflictDetected,
        Escalated,
        RunResumed,
        ApprovalRequested,
        ApprovalDecided,
    )
}
"""Event class by ``kind``."""

event_adapter: TypeAdapter[Event] = TypeAdapter(Event)
"""Validates one event of any kind from a dict or JSON."""
