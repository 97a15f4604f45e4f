"""Scenarios: the demo investigation now; the scenario schema, loader and suites later."""

from .demo import DEMO_BUDGET, DemoAlert, DemoVariant, DemoWorld, demo_workflow, run_demo

__all__ = ["DEMO_BUDGET", "DemoAlert", "DemoVariant", "DemoWorld", "demo_workflow", "run_demo"]
