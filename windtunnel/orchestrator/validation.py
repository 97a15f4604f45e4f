"""Argument checks that raise :class:`InvalidArgument` naming the argument, its value and the rule.

A message reads ``name=value must be rule``, or, for a value outside a closed set,
``unknown name=value; choose one of [...]`` with the closest choice suggested::

    >>> check_number("threshold", 1.5, low=0, high=1)
    Traceback (most recent call last):
    ...
    windtunnel.orchestrator.errors.InvalidArgument: threshold=1.5 must be a number in [0, 1]

``name`` may say where the argument sits (``"rung 0 ('small'): threshold"``). Code
that collects every problem instead of raising the first (a ladder, a workflow)
asks :func:`reason` for the message. Numbers are never bools
(``True`` is an ``int`` to Python, not a threshold to anyone) and never NaN (it
compares false with every bound, so it would pass any range check written as
``not value < low``).
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Callable, Collection, Iterable
from typing import Any

from .errors import InvalidArgument

__all__ = [
    "check_choice",
    "check_int",
    "check_names",
    "check_non_empty_str",
    "check_number",
    "check_probability",
    "check_type",
    "check_unique",
    "reason",
]


def check_type(name: str, value: object, types: type | tuple[type, ...]) -> None:
    """Check that ``value`` is an instance of ``types``.

    Example:
        >>> check_type("ladder", "small", dict)
        Traceback (most recent call last):
        ...
        windtunnel.orchestrator.errors.InvalidArgument: ladder='small' must be a dict
    """
    if not isinstance(value, types):
        kinds = types if isinstance(types, tuple) else (types,)
        names = " or ".join(_article(kind.__name__) for kind in kinds)
        raise InvalidArgument(f"{name}={value!r} must be {names}")


def check_number(
    name: str,
    value: object,
    *,
    low: float | None = None,
    high: float | None = None,
    low_open: bool = False,
    high_open: bool = False,
    finite: bool = False,
    optional: bool = False,
) -> None:
    """Check that ``value`` is an int or a float (not a bool, not NaN) within the bounds.

    Args:
        name: the argument, as the caller knows it.
        value: what was given.
        low, high: the bounds; None for none.
        low_open, high_open: exclude the bound itself.
        finite: refuse infinities too.
        optional: accept None.

    Example:
        >>> check_number("seconds", 0, low=0, low_open=True, finite=True)
        Traceback (most recent call last):
        ...
        windtunnel.orchestrator.errors.InvalidArgument: seconds=0 must be a finite number > 0
    """
    if optional and value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        ok = False
    else:
        ok = (
            not (finite and math.isinf(value))
            and (low is None or (value > low if low_open else value >= low))
            and (high is None or (value < high if high_open else value <= high))
        )
    if not ok:
        rule = f"{'a finite' if finite else 'a'} number"
        if low is not None and high is not None:
            rule += f" in {'(' if low_open else '['}{low!r}, {high!r}{')' if high_open else ']'}"
        elif low is not None:
            rule += f" {'>' if low_open else '>='} {low!r}"
        elif high is not None:
            rule += f" {'<' if high_open else '<='} {high!r}"
        raise InvalidArgument(f"{name}={value!r} must be {rule}{', or None' if optional else ''}")


def check_probability(name: str, value: object) -> None:
    """Check that ``value`` is a number in [0, 1] (a probability, a confidence, a threshold)."""
    check_number(name, value, low=0, high=1)


def check_int(name: str, value: object, *, low: int | None = None) -> None:
    """Check that ``value`` is an int (not a bool), at least ``low`` when given.

    Example:
        >>> check_int("seed", -1, low=0)
        Traceback (most recent call last):
        ...
        windtunnel.orchestrator.errors.InvalidArgument: seed=-1 must be an int >= 0
    """
    if isinstance(value, bool) or not isinstance(value, int) or (low is not None and value < low):
        rule = "an int" if low is None else f"an int >= {low}"
        raise InvalidArgument(f"{name}={value!r} must be {rule}")


def check_non_empty_str(name: str, value: object, *, optional: bool = False) -> None:
    """Check that ``value`` is a string other than ``""`` (or None, when ``optional``)."""
    if optional and value is None:
        return
    if not isinstance(value, str) or not value:
        raise InvalidArgument(f"{name}={value!r} must be a non-empty string{', or None' if optional else ''}")


def check_choice(name: str, value: object, choices: Collection[object], *, alternative: str = "") -> None:
    """Check that ``value`` is one of ``choices``; list them, and suggest the closest, when it is not.

    Args:
        name: the argument, as the caller knows it.
        value: what was given.
        choices: the valid values, in the order to list them.
        alternative: what else the argument accepts, said after the list (``"a TierProfile"``).

    Example:
        >>> check_choice("case", "c2_becon", ["c2_beacon", "critical_host"])
        Traceback (most recent call last):
        ...
        windtunnel.orchestrator.errors.InvalidArgument: unknown case='c2_becon'; choose one of \
