"""Argument checks: every invalid input of windtunnel's APIs is an ``InvalidArgument``
(a ``WindtunnelError`` and a ``ValueError``) whose message names the argument, its
value and the rule."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest

from windtunnel.orchestrator import InvalidArgument, WindtunnelError
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
