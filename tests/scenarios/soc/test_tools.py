"""The SOC tools: answers of each read source, writes and their action specs, latency
per source in virtual time, and a write through the full agent path."""

from __future__ import annotations

import asyncio
import random
import re
import statistics
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from windtunnel.orchestrator import InvalidArgument, LLMAgent, Tool, ToolRegistry, run
from windtunnel.scenarios.soc.sources import HostArgs, IpArgs, Latency, SiemQuery, TicketArgs, UserArgs
from windtunnel.scenarios.soc.tools import (
    DEFAULT_LATENCY,
    READ_TOOLS,
    WRITE_TOOLS,
    soc_tools,
)
from windtunnel.scenarios.soc.world import Host, IpInfo, LogEvent, Process, Ticket, User, World
from windtunnel.simulators import ScriptedModel, Sim, respond, submit, tool_call

from ...orchestrator.agent_kit import agent_workflow

C2 = "203.0.113.9"
INSTANT = {name: Latency(median=0, sigma=0) for name in (*READ_TOOLS, *WRITE_TOOLS)}
TWO_SECONDS = {name: Latency(median=2.0, sigma=0) for name in (*READ_TOOLS, *WRITE_TOOLS)}


def make_world() -> World:
    return World(
        hosts={
            "web-01": Host(name="web-01", ip="10.0.0.5", owner="web"),
            "db-01": Host(name="db-01", ip="10.0.0.9", criticality="critical", owner="data"),
            "dc-01": Host(name="dc-01", ip="10.0.0.2", criticality="high", owner="it", os="windows"),
            "laptop-7": Host(name="laptop-7", ip="10.0.1.7", criticality="low", owner="alice"),
        },
        ips={
            C2: IpInfo(address=C2, reputation="malicious", note="known C2"),
            "198.51.100.7": IpInfo(address="198.51.100.7", reputation="benign"),
        },
        users={
            "alice": User(name="alice"),
            "root-admin": User(name="root-admin", role="admin", privileged=True),
        },
        processes=[
            Process(host="web-01", pid=351, parent=350, name="curl", cmdline=f"curl http://{C2}/x"),
            Process(host="web-01", pid=1, name="init"),
            Process(host="db-01", pid=10, parent=1, name="postgres"),
            Process(host="web-01", pid=350, parent=200, name="sh", user="www-data"),
            Process(host="web-01", pid=200, parent=1, name="nginx"),
        ],
        logs=[
            LogEvent(
                time=-90_000,
                source="firewall",
                host="web-01",
                src_ip="10.0.0.5",
                dst_ip=C2,
                action="allowed",
                detail="old beacon",
            ),
            LogEvent(
                time=-7200,
                source="idp",
                host="laptop-7",
                user="alice",
                action="login_failed",
                detail="bad pw",
            ),
            LogEvent(
                time=-3600,
                source="firewall",
                host="web-01",
                src_ip="10.0.0.5",
                dst_ip=C2,
                action="allowed",
                detail="Beacon to C2",
            ),
            LogEvent(
                time=-60, source="edr", host="web-01", user="www-data", action="process_start", detail="curl"
            ),
            LogEvent(
                time=-60,
                source="proxy",
                host="db-01",
                src_ip=C2,
                dst_ip="10.0.0.9",
                action="blocked",
                detail="inbound scan",
            ),
            LogEvent(time=100, source="dns", host="web-01", action="query", detail="future beacon"),
        ],
    )


def tool_of(tools: ToolRegistry, name: str) -> Tool:
    tool = tools.get(name)
    assert tool is not None, name
    return tool


async def call(tools: ToolRegistry, name: str, **args: Any) -> Any:
    tool = tool_of(tools, name)
    return await tool.fn(tool.input_model(**args))


def call_now(name: str, world: World | None = None, **args: Any) -> Any:
    """One call at t=0 in a fresh sim, without latency."""
    sim = Sim(seed=0)
    return sim.run(call(soc_tools(world or make_world(), rng=sim.rng, latency=INSTANT), name, **args))


