"""Scenarios: the shipped ones pass and replay exactly from a seed; loading by name or file, and
what loading and running report when a scenario is wrong."""

from __future__ import annotations

import functools
import re
import textwrap
from pathlib import Path

import attrs
import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors import sim
from spaceactors.scenarios import large_fleet

SHIPPED = ["asteroid-convoy", "distress-rescue", "large-fleet", "trade-route"]


def run(scenario: sim.Scenario, *, seed: int = 1, duration: float | None = None) -> sim.Summary:
    """Run `scenario` in virtual time, seeded (the way ``spaceactors run`` does)."""
    return sa.run(
        functools.partial(sim.run_scenario, scenario, seed=seed, duration=duration), seed=seed
    )


def without_wall_time(summary: sim.Summary) -> sim.Summary:
    return attrs.evolve(summary, wall_seconds=0.0)


def write(directory: Path, name: str, source: str) -> Path:
    path = directory / name
    path.write_text(textwrap.dedent(source))
    return path


# --- the shipped scenarios ---------------------------------------------------------------------


def test_the_shipped_scenarios_are_listed_by_name_with_a_description() -> None:
    shipped = sim.shipped()
    assert [s.name for s in shipped] == SHIPPED
    assert all(s.description and s.duration > 0 and s.step > 0 for s in shipped)
    assert sim.load("trade-route") is next(s for s in shipped if s.name == "trade-route")


@pytest.mark.parametrize("name", [n for n in SHIPPED if n != "large-fleet"])
def test_a_shipped_scenario_passes_and_replays_exactly_from_its_seed(name: str) -> None:
    scenario = sim.load(name)
    first = run(scenario)
    assert first.passed, [e for e in first.expectations if not e[1]]
    assert all(error == "" for _, _, error in first.expectations)
    assert (first.scenario, first.seed, first.duration) == (name, 1, scenario.duration)
    assert first.cargo_imbalance == 0.0
    assert first.ship_updates == first.ships * round(scenario.duration / scenario.step)
    again = run(scenario)
    assert without_wall_time(again) == without_wall_time(first)


def test_the_trade_route_scenario_trades_shocks_and_restarts() -> None:
    summary = run(sim.load("trade-route"))
    assert (summary.ships, summary.stations) == (12, 3)
    assert summary.messages_by_type["MarketShock"] == 1
    assert summary.messages_by_type["Sabotage"] == 1
    assert summary.restarts == 1
    assert summary.traded_units > 0
    assert summary.refusals > 0  # two berths a station, twelve haulers: some queue


def test_the_distress_scenario_answers_three_calls_including_a_dry_tank() -> None:
    summary = run(sim.load("distress-rescue"))
    assert (summary.distress_calls, summary.rescues, summary.unanswered) == (3, 3, 0)
    assert summary.fuel_exhausted == 1
    assert summary.max_answer_time is not None
    assert summary.max_answer_time <= 120.0


def test_a_scaled_down_large_fleet_runs_and_conserves_cargo(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(large_fleet, "SHIPS", 300)
    shipped = large_fleet.large_fleet
    scaled = sim.Scenario("large-fleet-300", shipped.build, duration=300.0, step=shipped.step)
    summary = run(scaled)
    assert (summary.ships, summary.stations) == (300, 50)
    assert summary.ship_updates == 300 * 150  # 150 ticks of 2 s
    assert summary.dockings > 100
    assert summary.trades == summary.dockings
    assert summary.restarts == 0
    checks = {description: ok for description, ok, _ in summary.expectations}
    # 300 ships cannot keep the 10,000-ship fleet's rate, scaled to 300 s: 500 dockings
    assert checks == {
        "at least 500 dockings (1,000 per 600 s of run)": False,
        "no cargo lost": True,
    }
    assert without_wall_time(run(scaled)) == without_wall_time(summary)


def test_a_run_does_the_same_number_of_ticks_whatever_the_seed() -> None:
    @sim.scenario(duration=120.0, step=2.0)
    async def one_ship(world: sim.World) -> None:
        await world.add_ship("hauler", (0.0, 0.0, 0.0), sector="belt")

    updates = {seed: run(one_ship, seed=seed).ship_updates for seed in range(6)}
    # Ticks at 0, 2, ..., 118 s: none at the end instant, which the runner's wake-up would race.
    assert set(updates.values()) == {60}, updates


# --- loading -----------------------------------------------------------------------------------


def test_an_unknown_name_lists_the_shipped_scenarios() -> None:
    with pytest.raises(sim.ScenarioNotFound) as caught:
        sim.load("trade-rout")
    assert str(caught.value) == f"no scenario named 'trade-rout' (shipped: {', '.join(SHIPPED)})"


def test_a_missing_file_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(sim.ScenarioNotFound, match="no scenario file at"):
        sim.load(str(tmp_path / "nowhere.py"))
    with pytest.raises(sim.ScenarioNotFound, match="no scenario file at"):
        sim.load(str(tmp_path))  # a directory


def test_a_file_without_a_scenario_is_not_found(tmp_path: Path) -> None:
    path = write(tmp_path, "empty.py", "from spaceactors import sim\n\nSHIPS = 3\n")
    with pytest.raises(sim.ScenarioNotFound, match=r"defines no @sim\.scenario function"):
        sim.load(str(path))


def test_a_file_with_a_syntax_error_is_broken_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "typo.py",
        """\
        from spaceactors import sim

        @sim.scenario(duration=60.0)
        async def typo(world: sim.World) -> None
            await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt")
        """,
    )
    with pytest.raises(sim.ScenarioBroken, match=rf"^{re.escape(str(path))}:4: syntax error: "):
        sim.load(str(path))


