"""The investigation: simulated model tiers triage and investigate a security alert in
the simulated SOC world, contain it, verify the containment, and escalate to a
human when they should — under any fault plan.

```
triage (agent) --> investigate (agent) --> contain --> verify --> close
   |                    |                                 |
   +--> close           +--> escalate (human) --> escalated
                        +--> close                 rollback --> escalate
```

The analyst's knowledge — which read tools to call in each state, and what the
right next state is given the truth — is the :class:`AnalystPlaybook` the
simulated models play, with the case's alert and truth bound in. Three case
templates (a C2 beacon on an ordinary host, the same on a critical host, a
benign vulnerability scanner) vary with the seed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias

from windtunnel.orchestrator import (
    HUMAN_TIER,
    Budget,
    Ladder,
    LadderAgent,
    LLMAgent,
    Model,
    Outcome,
    Policy,
    Rung,
    RunResult,
    StepContext,
    ToolRegistry,
    ToolUseBlock,
    Trace,
    Workflow,
    call_tool,
    run,
)
from windtunnel.orchestrator.validation import check_choice
from windtunnel.scenarios.soc.tools import soc_tools
from windtunnel.scenarios.soc.world import (
    ActionRef,
    Alert,
    Host,
    IpInfo,
    LogEvent,
    Process,
    Truth,
    User,
    World,
)
from windtunnel.simulators import Sim
from windtunnel.simulators.faults import FaultPlan
from windtunnel.simulators.humans import DEFAULT_APPROVERS, Human, HumanProfile, Review, SimulatedHuman
from windtunnel.simulators.injection import FaultInjector
from windtunnel.simulators.model import SimulatedModel
from windtunnel.simulators.profiles import DEFAULT_TIERS, TierProfile

__all__ = [
    "CASE_TEMPLATES",
    "INVESTIGATION_BUDGET",
    "VERDICTS",
    "AnalystPlaybook",
    "CaseTemplate",
    "Investigation",
    "InvestigationCase",
    "investigation_workflow",
    "make_case",
    "run_investigation",
]

CaseTemplate: TypeAlias = Literal["c2_beacon", "critical_host", "benign_scanner"]
CASE_TEMPLATES: tuple[CaseTemplate, ...] = ("c2_beacon", "critical_host", "benign_scanner")

INVESTIGATION_BUDGET = Budget(max_steps=30, max_duration=4 * 3600.0)
"""Four simulated hours (a human may take a while), 30 steps."""

_REVIEW_TIMEOUT = 2 * 3600.0  # a human who has not answered in two hours is treated as absent


VERDICTS = ("malicious", "benign")
"""The options a human reviewer of an escalated alert chooses from."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AnalystPlaybook:
    """What a competent analyst does for one alert: the read tools per state, and the right call.

    Example:
        >>> case = make_case(0, "c2_beacon")
        >>> playbook = AnalystPlaybook(alert=case.alert, truth=case.truth)
        >>> playbook.right_choice("triage", ["close", "investigate"])
        'investigate'
    """

    alert: Alert
    truth: Truth = field(repr=False)

    def calls(self, state: str) -> list[tuple[str, dict[str, Any]]]:
        """The read-tool calls to make in ``state`` for the alert."""
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
        return []

    def right_choice(self, state: str, allowed: Sequence[str]) -> str:
        """The next state the truth calls for."""
        truth = self.truth
        if truth.verdict == "benign":
            choice = "close"
        elif state == "triage":
            choice = "investigate"
        else:
            choice = "escalate" if truth.needs_human else "contain"
        return choice if choice in allowed else sorted(allowed)[0]


@dataclass(slots=True, kw_only=True)
class InvestigationCase:
    """A world, the alert raised in it, and the truth behind the alert."""

    template: CaseTemplate
    world: World
    alert: Alert
    truth: Truth


