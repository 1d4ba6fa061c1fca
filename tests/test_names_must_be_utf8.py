"""Names UTF-8 cannot encode are refused at the call; the SQLite sink stores any string.

An actor name with a lone surrogate (``"\\udc80x"``) used to be accepted by spawn, and leaving
`open_system` with a SQLite trace then raised ``UnicodeEncodeError`` (the sink contract
promises ``OSError`` only). Every name -- actor, supervisor, child, service, topic, fault
rule, scenario -- goes through one check (`spaceactors.checks.name`); the SQLite sink escapes
what SQLite cannot store, as the JSON Lines sink does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import sim
from spaceactors.specs import ServiceSpec
from spaceactors.trace import EventKind, SQLiteSink, TraceEvent

SURROGATES = ["\udc80x", "\ud800", "ship-\udfff", "a.\ud83d.b"]


class Echo(sa.Actor):
    async def handle(self, message: object) -> object:
        return message


async def _no_serve(task_status: trio.TaskStatus[None]) -> None:
    task_status.started()


async def _build(world: Any) -> None:
    pass


SPECS: dict[str, Callable[[str], object]] = {
    "ChildSpec": lambda name: sa.ChildSpec(name, Echo),
    "ServiceSpec": lambda name: ServiceSpec(name, _no_serve),
    "SupervisorSpec": lambda name: sa.SupervisorSpec(name, children=[]),
    "CrashActor(actors)": lambda name: sa.CrashActor(actors=[name], nth=1),
    "rule name": lambda name: sa.DropMessages(probability=0.5, name=name),
    "Partition(groups)": lambda name: sa.Partition(groups=[["a"], [name]]),
    "Scope(actors)": lambda name: sa.Scope(actors=[name]),
}


@pytest.mark.parametrize("name", SURROGATES, ids=ascii)
@pytest.mark.parametrize("where", sorted(SPECS))
def test_specs_and_fault_rules_refuse_names_utf8_cannot_encode(where: str, name: str) -> None:
    with pytest.raises(sa.InvalidSpec, match="UTF-8"):
        SPECS[where](name)


@pytest.mark.parametrize("name", SURROGATES, ids=ascii)
def test_scenarios_refuse_names_utf8_cannot_encode(name: str) -> None:
    with pytest.raises(sim.ScenarioError, match=r"^scenario name must be text UTF-8 can encode"):
        sim.scenario(name=name)(_build)


@pytest.mark.parametrize("name", SURROGATES, ids=ascii)
async def test_spawn_subscribe_and_publish_refuse_names_utf8_cannot_encode(
    autojump_clock: trio.testing.MockClock, name: str
) -> None:
    async with sa.open_system() as system:
        ref = await system.spawn(Echo, name="echo")
        with pytest.raises(sa.InvalidSpec, match="UTF-8"):
            await system.spawn(Echo, name=name)
        with pytest.raises(sa.InvalidSpec, match="UTF-8"):
            await system.spawn_supervisor(name)
        with pytest.raises(sa.InvalidTopic, match="UTF-8"):
            system.router.subscribe(ref, name)
        with pytest.raises(sa.InvalidTopic, match="UTF-8"):
            await system.router.publish(name, "m")
        assert await ref.ask("still here", timeout=1) == "still here"


async def test_the_issue_input_a_surrogate_name_never_reaches_the_sqlite_trace(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    path = tmp_path / "t.db"
    async with sa.open_system(trace=path) as system:
        echo = await system.spawn(Echo, name="echo")
        with pytest.raises(sa.InvalidSpec, match=r"must be text UTF-8 can encode.*index 0"):
            await system.spawn(Echo, name="\udc80x")
        assert await echo.ask("hi", timeout=1) == "hi"
    assert any(event.actor == "echo" for event in sa.load_trace(path))


async def test_an_error_text_with_a_surrogate_is_stored_escaped(
    autojump_clock: trio.testing.MockClock, tmp_path: Path
) -> None:
    class Bad(sa.Actor):
        async def handle(self, message: object) -> None:
            raise RuntimeError("\ud800 boom")

    path = tmp_path / "t.db"
    async with sa.open_system(trace=path) as system:
        bad = await system.spawn(Bad, name="bad")
        with pytest.raises(sa.ActorCrashed):
            await bad.ask("x", timeout=1)
    details = [event.detail for event in sa.load_trace(path)]
    assert any("\\ud800 boom" in detail for detail in details), details


any_text = st.text(st.characters(codec=None, categories=None), max_size=30)
maybe_text = st.none() | any_text


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(maybe_text, maybe_text, maybe_text, any_text, st.none() | st.integers()),
        min_size=1,
        max_size=5,
    )
)
def test_the_sqlite_sink_raises_nothing_but_oserror_for_any_string(
    tmp_path_factory: pytest.TempPathFactory,
    rows: list[tuple[str | None, str | None, str | None, str, int | None]],
) -> None:
    path = tmp_path_factory.mktemp("sink") / "t.db"
    sink = SQLiteSink(path)
    events = [
        TraceEvent(float(i), EventKind.SEND, actor, peer, message_type, message_id, detail)
        for i, (actor, peer, message_type, detail, message_id) in enumerate(rows)
    ]
    try:
        for event in events:
            sink.write(event, event.to_json())
        sink.close()
    except OSError:  # the only error a sink may raise
        return
    stored = sa.load_trace(path) if all(_fits(e.message_id) for e in events) else None
    if stored is not None:
        assert len(stored) == len(events)
        for got, sent in zip(stored, events, strict=True):
            assert got.detail == _escaped(sent.detail)
            assert got.actor == (None if sent.actor is None else _escaped(sent.actor))


def _fits(message_id: int | None) -> bool:
    return message_id is None or 0 <= message_id < 2**63


def _escaped(text: str) -> str:
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
