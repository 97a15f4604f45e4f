"""A small durable workflow for crash, kill and resume tests: each step blocks or
unblocks an address chosen from the step's random stream, through the action
executor, against a firewall kept in a JSON file (so it outlives a process)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from windtunnel.orchestrator import (
    ActionSpec,
    Outcome,
    StepContext,
    Tool,
    ToolRegistry,
    ToolUseBlock,
    Workflow,
    call_tool,
)

ADDRESSES = [f"203.0.113.{n}" for n in range(1, 6)]
STATES = ["s1", "s2", "s3", "s4"]


class Ip(BaseModel):
    ip: str


class FileFirewall:
    """A blocklist in a JSON file: the outside world, which a killed process cannot roll back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():
            path.write_text("[]")

    def blocked(self) -> set[str]:
        return set(json.loads(self.path.read_text()))

    def set(self, ip: str, present: bool) -> None:
        blocked = self.blocked()
        (blocked.add if present else blocked.discard)(ip)
        self.path.write_text(json.dumps(sorted(blocked)))

    def registry(self) -> ToolRegistry:
        return firewall_tools(lambda ip: ip in self.blocked(), self.set)


def firewall_tools(is_blocked: Callable[[str], bool], change: Callable[[str, bool], None]) -> ToolRegistry:
    """``block_ip`` and ``unblock_ip`` over a blocklist: each takes a simulated second,
    verified by reading the blocklist back, undone by the opposite change."""

    def tool(name: str, present: bool) -> Tool:
        async def apply(args: Ip) -> dict[str, Any]:
            await asyncio.sleep(1.0)
            change(args.ip, present)
            return {"ip": args.ip, "blocked": present}

        async def done(args: Ip) -> bool:
            return is_blocked(args.ip) == present

        async def undo(args: Ip) -> None:
            change(args.ip, not present)

        intent, opposite = ("block", "unblock") if present else ("unblock", "block")
        return Tool(
            name=name,
            description=f"{intent} an address",
            input_model=Ip,
            fn=apply,
            kind="write",
            action=ActionSpec(
                intent=intent,
                opposite=opposite,
                resource=lambda args: f"ip:{args.ip}",
                precheck=done,
                verify=done,
                compensate=undo,
            ),
        )

    return ToolRegistry([tool("block_ip", True), tool("unblock_ip", False)])


def durable_workflow(firewall: FileFirewall, *, kill_at: str | None = None) -> Workflow:
    """Four acting states; with ``kill_at``, the process exits hard on entering that state."""
    tools = firewall.registry()

    def act(state: str, next_state: str) -> Any:
        async def handler(ctx: StepContext) -> Outcome:
            if state == kill_at:
                import os

                os._exit(17)  # a killed process: no cleanup, no flush
            done = []
            for _ in range(2):
                ip = ctx.rng.choice(ADDRESSES)
                name = "block_ip" if ctx.rng.random() < 0.7 else "unblock_ip"
                use = ToolUseBlock(id=ctx.new_id("call"), name=name, input={"ip": ip})
                await call_tool(ctx, tools, [name], use)
                done.append(f"{name} {ip}")
            await asyncio.sleep(ctx.rng.uniform(10, 60))
            return Outcome(next=next_state, data={state: done})

        return handler

    chain = [*STATES, "done"]
    return Workflow(
        name="durable",
        states={state: act(state, chain[i + 1]) for i, state in enumerate(STATES)},
        transitions={state: [chain[i + 1]] for i, state in enumerate(STATES)},
        initial="s1",
        terminal=["done"],
    )
