"""Argument checks: every invalid input of windtunnel's APIs is an ``InvalidArgument``
(a ``WindtunnelError`` and a ``ValueError``) whose message names the argument, its
value and the rule."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from windtunnel.orchestrator import (
    InvalidArgument,
    LadderAgent,
    LLMAgent,
    PriceTable,
    Rung,
    WindtunnelError,
    block_from_api,
)
from windtunnel.orchestrator.ladder import Ladder
from windtunnel.orchestrator.validation import (
    check_choice,
    check_int,
    check_names,
    check_non_empty_str,
    check_number,
    check_probability,
    check_type,
    reason,
)
from windtunnel.scenarios import load_file, parse_play, run_scenario
from windtunnel.scenarios.demo import run_demo
from windtunnel.scenarios.soc import DOMAIN, Latency, World, soc_tools
from windtunnel.simulators import (
    Fault,
    FaultInjector,
    FaultPlan,
    Review,
    Sim,
    derive_tier,
)

assert DOMAIN.scenarios is not None
C2_BEACON = DOMAIN.scenarios / "c2-beacon.yaml"

# --- the helpers ----------------------------------------------------------------------

HELPERS: list[tuple[Callable[[], None], str]] = [
    (lambda: check_type("ladder", "small", dict), "ladder='small' must be a dict"),
    (lambda: check_type("x", 1.5, (int, type(None))), "x=1.5 must be an int or None"),
    (lambda: check_number("x", True), "x=True must be a number"),
    (lambda: check_number("x", "1"), "x='1' must be a number"),
    (lambda: check_number("x", math.nan, low=0), "x=nan must be a number >= 0"),
    (lambda: check_number("x", -1, low=0), "x=-1 must be a number >= 0"),
    (lambda: check_number("x", 0, low=0, low_open=True), "x=0 must be a number > 0"),
    (lambda: check_number("x", 2, high=1), "x=2 must be a number <= 1"),
    (lambda: check_number("x", 1, high=1, high_open=True), "x=1 must be a number < 1"),
    (lambda: check_number("x", 1, low=0, high=1, high_open=True), "x=1 must be a number in [0, 1)"),
    (lambda: check_number("x", 0, low=0, high=1, low_open=True), "x=0 must be a number in (0, 1]"),
    (lambda: check_number("x", math.inf, finite=True), "x=inf must be a finite number"),
    (lambda: check_number("x", 0, low=0, low_open=True, optional=True), "x=0 must be a number > 0, or None"),
    (lambda: check_probability("p", 1.5), "p=1.5 must be a number in [0, 1]"),
    (lambda: check_int("n", 1.0), "n=1.0 must be an int"),
    (lambda: check_int("n", False, low=0), "n=False must be an int >= 0"),
    (lambda: check_int("n", 0, low=1), "n=0 must be an int >= 1"),
    (lambda: check_non_empty_str("s", ""), "s='' must be a non-empty string"),
    (lambda: check_non_empty_str("s", 3, optional=True), "s=3 must be a non-empty string, or None"),
    (lambda: check_choice("c", "x", ["a", "b"]), "unknown c='x'; choose one of ['a', 'b']"),
    (
        lambda: check_choice("c", "ab", ["abc", "xyz"]),
        "unknown c='ab'; choose one of ['abc', 'xyz']; did you mean 'abc'?",
    ),
    (
        lambda: check_choice("tier", 3, ["small"], alternative="a TierProfile"),
        "unknown tier=3; choose one of ['small'] or a TierProfile",
    ),
    (lambda: check_names("allow", {"b", "a"}, ["x"]), "allow names unknown ['a', 'b']; choose from ['x']"),
    # Suggestions compare names, not the family prefix they share.
    (
        lambda: check_choice("t", "tier:mid", ["tier:small"]),
        "unknown t='tier:mid'; choose one of ['tier:small']",
    ),
    (
        lambda: check_choice("t", "tier:smal", ["tier:small"]),
        "unknown t='tier:smal'; choose one of ['tier:small']; did you mean 'tier:small'?",
    ),
    (
        lambda: check_choice("t", "tool:nope", ["tool:block_ip", "tool:threat_intel"]),
        "unknown t='tool:nope'; choose one of ['tool:block_ip', 'tool:threat_intel']",
    ),
]


@pytest.mark.parametrize(("check", "message"), HELPERS, ids=[message for _, message in HELPERS])
def test_helpers_raise_invalid_argument_with_the_exact_message(
    check: Callable[[], None], message: str
) -> None:
    with pytest.raises(InvalidArgument) as raised:
        check()
    assert str(raised.value) == message
    assert isinstance(raised.value, WindtunnelError)
    assert isinstance(raised.value, ValueError)


@pytest.mark.parametrize(
    "check",
    [
        lambda: check_type("x", 1, (int, str)),
        lambda: check_number("x", 0, low=0, high=1),
        lambda: check_number("x", 1, low=0, high=1),
        lambda: check_number("x", math.inf, low=0),
        lambda: check_number("x", None, optional=True),
        lambda: check_probability("p", 0.5),
        lambda: check_int("n", 0, low=0),
        lambda: check_non_empty_str("s", None, optional=True),
        lambda: check_choice("c", "a", ("a", "b")),
        lambda: check_names("allow", [], ["x"]),
    ],
)
def test_helpers_accept_valid_values(check: Callable[[], Any]) -> None:
    assert check() is None


def test_reason_is_the_message_or_none() -> None:
    assert reason(check_int, "n", 0, low=1) == "n=0 must be an int >= 1"
    assert reason(check_int, "n", 1, low=1) is None


# --- every API: one table of invalid inputs -------------------------------------------


def _agent(**kwargs: Any) -> object:
    from windtunnel.simulators import ScriptedModel

    return LLMAgent(model=ScriptedModel([]), system="s", **kwargs)


def _ladder(*rungs: Any, **kwargs: Any) -> object:
    return Ladder(list(rungs), **kwargs)


def _model() -> Any:
    from windtunnel.simulators import ScriptedModel

    return ScriptedModel([])


def _review(right: str) -> object:
    return Review(proposal="benign", options=("malicious", "benign"), right=right)


def _targets(target: str, kind: str = "hallucinated_tool_call") -> None:
    plan = FaultPlan(faults=[Fault(id="f", kind=kind, target=target)])
    FaultInjector(plan, seed=0).check_targets(tools=[], tiers=["small"], humans=["oncall"])


def _http_fault(**kwargs: Any) -> object:
    from windtunnel.simulators.fake_api import HttpFault

    return HttpFault(**kwargs)


def _fake_api(models: Any) -> object:
    from windtunnel.simulators.fake_api import FakeMessagesAPI

    return FakeMessagesAPI(models)


INVALID: list[tuple[str, Callable[[], object], str]] = [
    # orchestrator
    ("LLMAgent max_turns", lambda: _agent(max_turns=0), "max_turns=0 must be an int >= 1"),
    ("LLMAgent nudges", lambda: _agent(nudges=1.5), "nudges=1.5 must be an int >= 0"),
    ("LLMAgent allow", lambda: _agent(allow=["siem"]), "allow names unknown ['siem']; choose from []"),
    (
        "Ladder threshold",
        lambda: _ladder(Rung(tier="small", model=_model(), threshold=True)),
        "invalid ladder: rung 0 ('small'): threshold=True must be a number in [0, 1]",
    ),
    (
        "Ladder human_state",
        lambda: _ladder(Rung(tier="small", model=_model()), human_state=""),
        "invalid ladder: human_state='' must be a non-empty string, or None",
    ),
    ("LadderAgent ladder", lambda: LadderAgent("small", system="s"), "ladder='small' must be a Ladder"),  # type: ignore[arg-type]
    ("PriceTable overrides", lambda: PriceTable({"m": 1.0}), "overrides['m']=1.0 must be a Price"),  # type: ignore[dict-item]
    (
        "block_from_api type",
        lambda: block_from_api({"type": "image"}),
        "unknown content block type='image'; choose one of ['text', 'tool_use', 'tool_result']",
    ),
    # simulators
    ("Sim seed negative", lambda: Sim(seed=-1), "seed=-1 must be an int >= 0"),
    ("Sim seed bool", lambda: Sim(seed=True), "seed=True must be an int >= 0"),
    ("Sim horizon", lambda: Sim(horizon=math.nan), "horizon=nan must be a number > 0, or None"),
    ("Sim start", lambda: Sim(start=math.inf), "start=inf must be a finite number"),
    (
        "HttpFault kind",
        lambda: _http_fault(kind="overload"),
        "unknown kind='overload'; choose one of ['rate_limit', 'overloaded', 'server_error', "
        "'connect_timeout', 'read_timeout', 'malformed_json']; did you mean 'overloaded'?",
    ),
    (
        "HttpFault retry_after",
        lambda: _http_fault(kind="rate_limit", retry_after=-1),
        "retry_after=-1 must be a finite number >= 0, or None",
    ),
    (
        "FakeMessagesAPI models",
        lambda: _fake_api({}),
        "models={} must be a Model or a non-empty mapping of model name -> Model",
    ),
    (
        "Review right",
        lambda: _review("maybe"),
        "unknown right='maybe'; choose one of ['malicious', 'benign']",
    ),
    ("Latency median", lambda: Latency(median=math.nan), "Latency median=nan must be a finite number >= 0"),
    (
        "soc_tools latency",
        lambda: soc_tools(World(), rng=Sim().rng, latency={"siem_search": 1.0}),  # type: ignore[dict-item]
        "latency['siem_search']=1.0 must be a Latency",
    ),
    (
        "derive_tier base",
        lambda: derive_tier("larg"),
        "unknown base='larg'; choose one of ['large', 'mid', 'small'] or a TierProfile; "
        "did you mean 'large'?",
    ),
    (
        "check_targets tier",
        lambda: _targets("tier:smal"),
        "fault 'f' can never fire: unknown target='tier:smal'; choose one of ['tier:small']; "
        "did you mean 'tier:small'?",
    ),
    (
        "check_targets tool",
        lambda: _targets("tool:threat_intel", kind="timeout"),
        "fault 'f' can never fire: target='tool:threat_intel', and this run has no tools",
    ),
    # scenarios
    (
        "demo variant",
        lambda: run_demo(variant="nominl"),  # type: ignore[arg-type]
        "unknown variant='nominl'; choose one of ['nominal', 'slow_source', 'confused', 'endless']; "
        "did you mean 'nominal'?",
    ),
    ("demo seed", lambda: run_demo(seed=-3), "seed=-3 must be an int >= 0"),
    (
        "scenario play",
        lambda: parse_play("mid-size"),
        "unknown tier='mid-size'; choose one of ['large', 'mid', 'small'] or a model id with a known price "
        "(claude-haiku-4-5), or ladder:TIER@THRESHOLD,...",
    ),
    (
        "scenario ladder threshold",
        lambda: parse_play("ladder:small@x,large"),
        "ladder rung 'small@x': threshold='x' must be a number",
    ),
    (
        "scenario seed",
        lambda: run_scenario(load_file(C2_BEACON)[0], seed=-1),
        "seed=-1 must be an int >= 0",
    ),
]


@pytest.mark.parametrize(("call", "message"), [row[1:] for row in INVALID], ids=[row[0] for row in INVALID])
def test_every_api_refuses_invalid_arguments_with_invalid_argument(
    call: Callable[[], object], message: str
) -> None:
    with pytest.raises(WindtunnelError) as raised:
        call()
    assert type(raised.value) is InvalidArgument
    assert str(raised.value) == message
