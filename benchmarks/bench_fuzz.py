"""The fuzzer: trials per second per core, and the time to find and shrink a planted bug.

1. ``trials_per_s_per_core``: one in-process campaign over soc-core (the correct SOC
   workflow, config ``large``, both oracles), after the suite is loaded and surveyed:
   trials over wall time, shrinking and confirming whatever it found included. Also
   printed: ``runs_per_trial`` (scenario runs per trial, baselines, shrinking and
   confirmation included) and ``inconclusive``.
2. ``planted_bug_s``: a campaign over the SOC scenarios that meet no fault of their
   own, against the ``unverified_write`` planted bug (``tests/evals/planted_bugs.py``),
   that stops at its first failure: wall time from the start (suite loading
   included) to the failure found, shrunk and confirmed; ``planted_bug_faults``: the
   faults of the shrunk plan; ``planted_bug_trial``: the trial that found it.

Not a test: it asserts nothing about timings. Last line: one JSON object.
Targets (issue 12): >= 500 trials/s per core; a planted bug found and shrunk in < 30 s.

    python benchmarks/bench_fuzz.py [--trials N] [--seed N]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from windtunnel.evals.fuzz import fuzz
from windtunnel.scenarios import load_suite

ROOT = Path(__file__).resolve().parent.parent
SOC = ROOT / "windtunnel/scenarios/soc/scenarios"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=2000, help="Trials of the throughput campaign.")
    parser.add_argument("--seed", type=int, default=1, help="The campaigns' seed.")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))  # the planted bugs live in the tests
    from tests.evals.planted_bugs import plain_paths

    suite = load_suite([SOC / "soc-core.yaml"])
    report = fuzz(suite, trials=args.trials, seed=args.seed, workflow="tests.evals.planted_bugs:correct")
    print(
        f"throughput: {report.trials} trials in {report.seconds:.1f} s = {report.trials_per_s:.0f}/s; "
        f"{report.runs / report.trials:.2f} runs per trial; {report.inconclusive} inconclusive; "
        f"{len(report.findings)} failures, {len(report.noise)} noise"
    )

    oracle = fuzz(
        suite,
        trials=args.trials,
        seed=args.seed,
        config="oracle",
        workflow="tests.evals.planted_bugs:correct",
    )
    print(
        f"throughput, config oracle: {oracle.trials} trials in {oracle.seconds:.1f} s = "
        f"{oracle.trials_per_s:.0f}/s; {oracle.runs / oracle.trials:.2f} runs per trial"
    )

    start = time.perf_counter()
    planted = fuzz(
        plain_paths(),
        trials=5000,
        seed=args.seed,
        workflow="tests.evals.planted_bugs:unverified_write",
        max_failures=1,
    )
    found_s = time.perf_counter() - start
    first = planted.findings[0] if planted.findings else None
    if first is not None:
        faults = len(first.faults)
        print(f"planted bug: {first.failure} after {found_s:.1f} s, trial {first.trial}, {faults} fault(s)")
    print(
        json.dumps(
            {
                "trials_per_s_per_core": round(report.trials_per_s, 1),
                "runs_per_trial": round(report.runs / report.trials, 2),
                "trials_per_s_per_core_oracle": round(oracle.trials_per_s, 1),
                "inconclusive": report.inconclusive,
                "planted_bug_s": round(found_s, 2) if first else None,
                "planted_bug_faults": len(first.faults) if first else None,
                "planted_bug_trial": first.trial if first else None,
            }
        )
    )


if __name__ == "__main__":
    main()
