"""Running one scenario in simulation: build its case for a seed, hand the domain's
workflow factory the tools, agents and human (faults included), run, and grade.

The agents of decision states are played as asked: by one simulated tier, or by a
ladder of tiers (``ladder:small@0.85,mid@0.6,large``) that climbs to a human; or by
real models, named by their id (``claude-haiku-4-5``, a ladder of them), which a
``real=`` factory supplies (:mod:`windtunnel.evals.live`: live, recorded or replayed).

A scenario with a ``crash`` fault runs durably (a SQLite store in memory): the run
is stopped dead at the planned transition and resumed from its last checkpoint, as
a supervisor restarting a killed process would, and graded on the whole of it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Collection, Iterator
from dataclasses import dataclass
from typing import Any, TypeAlias

from windtunnel.orchestrator import (
    DEFAULT_PRICES,
    HUMAN_TIER,
    Budget,
    Handler,
    InvalidArgument,
    Ladder,
    LadderAgent,
    LLMAgent,
    Model,
    Rung,
    RunResult,
    SimulationError,
    SqliteStore,
    StoreError,
    Trace,
    UnknownPriceError,
    Workflow,
    resume,
    run,
)
from windtunnel.orchestrator.validation import check_choice
from windtunnel.simulators import (
    DEFAULT_APPROVERS,
    DEFAULT_TIERS,
    FaultInjector,
    Sim,
    SimulatedCrash,
    SimulatedHuman,
    SimulatedModel,
    TierProfile,
)

from .domain import Case, Kit, load_factory
from .grading import FiredFault, Verdict, grade
from .loader import LoadedScenario, resolve
from .schema import Scenario

__all__ = ["Play", "RealModels", "ScenarioRun", "parse_play", "run_scenario"]

RealModels: TypeAlias = Callable[[str, str], Model]
"""``(state, model id) -> Model``: who answers for a real model in a decision state."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Play:
    """How decision states are played: one tier, or a ladder of (tier, threshold) rungs;
    or the same with real models (``models``) instead of simulated tiers."""

    name: str
    rungs: tuple[tuple[TierProfile, float], ...] = ()
    models: tuple[tuple[str, float], ...] = ()
    """Real model ids and their thresholds, when the play names real models (then ``rungs`` is empty)."""
    ladder: bool = False
    """A ladder climbs to a human past its last rung, even with one rung."""


def parse_play(spec: str | TierProfile | Play) -> Play:
    """``"small"``, a :class:`TierProfile`, ``"ladder:small@0.85,mid@0.6,large"``, or the same
    with real model ids (``"claude-haiku-4-5"``, ``"ladder:claude-haiku-4-5@0.8,claude-sonnet-4-5"``):
    any id the price table knows; a :class:`Play` as it is.

    Raises:
        InvalidArgument: an unknown tier or model, a malformed ladder, or one that mixes
            simulated tiers and real models.
    """
    if isinstance(spec, Play):
        return spec
    if isinstance(spec, TierProfile):
        return Play(name=spec.name, rungs=((spec, 0.0),))
    if not spec.startswith("ladder:"):
        if _is_model(spec, "tier", ladder=False):
            return Play(name=spec, models=((spec, 0.0),))
        return Play(name=spec, rungs=((DEFAULT_TIERS[spec], 0.0),))
    rungs, models = [], []
    for part in spec.removeprefix("ladder:").split(","):
        tier, _, threshold = part.strip().partition("@")
        try:
            value = float(threshold) if threshold else 0.0
        except ValueError:
            raise InvalidArgument(f"ladder rung {part!r}: threshold={threshold!r} must be a number") from None
        if _is_model(tier, "ladder tier", ladder=True):
            models.append((tier, value))
        else:
            rungs.append((DEFAULT_TIERS[tier], value))
    if rungs and models:
        raise InvalidArgument(
            f"{spec!r} mixes simulated tiers and real models; a ladder plays one kind or the other"
        )
    if not rungs and not models:
        raise InvalidArgument(f"{spec!r} names no rung; e.g. ladder:small@0.85,mid@0.6,large")
    return Play(name=spec, rungs=tuple(rungs), models=tuple(models), ladder=True)