['c2_beacon', 'critical_host']; did you mean 'c2_beacon'?
    """
    if value in choices:
        return
    rule = f"one of {list(choices)!r}" + (f" or {alternative}" if alternative else "")
    raise InvalidArgument(f"unknown {name}={value!r}; choose {rule}{_did_you_mean(value, choices)}")


def check_names(name: str, values: Iterable[str], known: Collection[str]) -> None:
    """Check that every name in ``values`` is one of ``known``; list every one that is not.

    Example:
        >>> check_names("allow", ["siem_serch", "threat_intel"], ["siem_search", "threat_intel"])
        Traceback (most recent call last):
        ...
        windtunnel.orchestrator.errors.InvalidArgument: allow names unknown ['siem_serch']; choose from \
['siem_search', 'threat_intel']; did you mean 'siem_search' for 'siem_serch'?
    """
    unknown = sorted(set(values) - set(known))
    if not unknown:
        return
    hints = [f"{match!r} for {value!r}" for value in unknown if (match := _closest(value, known))]
    hint = f"; did you mean {', '.join(hints)}?" if hints else ""
    raise InvalidArgument(f"{name} names unknown {unknown!r}; choose from {list(known)!r}{hint}")


def check_unique(what: str, values: Iterable[str]) -> None:
    """Check that no value repeats; name every one that does.

    Example:
        >>> check_unique("config names", ["small", "large", "small"])
        Traceback (most recent call last):
        ...
        windtunnel.orchestrator.errors.InvalidArgument: config names must be unique; repeated: ['small']
    """
    twice = sorted(value for value, count in Counter(values).items() if count > 1)
    if twice:
        raise InvalidArgument(f"{what} must be unique; repeated: {twice}")


def reason(check: Callable[..., None], /, *args: Any, **kwargs: Any) -> str | None:
    """Why ``check(*args, **kwargs)`` refuses its arguments, or None when it accepts them.

    Example:
        >>> reason(check_probability, "threshold", 2), reason(check_probability, "threshold", 1)
        ('threshold=2 must be a number in [0, 1]', None)
    """
    try:
        check(*args, **kwargs)
    except InvalidArgument as exc:
        return str(exc)
    return None


def _did_you_mean(value: object, choices: Iterable[object]) -> str:
    """``"; did you mean 'x'?"`` for the string choice closest to ``value``, or ``""``."""
    match = _closest(value, choices) if isinstance(value, str) else None
    return f"; did you mean {match!r}?" if match else ""


def _closest(value: str, choices: Iterable[object]) -> str | None:
    """The string choice closest to ``value`` by :mod:`difflib`, if one is close enough."""
    names = [choice for choice in choices if isinstance(choice, str)]
    if not names:
        return None
    # Compare the names, not a family prefix they share ("tier:small", "tier:mid"): the
    # prefix would make any two look alike.
    shared = 0
    for chars in zip(*names, strict=False):  # up to the shortest name
        if len(set(chars)) > 1:
            break
        shared += 1
    cut = max(names[0].rfind(":", 0, shared), names[0].rfind("/", 0, shared)) + 1
    if not value.startswith(names[0][:cut]):
        cut = 0
    match = difflib.get_close_matches(value[cut:], [name[cut:] for name in names], n=1)
    return value[:cut] + match[0] if match else None


def _article(noun: str) -> str:
    if noun == "NoneType":
        return "None"
    return f"{'an' if noun[:1].lower() in 'aeiou' else 'a'} {noun}"