# --- the registry -------------------------------------------------------------------


def test_registry_has_exactly_the_read_and_write_tools() -> None:
    tools = soc_tools(World(), rng=Sim(seed=0).rng)
    assert tools.names == sorted((*READ_TOOLS, *WRITE_TOOLS))
    assert len(set(READ_TOOLS) | set(WRITE_TOOLS)) == len(READ_TOOLS) + len(WRITE_TOOLS)
    assert sorted(DEFAULT_LATENCY) == tools.names
    kinds = {tool.name: (tool.kind, tool.action is not None, tool.timeout) for tool in tools}
    assert kinds == {
        **dict.fromkeys(READ_TOOLS, ("read", False, 20.0)),
        "siem_search": ("read", False, 60.0),
        **dict.fromkeys(WRITE_TOOLS, ("write", True, 20.0)),
    }


@pytest.mark.parametrize(
    ("model", "args"),
    [
        (SiemQuery, {}),
        (SiemQuery, {"query": "x", "hours": 0}),
        (SiemQuery, {"query": "x", "hours": 169}),
        (SiemQuery, {"query": "x", "since": 3}),
        (IpArgs, {"ip": ""}),
        (IpArgs, {"ip": C2, "port": 443}),
        (HostArgs, {"name": "web-01"}),
        (UserArgs, {}),
        (TicketArgs, {"title": "t", "severity": "urgent"}),
        (TicketArgs, {"title": "", "severity": "low"}),
        (TicketArgs, {"severity": "low"}),
    ],
)
def test_invalid_arguments_are_refused(model: type[BaseModel], args: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        model(**args)


# --- read tools -----------------------------------------------------------------------


def details(events: list[dict[str, Any]]) -> list[str]:
    return [event["detail"] for event in events]


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        # Newest first; the two events at t=-60 keep the log's order; the future one is absent.
        ({"query": ""}, ["curl", "inbound scan", "Beacon to C2", "bad pw"]),
        ({"query": "BEACON"}, ["Beacon to C2"]),
        ({"query": "beacon", "hours": 48}, ["Beacon to C2", "old beacon"]),
        ({"query": "process"}, ["curl"]),  # matches the action too
        ({"query": "", "host": "web-01"}, ["curl", "Beacon to C2"]),
        ({"query": "", "ip": C2}, ["inbound scan", "Beacon to C2"]),  # source or destination
        ({"query": "", "user": "alice"}, ["bad pw"]),
        ({"query": "allowed", "host": "web-01", "ip": C2, "hours": 1}, ["Beacon to C2"]),
        ({"query": "", "host": "", "ip": "", "user": ""}, ["curl", "inbound scan", "Beacon to C2", "bad pw"]),
        ({"query": "", "host": "web-01", "user": "alice"}, []),
        ({"query": "", "hours": 1}, ["curl", "inbound scan", "Beacon to C2"]),
    ],
)
def test_siem_search_filters(args: dict[str, Any], expected: list[str]) -> None:
    assert details(call_now("siem_search", **args)) == expected


def test_siem_search_returns_whole_events() -> None:
    world = make_world()
    assert call_now("siem_search", world, query="scan") == [world.logs[4].model_dump()]


def test_siem_search_returns_the_50_newest() -> None:
    world = World(logs=[LogEvent(time=-t, source="dns", action="query") for t in range(1, 61)])
    assert [event["time"] for event in call_now("siem_search", world, query="")] == [-t for t in range(1, 51)]


def test_siem_search_sees_events_as_simulated_time_passes() -> None:
    sim = Sim(seed=0)
    tools = soc_tools(make_world(), rng=sim.rng, latency=INSTANT)

    async def later() -> list[str]:
        await asyncio.sleep(100)
        return details(await call(tools, "siem_search", query="beacon"))

    assert sim.run(later()) == ["future beacon", "Beacon to C2"]


