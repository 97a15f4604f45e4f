"""`Template`: a tree compiled once fills in exactly as `substitute` does, fresh every time."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from windtunnel.scenarios.vary import Template, substitute

VALUES = {"ip": "203.0.113.7", "port": 443, "tags": ["a", "b"], "n": 0.5}
_texts = st.sampled_from(["${ip}", "${port}", "${tags}", "x ${ip}:${port}", "plain", "$ip", "${n}%", ""])
_keys = st.sampled_from(["${ip}", "${port}", "x ${ip}:${port}", "plain", ""]) | st.integers()
_scalars = _texts | st.integers() | st.floats(allow_nan=False) | st.booleans() | st.none()
trees = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_keys, children, max_size=3),
    max_leaves=12,
)


@given(trees)
def test_a_template_fills_in_as_substitute_does(tree: Any) -> None:
    template = Template(tree)
    assert template.fill(VALUES) == substitute(tree, VALUES)
    if template.constant:
        assert template.fill({}) == tree


def test_every_filling_is_a_fresh_tree() -> None:
    tree = {"ips": {"${ip}": {"address": "${ip}", "ports": [1, 2]}}, "hosts": [{"name": "web"}]}
    template = Template(tree)
    first, second = template.fill(VALUES), template.fill(VALUES)
    assert (
        first
        == second
        == {"ips": {"203.0.113.7": {"address": "203.0.113.7", "ports": [1, 2]}}, "hosts": [{"name": "web"}]}
    )
    first["hosts"][0]["name"] = "db"
    first["ips"]["203.0.113.7"]["ports"].append(3)
    assert template.fill(VALUES) == second
    assert tree["hosts"] == [{"name": "web"}]


def test_aliased_or_unusual_trees_fill_in_too() -> None:
    shared = {"address": "${ip}"}
    aliased = {"a": shared, "b": shared}
    assert Template(aliased).fill(VALUES) == {
        "a": {"address": "203.0.113.7"},
        "b": {"address": "203.0.113.7"},
    }
    odd = {"when": (1, 2), "name": "${ip}"}
    assert Template(odd).fill(VALUES) == {"when": (1, 2), "name": "203.0.113.7"}
