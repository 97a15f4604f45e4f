"""Stateful property: batches of concurrent runs acting on shared addresses, with random
crashes, stale reads and silent failures, resumed later. Invariants: each action applied
at most once per key; every applied action verified, compensated or escalated; never two
conflicting intents committed on one resource at once; every run ends terminal or waits
to be resumed."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from windtunnel.orchestrator import (
    Event,
    Outcome,
    RunResult,
    SqliteStore,
    StepContext,
    ToolRegistry,
    ToolUseBlock,
    Trace,
    Workflow,
    call_tool,
    resume,
    run,
)
from windtunnel.scenarios.soc import World, soc_tools
from windtunnel.simulators import Fault, FaultInjector, FaultPlan, Sim, SimulatedCrash

IPS = ["203.0.113.1", "203.0.113.2"]
Spec = tuple[str, str, str | None, int | None]  # intent, address, tool fault, crash at transition


def workflow(tools: ToolRegistry, intent: str, ip: str) -> Workflow:
    name = "block_ip" if intent == "block" else "unblock_ip"

    async def act(ctx: StepContext) -> Outcome:
        use = ToolUseBlock(id=f"{ctx.run_id}-{ctx.step}", name=name, input={"ip": ip})
        result, _ = await call_tool(ctx, tools, [name], use)
        await asyncio.sleep(20)  # hold the lease a while, so that runs overlap
        return Outcome(next="check", data={"error": result.is_error})

    async def check(ctx: StepContext) -> Outcome:
        return Outcome(next="done")

    return Workflow(
        name="operations",
        states={"act": act, "check": check, "escalate": check},
        transitions={"act": ["check"], "check": ["done"], "escalate": ["done"]},
        initial="act",
        terminal=["done"],
        escalate_to="escalate",
    )


SPECS = st.lists(
    st.tuples(
        st.sampled_from(["block", "unblock"]),
        st.sampled_from(IPS),
        st.sampled_from([None, None, "silent_failure", "stale_read"]),
        st.sampled_from([None, None, 1, 2]),
    ),
    min_size=1,
    max_size=3,
)


class Operations(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.sim = Sim(seed=0)
        self.store = SqliteStore(":memory:")
        self.world = World()
        self.specs: dict[str, Spec] = {}
        self.crashed: set[str] = set()
        self.finished: dict[str, RunResult] = {}
        self._cache: tuple[int, dict[str, list[Event]]] | None = None

    def _tools(self, spec: Spec, *, faults: bool) -> tuple[ToolRegistry, FaultInjector]:
        intent, _, fault, crash_at = spec
        plan: list[Fault] = []
        if faults and fault is not None:
            target = "tool:block_ip" if intent == "block" else "tool:unblock_ip"
            extra = {"seconds": 10} if fault == "stale_read" else {}
            plan.append(Fault(id="tool", kind=fault, target=target, **extra))
        if faults and crash_at is not None:
            plan.append(Fault(id="crash", kind="crash", target="run", at_transition=crash_at))
        injector = FaultInjector(FaultPlan(faults=plan), seed=self.sim.seed)
        return injector.tools(soc_tools(self.world, rng=self.sim.rng), world=self.world), injector

    @rule(specs=SPECS)
    def launch(self, specs: list[Spec]) -> None:
        ids = [f"run-{len(self.specs) + i}" for i in range(len(specs))]
        self.specs.update(zip(ids, specs, strict=True))

        async def batch() -> list[Any]:
            started = []
            for run_id, spec in zip(ids, specs, strict=True):
                tools, injector = self._tools(spec, faults=True)
                trace = Trace(injector) if injector.observes else Trace()
                wf = workflow(tools, spec[0], spec[1])
                started.append(run(wf, env=self.sim, store=self.store, trace=trace, run_id=run_id))
            return await asyncio.gather(*started, return_exceptions=True)

        for run_id, outcome in zip(ids, self.sim.run(batch()), strict=True):
            if isinstance(outcome, SimulatedCrash):
                self.crashed.add(run_id)
            elif isinstance(outcome, BaseException):
                raise outcome
            else:
                self.finished[run_id] = outcome

    @rule()
    def resume_crashed(self) -> None:
        for run_id in sorted(self.crashed):
            spec = self.specs[run_id]
            tools, _ = self._tools(spec, faults=False)
            result = self.sim.run(
                resume(workflow(tools, spec[0], spec[1]), run_id, env=self.sim, store=self.store)
            )
            self.finished[run_id] = result
        self.crashed.clear()

    def _events(self) -> dict[str, list[Event]]:
        # Committed events of finished runs; read once per step for all invariants.
        if self._cache is None or self._cache[0] != len(self.finished):
            self._cache = (
                len(self.finished),
                {run_id: self.store.events(run_id) for run_id in self.finished},
            )
        return self._cache[1]

    @invariant()
    def each_action_applied_at_most_once(self) -> None:
        applied: dict[str, int] = defaultdict(int)
        for events in self._events().values():
            for e in events:
                if e.kind != "action_applied" or e.noop or e.from_ledger:
                    continue
                if e.attempt == 1:
                    applied[e.key] += 1
                else:
                    # Applied again only because its verification failed, with a reapply.
                    assert any(
                        x.kind == "verification_failed" and x.key == e.key and x.action == "reapply"
                        for x in events
                        if x.seq < e.seq
                    )
        assert all(count == 1 for count in applied.values()), applied
        ledger_keys = {entry.key for entry in self.store.ledger if entry.status != "noop"}
        assert set(applied) <= ledger_keys

    @invariant()
    def every_applied_action_is_verified_compensated_or_escalated(self) -> None:
        for run_id, events in self._events().items():
            for e in events:
                if e.kind == "action_applied" and not e.noop and not e.from_ledger:
                    after = [x for x in events if x.seq > e.seq]
                    assert any(
                        (x.kind in ("action_verified", "action_compensated") and x.key == e.key)  # type: ignore[union-attr]
                        or x.kind == "escalated"
                        for x in after
                    ), f"{run_id}: {e.key} applied but never verified, compensated or escalated"

    @invariant()
    def never_two_conflicting_intents_committed_at_once(self) -> None:
        # The time each run held a committed change on a resource: from its application to its end.
        held: dict[str, list[tuple[float, float, str, str]]] = defaultdict(list)
        for run_id, events in self._events().items():
            end = events[-1].sim_time
            for e in events:
                if e.kind == "action_applied" and not e.noop:
                    held[e.resource].append((e.sim_time, end, e.intent, run_id))  # type: ignore[union-attr]
        for resource, spans in held.items():
            for a in spans:
                for b in spans:
                    if a[3] < b[3] and a[2] != b[2]:
                        assert a[1] <= b[0] or b[1] <= a[0], f"{resource}: {a} and {b} overlap"
        for ip in IPS:
            intents = {lease.intent for lease in self.store.leases(f"ip:{ip}")}
            assert len(intents) <= 1, f"conflicting leases on {ip}: {intents}"

    @invariant()
    def every_run_ends_terminal_or_waits_to_be_resumed(self) -> None:
        for run_id in self.specs:
            if run_id in self.crashed:
                checkpoint = self.store.load(run_id)
                assert checkpoint is not None
                assert checkpoint.status == "running"
            else:
                result = self.finished[run_id]
                assert (result.status, result.final_state) == ("completed", "done"), result

    def teardown(self) -> None:
        self.resume_crashed()
        self.every_run_ends_terminal_or_waits_to_be_resumed()
        self.store.close()


Operations.TestCase.settings = settings(max_examples=25, stateful_step_count=5, deadline=None)
TestOperations = Operations.TestCase
