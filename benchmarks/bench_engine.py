"""Microseconds per transition: windtunnel's engine vs a plain dict loop vs LangGraph.

The same 4-state linear workflow (triage -> investigate -> decide -> execute, then
done) with trivial handlers, run N times by each. windtunnel runs with its default
in-memory trace on, inside a simulation; LangGraph (the ``bench`` extra) uses its
compiled StateGraph's ``invoke``. Prints one line per engine and, last, one JSON
object. Not a test: it asserts nothing about timings.

    python benchmarks/bench_engine.py [N]
"""

from __future__ import annotations

import gc
import itertools
import json
import statistics
import sys
import time
from collections.abc import Callable
from typing import Any, TypedDict

from windtunnel import Outcome, Sim, StepContext, Workflow, run

STATES = ("triage", "investigate", "decide", "execute")
NEXT = {"triage": "investigate", "investigate": "decide", "decide": "execute", "execute": "done"}
TRANSITIONS = len(STATES)  # per run, the last one into the terminal state


def windtunnel_workflow(*, timeouts: bool = False) -> Workflow:
    def handler_for(target: str) -> Callable[[StepContext], Any]:
        async def handler(ctx: StepContext) -> Outcome:
            return Outcome(next=target)

        return handler

    return Workflow(
        name="bench",
        states={state: handler_for(NEXT[state]) for state in STATES},
        transitions={state: [NEXT[state]] for state in STATES},
        initial="triage",
        terminal=["done"],
        timeouts=dict.fromkeys(STATES, 60.0) if timeouts else None,
    )


def time_windtunnel(n: int, *, timeouts: bool) -> float:
    wf = windtunnel_workflow(timeouts=timeouts)
    sim = Sim(seed=0)

    async def many() -> Any:
        result = None
        for _ in range(n):
            result = await run(wf, env=sim)  # a fresh in-memory trace per run
        return result

    started = time.perf_counter()
    last = sim.run(many())
    elapsed = time.perf_counter() - started
    if last.status != "completed" or len(last.trace) != 2 + 2 * TRANSITIONS:
        raise SystemExit(f"benchmark workflow misbehaved: {last}")
    return elapsed


def time_floor(n: int) -> float:
    def handler_for(target: str) -> Callable[[dict[str, Any]], str]:
        def handler(data: dict[str, Any]) -> str:
            return target

        return handler

    handlers = {state: handler_for(NEXT[state]) for state in STATES}
    started = time.perf_counter()
    for _ in range(n):
        state, data = "triage", {}
        while state != "done":
            state = handlers[state](data)
    return time.perf_counter() - started


class GraphState(TypedDict):
    steps: int


def langgraph_graph() -> Any | None:
    """The workflow as an uncompiled LangGraph StateGraph, or None without langgraph."""
    try:
        from langgraph.graph import END, START, StateGraph
    except ImportError:
        return None

    def node(state: GraphState) -> dict[str, int]:
        return {"steps": state["steps"] + 1}

    graph = StateGraph(GraphState)
    for state in STATES:
        graph.add_node(state, node)
    graph.add_edge(START, STATES[0])
    for source, target in itertools.pairwise(STATES):
        graph.add_edge(source, target)
    graph.add_edge(STATES[-1], END)
    return graph


def time_langgraph(app: Any, n: int) -> float:
    started = time.perf_counter()
    for _ in range(n):
        app.invoke({"steps": 0})
    return time.perf_counter() - started


def per_transition_us(seconds: float, n: int) -> float:
    return seconds / (n * TRANSITIONS) * 1e6


def median_of(repeats: int, measure: Callable[[], float]) -> float:
    """Median of ``repeats`` timings after one warm-up, each from a collected heap
    (so that one timing does not pay for the garbage of the one before)."""
    measure()
    timings = []
    for _ in range(repeats):
        gc.collect()
        timings.append(measure())
    return statistics.median(timings)


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 5000
    n_langgraph = max(1, n // 10)  # LangGraph is slow enough that fewer runs give a stable figure
    repeats = 9
    wt_us = per_transition_us(median_of(repeats, lambda: time_windtunnel(n, timeouts=False)), n)
    wt_timeouts_us = per_transition_us(median_of(repeats, lambda: time_windtunnel(n, timeouts=True)), n)
    floor_us = per_transition_us(median_of(repeats, lambda: time_floor(n)), n)
    graph = langgraph_graph()
    lg_us = None
    if graph is not None:
        app = graph.compile()
        lg_us = per_transition_us(median_of(repeats, lambda: time_langgraph(app, n_langgraph)), n_langgraph)
    print(f"python {sys.version.split()[0]}, {n} runs x {TRANSITIONS} transitions, median of {repeats}")
    print(f"windtunnel engine, in-memory trace:         {wt_us:8.2f} us/transition")
    print(f"windtunnel engine, trace + state timeouts:  {wt_timeouts_us:8.2f} us/transition")
    print(f"plain dict loop (floor):                    {floor_us:8.3f} us/transition")
    if lg_us is None:
        print("langgraph: not installed (pip install -e '.[bench]')")
    else:
        print(f"langgraph StateGraph.invoke ({n_langgraph} runs):     {lg_us:8.2f} us/transition")
        print(f"speedup vs langgraph:                       {lg_us / wt_us:8.1f}x")
    summary = {
        "windtunnel_us": round(wt_us, 3),
        "windtunnel_timeouts_us": round(wt_timeouts_us, 3),
        "floor_us": round(floor_us, 4),
        "langgraph_us": None if lg_us is None else round(lg_us, 3),
        "speedup_vs_langgraph": None if lg_us is None else round(lg_us / wt_us, 1),
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
