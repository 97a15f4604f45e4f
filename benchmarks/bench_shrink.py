"""Shrinking a failing trial: the fuzzer's delta debugging and rewrites against Hypothesis's shrinker.

1. Failing trials: fuzz campaigns (``config="large"``, campaign seeds 1..``--seeds``,
   ``--trials`` trials each) with each planted-bug workflow of
   ``tests/evals/planted_bugs.py`` on the SOC scenarios that meet no fault of their
   own. The campaign runs as usual; its shrink step is wrapped by a hook that
   records each new failure's *original* plan (scenario, simulation seed, generated
   faults, outcome, signature) before the campaign shrinks and confirms it (what it
   learns then decides which later failures are new). Those with 2 or more
   generated faults are kept (one fault leaves nothing to compare), each trial and
   signature once over the bugs (a trial can fail the same way under several).
2. Each is shrunk three ways, with the same oracle — "the candidate still fails with the
   same signature" — and the same budget of ``--max-runs`` condition calls:

   - ``library``: :func:`windtunnel.evals.fuzz.shrink.shrink` (delta debugging, then
     trigger and parameter rewrites, then delta debugging again);
   - ``hypothesis``: :func:`hypothesis.find` over a strategy that encodes a plan as
     draws, simplest first: per original fault a boolean "kept" (False drops it and
     its other draws); an index into its trigger rewrites ("the n-th call" for each
     call of its target in the original run, ``times=n``), whose last value is its own
     trigger, then a boolean per condition of that trigger (kept or dropped); each
     numeric parameter as ``floats(low, original)`` / ``integers(low, original)``,
     after a "present" boolean when it may be absent. The original plan's choice
     sequence is saved in an in-memory example database as a failure not yet shrunk
     (the secondary corpus) and only the ``reuse`` and ``shrink`` phases run:
     Hypothesis replays the known failure and shrinks it, as it does one it saved —
     no budget spent generating. Its randomness is fixed (the seed ``pytest
     --hypothesis-seed=0`` would force).
   - ``hypothesis_fired``: the same, with the library's trigger rewrites only ("the
     n-th call" for the first three calls the fault fired on): the same vocabulary,
     Hypothesis's search. (Either encoding is fixed from the original run, while the
     library recomputes the calls a fault fired on after each step.)

   Each shrink has a cache of its own keyed by the plan, seeded with the original's outcome:
   ``runs`` counts scenario runs (distinct candidates), ``calls`` what the method
   asked for.
3. Per method: the final fault count, the share of trials reaching the fewest faults
   any found, the share reaching the simplest plan (fewer faults, then the
   library's own measure: trigger conditions, n, parameter sizes), runs, wall time,
   how many final faults had their trigger rewritten to "the n-th call" or a
   parameter lowered or dropped; each final plan re-run and checked to fail with
   the original signature.

Not a test: it asserts nothing about the results. Last line: one JSON object.

    python benchmarks/bench_shrink.py [--seeds N] [--trials N] [--max-runs N] [--show]
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis.core
from hypothesis import HealthCheck, Phase, find, settings
from hypothesis import strategies as st
from hypothesis.database import InMemoryExampleDatabase, choices_to_bytes

# The planted-bug workflows are imported by name from the tests: run from anywhere.
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.evals.planted_bugs import plain_paths  # noqa: E402
from windtunnel.evals.fuzz import Failure, Outcome, Subject  # noqa: E402
from windtunnel.evals.fuzz.campaign import _Campaign  # noqa: E402
from windtunnel.evals.fuzz.report import Finding  # noqa: E402
from windtunnel.evals.fuzz.shrink import _cost, shrink  # noqa: E402
from windtunnel.scenarios import LoadedScenario, load_suite  # noqa: E402
from windtunnel.scenarios.fault_space import PARAMETERS  # noqa: E402
from windtunnel.simulators import Fault, Trigger  # noqa: E402

BUGS = ("unverified_write", "never_escalates", "timeout_approves", "retry_without_key")
METHODS = ("library", "hypothesis", "hypothesis_fired")
Signature = tuple[str, str, str]
Plan = list[Fault]


@dataclass(slots=True, kw_only=True)
class Case:
    """One failing trial as the campaign found it, before shrinking."""

    bug: str
    campaign: int
    trial: int
    subject: Subject
    loaded: LoadedScenario
    seed: int
    faults: Plan
    outcome: Outcome
    signature: Signature


@dataclass(slots=True, kw_only=True)
class Result:
    """One method's shrink of one case."""

    faults: Plan
    calls: int
    runs: int
    seconds: float
    still_fails: bool = False


