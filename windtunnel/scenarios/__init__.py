"""Scenarios as data: the scenario schema, loader and suites; domains; the demo.

A *domain* (:class:`Domain`) is the extension point a user implements for their own
agent; a *scenario* (:class:`Scenario`) is a file that names its domain and states
the world, the input, the truth and the faults.
"""

from .demo import DEMO_BUDGET, DemoAlert, DemoVariant, DemoWorld, demo_workflow, run_demo
from .domain import (
    BUILTIN_DOMAINS,
    Case,
    Check,
    Domain,
    GradeInput,
    Kit,
    load_callable,
    load_domain,
    register_domain,
)
from .grading import FiredFault, Verdict, grade
from .loader import LoadedScenario, Suite, load_file, load_suite, overlay, resolve, scenario_files, validate
from .problems import FileProblem, ScenarioError
from .runner import Play, RealModels, ScenarioRun, parse_play, run_scenario
from .schema import ActionRef, Scenario, Truth, Vary

__all__ = [
    "BUILTIN_DOMAINS",
    "DEMO_BUDGET",
    "ActionRef",
    "Case",
    "Check",
    "DemoAlert",
    "DemoVariant",
    "DemoWorld",
    "Domain",
    "FileProblem",
    "FiredFault",
    "GradeInput",
    "Kit",
    "LoadedScenario",
    "Play",
    "RealModels",
    "Scenario",
    "ScenarioError",
    "ScenarioRun",
    "Suite",
    "Truth",
    "Vary",
    "Verdict",
    "demo_workflow",
    "grade",
    "load_callable",
    "load_domain",
    "load_file",
    "load_suite",
    "overlay",
    "parse_play",
    "register_domain",
    "resolve",
    "run_demo",
    "run_scenario",
    "scenario_files",
    "validate",
]
