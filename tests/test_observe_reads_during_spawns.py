"""/status and /metrics read the tree in the server's own thread, by C-level copies, while the
system changes it: a read during a burst of spawns (and stops) answers at once, never waiting
for the system's thread, and a small system's documents are what they always were (tree order,
each sort, each limit, the totals and the rates)."""

from __future__ import annotations

import itertools
import json
import sys
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors.observe import model, server
from spaceactors.observe.rates import Rates
from spaceactors.supervisor import Supervisor
from tests.observe_client import request


class Other(sa.Actor):
    async def handle(self, message: object) -> object:
        if message == "boom":
            raise ValueError("fuel < 0")
        return message


@pytest.fixture
def often_switching() -> Iterator[None]:
    """The GIL changes threads every 10 µs (not 5 ms): a read that could interleave with the
    system's changes does."""
    saved = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    try:
        yield
    finally:
        sys.setswitchinterval(saved)


async def test_reads_during_a_burst_of_spawns_never_wait_for_the_system(
    autojump_clock: trio.testing.MockClock,
    often_switching: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    crossings: list[str] = []
    to_system = server.Observer.in_system

    async def in_system(self: server.Observer, fn: Any) -> Any:
        crossings.append(repr(fn))
        return await to_system(self, fn)

    monkeypatch.setattr(server.Observer, "in_system", in_system)
    answers: list[tuple[str, int, bytes]] = []
    async with sa.open_system(observe="127.0.0.1:0") as system:
        url = system.observe_url
        assert url is not None
        done = trio.Event()

        def read() -> None:
            paths = ["/status?limit=5", "/status?sort=restarts&limit=3", "/metrics"]
            for path in itertools.islice(itertools.cycle(paths), 30):
                status, _, body = request(url + path)
                answers.append((path, status, body))

        async def reader() -> None:
            try:
                await trio.to_thread.run_sync(read)
            finally:
                done.set()

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            kinds = 0
            while not done.is_set() and kinds < 3000:  # the burst: spawns, new kinds, stops
                kinds += 1
                kind = type(f"Kind{kinds}", (Other,), {})
                ref = await system.spawn(kind, name=f"a{kinds}")
                if kinds % 3 == 0:
                    await ref.stop()  # a new kind in the retired counts
                    with pytest.raises(sa.ActorUnavailable):
                        await system.router.route(ref, "late")  # a dead letter
    assert crossings == []  # every read was made in the server's thread
    assert [status for _, status, _ in answers] == [200] * len(answers), answers[:3]
    totals = [
        json.loads(body)["actors_total"] for path, _, body in answers if path.startswith("/status")
    ]
    # The burst adds actors, and stops one in three right after spawning it: the count seen
    # only grows, but for that one actor alive between its spawn and its stop. A torn read (a
    # supervisor's children copied while they change) would show any count.
    assert all(later >= earlier - 1 for earlier, later in itertools.pairwise(totals)), totals
    assert totals[-1] > totals[0]  # and the reads were made while it went on


# --- the documents of a small system, against the reading they always had -------------------


def reference(
    system: Any, snap: model.Snapshot, limit: int, sort: str | None, rates: Mapping[Any, float]
) -> dict[str, Any]:
    """The actors, totals and count of ``/status`` as read before (in the system's thread):
    every child copied in tree order, sorted (stable, descending), cut to `limit`."""
    copied: list[tuple[Any, ...]] = []

    def visit(prefix: str, supervisor: Supervisor) -> None:
        for child in list(supervisor._children.values()):
            copied.append(model.copy(prefix, child))
            if type(child.runtime) is Supervisor:
                visit(f"{prefix}{child.spec.name}/", child.runtime)

    visit("", system.root)
    keys = {
        "restarts": lambda r: (r[model.RESTARTS], r[model.CRASHES]),
        "mailbox": lambda r: r[model.DEPTH],
        "handled": lambda r: r[model.HANDLED],
        "rate": lambda r: rates.get(r[model.CHILD], 0.0),
    }
    ordered = copied if sort is None else sorted(copied, key=keys[sort], reverse=True)
    retired = snap.retired.values()
    return {
        "actors": [
            model.row_json(model.row(r, snap.offset), rates.get(r[model.CHILD], 0.0))
            for r in ordered[:limit]
        ],
        "actors_total": len(copied),
        "totals": {
            "messages_handled": sum(r[model.HANDLED] for r in copied)
            + sum(t.handled for t in retired),
            "restarts": sum(r[model.RESTARTS] for r in copied) + sum(t.restarts for t in retired),
            "crashes": sum(r[model.CRASHES] for r in copied) + sum(t.crashes for t in retired),
        },
    }


class Slow(sa.Actor):
    """Waits on each message until told: its mailbox fills."""

    def __init__(self, gate: trio.Event) -> None:
        self.gate = gate

    async def handle(self, message: object) -> object:
        await self.gate.wait()
        return message


async def build(system: Any, gate: trio.Event) -> None:
    """A small tree of every shape: nested supervisors, crashed and restarted actors, a stopped
    one, retired ones, mailboxes of several depths, counts that tie."""
    fleet = await system.spawn_supervisor("fleet", max_restarts=50)
    wing = await fleet.start_child(sa.SupervisorSpec("wing", max_restarts=50))
    for i in range(6):
        ref = await wing.start_child(sa.ChildSpec(f"w{i}", Other))
        for _ in range(i % 3):
            await ref.ask("ping")
        for _ in range(i % 2):
            await ref.send("boom")
            await ref.ask("ping")
    for i in range(5):
        ref = await fleet.start_child(sa.ChildSpec(f"f{i}", Slow, args=(gate,)))
        for _ in range(i):
            ref.try_send("wait")
    for i in range(4):
        ref = await system.spawn(Other, name=f"u{i}")
        for _ in range(3 - i % 2):
            await ref.ask("ping")
        if i == 3:
            await ref.send("boom")
            await ref.ask("ping")
    gone = await system.spawn(Other, name="gone")
    await gone.ask("ping")
    await gone.stop()
    await trio.sleep(1.0)


@pytest.mark.parametrize("sort", [None, *model.SORTS])
async def test_status_of_a_small_system_is_what_it_was(
    autojump_clock: trio.testing.MockClock, sort: str | None
) -> None:
    gate = trio.Event()
    async with sa.open_system(observe="127.0.0.1:0") as system:
        await build(system, gate)
        from spaceactors.clocks import run_control

        clock = run_control()
        rates = Rates()
        first = model.take(system, clock)
        rates.update(first.now, first.tree)
        await trio.sleep(2.0)
        for ref in system.registry._by_id.values():
            if ref.name.startswith("u"):
                await ref.ask("ping")
        snap = model.take(system, clock)
        by_child = rates.update(snap.now, snap.tree)
        assert any(by_child.values())  # some rates are not zero: the order is tested
        for limit in (0, 1, 3, 7, 500):
            got = model.status(snap, limit=limit, sort=sort, rates=by_child)
            wanted = reference(system, snap, limit, sort, by_child)
            assert got["actors"] == wanted["actors"], (limit, sort)
            assert got["actors_total"] == wanted["actors_total"]
            assert {k: got["totals"][k] for k in wanted["totals"]} == wanted["totals"]
        gate.set()


async def test_rates_are_the_growth_of_each_count_per_second(
    autojump_clock: trio.testing.MockClock,
) -> None:
    from spaceactors.clocks import run_control

    async with sa.open_system() as system:
        refs = [await system.spawn(Other, name=f"r{i}") for i in range(4)]
        clock = run_control()
        rates = Rates()
        first = model.take(system, clock)
        assert rates.update(first.now, first.tree) == {}  # one reading: no rate yet
        before = dict(zip(first.tree.children, first.tree.handled, strict=True))
        await trio.sleep(4.0)
        for i, ref in enumerate(refs):
            for _ in range(2 * i):
                await ref.ask("ping")
        late = await system.spawn(Other, name="late")
        await late.ask("ping")
        snap = model.take(system, clock)
        got = rates.update(snap.now, snap.tree)
        span = snap.now - first.now
        assert span == pytest.approx(4.0)
        wanted = {
            child: max(0.0, (n - before.get(child, n)) / span)
            for child, n in zip(snap.tree.children, snap.tree.handled, strict=True)
        }
        assert got == wanted
        in_order = [wanted[child] for child in snap.tree.children]
        assert got.column(snap.tree) == in_order  # the tree changed: found by child
        assert list(map(got.at(snap.tree), range(len(snap.tree)))) == in_order
        by_name = {child.spec.name: got[child] for child in snap.tree.children}
        assert by_name["r3"] == pytest.approx(6 / 4.0)
        assert by_name["late"] == 0.0  # new since the last reading: no rate yet
        again = model.take(system, clock)
        assert rates.update(again.now, again.tree) == got  # no time passed: kept
        await trio.sleep(2.0)
        await refs[1].ask("ping")
        same = model.take(system, clock)  # the same children: rates found by position
        view = rates.update(same.now, same.tree)
        assert view.column(same.tree) == [
            0.5 if child.spec.name == "r1" else 0.0 for child in same.tree.children
        ]
        assert dict(view) == dict(zip(same.tree.children, view.column(same.tree), strict=True))


SERVER_IMPORTS = """
import sys, threading, urllib.request
import trio
import spaceactors as sa

imported = []
def audit(event, args):
    if event == "import" and threading.current_thread().name == "spaceactors-observe":
        imported.append(args[0])
sys.addaudithook(audit)

async def main():
    async with sa.open_system(observe="127.0.0.1:0") as system:
        url = system.observe_url
        for path in ("/status", "/status?sort=rate", "/metrics", "/", "/events?x"):
            def get():
                try:
                    with urllib.request.urlopen(url + path, timeout=10) as answer:
                        answer.read(1)
                except Exception:
                    pass
            await trio.to_thread.run_sync(get)
trio.run(main)
print(sorted(set(imported)))
"""


def test_the_server_thread_imports_nothing_while_the_system_runs() -> None:
    # An import in the server's thread while the system runs flat out waits for the GIL
    # after each file read: a 10,000-ship build kept the first /status waiting seconds.
    # Everything it needs is imported before it starts (a fresh interpreter shows it).
    import subprocess

    done = subprocess.run(
        [sys.executable, "-c", SERVER_IMPORTS], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