@given(
    times=st.lists(st.integers(-200_000, 50), max_size=70),
    hosts=st.lists(st.sampled_from(["a", "b", ""]), min_size=70, max_size=70),
    host=st.sampled_from([None, "a", "b"]),
    hours=st.integers(1, 168),
)
@settings(max_examples=50)
def test_siem_search_returns_exactly_the_newest_matches(
    times: list[int], hosts: list[str], host: str | None, hours: int
) -> None:
    world = World(
        logs=[
            LogEvent(time=t, source="dns", host=h, action="query", detail=str(i))
            for i, (t, h) in enumerate(zip(times, hosts, strict=False))
        ]
    )
    matches = [
        event
        for event in world.logs
        if -hours * 3600 <= event.time <= 0 and (host is None or event.host == host)
    ]
    expected = sorted(matches, key=lambda event: -event.time)[:50]
    assert call_now("siem_search", world, query="", host=host, hours=hours) == [
        event.model_dump() for event in expected
    ]


@pytest.mark.parametrize(
    ("ip", "expected"),
    [
        (C2, {"ip": C2, "reputation": "malicious", "note": "known C2"}),
        ("198.51.100.7", {"ip": "198.51.100.7", "reputation": "benign", "note": ""}),
        ("192.0.2.1", {"ip": "192.0.2.1", "reputation": "unknown", "note": ""}),
    ],
)
def test_threat_intel(ip: str, expected: dict[str, str]) -> None:
    assert call_now("threat_intel", ip=ip) == expected


def test_asset_lookup_reports_isolation() -> None:
    world = make_world()
    expected = {
        "name": "dc-01",
        "ip": "10.0.0.2",
        "criticality": "high",
        "owner": "it",
        "os": "windows",
        "isolated": False,
    }
    assert call_now("asset_lookup", world, host="dc-01") == expected
    world.change("isolated", "dc-01", True, at=0.0)
    assert call_now("asset_lookup", world, host="dc-01") == {**expected, "isolated": True}


def test_user_lookup_reports_disabled() -> None:
    world = make_world()
    expected = {"name": "root-admin", "role": "admin", "privileged": True, "disabled": False}
    assert call_now("user_lookup", world, user="root-admin") == expected
    world.change("disabled", "root-admin", True, at=0.0)
    assert call_now("user_lookup", world, user="root-admin") == {**expected, "disabled": True}


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("asset_lookup", {"host": "nope"}, "unknown host='nope': not in the asset inventory"),
        ("edr_process_tree", {"host": "nope"}, "unknown host='nope': not in the asset inventory"),
        ("user_lookup", {"user": "mallory"}, "unknown user='mallory': not in the identity provider"),
        ("isolate_host", {"host": "nope"}, "unknown host='nope': not in the asset inventory"),
        ("release_host", {"host": "nope"}, "unknown host='nope': not in the asset inventory"),
        ("disable_user", {"user": "mallory"}, "unknown user='mallory': not in the identity provider"),
        ("enable_user", {"user": "mallory"}, "unknown user='mallory': not in the identity provider"),
    ],
)
def test_unknown_names_are_clear_errors(name: str, args: dict[str, str], message: str) -> None:
    world = make_world()
    with pytest.raises(LookupError) as info:
        call_now(name, world, **args)
    assert str(info.value) == message
    assert world.changes == []


def test_edr_process_tree_is_ordered_by_pid_with_parents() -> None:
    tree = call_now("edr_process_tree", host="web-01")
    assert [(p["pid"], p["parent"], p["name"], p["parent_name"]) for p in tree] == [
        (1, None, "init", None),
        (200, 1, "nginx", "init"),
        (350, 200, "sh", "nginx"),
        (351, 350, "curl", "sh"),
    ]
    assert tree[2] == {
        "host": "web-01",
        "pid": 350,
        "parent": 200,
        "name": "sh",
        "cmdline": "",
        "user": "www-data",
        "parent_name": "nginx",
    }
    # A parent the EDR never saw on this host has no name.
    assert call_now("edr_process_tree", host="db-01")[0]["parent_name"] is None
    assert call_now("edr_process_tree", host="laptop-7") == []


