"""The ``windtunnel`` command line: one module per group of commands, all on one app."""

from . import calibrate, fuzz, matrix, scenarios, store, traces  # noqa: F401  # each registers its commands on the app
from ._app import app

__all__ = ["app"]