def make_case(seed: int, template: CaseTemplate | None = None) -> InvestigationCase:
    """A seeded case: ``template`` (or one drawn from the seed), with seeded details.

    Raises:
        InvalidArgument: for a template not in :data:`CASE_TEMPLATES`, or a seed that
            is not an int >= 0.
    """
    if template is not None:
        check_choice("template", template, CASE_TEMPLATES)
    sim = Sim(seed=seed)
    rng = sim.rng("case")
    template = template or CASE_TEMPLATES[rng.randrange(len(CASE_TEMPLATES))]
    octet = rng.randrange(2, 250)
    external = f"203.0.113.{octet}"
    critical = template == "critical_host"
    host = Host(
        name="db-01" if critical else "web-01",
        ip=f"10.0.0.{rng.randrange(2, 250)}",
        criticality="critical" if critical else "medium",
        owner="data-platform" if critical else "web-team",
    )
    benign = template == "benign_scanner"
    reputation = "benign" if benign else ("malicious" if rng.random() < 0.8 else "suspicious")
    world = World(
        hosts={host.name: host},
        ips={external: IpInfo(address=external, reputation=reputation, note="scanner" if benign else "C2")},
        users={"svc-web": User(name="svc-web", role="service")},
        processes=[
            Process(host=host.name, pid=1, name="systemd"),
            Process(
                host=host.name,
                pid=4242,
                parent=1,
                name="nmap" if benign else "kworkerd",
                cmdline="nmap -sV 10.0.0.0/24" if benign else f"./kworkerd --connect {external}:443",
                user="svc-web",
            ),
        ],
        logs=[
            LogEvent(
                time=-60.0 * i,
                source="firewall",
                host=host.name,
                src_ip=host.ip,
                dst_ip=external,
                action="allowed",
                detail="outbound 443",
            )
            for i in range(1, 1 + rng.randrange(3, 12))
        ],
    )
    alert = Alert(
        id=sim.new_id("alert"),
        rule="outbound connections to a rare external address",
        severity="high" if not benign else "medium",
        host=host.name,
        src_ip=host.ip,
        dst_ip=external,
        user="svc-web",
        description="periodic outbound connections",
    )
    block = ActionRef(tool="block_ip", args={"ip": external})
    truth = Truth(
        verdict="benign" if benign else "malicious",
        needs_human=critical,
        difficulty=round(rng.uniform(0.1, 0.7), 2),
        evidence=["siem_search", "threat_intel", "edr_process_tree"],
        required_actions=[] if benign or critical else [block],
        forbidden_actions=[block] if benign else [],
    )
    return InvestigationCase(template=template, world=world, alert=alert, truth=truth)


@dataclass(slots=True, kw_only=True)
class Investigation:
    """One investigation run: its result and everything needed to judge it."""

    result: RunResult
    case: InvestigationCase
    injector: FaultInjector
    tier: str

    @property
    def trace(self) -> Trace:
        """The run's trace."""
        return self.result.trace

    @property
    def correct(self) -> bool:
        """Whether the run did what the truth calls for: contained (and verified) a
        plain malicious alert, escalated one that needs a human, closed a benign one
        untouched."""
        truth, world, alert = self.case.truth, self.case.world, self.case.alert
        final = self.result.final_state
        blocked = world.has("blocklist", alert.dst_ip)
        if truth.verdict == "benign":
            return final == "close" and not blocked
        if truth.needs_human:
            return final == "escalated"
        return final == "close" and blocked

    @property
    def escalated(self) -> bool:
        """Whether the run reached a human."""
        return bool(self.trace.query(kind="state_entered", state="escalate"))


