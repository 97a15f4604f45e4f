"""A user's own domain, in one file: an order desk that refunds or escalates.

The same code as the README's "your own domain" example; tests load scenario
files of it and run them.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

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
from windtunnel.scenarios import ActionRef, Case, Domain, Kit
from windtunnel.simulators import Sim


class Strict(BaseModel):  # unknown keys in a scenario file are errors
    model_config = ConfigDict(extra="forbid")


class Order(Strict):
    amount: float
    refunded: bool = False


class Shop(Strict):  # the world
    orders: dict[str, Order]


class Ticket(Strict):  # what the workflow starts on
    order_id: str
    claim: str


class OrderId(BaseModel):
    order_id: str


def shop_tools(world: Shop, sim: Sim) -> ToolRegistry:
    async def lookup(args: OrderId) -> dict[str, Any]:
        return world.orders[args.order_id].model_dump()

    async def refund(args: OrderId) -> str:
        world.orders[args.order_id].refunded = True
        return "refunded"

    async def refunded(args: OrderId) -> bool:
        return world.orders[args.order_id].refunded

    async def undo(args: OrderId) -> None:
        world.orders[args.order_id].refunded = False

    refund_spec = ActionSpec(
        intent="refund", opposite=None, resource=lambda a: f"order:{a.order_id}",
        precheck=refunded, verify=refunded, compensate=undo,
    )  # fmt: skip
    return ToolRegistry([
        Tool(name="order_lookup", description="An order.", input_model=OrderId, fn=lookup),
        Tool(name="refund", description="Refund an order.", input_model=OrderId, fn=refund,
             kind="write", action=refund_spec),
    ])  # fmt: skip


def shop_workflow(kit: Kit) -> Workflow:
    ticket = kit.case.input

    async def do_refund(ctx: StepContext) -> Outcome:
        use = ToolUseBlock(id=ctx.new_id("refund"), name="refund", input={"order_id": ticket.order_id})
        result, _ = await call_tool(ctx, kit.tools, ["refund"], use)
        return Outcome(next="escalate" if result.is_error else "done")

    async def escalate(ctx: StepContext) -> Outcome:
        return Outcome(next="escalated")

    return Workflow(
        name="shop",
        states={"triage": kit.agent("triage", system="Refund or escalate.", allow=["order_lookup"]),
                "refund": do_refund, "escalate": escalate},
        transitions={"triage": ["refund", "escalate"], "refund": ["done", "escalate"],
                     "escalate": ["escalated"]},
        initial="triage", terminal=["done", "escalated"], escalate_to="escalate",
    )  # fmt: skip


class ShopPlaybook:
    def __init__(self, case: Case) -> None:
        self.case = case

    def calls(self, state: str) -> list[tuple[str, dict[str, Any]]]:
        return [("order_lookup", {"order_id": self.case.input.order_id})] if state == "triage" else []

    def right_choice(self, state: str, allowed: Any) -> str:
        return "escalate" if self.case.truth.needs_human else "refund"


def in_effect(world: Shop, action: ActionRef) -> bool:
    return world.orders[action.args["order_id"]].refunded


DOMAIN = Domain(
    name="shop", description="An order desk: refund or escalate.",
    world=Shop, input=Ticket, tools=shop_tools, workflow=shop_workflow,
    playbook=ShopPlaybook, in_effect=in_effect,
    escalation_states=frozenset({"escalate"}), terminal_states=frozenset({"done", "escalated"}),
    escalated_states=frozenset({"escalated"}),
)  # fmt: skip
