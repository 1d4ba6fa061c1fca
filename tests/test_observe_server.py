"""The observation server: a real server on 127.0.0.1:0 serving /status, /events and / about a
system that runs in virtual time, while the server itself runs on the real clock."""

from __future__ import annotations

import json
import socket
import threading
from typing import Any

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors.specs import DEFAULT_MAILBOX_SIZE
from tests.observe_client import fetch, get_json, read_events


class Fragile(sa.Actor):
    """Counts messages; crashes on "boom"."""

    async def handle(self, message: object) -> object:
        if message == "boom":
            raise ValueError("fuel < 0")
        return message


class Other(sa.Actor):
    async def handle(self, message: object) -> object:
        return message


def by_path(status: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {actor["path"]: actor for actor in status["actors"]}


async def test_status_shows_the_tree_each_actor_and_its_last_crash(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe="127.0.0.1:0") as system:
        assert system.observe_url is not None
        assert system.observe_url.startswith("http://127.0.0.1:")
        fleet = await system.spawn_supervisor("fleet", max_restarts=10)
        ship = await fleet.start_child(sa.ChildSpec("ship:1", Fragile))
        for _ in range(3):
            await ship.ask("ping")
        await trio.sleep(7.5)
        await ship.send("boom")
        crashed_at = trio.current_time()
        await ship.ask("ping")  # the restarted incarnation answers
        status = await get_json(system.observe_url + "/status")
    assert status["version"] == 1
    assert status["clock"] == "virtual"
    assert status["speed"] is None
    assert status["paused"] is False
    assert status["sim_time"] == pytest.approx(crashed_at - 0.0, abs=1e-9)
    actors = by_path(status)
    assert list(actors)[:2] == ["services", "services/router"]  # tree order: parents first
    assert list(actors).index("user") < list(actors).index("user/fleet")
    assert list(actors).index("user/fleet") < list(actors).index("user/fleet/ship:1")
    one = actors["user/fleet/ship:1"]
    assert one["name"] == "ship:1"
    assert one["kind"] == "Fragile"
    assert one["supervisor"] is False
    assert one["state"] == "running"
    assert one["handled"] == 4  # the crash did not finish handling
    assert one["restarts"] == 1
    assert one["crashes"] == 1
    assert one["mailbox_capacity"] == DEFAULT_MAILBOX_SIZE
    assert one["mailbox_depth"] == 0
    assert one["last_crash"] == {"time": crashed_at, "reason": "ValueError: fuel < 0"}
    assert actors["user/fleet"]["supervisor"] is True
    assert actors["user/fleet"]["kind"] == "Supervisor"
    assert actors["user/fleet"]["last_crash"] is None
    assert status["totals"]["restarts"] == 1
    assert status["totals"]["crashes"] == 1
    assert status["totals"]["messages_handled"] == 4
    assert status["totals"]["dead_letters"] == 1  # the message it crashed on
    assert status["totals"]["actors"] == status["actors_total"] == len(actors)
    assert status["sim"] is None


async def test_status_sorts_by_a_field_and_limits_the_list(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        refs = [await system.spawn(Other, name=f"a{i}") for i in range(5)]
        for i, ref in enumerate(refs):
            for _ in range(i * 3):
                await ref.ask("x")
        url = system.observe_url
        assert url is not None
        top = await get_json(url + "/status?sort=handled&limit=2")
        everything = await get_json(url + "/status?limit=0")
        bounded = await get_json(url + "/status?limit=3")
    assert [a["name"] for a in top["actors"]] == ["a4", "a3"]
    assert [a["handled"] for a in top["actors"]] == [12, 9]
    assert everything["actors"] == []
    assert everything["actors_total"] == top["actors_total"] >= 5 + 6
    assert len(bounded["actors"]) == 3


@pytest.mark.parametrize(
    "query",
    ["limit=-1", "limit=x", "limit=1.5", "limit=99999999999", "sort=name", "sort="],
)
async def test_bad_status_parameters_answer_400_saying_what(
    virtual_clock: trio.testing.MockClock, query: str
) -> None:
    async with sa.open_system(observe=True) as system:
        status, _, body = await fetch(f"{system.observe_url}/status?{query}")
    assert status == 400
    name = query.split("=")[0]
    assert name in json.loads(body)["error"]


async def test_events_stream_a_restart_with_its_cause_and_a_dead_letter(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        ref = await system.spawn(Fragile, name="ship:7")
        connected = trio.Event()
        got: list[list[tuple[str, Any]]] = []

        async def reader() -> None:
            got.append(
                await trio.to_thread.run_sync(
                    read_events,
                    f"{system.observe_url}/events",
                    2,
                    lambda: trio.from_thread.run_sync(connected.set),
                )
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await connected.wait()
            await trio.sleep(3.0)
            await ref.send("boom")
    (events,) = got
    kinds = [kind for kind, _ in events]
    assert kinds == ["dead_letter", "restart"]  # the crashed-on message, then the restart
    dead, restart = events[0][1], events[1][1]
    assert dead["actor"] == "ship:7"
    assert "crashed_while_handling" in dead["detail"]
    assert restart["actor"] == "user/ship:7"
    assert restart["restarts"] == 1
    assert restart["cause"] == "ValueError: fuel < 0"
    assert restart["time"] == pytest.approx(3.0)
    assert "fuel < 0" in restart["detail"]


async def test_events_stream_a_give_up(virtual_clock: trio.testing.MockClock) -> None:
    async with sa.open_system(observe=True) as system:
        group = await system.spawn_supervisor("group", max_restarts=1, within=60.0)
        ref = await group.start_child(sa.ChildSpec("w", Fragile))
        connected = trio.Event()
        got: list[list[tuple[str, Any]]] = []

        async def reader() -> None:
            got.append(
                await trio.to_thread.run_sync(
                    read_events,
                    f"{system.observe_url}/events",
                    "give_up",
                    lambda: trio.from_thread.run_sync(connected.set),
                )
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await connected.wait()
            await ref.send("boom")
            await trio.sleep(0.1)
            await ref.send("boom")
    kinds = [kind for kind, _ in got[0]]
    assert kinds.count("give_up") == 1
    give_up = dict(got[0])["give_up"]
    assert give_up["actor"] == "user/group"
    assert "more than 1 restarts" in give_up["detail"]
    assert "ValueError: fuel < 0" in give_up["detail"]


async def test_the_server_and_its_thread_end_with_the_block(
    virtual_clock: trio.testing.MockClock,
) -> None:
    before = set(threading.enumerate())
    async with sa.open_system(observe=True) as system:
        url = system.observe_url
        assert url is not None
        status, _, _ = await fetch(url + "/")
        assert status == 200
    assert system.observe_url is None
    left = [t for t in set(threading.enumerate()) - before if t.name == "spaceactors-observe"]
    assert left == []
    host, port = url.removeprefix("http://").rsplit(":", 1)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection((host, int(port)), timeout=5).close()


async def test_the_dashboard_page_is_served_at_the_root(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        status, headers, body = await fetch(f"{system.observe_url}/")
    assert status == 200
    assert headers["content-type"].startswith("text/html")
    assert b"<html" in body.lower()


async def test_no_server_without_observe(virtual_clock: trio.testing.MockClock) -> None:
    async with sa.open_system() as system:
        assert system.observe_url is None
        names = [row.name for row in system.services.which_children()]
    assert "observe" not in names


async def test_a_taken_port_fails_before_anything_starts(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        taken = system.observe_url
        assert taken is not None
        with pytest.raises(OSError, match=r"cannot listen on 127\.0\.0\.1:"):
            async with sa.open_system(observe=taken.removeprefix("http://")):
                pytest.fail("the block ran")


async def test_events_stream_fault_rules_as_they_fire(
    virtual_clock: trio.testing.MockClock,
) -> None:
    plan = sa.FaultPlan(
        [
            sa.DropMessages(probability=1.0, scope=sa.Scope(actors="lossy")),
            sa.CrashActor(actors="ship:9", nth=1),
        ]
    )
    async with sa.open_system(observe=True, faults=plan) as system:
        lossy = await system.spawn(Other, name="lossy")
        ship = await system.spawn(Fragile, name="ship:9")
        connected = trio.Event()
        got: list[list[tuple[str, Any]]] = []

        async def reader() -> None:
            got.append(
                await trio.to_thread.run_sync(
                    read_events,
                    f"{system.observe_url}/events",
                    "restart",
                    lambda: trio.from_thread.run_sync(connected.set),
                )
            )

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await connected.wait()
            await system.send(lossy, "lost")
            await system.send(ship, "hello")
    faults = [data for kind, data in got[0] if kind == "fault"]
    assert [f["actor"] for f in faults] == ["lossy", "ship:9"]
    assert faults[0]["detail"].startswith("drop str")
    assert "fault rule" in faults[1]["detail"]
    restart = got[0][-1][1]
    assert restart["actor"] == "user/ship:9"
    assert restart["cause"].startswith("InjectedCrash: fault rule")


async def test_status_shows_a_paused_actor_and_its_waiting_messages(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        ref = await system.spawn(Other, name="slow", mailbox_size=8)
        ref.pause()
        await trio.sleep(1)
        for i in range(3):
            await ref.send(i)
        waiting = await get_json(f"{system.observe_url}/status?sort=mailbox&limit=1")
        ref.resume()
        await ref.ask("drained")
        drained = await get_json(f"{system.observe_url}/status")
    (top,) = waiting["actors"]
    assert (top["name"], top["state"], top["mailbox_depth"]) == ("slow", "paused", 3)
    assert top["mailbox_capacity"] == 8
    after = by_path(drained)["user/slow"]
    assert (after["state"], after["mailbox_depth"], after["handled"]) == ("running", 0, 4)