def investigation_workflow(
    case: InvestigationCase,
    *,
    models: dict[str, Model],
    tiers: dict[str, str],
    tools: ToolRegistry,
    human: Human,
    ladder: Ladder | None = None,
) -> Workflow:
    """The workflow for ``case``; ``models`` and ``tiers`` map 'triage' and 'investigate'
    to the model that plays the state and the name of its tier. With a ``ladder``, the
    investigate decision climbs it instead (its human rung is the escalate state)."""
    alert = case.alert

    triage = LLMAgent(
        model=models["triage"],
        system="You triage SOC alerts: look at the logs and the asset, then investigate or close.",
        tools=tools,
        allow=["siem_search", "asset_lookup"],
        tier=tiers["triage"],
    )
    investigate_system = (
        "You investigate SOC alerts: check the address, the processes and the user; then contain "
        "the threat, escalate to a human when the asset is critical or you are unsure, or close a "
        "false alarm."
    )
    investigate_tools = ["threat_intel", "edr_process_tree", "user_lookup", "siem_search"]
    investigate: Any = (
        LLMAgent(
            model=models["investigate"],
            system=investigate_system,
            tools=tools,
            allow=investigate_tools,
            tier=tiers["investigate"],
        )
        if ladder is None
        else LadderAgent(ladder, system=investigate_system, tools=tools, allow=investigate_tools)
    )

    async def contain(ctx: StepContext) -> Outcome:
        use = ToolUseBlock(id=ctx.new_id("contain"), name="block_ip", input={"ip": alert.dst_ip})
        result, _ = await call_tool(ctx, tools, ["block_ip"], use)
        data = {"contained": not result.is_error, "action": f"block_ip {alert.dst_ip}"}
        return Outcome(next="verify", data=data)

    async def verify(ctx: StepContext) -> Outcome:
        # Read the block back; a fresh write may not be visible yet, so look again with back-off.
        for attempt in range(3):
            use = ToolUseBlock(id=ctx.new_id("verify"), name="firewall_rules", input={"ip": alert.dst_ip})
            result, _ = await call_tool(ctx, tools, ["firewall_rules"], use)
            if not result.is_error and json.loads(result.content).get("blocked") is True:
                return Outcome(next="close", confidence=1.0, data={"verified": True, "reads": attempt + 1})
            await asyncio.sleep(30.0 * 2**attempt)
        return Outcome(next="rollback", confidence=1.0, data={"verified": False, "reads": 3})

    async def rollback(ctx: StepContext) -> Outcome:
        use = ToolUseBlock(id=ctx.new_id("rollback"), name="unblock_ip", input={"ip": alert.dst_ip})
        await call_tool(ctx, tools, ["unblock_ip"], use)
        return Outcome(next="escalate", data={"rolled_back": True})

    async def escalate(ctx: StepContext) -> Outcome:
        proposal = "malicious" if ctx.data.get("contained") or alert.severity != "medium" else "benign"
        try:
            async with asyncio.timeout(_REVIEW_TIMEOUT):
                decision = await human.review(
                    Review(proposal=proposal, options=VERDICTS, right=case.truth.verdict)
                )
        except TimeoutError:
            # Fail-safe: nobody answered, so take no action and leave the case open to people.
            return Outcome(next="escalated", data={"human": "no answer", "fail_safe": "no action"})
        ctx.charge(
            decision.cost,
            source=f"human:{decision.approver}",
            detail=f"{decision.review_minutes:.1f} minutes of review",
        )
        return Outcome(
            next="escalated",
            confidence=1.0,
            data={
                "human": "approve" if decision.choice == proposal else "reject",
                "human_verdict": decision.choice,
                "human_correct": decision.correct,
                "review_minutes": decision.review_minutes,
            },
        )

    return Workflow(
        name=f"investigation[{case.template}]",
        states={
            "triage": triage,
            "investigate": investigate,
            "contain": contain,
            "verify": verify,
            "rollback": rollback,
            "escalate": escalate,
        },
        transitions={
            "triage": ["investigate", "close"],
            "investigate": ["contain", "escalate", "close"],
            "contain": ["verify"],
            "verify": ["close", "rollback"],
            "rollback": ["escalate"],
            "escalate": ["escalated"],
        },
        initial="triage",
        terminal=["close", "escalated"],
        timeouts={"triage": 900.0, "investigate": 1800.0, "contain": 300.0, "verify": 600.0},
        on_refused=Policy(retries=1, route_to="escalate"),
        on_error=Policy(retries=1, route_to="escalate"),
        on_budget="escalated",
        escalate_to="escalate",
    )


