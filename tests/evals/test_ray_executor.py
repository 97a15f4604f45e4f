"""The Ray executor: the same rows as in-process, resumable, and a clear error without Ray.

Each Ray start costs seconds on a small machine, so the tests start it twice: once
by :func:`run_experiment` itself, once around the resume test.
"""

from __future__ import annotations

import os
import select
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.evals.test_executors import small
from windtunnel.evals import COLUMNS, read_events, read_runs, run_experiment
from windtunnel.orchestrator import InvalidArgument

ray = pytest.importorskip("ray")

MARK = "WINDTUNNEL_RAY_TEST"


def _marked(token: str) -> list[int]:
    """Processes alive with ``MARK=token`` in their environment: Ray's, started by this test."""
    needle = f"{MARK}={token}".encode()
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        if environ.parent.name == str(os.getpid()):
            continue  # the test itself, should its environment show the mark
        try:
            if needle in environ.read_bytes().split(b"\0"):
                pids.append(int(environ.parent.name))
        except OSError:  # gone, or not ours to read
            continue
    return pids


@pytest.fixture
def no_leftovers(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fail if a process Ray started in the test is still alive a few seconds after it."""
    token = uuid.uuid4().hex
    # Ray's processes inherit the driver's environment, which marks them as this test's.
    monkeypatch.setenv(MARK, token)
    yield
    if not Path("/proc/self/environ").exists():
        return
    # Workers exit when they see their raylet gone, a moment after ray.shutdown() returns:
    # wait on each one's exit (a pidfd becomes readable when it ends), not on a clock tick.
    deadline = time.monotonic() + 15
    for pid in _marked(token):
        try:
            handle = os.pidfd_open(pid)
        except ProcessLookupError:  # already gone
            continue
        try:
            select.select([handle], [], [], max(0.0, deadline - time.monotonic()))
        finally:
            os.close(handle)
    left = _marked(token)
    assert left == [], f"Ray left processes behind: {left}"


@pytest.mark.usefixtures("no_leftovers")
def test_ray_gives_the_same_runs_as_local_and_stops_the_ray_it_started(tmp_path: Path) -> None:
    exp = small()
    local = run_experiment(exp, tmp_path / "local")
    on_ray = run_experiment(exp, tmp_path / "ray", executor="ray", workers=2)
    assert not ray.is_initialized()
    assert (local.ran, on_ray.ran, local.harness_errors, on_ray.harness_errors) == (12, 12, 0, 0)
    columns = [c for c in COLUMNS if c != "wall_time"]
    # Unsorted: the rows come back in cell order, as they do locally.
    assert read_runs(local.path)[columns].equals(read_runs(on_ray.path)[columns])
    events = ["cell", "seq", "event"]
    assert read_events(local.path)[events].equals(read_events(on_ray.path)[events])


@pytest.mark.usefixtures("no_leftovers")
def test_ray_resumes_and_leaves_a_ray_it_did_not_start_running(tmp_path: Path) -> None:
    exp = small(recheck=0.0)
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    try:
        first = run_experiment(exp, tmp_path, executor="ray", workers=2, stop_after=5)
        rest = run_experiment(exp, tmp_path, executor="ray", workers=2)
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    assert (first.ran, first.skipped, rest.ran, rest.skipped) == (5, 0, 7, 5)
    cells = read_runs(tmp_path)["cell"]
    assert sorted(cells) == sorted(cell.id for cell in exp.cells())
    assert cells.is_unique


def test_without_ray_the_error_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` raise ImportError
    with pytest.raises(InvalidArgument, match=r"pip install 'windtunnel\[ray\]'"):
        run_experiment(small(), tmp_path, executor="ray")


def test_an_address_is_only_for_ray(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="address='auto' is only for the 'ray' executor"):
        run_experiment(small(), tmp_path, executor="process", address="auto")