def test_firewall_rules() -> None:
    world = make_world()
    assert call_now("firewall_rules", world, ip=C2) == {"ip": C2, "blocked": False}
    world.change("blocklist", C2, True, at=0.0)
    assert call_now("firewall_rules", world, ip=C2) == {"ip": C2, "blocked": True}


# --- write tools ----------------------------------------------------------------------

PAIRS = [
    ("block_ip", "unblock_ip", "block", "unblock", "blocklist", "ip", C2, "blocked"),
    ("isolate_host", "release_host", "isolate", "release", "isolated", "host", "web-01", "isolated"),
    ("disable_user", "enable_user", "disable", "enable", "disabled", "user", "alice", "disabled"),
]


@pytest.mark.parametrize(("on", "off", "intent", "opposite", "set_name", "key", "value", "state"), PAIRS)
def test_writes_change_the_world_and_their_specs_check_it(
    on: str, off: str, intent: str, opposite: str, set_name: Any, key: str, value: str, state: str
) -> None:
    world = make_world()
    sim = Sim(seed=0, start=1000.0)
    tools = soc_tools(world, rng=sim.rng, latency=TWO_SECONDS)
    do, undo = tool_of(tools, on), tool_of(tools, off)
    act, back = do.action, undo.action
    assert act is not None
    assert back is not None
    assert act.compensate is not None
    assert back.compensate is not None
    compensate, undo_compensate = act.compensate, back.compensate
    args = do.input_model(**{key: value})
    assert (act.intent, act.opposite, back.intent, back.opposite) == (intent, opposite, opposite, intent)
    assert act.resource(args) == back.resource(args) == f"{key}:{value}"

    async def scenario() -> list[Any]:
        seen: list[Any] = [await act.precheck(args), await back.precheck(args)]
        seen.append(await do.fn(args))
        seen += [await act.precheck(args), await act.verify(args), await back.verify(args)]
        await asyncio.sleep(10)
        await compensate(args)
        seen += [await act.verify(args), await back.verify(args)]
        seen.append(await undo.fn(args))  # already in the desired state: changes nothing
        await undo_compensate(args)
        seen.append(await act.verify(args))
        return seen

    assert sim.run(scenario()) == [
        False,
        True,
        {key: value, state: True},
        True,
        True,
        False,
        False,
        True,
        {key: value, state: False},
        True,
    ]
    # Applied after its 2 s latency; compensated 10 s later, at once; the second
    # write is a no-op; its compensation (2 s later) puts the key back.
    assert [(c.time, c.set, c.key, c.present) for c in world.changes] == [
        (1002.0, set_name, value, True),
        (1012.0, set_name, value, False),
        (1014.0, set_name, value, True),
    ]


@pytest.mark.parametrize(
    ("name", "args", "impact"),
    [
        ("block_ip", {"ip": C2}, "low"),
        ("unblock_ip", {"ip": C2}, "low"),
        ("isolate_host", {"host": "laptop-7"}, "low"),
        ("isolate_host", {"host": "web-01"}, "low"),
        ("isolate_host", {"host": "dc-01"}, "high"),
        ("isolate_host", {"host": "db-01"}, "high"),
        ("release_host", {"host": "db-01"}, "high"),
        ("release_host", {"host": "web-01"}, "low"),
        ("isolate_host", {"host": "nope"}, "high"),  # unknown: a human decides
        ("disable_user", {"user": "alice"}, "low"),
        ("disable_user", {"user": "root-admin"}, "high"),
        ("enable_user", {"user": "root-admin"}, "high"),
        ("disable_user", {"user": "mallory"}, "high"),
        ("open_ticket", {"title": "t", "severity": "critical"}, "low"),
    ],
)
def test_impact(name: str, args: dict[str, str], impact: str) -> None:
    tool = tool_of(soc_tools(make_world(), rng=Sim(seed=0).rng), name)
    assert tool.action is not None
    assert tool.action.impact(tool.input_model(**args)) == impact


