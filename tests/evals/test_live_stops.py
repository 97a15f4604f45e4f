"""What stops a live experiment, and what it leaves behind: a request the API refuses for
good, a key echoed back in an error, a damaged recording; offline, over loopback."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import pytest

from windtunnel.evals import Experiment, read_runs, run_experiment
from windtunnel.evals.live import APIRefused, CostMeter, Live, Recording, describe_stop, worst_case_cost
from windtunnel.orchestrator import request_from_api

from .live_kit import CALL_COST, CANARY, MODEL, canary_key, experiment, served  # noqa: F401  # canary_key: the fixture

ROOT = Path(__file__).resolve().parents[2]
RECORDED = Path("soc-c2-beacon") / "haiku.jsonl"


pytestmark = pytest.mark.usefixtures("canary_key")


def _exchanges(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines()[1:]]


def _assert_no_canary(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert CANARY.encode() not in path.read_bytes(), path


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_a_refused_request_stops_the_experiment_unrecorded_and_resumable(tmp_path: Path, status: int) -> None:
    rec, out = tmp_path / "rec", tmp_path / "out"
    # The third call (cell 2 of haiku) is refused; its server error echoes the key.
    with served(status=status, fails=frozenset({2})) as (_, model, url):
        live = Live(mode="record", recordings=rec, concurrency=1, base_url=url)
        with pytest.raises(APIRefused, match=rf"^the API refused a request with HTTP {status} \(") as caught:
            run_experiment(experiment(), out, live=live)
    assert "[redacted]" in str(caught.value)
    assert model.calls == 2
    # Nothing of the refused cell is written or recorded; what finished before it is.
    done = set(read_runs(out)["cell"])
    assert {cell for cell in done if cell.endswith("/haiku")} == {f"soc-c2-beacon/{i}/haiku" for i in (0, 1)}
    assert [e["error"] for e in _exchanges(rec / RECORDED)] == [None, None]
    assert live.halted >= 1  # the refused cell, and maybe the next one, already started
    _assert_no_canary(tmp_path)
    with served() as (_, model, url):
        resumed = Live(mode="replay_or_record", recordings=rec, concurrency=1, base_url=url)
        summary = run_experiment(experiment(), out, live=resumed)
    assert (summary.skipped, summary.ran, summary.harness_errors, model.calls) == (
        len(done),
        8 - len(done),
        0,
        2,
    )


def test_a_refusal_stops_every_cell_in_flight(tmp_path: Path) -> None:
    with served(status=401, fails=range(1000)) as (_, model, url):
        live = Live(mode="record", recordings=tmp_path / "rec", concurrency=4, base_url=url)
        with pytest.raises(APIRefused, match=r"HTTP 401 \(the API key is wrong or revoked"):
            run_experiment(experiment(8), tmp_path / "out", live=live)
    assert model.calls == 0
    assert not (tmp_path / "rec" / RECORDED).exists()
    assert not any(cell.endswith("/haiku") for cell in read_runs(tmp_path / "out")["cell"])


def _record_as_failed(path: Path, error: dict[str, object]) -> None:
    """Rewrite the one exchange recorded in ``path`` as a call that failed with ``error``."""
    header, line = path.read_text().splitlines()
    exchange = {**json.loads(line), "response": None, "error": error}
    path.write_text(f"{header}\n{json.dumps(exchange)}\n")


def test_replay_or_record_calls_again_what_was_recorded_as_a_failure(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    with served() as (_, model, url):
        run_experiment(
            experiment(1), tmp_path / "first", live=Live(mode="record", recordings=rec, base_url=url)
        )
        path = rec / RECORDED
        _record_as_failed(
            path, {"type": "ModelOverloaded", "message": "claude-haiku-4-5: overloaded", "status": 529}
        )
        model.calls = 0
        again = Live(mode="replay_or_record", recordings=rec, base_url=url)
        run_experiment(experiment(1), tmp_path / "again", live=again)
    assert model.calls == 1
    assert [e["error"] for e in _exchanges(path)] == [None]
    columns = [
        "cell",
        "correct",
        "final_state",
        "cost",
        "harness_error",
    ]  # the latency was real: not the trace
    first = read_runs(tmp_path / "first")[columns].sort_values("cell").to_dict("records")
    assert read_runs(tmp_path / "again")[columns].sort_values("cell").to_dict("records") == first


def test_a_recorded_refusal_is_not_replayed(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    with served() as (_, _, url):
        run_experiment(
            experiment(1), tmp_path / "first", live=Live(mode="record", recordings=rec, base_url=url)
        )
    path = rec / RECORDED
    _record_as_failed(path, {"type": "ModelRequestError", "message": "invalid x-api-key", "status": 401})
    summary = run_experiment(experiment(1), tmp_path / "replay", live=Live(mode="replay", recordings=rec))
    assert summary.harness_errors == 1
    error = read_runs(tmp_path / "replay").set_index("cell").loc["soc-c2-beacon/0/haiku", "harness_error"]
    assert error.startswith(f"RecordingError: {path}:2: records a request the API refused with HTTP 401")


def test_a_key_echoed_in_an_error_body_is_redacted_everywhere(tmp_path: Path) -> None:
    # Two attempts fail with a 500 that echoes the request's headers (the key with them); no SDK
    # retry: the failure reaches the run (its events), the recording and any later prompt.
    with served(status=500, fails=frozenset({0, 2})) as (_, model, url):
        live = Live(mode="record", recordings=tmp_path / "rec", base_url=url, max_retries=0)
        summary = run_experiment(experiment(2), tmp_path / "out", live=live)
    assert summary.harness_errors == 0
    failures = [e["error"] for e in _exchanges(tmp_path / "rec" / RECORDED) if e["error"]]
    assert len(failures) == 2
    assert all("Bearer [redacted]" in str(failure) for failure in failures)
    assert not any(CANARY in json.dumps(request.messages, default=str) for request in model.requests)
    _assert_no_canary(tmp_path)


def test_an_interrupt_cancels_the_queued_cells_and_the_call_in_flight(tmp_path: Path) -> None:
    rec, out = tmp_path / "rec", tmp_path / "out"
    with served() as (_, model, url):
        model.interrupt_at = 3  # cell 2 of haiku hangs, and Ctrl-C comes meanwhile
        live = Live(mode="record", recordings=rec, concurrency=1, base_url=url)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_experiment(experiment(), out, live=live)
        assert time.monotonic() - started < 10  # not the hung call's hour, nor the queued cells'
    assert model.calls == 3  # no call started after the interrupt
    done = set(read_runs(out)["cell"])
    assert {cell for cell in done if cell.endswith("/haiku")} == {f"soc-c2-beacon/{i}/haiku" for i in (0, 1)}
    with served() as (_, model, url):
        resumed = Live(mode="replay_or_record", recordings=rec, concurrency=1, base_url=url)
        summary = run_experiment(experiment(), out, live=resumed)
    assert (summary.ran, model.calls) == (8 - len(done), 2)


def test_the_timeout_bounds_each_attempt(tmp_path: Path) -> None:
    with served() as (_, model, url):
        model.hold = 5.0
        live = Live(mode="record", recordings=tmp_path / "rec", base_url=url, max_retries=0, timeout=0.2)
        started = time.monotonic()
        run_experiment(experiment(1), tmp_path / "out", live=live)
        assert time.monotonic() - started < 5.0
    failures = [e["error"] for e in _exchanges(tmp_path / "rec" / RECORDED)]
    assert failures
    assert all(failure and failure["type"] == "ModelTimeout" for failure in failures)  # type: ignore[index]


def test_the_cost_cap_waits_for_calls_in_flight_before_it_refuses() -> None:
    meter = CostMeter(max_cost=0.01)
    assert meter.reserve(0.006)
    answers: list[bool] = []
    waiter = threading.Thread(target=lambda: answers.append(meter.reserve(0.006)))
    waiter.start()
    meter.until_waiting()  # 0.006 held + 0.006 > 0.01: it waits for the call in flight
    assert answers == []
    meter.settle(0.006, actual=0.002)  # its real cost leaves room
    waiter.join()
    assert answers == [True]
    meter.settle(0.006, actual=0.006)
    assert not meter.reserve(0.006)  # 0.008 spent, nothing in flight: refused at once
    assert (meter.spend().refused, meter.stopped) == (1, True)


def test_concurrent_calls_do_not_stop_a_cap_their_real_costs_fit(tmp_path: Path) -> None:
    with served() as (_, _, url):
        probe = Live(mode="record", recordings=tmp_path / "probe", base_url=url, concurrency=1)
        run_experiment(experiment(), tmp_path / "probe-out", live=probe)
        worst = max(
            worst_case_cost(request_from_api(e["request"]), model=MODEL)  # type: ignore[arg-type]
            for e in _exchanges(tmp_path / "probe" / RECORDED)
        )
        cap = 4 * CALL_COST + worst * 1.01  # every call fits on real costs; four worst cases do not
        assert 4 * worst > cap
        live = Live(mode="live", base_url=url, concurrency=4, max_cost=cap)
        summary = run_experiment(experiment(), tmp_path / "out", live=live)
    spend = live.spend()
    assert spend is not None
    assert (summary.ran, spend.calls, spend.refused) == (8, 4, 0)


LADDER = {"name": "haiku", "play": f"ladder:{MODEL}@0.95,claude-sonnet-4-5"}  # climbs: 2 calls a run


def test_a_record_stopped_by_the_cap_resumes_with_replay_or_record_without_paying_twice(
    tmp_path: Path,
) -> None:
    rec, out = tmp_path / "rec", tmp_path / "out"
    scenario = "windtunnel/scenarios/soc/scenarios/c2-beacon.yaml"
    cut = Experiment(name="live", scenarios=[scenario], seeds=1, configs=[LADDER], recheck=0.0)
    with served() as (_, model, url):
        # The haiku call fits; the sonnet call's worst case ($15/M out) does not.
        live = Live(mode="record", recordings=rec, base_url=url, max_cost=0.01)
        summary = run_experiment(cut, out, live=live)
        assert (summary.ran, live.halted, model.calls) == (0, 1, 1)
        assert describe_stop(live, 0).endswith(
            f"resume with --replay-or-record {rec} and the same results directory (the calls already "
            "recorded are replayed, not paid again)"
        )
        resumed = Live(mode="replay_or_record", recordings=rec, base_url=url)
        summary = run_experiment(cut, out, live=resumed)
    assert (summary.ran, summary.harness_errors, model.calls) == (1, 0, 2)  # only the sonnet call paid


@pytest.mark.parametrize(
    ("damage", "said"),
    [
        ({"response": None}, "RecordingError: exchange"),
        ({"response": {"usage": {"input_tokens": "lots"}}}, ""),
    ],
)
def test_a_corrupt_exchange_halts_its_cell_naming_file_and_line(
    tmp_path: Path, damage: dict[str, object], said: str
) -> None:
    rec = tmp_path / "rec"
    with served() as (_, _, url):
        run_experiment(
            experiment(1), tmp_path / "first", live=Live(mode="record", recordings=rec, base_url=url)
        )
    path = rec / RECORDED
    header, line = path.read_text().splitlines()
    path.write_text(f"{header}\n{json.dumps({**json.loads(line), **damage})}\n")
    summary = run_experiment(experiment(1), tmp_path / "replay", live=Live(mode="replay", recordings=rec))
    assert summary.harness_errors == 1
    error = read_runs(tmp_path / "replay").set_index("cell").loc["soc-c2-beacon/0/haiku", "harness_error"]
    assert error.startswith(f"RecordingError: {path}:2: a corrupt exchange (state 'triage', cell ")
    assert said in error


def test_a_recording_that_cannot_be_written_halts_its_cell(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(self: Recording, exchange: object) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Recording, "add", full)
    with served() as (_, model, url):
        live = Live(mode="record", recordings=tmp_path / "rec", base_url=url)
        summary = run_experiment(experiment(1), tmp_path / "out", live=live)
    assert (summary.harness_errors, model.calls) == (1, 1)  # not retried by the workflow
    error = read_runs(tmp_path / "out").set_index("cell").loc["soc-c2-beacon/0/haiku", "harness_error"]
    assert error.startswith("RecordingError: ")
    assert "cannot write the recording: No space left on device" in error
