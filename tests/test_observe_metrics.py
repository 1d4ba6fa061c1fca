"""/metrics: valid Prometheus text (prometheus-client's own parser reads it), the engine's
counters labelled by actor kind and never by instance, totals that never go down, and the
simulation's own counters while a world runs."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from prometheus_client.parser import text_string_to_metric_families

import spaceactors as sa
from spaceactors import sim
from spaceactors.clocks import run_control
from tests.observe_client import fetch, get_json

REQUIRED = {
    "spaceactors_messages_handled": "counter",
    "spaceactors_mailbox_depth": "gauge",
    "spaceactors_restarts": "counter",
    "spaceactors_crashes": "counter",
    "spaceactors_dead_letters": "counter",
    "spaceactors_reliable_retries": "counter",
    "spaceactors_reliable_failures": "counter",
    "spaceactors_router_deliveries": "counter",
    "spaceactors_router_failed_deliveries": "counter",
    "spaceactors_actors": "gauge",
    "spaceactors_sim_time_seconds": "gauge",
}


class Worker(sa.Actor):
    async def handle(self, message: object) -> object:
        if message == "boom":
            raise ValueError("fuel < 0")
        return message


async def scrape(url: str) -> dict[str, Any]:
    """{family name: family} of the server's /metrics, parsed by prometheus-client."""
    status, headers, body = await fetch(url + "/metrics")
    assert status == 200
    assert headers["content-type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(body.decode())}


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    (sample,) = [
        s for s in families[name].samples if s.labels == labels and not s.name.endswith("_created")
    ]
    return float(sample.value)


async def test_metrics_are_prometheus_text_labelled_by_kind_never_by_actor(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        refs = [await system.spawn(Worker, name=f"worker-{i}") for i in range(30)]
        for ref in refs:
            await system.send(ref, "hello")
            await ref.ask("ping")
        await refs[0].send("boom")
        await refs[0].ask("ping")
        families = await scrape(system.observe_url or "")
    for name, kind in REQUIRED.items():
        assert name in families, name
        assert families[name].type == kind, name
    assert value(families, "spaceactors_actors", kind="Worker") == 30
    assert value(families, "spaceactors_messages_handled", kind="Worker") == 61
    assert value(families, "spaceactors_crashes", kind="Worker") == 1
    assert value(families, "spaceactors_restarts", kind="Worker") == 1
    assert value(families, "spaceactors_dead_letters", reason="crashed_while_handling") == 1
    assert value(families, "spaceactors_router_deliveries", message_type="str") == 30
    assert value(families, "spaceactors_reliable_retries") == 0
    names = {f"worker-{i}" for i in range(30)}
    for family in families.values():
        for sample in family.samples:
            assert set(sample.labels) <= {"kind", "reason", "message_type"}
            assert not names & set(sample.labels.values()), sample


async def test_the_counts_of_actors_that_stopped_stay_in_the_totals(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(observe=True) as system:
        url = system.observe_url or ""
        ref = await system.spawn(Worker, name="short-lived")
        for _ in range(5):
            await ref.ask("x")
        await ref.send("boom")
        await ref.ask("x")
        before = await scrape(url)
        await ref.stop()
        after = await scrape(url)
        status = await get_json(url + "/status")
    for name, expected in (
        ("spaceactors_messages_handled", 6),
        ("spaceactors_restarts", 1),
        ("spaceactors_crashes", 1),
    ):
        assert value(before, name, kind="Worker") == expected
        assert value(after, name, kind="Worker") == expected, name
    assert value(after, "spaceactors_actors", kind="Worker") == 0
    assert status["totals"]["messages_handled"] == 6
    assert status["totals"]["restarts"] == 1
    assert "user/short-lived" not in {a["path"] for a in status["actors"]}


async def test_a_running_simulation_exports_its_own_counters(
    virtual_clock: trio.testing.MockClock,
) -> None:
    chosen = sim.load("trade-route")
    worlds: list[sim.World] = []
    built = trio.Event()

    def hold(world: sim.World) -> None:
        run_control().pause()  # hold the run still until the test has looked
        worlds.append(world)
        built.set()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(
            lambda: sim.run_scenario(chosen, observe=True, duration=600, keep_world=hold)
        )
        await built.wait()
        (world,) = worlds
        url = world.system.observe_url or ""
        first = await scrape(url)  # time stands at the start: at most the tick at 0 s ran
        assert value(first, "spaceactors_sim_ship_updates") in (0, len(world.ships))
        assert world.metrics.ticks <= 1
        assert value(first, "spaceactors_sim_time_seconds") == 0
        stepped = await get_json(f"{url}/control/step?seconds=300", "POST")
        assert stepped["sim_time"] == pytest.approx(300)
        second = await scrape(url)
        status = await get_json(url + "/status")
        ticks = world.metrics.ticks
        ships = len(world.ships)
        assert ticks > 0
        assert value(second, "spaceactors_sim_time_seconds") == pytest.approx(300)
        assert value(second, "spaceactors_sim_ticks") == ticks
        assert value(second, "spaceactors_sim_ship_updates") == ticks * ships
        assert value(second, "spaceactors_sim_dockings") == world.metrics.dockings
        assert value(second, "spaceactors_sim_trades") == world.metrics.trades
        assert value(second, "spaceactors_sim_rescues") == len(world.metrics.rescue_times)
        assert status["sim"]["ship_updates"] == ticks * ships
        assert status["sim_time"] == pytest.approx(300)
        assert value(second, "spaceactors_actors", kind="Ship") == ships
        await get_json(f"{url}/control/resume", "POST")