def run_investigation(
    *,
    seed: int = 0,
    tier: str | TierProfile = "small",
    triage_tier: str | TierProfile | None = None,
    plan: FaultPlan | None = None,
    case: InvestigationCase | CaseTemplate | None = None,
    approver: HumanProfile | None = None,
    via_api: bool = False,
    ladder: Sequence[tuple[str | TierProfile, float]] | None = None,
    sim: Sim | None = None,
    trace: Trace | None = None,
) -> Investigation:
    """Run the investigation once in simulation.

    Args:
        seed: the simulation's seed (and the case's, when ``case`` is not given).
        tier: the tier that investigates (a name in ``DEFAULT_TIERS``, or a profile).
        triage_tier: the tier that triages; the investigating tier by default.
        plan: the faults to inject; none by default.
        case: a case, a case template, or None for one drawn from the seed.
        approver: the human; the on-call analyst by default.
        via_api: route every model through the real SDK and the fake Messages API
            (tiers with rate-limit or overload faults always are).
        ladder: (tier, threshold) rungs the investigate decision climbs, cheapest first,
            before a human decides; instead of ``tier``. Triage plays the first rung.
        sim, trace: to run several investigations in one simulation or trace.

    Raises:
        InvalidArgument: for a seed that is not an int >= 0, an unknown case template
            or tier, an invalid ladder, or a fault that can never fire in this run
            (its tool, tier or human is not in it).
    """
    sim = Sim(seed=seed) if sim is None else sim
    if not isinstance(case, InvestigationCase):
        if case is not None:
            check_choice("case", case, CASE_TEMPLATES, alternative="an InvestigationCase")
        case = make_case(seed, case)
    plan = plan or FaultPlan()
    injector = FaultInjector(plan, seed=sim.seed)
    investigating = _profile(tier, name="tier") if not ladder else _profile(ladder[0][0], name="ladder[0]")
    profiles = {
        "triage": investigating if triage_tier is None else _profile(triage_tier, name="triage_tier"),
        "investigate": investigating,
    }
    climbing = [_profile(t, name=f"ladder[{i}]") for i, (t, _) in enumerate(ladder or ())]
    registry = soc_tools(case.world, rng=sim.rng)
    injector.check_targets(
        tools=registry,
        tiers=[profile.name for profile in (*profiles.values(), *climbing)],
        humans=[(approver or DEFAULT_APPROVERS["oncall"]).name],
    )
    findings: dict[str, float] = {}  # the evidence the run has seen, shared by its models
    playbook = AnalystPlaybook(alert=case.alert, truth=case.truth)

    def model_for(state: str, profile: TierProfile) -> Model:
        model: Model = SimulatedModel(
            profile,
            playbook=playbook,
            difficulty=case.truth.difficulty,
            evidence=case.truth.evidence,
            rng=sim.rng(f"model/{state}/{profile.name}"),
            findings=findings,
        )
        model = injector.model(model, tier=profile.name)
        if via_api or profile.name in injector.api_tiers():
            from windtunnel.simulators.fake_api import FakeMessagesAPI

            api = FakeMessagesAPI(model, plan=injector.api_plan(profile.name))
            model = api.model(profile.model, rng=sim.rng(f"fake_api/{state}/{profile.name}"))
        return model

    models = {state: model_for(state, profile) for state, profile in profiles.items()}
    climb = None
    if ladder:
        rungs = [
            Rung(tier=p.name, model=model_for("investigate", p), threshold=threshold)
            for p, (_, threshold) in zip(climbing, ladder, strict=True)
        ]
        climb = Ladder([*rungs, Rung(tier=HUMAN_TIER)], human_state="escalate")
    tools = injector.tools(registry, world=case.world)
    human = injector.human(SimulatedHuman(approver or DEFAULT_APPROVERS["oncall"], rng=sim.rng("humans")))
    trace = Trace() if trace is None else trace
    tiers = {state: profile.name for state, profile in profiles.items()}
    workflow = investigation_workflow(
        case, models=models, tiers=tiers, tools=tools, human=human, ladder=climb
    )
    if injector.observes:
        trace.attach(injector)  # it watches the events: crashes, `after` triggers
    try:
        result = sim.run(run(workflow, case.alert, env=sim, trace=trace, budget=INVESTIGATION_BUDGET))
    finally:
        if injector.observes:
            trace.detach(injector)
    name = "ladder" if ladder else profiles["investigate"].name
    return Investigation(result=result, case=case, injector=injector, tier=name)


def _profile(tier: str | TierProfile, *, name: str) -> TierProfile:
    """The profile ``tier`` names; ``name`` is the argument it came in, for the error."""
    if isinstance(tier, TierProfile):
        return tier
    check_choice(name, tier, sorted(DEFAULT_TIERS), alternative="a TierProfile")
    return DEFAULT_TIERS[tier]