def test_a_file_that_raises_while_loading_is_broken_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "raises.py",
        """\
        from spaceactors import sim

        STATIONS = {"ceres": (0.0, 0.0, 0.0)}

        HOME = STATIONS["vesta"]
        """,
    )
    with pytest.raises(sim.ScenarioBroken, match=rf"^{re.escape(str(path))}:5: KeyError: 'vesta'$"):
        sim.load(str(path))
    missing = write(tmp_path, "imports.py", "from spaceactors import sim\nimport no_such_module\n")
    with pytest.raises(
        sim.ScenarioBroken, match=rf"^{re.escape(str(missing))}:2: ModuleNotFoundError: "
    ):
        sim.load(str(missing))


def test_an_error_raised_in_a_library_is_reported_at_the_scenario_files_line(
    tmp_path: Path,
) -> None:
    path = write(
        tmp_path,
        "config.py",
        """\
        import json

        from spaceactors import sim

        CONFIG = json.loads("{ships: 3}")
        """,
    )
    with pytest.raises(sim.ScenarioBroken, match=rf"^{re.escape(str(path))}:5: JSONDecodeError: "):
        sim.load(str(path))


def test_a_scenario_loads_from_a_file_and_runs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "tiny.py",
        '''\
        from spaceactors import sim


        @sim.scenario(duration=120.0, step=2.0)
        async def tiny_run(world: sim.World) -> None:
            """One hauler, one station."""
            await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt")
            await world.add_ship("hauler", (1_000.0, 0.0, 0.0), route=("ceres",))
            world.expect("it docked", lambda s: s.dockings >= 1)
            world.expect(*sim.no_cargo_lost())
        ''',
    )
    scenario = sim.load(str(path))
    assert (scenario.name, scenario.description) == ("tiny-run", "One hauler, one station.")
    assert (scenario.duration, scenario.step) == (120.0, 2.0)
    summary = run(scenario)
    assert summary.passed
    assert summary.ship_updates == 60  # 60 ticks of 2 s
    assert sim.load(str(path)).name == "tiny-run"  # loads again (a fresh module each time)


def test_a_file_that_builds_on_a_shipped_scenario_loads_its_own(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "variant.py",
        """\
        from spaceactors import sim
        from spaceactors.scenarios.trade_route import trade_route


        @sim.scenario(duration=600.0)
        async def short_trade_route(world: sim.World) -> None:
            await trade_route.build(world)
        """,
    )
    assert sim.load(str(path)).name == "short-trade-route"


# --- running -----------------------------------------------------------------------------------


@sim.scenario(name="checks", duration=60.0, description="expectations that do not hold")
async def checks(world: sim.World) -> None:
    await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt")
    world.expect("holds", lambda s: s.stations == 1)
    world.expect("does not hold", lambda s: s.trades > 1_000_000)
    world.expect("raises", lambda s: s.stations / 0 > 1)


def test_failing_and_raising_expectations_fail_the_run_with_why() -> None:
    assert (checks.name, checks.description) == ("checks", "expectations that do not hold")
    summary = run(checks)
    assert summary.expectations == (
        ("holds", True, ""),
        ("does not hold", False, "the check returned False"),
        ("raises", False, "ZeroDivisionError: division by zero"),
    )
    assert not summary.passed


def test_a_scenario_that_fails_while_building_is_broken_at_its_line(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "twice.py",
        """\
        from spaceactors import sim


        @sim.scenario()
        async def twice(world: sim.World) -> None:
            await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt")
            await world.add_station("ceres", (9.0, 0.0, 0.0), sector="belt")
        """,
    )
    with pytest.raises(
        sim.ScenarioBroken, match=rf"at {re.escape(str(path))}:7: ScenarioError: .*'ceres' is taken"
    ):
        run(sim.load(str(path)))


async def test_a_run_reports_progress_and_can_be_shortened(
    autojump_clock: trio.testing.MockClock,
) -> None:
    seen: list[sim.Progress] = []
    summary = await sim.run_scenario(checks, duration=30.0, progress=seen.append, updates=5)
    assert summary.duration == 30.0
    assert [p.sim_time for p in seen] == pytest.approx([6.0, 12.0, 18.0, 24.0, 30.0])
    assert all(p.duration == 30.0 and p.actors >= 1 for p in seen)
    with pytest.raises(sim.ScenarioError, match="duration must be a finite number of seconds > 0"):
        await sim.run_scenario(checks, duration=0.0)


def test_the_seed_of_a_run_is_the_seed_of_its_system() -> None:
    kept: list[sim.World] = []

    async def main() -> sim.Summary:
        return await sim.run_scenario(checks, seed=7, keep_world=kept.append)

    summary = sa.run(main, seed=7)
    (world,) = kept
    assert summary.seed == world.system.seed == 7


def test_a_scheduled_event_that_raises_fails_the_run_saying_when_and_why() -> None:
    @sim.scenario(duration=60.0)
    async def typo(world: sim.World) -> None:
        await world.add_station("ceres", (0.0, 0.0, 0.0), sector="belt")
        world.at(10.0, lambda: world.emergency("no-such-ship", sa.EmergencyType.PIRATE))
        world.at(20.0, lambda: world.market_shock("ceres", "unobtainium", 2.0))

    summary = run(typo)
    assert not summary.passed
    ((description, ok, why),) = summary.expectations
    assert (description, ok) == ("every scheduled event ran", False)
    assert "at 10 s: ScenarioError: no ship named 'no-such-ship'" in why
    assert "at 20 s: ScenarioError: station 'ceres' does not trade 'unobtainium'" in why