def test_open_ticket_numbers_tickets_and_finds_them_by_title() -> None:
    world = make_world()
    world.tickets.append(Ticket(id="TKT-0002", title="from the scenario"))
    sim = Sim(seed=0)
    tool = tool_of(soc_tools(world, rng=sim.rng), "open_ticket")
    action = tool.action
    assert action is not None
    assert (action.intent, action.opposite, action.compensate) == ("open_ticket", None, None)
    first = tool.input_model(title="C2 beacon on web-01", severity="high", body="blocked 203.0.113.9")
    second = tool.input_model(title="Phishing", severity="low")
    assert action.resource(first) == "ticket:C2 beacon on web-01"

    async def scenario() -> list[Any]:
        return [
            await action.precheck(first),
            await tool.fn(first),
            await action.precheck(first),
            await action.verify(first),
            await action.verify(second),
            await tool.fn(second),
        ]

    assert sim.run(scenario()) == [
        False,
        {"id": "TKT-0003", "title": "C2 beacon on web-01", "severity": "high"},
        True,
        True,
        False,
        {"id": "TKT-0004", "title": "Phishing", "severity": "low"},
    ]
    assert world.tickets[1] == Ticket(
        id="TKT-0003", title="C2 beacon on web-01", severity="high", body="blocked 203.0.113.9"
    )
    assert world.changes == []  # tickets are not part of the state sets


# --- latency --------------------------------------------------------------------------


def durations(seed: int, calls: list[tuple[str, dict[str, Any]]], **kwargs: Any) -> list[tuple[str, float]]:
    """Each call's simulated duration, by tool, in one sim."""
    sim = Sim(seed=seed)
    tools = soc_tools(make_world(), rng=sim.rng, **kwargs)

    async def calls_in_turn() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        seen = []
        for name, args in calls:
            started = loop.time()
            await call(tools, name, **args)
            seen.append((name, loop.time() - started))
        return seen

    return sim.run(calls_in_turn())


SIEM = ("siem_search", {"query": "beacon"})
INTEL = ("threat_intel", {"ip": C2})


def test_latency_is_drawn_from_each_tools_own_stream() -> None:
    seen = durations(7, [SIEM, INTEL, SIEM, INTEL])
    siem, intel = Sim(seed=7).rng("latency/siem_search"), Sim(seed=7).rng("latency/threat_intel")
    expected = [
        DEFAULT_LATENCY["siem_search"].draw(siem),
        DEFAULT_LATENCY["threat_intel"].draw(intel),
        DEFAULT_LATENCY["siem_search"].draw(siem),
        DEFAULT_LATENCY["threat_intel"].draw(intel),
    ]
    assert [name for name, _ in seen] == ["siem_search", "threat_intel"] * 2
    assert [duration for _, duration in seen] == pytest.approx(expected, rel=1e-12)
    assert durations(7, [SIEM, INTEL, SIEM, INTEL]) == seen  # same seed, same latencies
    assert durations(8, [SIEM, INTEL, SIEM, INTEL]) != seen


def test_calling_one_source_does_not_shift_anothers_draws() -> None:
    alone = durations(3, [SIEM, SIEM, SIEM])
    interleaved = durations(3, [INTEL, SIEM, INTEL, INTEL, SIEM, ("asset_lookup", {"host": "web-01"}), SIEM])
    assert [d for name, d in interleaved if name == "siem_search"] == pytest.approx(
        [d for _, d in alone], rel=1e-12
    )


def test_sources_with_the_same_latency_still_draw_differently() -> None:
    same = {name: Latency(median=1.0, sigma=0.5) for name in ("siem_search", "threat_intel")}
    [(_, siem), (_, intel)] = durations(0, [SIEM, INTEL], latency=same)
    assert siem != intel