@dataclass(slots=True)
class Oracle:
    """The shrinks' condition, "still fails the same way", counting calls and (cached) runs."""

    case: Case
    budget: int
    calls: int = 0
    runs: int = 0
    cache: dict[str, Outcome | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.cache[key(self.case.faults)] = self.case.outcome

    def __call__(self, candidate: Sequence[Fault]) -> Outcome | None:
        if self.calls >= self.budget:
            return None  # spent: the smallest failing plan found so far stands
        self.calls += 1
        name = key(candidate)
        if name not in self.cache:
            self.runs += 1
            case = self.case
            found = case.subject.run(case.loaded, case.seed, candidate)
            self.cache[name] = found if found.fails(case.signature) else None
        return self.cache[name]


def key(plan: Sequence[Fault]) -> str:
    return json.dumps([fault.model_dump(mode="json", exclude_none=True) for fault in plan], sort_keys=True)


# -- 1. the failing trials -----------------------------------------------------------------------


def collect(seeds: int, trials: int) -> tuple[list[Case], int]:
    """The failures each campaign shrinks, as first found (those of 2+ faults, each trial
    and signature once over the bugs), and how many had one fault."""
    suite = load_suite(plain_paths())
    cases: list[Case] = []
    seen: set[tuple[str, int, str, Signature]] = set()
    single = 0
    for bug in BUGS:
        subject = Subject(config="large", workflow=f"tests.evals.planted_bugs:{bug}")
        for seed in range(1, seeds + 1):
            campaign = _Campaign(subject, list(suite), seed=seed, folder=None, kinds=None, max_faults=4)

            real = campaign._shrink

            def capture(
                loaded: LoadedScenario,
                sim_seed: int,
                faults: list[Fault],
                outcome: Outcome,
                failure: Failure,
                number: int,
                *,
                bug: str = bug,
                seed: int = seed,
                subject: Subject = subject,
                real: Callable[..., Finding] = real,
            ) -> Finding:
                nonlocal single
                name = (loaded.scenario.id, sim_seed, key(faults), failure.signature)
                if len(faults) < 2:
                    single += 1
                elif name not in seen:  # the same trial failing the same way under another bug
                    seen.add(name)
                    cases.append(
                        Case(
                            bug=bug,
                            campaign=seed,
                            trial=number,
                            subject=subject,
                            loaded=loaded,
                            seed=sim_seed,
                            faults=list(faults),
                            outcome=outcome,
                            signature=failure.signature,
                        )
                    )
                # The campaign's own shrink and confirmation: what it learns from them
                # (other failures the shrunk plan shows, noise) decides what is new next.
                return real(loaded, sim_seed, faults, outcome, failure, number)

            campaign._shrink = capture  # type: ignore[method-assign]
            campaign.survey()
            for number in range(trials):
                campaign.trial(number)
    return cases, single


# -- 2a. the library's shrinker ------------------------------------------------------------------


def by_library(case: Case, budget: int) -> Result:
    oracle = Oracle(case, budget)
    started = time.perf_counter()
    shrunk = shrink(case.faults, case.outcome, oracle, max_runs=budget)
    return Result(
        faults=shrunk.faults, calls=oracle.calls, runs=oracle.runs, seconds=time.perf_counter() - started
    )


# -- 2b. Hypothesis's shrinker -------------------------------------------------------------------


CONDITIONS = ("probability", "window", "after", "times")
"""The trigger conditions a shrink may drop (``nth`` is the simplest: it stays)."""


def rewrites_of(fault: Fault, outcome: Outcome, *, every_call: bool) -> list[Trigger]:
    """The triggers simpler than the fault's own (by the library's measure), simplest
    first: "the n-th call" for each call of its target in the original run
    (``every_call``) or for the first three it fired on (the library's rewrites), "the
    first n calls" when it fired on just those."""
    fired = tuple(outcome.fired_on.get(fault.id, ()))
    calls = max(outcome.opportunities.get(fault.id, 0), *fired, 0)
    nths = range(1, calls + 1) if every_call else sorted(fired[:3])
    options = [Trigger(nth=n) for n in nths]
    if len(fired) > 1 and fired == tuple(range(1, len(fired) + 1)):
        options.append(Trigger(times=len(fired)))
    own = _cost(fault)
    return [t for t in options if t != fault.trigger and _cost(fault.model_copy(update={"trigger": t})) < own]


@dataclass(frozen=True, slots=True)
class Knob:
    """One numeric parameter of a fault as Hypothesis draws it: from ``low`` up to its value."""

    name: str
    low: float
    value: float
    integer: bool
    absent: bool
    """It may be left out (its default is None): a "present" boolean is drawn first."""


def knobs(fault: Fault) -> list[Knob]:
    found = []
    for name, info in type(fault).model_fields.items():
        value, param = getattr(fault, name), PARAMETERS.get(name)
        if param is None or value is None or param.choices:
            continue
        absent = not info.is_required() and info.default is None
        found.append(Knob(name, param.low, value, param.integer, absent))
    return found


def encode(case: Case, *, every_call: bool) -> tuple[st.SearchStrategy[Plan], list[Any]]:
    """A strategy over the plans simpler than the case's, and the original's choice sequence.

    Per fault: kept or not; a trigger rewrite or its own trigger, then each of its own
    conditions kept or not (so that "40% of at most 3 calls" can become "always"); each
    numeric parameter from its range's bottom up to its value, after "present or not"
    when it may be absent. Every first option is the simplest: Hypothesis shrinks
    toward it.
    """
    parts = []
    choices: list[Any] = []
    for fault in case.faults:
        rewrites = rewrites_of(fault, case.outcome, every_call=every_call)
        conditions = [name for name in CONDITIONS if getattr(fault.trigger, name) is not None]
        params = knobs(fault)
        parts.append((fault, rewrites, conditions, params))
        choices += [True, *([len(rewrites)] if rewrites else []), *(True for _ in conditions)]
        for knob in params:
            if knob.absent:
                choices.append(True)
            if knob.value > knob.low:
                choices.append(int(knob.value) if knob.integer else float(knob.value))

    @st.composite
    def plans(draw: st.DrawFn) -> Plan:
        plan = []
        for fault, rewrites, conditions, params in parts:
            if not draw(st.booleans()):
                continue
            index = draw(st.integers(0, len(rewrites))) if rewrites else 0
            if index < len(rewrites):
                trigger = rewrites[index]
            else:
                dropped = {name: None for name in conditions if not draw(st.booleans())}
                trigger = Trigger.model_validate({**fault.trigger.model_dump(), **dropped})
            update: dict[str, Any] = {"trigger": trigger}
            for knob in params:
                if knob.absent and not draw(st.booleans()):
                    update[knob.name] = None
                    continue
                if knob.value <= knob.low:
                    continue
                if knob.integer:
                    update[knob.name] = draw(st.integers(int(knob.low), int(knob.value)))
                else:
                    drawn = draw(st.floats(knob.low, knob.value, allow_nan=False, allow_infinity=False))
                    update[knob.name] = min(max(round(drawn, 2), knob.low), knob.value)
            plan.append(type(fault).model_validate({**fault.model_dump(), **update}))
        return plan

    return plans(), choices


@contextlib.contextmanager
def forced_seed(seed: int) -> Iterator[None]:
    """Hypothesis's randomness fixed, as ``pytest --hypothesis-seed`` fixes it (``find(random=)``
    would turn the example database off)."""
    before = hypothesis.core.global_force_seed
    hypothesis.core.global_force_seed = seed  # type: ignore[assignment]
    try:
        yield
    finally:
        hypothesis.core.global_force_seed = before


def by_hypothesis(case: Case, budget: int, *, every_call: bool = True) -> Result:
    oracle = Oracle(case, budget)
    strategy, choices = encode(case, every_call=every_call)
    database = InMemoryExampleDatabase()
    name = f"bench-shrink/{case.bug}/{case.campaign}/{case.trial}".encode()
    # The secondary corpus: failures not yet shrunk (Hypothesis takes a primary entry as
    # shrunk already and only replays it).
    database.save(name + b".secondary", choices_to_bytes(choices))
    first: list[str] = []

    def fails(plan: Plan) -> bool:
        if not first:
            first.append(key(plan))
        return oracle(plan) is not None

    options = settings(
        database=database,
        phases=[Phase.reuse, Phase.shrink],
        max_examples=budget,
        deadline=None,
        suppress_health_check=list(HealthCheck),
    )
    started = time.perf_counter()
    with forced_seed(0):
        plan = find(strategy, fails, settings=options, database_key=name)
    seconds = time.perf_counter() - started
    assert first[0] == key(case.faults), "Hypothesis did not start from the original plan"
    return Result(faults=plan, calls=oracle.calls, runs=oracle.runs, seconds=seconds)


# -- 3. the comparison ---------------------------------------------------------------------------


def simplicity(plan: Sequence[Fault]) -> tuple[int, int, int, float]:
    """Fewer faults, then the library's measure summed: trigger conditions, n, parameter sizes."""
    costs = [_cost(fault) for fault in plan]
    return (
        len(plan),
        sum(c[0] for c in costs),
        sum(int(c[1]) for c in costs),
        round(sum(c[2] for c in costs), 3),
    )


def rewrites(case: Case, plan: Sequence[Fault]) -> tuple[int, int]:
    """Final faults whose trigger became "the n-th call", and parameters lowered or dropped."""
    original = {fault.id: fault for fault in case.faults}
    nth = lowered = 0
    for fault in plan:
        before = original[fault.id]
        nth_only = fault.trigger.nth is not None and fault.trigger == Trigger(nth=fault.trigger.nth)
        if nth_only and fault.trigger != before.trigger:
            nth += 1
        for knob in knobs(before):
            value = getattr(fault, knob.name)
            lowered += value is None or value < knob.value
    return nth, lowered


def summarize(cases: list[Case], results: dict[str, list[Result]]) -> dict[str, dict[str, Any]]:
    fewest = [min(len(results[m][i].faults) for m in METHODS) for i in range(len(cases))]
    simplest = [min(simplicity(results[m][i].faults) for m in METHODS) for i in range(len(cases))]
    table: dict[str, dict[str, Any]] = {}
    for method in METHODS:
        done = results[method]
        counts = [len(r.faults) for r in done]
        changes = [rewrites(case, r.faults) for case, r in zip(cases, done, strict=True)]
        table[method] = {
            "mean_faults": round(statistics.mean(counts), 2),
            "median_faults": statistics.median(counts),
            "reach_fewest": round(sum(c == f for c, f in zip(counts, fewest, strict=True)) / len(cases), 3),
            "reach_simplest": round(
                sum(simplicity(r.faults) == s for r, s in zip(done, simplest, strict=True)) / len(cases), 3
            ),
            "mean_runs": round(statistics.mean(r.runs for r in done), 1),
            "median_runs": statistics.median(r.runs for r in done),
            "mean_calls": round(statistics.mean(r.calls for r in done), 1),
            "wall_s": round(sum(r.seconds for r in done), 2),
            "nth_rewrites": sum(n for n, _ in changes),
            "trials_with_nth": sum(1 for n, _ in changes if n),
            "params_lowered": sum(p for _, p in changes),
            "trials_with_lowered": sum(1 for _, p in changes if p),
            "still_fail": sum(r.still_fails for r in done),
        }
    return table


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="campaign seeds per planted bug")
    parser.add_argument("--trials", type=int, default=250, help="trials per campaign")
    parser.add_argument("--max-runs", type=int, default=300, help="condition calls per shrink")
    parser.add_argument("--show", action="store_true", help="print each original and shrunk plan")
    args = parser.parse_args()

    started = time.perf_counter()
    cases, single = collect(args.seeds, args.trials)
    sizes = [len(case.faults) for case in cases]
    print(
        f"collected {len(cases)} failing trials with 2+ faults "
        f"(sizes {dict(sorted(Counter(sizes).items()))}), {single} more with one, "
        f"in {time.perf_counter() - started:.1f} s"
    )
    methods: dict[str, Callable[[Case, int], Result]] = {
        "library": by_library,
        "hypothesis": by_hypothesis,
        "hypothesis_fired": functools.partial(by_hypothesis, every_call=False),
    }
    results: dict[str, list[Result]] = {method: [] for method in METHODS}
    for case in cases:
        row = []
        for method in METHODS:
            result = methods[method](case, args.max_runs)
            check = case.subject.run(case.loaded, case.seed, result.faults)
            result.still_fails = check.fails(case.signature)
            results[method].append(result)
            row.append(f"{method} {len(result.faults)} faults/{result.runs:>3} runs")
        print(
            f"{case.bug:<18} c{case.campaign} t{case.trial:<3} {case.loaded.scenario.id:<18} "
            f"{len(case.faults)} faults {'/'.join(case.signature):<60} -> " + ", ".join(row)
        )
        if args.show:
            print(f"    original   {key(case.faults)}")
            for method in METHODS:
                print(f"    {method:<10} {key(results[method][-1].faults)}")
    table = summarize(cases, results)
    print()
    columns = list(table["library"])
    print(f"{'':<12}" + "".join(f"{c:>20}" for c in columns))
    for method in METHODS:
        print(f"{method:<12}" + "".join(f"{table[method][c]!s:>20}" for c in columns))
    versus: dict[str, int] = {}
    library = results["library"]
    for method in METHODS[1:]:
        pairs = list(zip(library, results[method], strict=True))
        versus[f"library_simpler_than_{method}"] = sum(
            simplicity(a.faults) < simplicity(b.faults) for a, b in pairs
        )
        versus[f"{method}_simpler_than_library"] = sum(
            simplicity(a.faults) > simplicity(b.faults) for a, b in pairs
        )
        print(
            f"library simpler on {versus[f'library_simpler_than_{method}']}, {method} simpler on "
            f"{versus[f'{method}_simpler_than_library']} of {len(cases)} trials"
        )
    print(
        json.dumps(
            {
                "trials": len(cases),
                "one_fault_trials": single,
                **versus,
                **{f"{m}_{k}": v for m in METHODS for k, v in table[m].items()},
                "seconds": round(time.perf_counter() - started, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