def _is_model(name: str, what: str, *, ladder: bool) -> bool:
    """False for a simulated tier, True for a model id the price table knows; else raise."""
    if name in DEFAULT_TIERS:
        return False
    try:
        DEFAULT_PRICES.price(name)
    except UnknownPriceError:
        also = "a model id with a known price (claude-haiku-4-5)"
        if not ladder:
            also += ", or ladder:TIER@THRESHOLD,..."
        check_choice(what, name, sorted(DEFAULT_TIERS), alternative=also)
    return True


@dataclass(slots=True, kw_only=True)
class ScenarioRun:
    """One scenario run: its case, its result, its verdict and the faults it met."""

    scenario: Scenario
    case: Case
    result: RunResult
    verdict: Verdict
    injector: FaultInjector
    seed: int
    play: str
    workflow: Workflow | None = None
    """The workflow the run ran (the domain's, the scenario's or yours)."""

    @property
    def trace(self) -> Trace:
        """The run's trace."""
        return self.result.trace


def run_scenario(
    scenario: LoadedScenario,
    *,
    seed: int = 0,
    play: str | TierProfile | Play = "small",
    workflow: Callable[[Kit], Workflow] | str | None = None,
    models: Callable[[str, Any], Model] | None = None,
    via_api: bool = False,
    trace: Trace | None = None,
    real: RealModels | None = None,
) -> ScenarioRun:
    """Run ``scenario`` once, for ``seed``, with decision states played as ``play`` says.

    Args:
        scenario: a scenario as loaded (see :func:`load_file`).
        seed: the simulation's seed: the case's variable details, the tiers' draws,
            the faults' decisions.
        play: a tier name or profile, or a ladder (``"ladder:small@0.85,mid@0.6,large"``), or a
            :class:`Play` built from profiles (say, a ladder of two custom ones).
        workflow: the workflow factory (or ``"module:factory"``) instead of the
            scenario's or the domain's.
        models: your own models instead of simulated tiers: called with each decision
            state and the case's playbook, it returns the model that plays the state.
        via_api: route every model call through the real SDK and the fake Messages API (by
            default, only the calls an API fault fails take the SDK).
        trace: where events go; a new trace by default.
        real: when ``play`` names real models, called with (state, model id) for the
            model that answers as that model in that state (see :mod:`windtunnel.evals.live`).
    """
    spec, domain = scenario.scenario, scenario.domain
    how = parse_play(play)
    if how.models and real is None and models is None:
        raise InvalidArgument(
            f"play={how.name!r} names real models: pass real= (windtunnel.evals.live runs them live, "
            "or replays a recording)"
        )
    sim = Sim(seed=seed)
    case = resolve(spec, domain, seed=seed)
    injector = FaultInjector(spec.plan, seed=seed)
    tools = injector.tools(domain.tools(case.world, sim), world=case.world)
    playbook = domain.playbook(case)
    findings: dict[str, float] = {}  # the evidence the run has seen, shared by its models

    def model_for(state: str, profile: TierProfile) -> Model:
        model: Model = SimulatedModel(
            profile,
            playbook=playbook,
            difficulty=float(case.truth.difficulty),
            evidence=case.truth.evidence,
            rng=sim.rng(f"model/{state}/{profile.name}"),
            findings=findings,
        )
        model = injector.model(model, tier=profile.name)
        if via_api or profile.name in injector.api_tiers():
            from windtunnel.simulators.fake_api import FakeMessagesAPI

            api = FakeMessagesAPI(model, plan=injector.api_plan(profile.name))
            rng = sim.rng(f"fake_api/{state}/{profile.name}")
            # Only the calls an API fault fails need the SDK's path (its retries, its back-off);
            # the others are answered as it would answer them, without its ~0.5 ms a call.
            model = api.model(profile.model, rng=rng) if via_api else api.direct_model(profile.model, rng=rng)
        return model

    def agent(state: str, *, system: str, allow: Collection[str] | None = None, **settings: Any) -> Handler:
        if models is not None:
            return LLMAgent(
                model=models(state, playbook), system=system, tools=tools, allow=allow, **settings
            )
        played: list[tuple[str, Model, float]]  # (tier, model, threshold) per rung
        if how.models:
            assert real is not None  # checked above
            played = [(model_id, real(state, model_id), t) for model_id, t in how.models]
        else:
            played = [(p.name, model_for(state, p), t) for p, t in how.rungs]
        if not how.ladder:
            tier, model, _ = played[0]
            return LLMAgent(model=model, system=system, tools=tools, allow=allow, tier=tier, **settings)
        rungs = [Rung(tier=tier, model=model, threshold=t) for tier, model, t in played]
        return LadderAgent(
            Ladder([*rungs, Rung(tier=HUMAN_TIER)]), system=system, tools=tools, allow=allow, **settings
        )

    human = injector.human(SimulatedHuman(DEFAULT_APPROVERS["oncall"], rng=sim.rng("humans")))
    kit = Kit(case=case, tools=tools, agent=agent, human=human, sim=sim)
    factory = _factory(workflow or spec.workflow) or domain.workflow
    try:
        built = factory(kit)
    except Exception as exc:  # the user's factory: a bad one is bad input, not a crash
        name = getattr(factory, "__qualname__", repr(factory))
        raise InvalidArgument(f"the workflow factory {name} raised {type(exc).__name__}: {exc}") from None
    if not isinstance(built, Workflow):
        raise InvalidArgument(f"the workflow factory returned {type(built).__name__}, not a Workflow")
    trace = Trace() if trace is None else trace
    crashes = any(fault.kind == "crash" for fault in spec.faults)
    budget = spec.budget or domain.budget
    if injector.observes:
        trace.attach(injector)  # it watches the events: crashes, `after` triggers
    try:
        with _memory_store() if crashes else contextlib.nullcontext() as store:
            result = _run_through_crashes(sim, built, case, trace, budget, store, injector)
    finally:
        if injector.observes:
            trace.detach(injector)
    counts = injector.counts()
    fired = [
        FiredFault(id=fault.id, kind=fault.kind, target=fault.target)
        for fault in spec.faults
        if counts[fault.id].fired
    ]
    verdict = grade(domain, case, result, fired=fired)
    return ScenarioRun(
        scenario=spec,
        case=case,
        result=result,
        verdict=verdict,
        injector=injector,
        seed=seed,
        play=how.name,
        workflow=built,
    )


