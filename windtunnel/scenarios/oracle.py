"""An oracle model: plays a domain's playbook perfectly — or perfectly wrong — to check
that a scenario's ground truth is honest.

A scenario's truth is honest when an agent that makes the playbook's calls and then
the right choice in every decision state is graded correct, and one that makes a
wrong choice is graded wrong. ``run_scenario(loaded, models=oracle())`` plays the
right choices; ``oracle(wrong=True)`` a wrong one in every state.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from windtunnel.orchestrator import (
    SUBMIT,
    Model,
    ModelRequest,
    ModelResponse,
    SimulationError,
    TextBlock,
    ToolUseBlock,
    Usage,
    current_step,
)

__all__ = ["ORACLE_MODELS", "OracleModel", "oracle", "play"]


class OracleModel:
    """A :class:`~windtunnel.orchestrator.Model` that makes the playbook's calls in order,
    then submits the right next state (or, with ``wrong``, another allowed one) with
    full confidence. It costs nothing and takes no time."""

    def __init__(self, playbook: Any, *, wrong: bool = False) -> None:
        self.playbook = playbook
        self.wrong = wrong
        self.calls = 0

    @property
    def name(self) -> str:
        """A model id that prices at zero."""
        return "oracle"

    async def create(self, request: ModelRequest) -> ModelResponse:
        """The next planned call, or the submit."""
        step = current_step()
        if step is None:
            raise SimulationError("OracleModel was called outside a run's step")
        self.calls += 1
        offered = {spec.name for spec in request.tools}
        plan = [(tool, args) for tool, args in self.playbook.calls(step.state) if tool in offered]
        made = sum(
            1
            for message in request.messages
            for block in message.content
            if isinstance(block, ToolUseBlock) and block.name != SUBMIT
        )
        number = f"toolu_oracle_{self.calls:04d}"
        if made < len(plan):
            tool, args = plan[made]
            # A copy through JSON, as an API's answer would be: the run may not alter the playbook.
            content: tuple[Any, ...] = (
                ToolUseBlock(id=number, name=tool, input=json.loads(json.dumps(args))),
            )
        else:
            allowed = sorted(step.allowed)
            right = self.playbook.right_choice(step.state, allowed)
            others = [state for state in allowed if state != right]
            chosen = others[0] if self.wrong and others else right
            content = (
                TextBlock(text=f"The playbook says {right!r}."),
                ToolUseBlock(
                    id=number,
                    name=SUBMIT,
                    input={"next": chosen, "confidence": 1.0, "rationale": "the playbook"},
                ),
            )
        return ModelResponse(
            model="oracle",
            content=content,
            stop_reason="tool_use",
            usage=Usage(input_tokens=0, output_tokens=0),
        )


def oracle(*, wrong: bool = False) -> Callable[[str, Any], Model]:
    """A model factory for ``run_scenario(models=...)``: an oracle per decision state."""

    def make(state: str, playbook: Any) -> Model:
        return OracleModel(playbook, wrong=wrong)

    return make


def play(state: str, playbook: Any) -> Model:
    """The oracle as a ``models`` factory named by a string: ``ORACLE_MODELS``, the
    config ``oracle`` of ``windtunnel run``, ``scenario run --tier oracle`` and ``fuzz``."""
    return OracleModel(playbook)


ORACLE_MODELS = "windtunnel.scenarios.oracle:play"
""":func:`play`'s name, for a config's ``models``."""
