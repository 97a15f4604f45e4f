"""Each package's ``__all__`` lists exactly its public names."""

from __future__ import annotations

import importlib
import types

import pytest

PACKAGES = [
    "windtunnel",
    "windtunnel.orchestrator",
    "windtunnel.simulators",
    "windtunnel.scenarios",
    "windtunnel.evals",
    "windtunnel.evals.live",
    "windtunnel.reports",
]


@pytest.mark.parametrize("name", PACKAGES)
def test_all_matches_public_names(name: str) -> None:
    package = importlib.import_module(name)
    for attr in package.__all__:
        getattr(package, attr)  # loads names a package imports lazily
    public = {
        attr
        for attr, value in vars(package).items()
        if not attr.startswith("_") and not isinstance(value, types.ModuleType)
    }
    public |= {"__version__"} & set(vars(package))
    # Sorting is ruff's job (RUF022); here: nothing missing, nothing extra, no repeats.
    assert sorted(package.__all__) == sorted(public)
    assert len(set(package.__all__)) == len(package.__all__)


@pytest.mark.parametrize("name", PACKAGES)
def test_all_names_resolve(name: str) -> None:
    package = importlib.import_module(name)
    for attr in package.__all__:
        assert getattr(package, attr) is not None, f"{name}.{attr}"