def test_latency_override() -> None:
    override = {
        "threat_intel": Latency(median=5.0, sigma=0),
        "siem_search": Latency(median=1.0, sigma=0, floor=3.0),
        "block_ip": Latency(median=0, sigma=0),
    }
    calls = [INTEL, SIEM, ("block_ip", {"ip": C2})]
    assert durations(0, calls, latency=override) == [
        ("threat_intel", 5.0),
        ("siem_search", 3.0),
        ("block_ip", 0.0),
    ]


def test_default_latencies_are_lognormal_around_their_median_above_their_floor() -> None:
    rng = random.Random(0)
    for name, latency in DEFAULT_LATENCY.items():
        draws = [latency.draw(rng) for _ in range(2001)]
        assert min(draws) >= latency.floor, name
        assert statistics.median(draws) == pytest.approx(latency.median, rel=0.1), name


def test_unknown_latency_keys_are_refused_with_the_valid_ones() -> None:
    with pytest.raises(InvalidArgument) as info:
        soc_tools(
            World(),
            rng=Sim(seed=0).rng,
            latency={"sim_search": Latency(median=1.0), "nope": Latency(median=1)},
        )
    assert str(info.value) == (
        f"latency names unknown ['nope', 'sim_search']; choose from {sorted(DEFAULT_LATENCY)}; "
        "did you mean 'siem_search' for 'sim_search'?"
    )


def test_latency_values_must_be_latencies() -> None:
    with pytest.raises(InvalidArgument, match=r"^latency\['siem_search'\]=8.0 must be a Latency$"):
        soc_tools(World(), rng=Sim(seed=0).rng, latency={"siem_search": 8.0})  # type: ignore[dict-item]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"median": -1.0}, "Latency median=-1.0 must be a finite number >= 0"),
        ({"median": float("inf")}, "Latency median=inf must be a finite number >= 0"),
        ({"median": 1.0, "sigma": -0.1}, "Latency sigma=-0.1 must be a finite number >= 0"),
        ({"median": 1.0, "floor": float("nan")}, "Latency floor=nan must be a finite number >= 0"),
        ({"median": True}, "Latency median=True must be a finite number >= 0"),
        ({"median": 0.0}, "Latency median=0 needs sigma=0 (a lognormal has no zero), got sigma=0.5"),
    ],
)
def test_invalid_latencies(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=f"^{re.escape(message)}$"):
        Latency(**kwargs)


# --- through the agent ----------------------------------------------------------------


def run_with_agent(world: World, script: list[Any], *, seed: int = 5) -> Any:
    sim = Sim(seed=seed)
    with ScriptedModel(script) as model:
        agent = LLMAgent(model=model, system="You investigate alerts.", tools=soc_tools(world, rng=sim.rng))
        return sim.run(run(agent_workflow(agent), {"alert": "C2 beacon", "ip": C2}, env=sim))


def test_a_write_through_the_agent_is_an_ok_tool_call() -> None:
    world = make_world()
    result = run_with_agent(world, [respond(tool_call("block_ip", {"ip": C2})), respond(submit("close"))])
    assert result.final_state == "close"
    [called] = result.trace.query(kind="tool_called")
    latency = DEFAULT_LATENCY["block_ip"].draw(Sim(seed=5).rng("latency/block_ip"))
    assert (called.tool, called.status, called.attempts, called.output, called.duration) == (
        "block_ip",
        "ok",
        1,
        '{"blocked": true, "ip": "203.0.113.9"}',
        pytest.approx(latency),
    )
    assert world.blocklist == {C2}
    assert world.changes[0].time == pytest.approx(latency)


def test_an_unknown_host_through_the_agent_is_an_error_result() -> None:
    world = make_world()
    script = [respond(tool_call("asset_lookup", {"host": "nope"})), respond(submit("escalate", 0.3))]
    result = run_with_agent(world, script)
    [called] = result.trace.query(kind="tool_called")
    # "Not found" is the source's answer: not retried, not counted against the source.
    assert (called.status, called.attempts) == ("error", 1)
    assert called.output == "LookupError: unknown host='nope': not in the asset inventory"