def _run_through_crashes(
    sim: Sim,
    workflow: Workflow,
    case: Case,
    trace: Trace,
    budget: Budget,
    store: SqliteStore | None,
    injector: FaultInjector,
) -> RunResult:
    """Run ``workflow``; after each simulated crash, resume it from its checkpoint (a new
    trace holding the committed events: what the dead life had not saved died with it)."""
    run_id = sim.new_id("run")
    given = case.input.model_dump(mode="json") if store is not None else case.input
    try:
        return sim.run(run(workflow, given, env=sim, trace=trace, budget=budget, store=store, run_id=run_id))
    except SimulatedCrash:
        if store is None:
            raise
    for _ in range(_MAX_RESTARTS):
        resumed = Trace.from_events(store.events(run_id))
        if injector.observes:
            resumed.attach(injector)
        try:
            return sim.run(resume(workflow, run_id, env=sim, store=store, trace=resumed, case=case.input))
        except SimulatedCrash:
            continue
    raise SimulationError(f"run {run_id!r} crashed {_MAX_RESTARTS} times after it was resumed; giving up")


_MAX_RESTARTS = 10

# Stores in memory, emptied, for the next run with crashes on this thread (a connection
# serves one thread): a new one compiles every statement again, about 1 ms a run.
_STORES = threading.local()


@contextlib.contextmanager
def _memory_store() -> Iterator[SqliteStore]:
    """An empty store in memory for one run; emptied and kept for the next one after it."""
    free: list[SqliteStore] = _STORES.__dict__.setdefault("free", [])
    store = free.pop() if free else SqliteStore(":memory:")
    try:
        yield store
    finally:
        try:
            store.reset()
        except StoreError:  # not to be reused, then; the run's own error matters more
            store.close()
        else:
            free.append(store)


def _factory(target: Callable[[Kit], Workflow] | str | None) -> Callable[[Kit], Workflow] | None:
    """The workflow factory ``target`` names (``"module:factory"``), or None."""
    if target is None or callable(target):
        return target
    return load_factory(target)
