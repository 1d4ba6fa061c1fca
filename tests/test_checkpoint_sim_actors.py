"""The simulation's own actors round-trip through the checkpoint converter with no user code.

Ships and stations of shipped scenarios are caught live (as the engine runs them, mid-run,
after they have flown, docked, traded and called for help), saved with the world as a shared
object, written and read as msgpack, restored with ``cls.__new__``, and compared exactly.
"""

from __future__ import annotations

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.checkpoint.values import restore_actor, save_actor
from spaceactors.scenarios import asteroid_convoy, distress_rescue, trade_route
from spaceactors.sim.ship import Ship
from spaceactors.sim.station import Station
from tests.checkpoint_values_support import plain_round_trip, same

SCENARIOS = {
    "trade-route": trade_route.trade_route,
    "distress-rescue": distress_rescue.distress_rescue,
    "asteroid-convoy": asteroid_convoy.asteroid_convoy,
}


def no_refs(actor_id: int) -> sa.ActorRef:
    raise sa.ActorNotFound(f"no actor #{actor_id}")


@pytest.mark.parametrize("name", sorted(SCENARIOS))
async def test_ships_and_stations_of_a_scenario_round_trip_mid_run(
    name: str, autojump_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    live: dict[str, sa.Actor] = {}
    for cls in (Ship, Station):
        monkeypatch.setattr(cls, "on_start", _caught(cls.on_start, live))
    checked: list[int] = []

    def check(world: sim.World) -> None:
        shared = {"world": world}
        for actor_name, actor in sorted(live.items()):
            data = plain_round_trip(save_actor(actor, path=actor_name, shared=shared))
            assert isinstance(data, dict)
            assert "ctx" not in data["attributes"]
            restored = restore_actor(
                type(actor), data, shared=shared, refs=no_refs, where=actor_name
            )
            assert type(restored) is type(actor)
            assert restored.world is world  # type: ignore[attr-defined]
            assert vars(restored).keys() == vars(actor).keys() - {"ctx"}
            for attribute in vars(restored).keys() - {"world"}:
                assert same(getattr(actor, attribute), getattr(restored, attribute)), (
                    actor_name,
                    attribute,
                )
        checked.append(len(live))

    def keep_world(world: sim.World) -> None:
        world.at(300.0, lambda: check(world))

    summary = await sim.run_scenario(SCENARIOS[name], seed=3, duration=400.0, keep_world=keep_world)
    assert not [why for _, ok, why in summary.expectations if not ok]
    assert checked
    assert checked[0] == summary.ships + summary.stations
    assert any(isinstance(actor, Ship) and actor.rec.prices for actor in live.values()) or (
        name != "trade-route"
    )


def _caught(on_start: object, live: dict[str, sa.Actor]) -> object:
    async def on_start_caught(self: sa.Actor) -> None:
        live[self.ctx.name] = self
        await on_start(self)  # type: ignore[operator]

    return on_start_caught


def test_a_station_keeps_its_deque_bound_and_trade_order(monkeypatch: pytest.MonkeyPatch) -> None:
    live: dict[str, sa.Actor] = {}
    monkeypatch.setattr(Station, "on_start", _caught(Station.on_start, live))
    kept: list[sim.World] = []

    async def main() -> None:
        await sim.run_scenario(
            trade_route.trade_route, seed=1, duration=900.0, keep_world=kept.append
        )

    sa.run(main, seed=1)
    world = kept[0]
    station = max(
        (actor for actor in live.values() if isinstance(actor, Station)),
        key=lambda actor: len(actor.state.trades),
    )
    trades = station.state.trades
    assert trades, "the run made no trade: nothing to check"
    shared = {"world": world}
    data = plain_round_trip(save_actor(station, path="station", shared=shared))
    restored = restore_actor(Station, data, shared=shared, refs=no_refs)
    assert isinstance(restored, Station)
    assert restored.state.stays.maxlen == station.state.stays.maxlen == 20
    assert list(restored.state.trades) == list(trades)
    assert type(restored.state.trades) is type(trades)
    assert same(station.state, restored.state)


def test_an_attrs_value_without_fields_round_trips() -> None:
    from spaceactors.checkpoint import restore_value, save_value
    from spaceactors.sim import events

    saved = save_value(events.Depart(), where="a message", shared={})
    assert restore_value(saved, shared={}, refs=lambda _: None) == events.Depart()  # type: ignore[arg-type,return-value]
