"""Loading the built-in scenario library: every built-in domain's files, checked.

Loads every scenario file of every built-in domain with ``load_suite`` (parsing,
schema, domain models, references) in a fresh process state — the domains
imported once first, since importing them is not loading scenarios — and prints
the time, median of 5, and the count; last, one JSON line. Not a test: it asserts
nothing about timings. Target: the whole library in under 1 s.

    python benchmarks/bench_scenarios.py
"""

from __future__ import annotations

import json
import statistics
import time

from windtunnel.scenarios import BUILTIN_DOMAINS, load_domain, load_suite


def main() -> None:
    folders = []
    for name in BUILTIN_DOMAINS:
        try:
            domain = load_domain(name)
        except ValueError:
            continue  # a built-in domain not written yet
        if domain.scenarios is not None:
            folders.append(str(domain.scenarios))
    times = []
    count = 0
    for _ in range(5):
        started = time.perf_counter()
        suite = load_suite(folders)
        times.append(time.perf_counter() - started)
        count = len(suite)
    load_s = statistics.median(times)
    print(
        f"{count} scenarios in {len(folders)} domain folder(s): loaded and checked in {load_s * 1000:.0f} ms"
    )
    print(
        json.dumps(
            {
                "load_s": round(load_s, 4),
                "scenarios": count,
                "per_scenario_ms": round(load_s * 1000 / max(count, 1), 2),
            }
        )
    )


if __name__ == "__main__":
    main()
