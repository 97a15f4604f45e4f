"""Scenarios as data: the scenario schema, loader and suites; domains; the demo.

A *domain* (:class:`Domain`) is the extension point a user implements for their own
agent; a *scenario* (:class:`Scenario`) is a file that names its domain and states
the world, the input, the truth and the faults.
"""

from .demo import DEMO_BUDGET, DemoAlert, DemoVariant, DemoWorld, demo_workflow, run_demo
from .domain import BUILTIN_DOMAINS, Case, Check, Domain, GradeInput, Kit, load_domain
from .loader import LoadedScenario, Suite, load_file, load_suite, resolve, scenario_files, validate
from .problems import FileProblem, ScenarioError
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
    "GradeInput",
    "Kit",
    "LoadedScenario",
    "Scenario",
    "ScenarioError",
    "Suite",
    "Truth",
    "Vary",
    "demo_workflow",
    "load_domain",
    "load_file",
    "load_suite",
    "resolve",
    "run_demo",
    "scenario_files",
    "validate",
]
