"""`windtunnel runs list|release STORE`: the runs in a durable store, and abandoned ones released."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from windtunnel.cli import app
from windtunnel.orchestrator import Checkpoint, SqliteStore, run
from windtunnel.orchestrator.trace import Record
from windtunnel.simulators import Sim, SimulatedCrash

from .orchestrator.crash_kit import SMALL, Firewall, workflow

runner = CliRunner()


class Dying(SqliteStore):
    def save(self, checkpoint: Checkpoint, records: list[Record]) -> None:
        if checkpoint.state == "s2":
            raise SimulatedCrash("killed")
        super().save(checkpoint, records)


def test_runs_list_and_release(tmp_path: Path) -> None:
    path = tmp_path / "store.sqlite"
    sim = Sim(seed=3)
    with pytest.raises(SimulatedCrash):
        sim.run(run(workflow(Firewall(), SMALL), env=sim, store=Dying(path), run_id="run-3-1"))
    sim.run(run(workflow(Firewall(), SMALL), env=sim, store=SqliteStore(path), run_id="run-3-2"))

    listed = runner.invoke(app, ["runs", "list", str(path)])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert lines[0] == "run-3-1  running in 's1' (life 0, 0 steps)"  # its owner is this live process
    assert "(live, until" in lines[1]
    assert "leases: block ip:a, block ip:b; pending approvals: none" in lines[1]
    # The second run met the dead one's leases on ip:a: a conflict, escalated.
    assert lines[2] == "run-3-2  completed in 'escalated' (life 0, 3 steps)"
    assert lines[3] == "    no owner; leases: none; pending approvals: none"

    # Its owner is live (this very process), so it is not released without --force.
    refused = runner.invoke(app, ["runs", "release", str(path), "run-3-1"])
    assert refused.exit_code == 2
    assert "which is live; release it only if that process is gone" in refused.output
    released = runner.invoke(app, ["runs", "release", str(path), "run-3-1", "--force"])
    assert released.exit_code == 0, released.output
    assert released.output == "released run-3-1 (running in 's1'; 2 lease(s))\n"

    abandoned = runner.invoke(app, ["runs", "list", str(path), "--abandoned"])
    assert abandoned.output.splitlines()[0] == "run-3-1  running in 's1' (life 0, 0 steps)  ABANDONED"
    again = runner.invoke(app, ["runs", "release", str(path), "--abandoned"])
    assert again.output == "released run-3-1 (running in 's1'; 0 lease(s))\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["runs", "list", "nope.sqlite"], "windtunnel: no store at 'nope.sqlite'\n"),
        (["runs", "release", "{store}"], "windtunnel: name the runs to release, or pass --abandoned\n"),
        (["runs", "release", "{store}", "run-x"], "windtunnel: no run 'run-x' in SqliteStore("),
        (["runs", "list", "{junk}"], "not a database"),
    ],
)
def test_runs_bad_input(tmp_path: Path, args: list[str], message: str) -> None:
    store = tmp_path / "store.sqlite"
    SqliteStore(store).close()
    junk = tmp_path / "junk.sqlite"
    junk.write_text("not a store at all" * 100)
    result = runner.invoke(app, [a.format(store=store, junk=junk) for a in args])
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
