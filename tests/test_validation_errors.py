"""Validation raises only the documented error: hostile values at every constructor and call.

Huge integers, NaN, infinities, bools where numbers are due and values of the wrong type give
`InvalidMessage` (protocol and simulation messages), `InvalidSpec` (specs, options, fault rules),
`ScenarioError` (the simulation's API) or ``ValueError`` (calls such as `ask`), naming the
argument, with the value cut short -- never a bare ``OverflowError`` or ``TypeError``.
"""

from __future__ import annotations

import math
import re
import typing
from collections.abc import Callable
from typing import Any

import attrs
import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import messages as m
from spaceactors.checks import SHORT, short_repr
from spaceactors.sim import events as ev
from spaceactors.sim.arguments import ScenarioError
from spaceactors.sim.market import Commodity, Market
from spaceactors.sim.physics import Body

HUGE = 10**400
HUGER = 10**4000

# --- the inputs ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("build", "field"),
    [
        (lambda: sa.Vec3(2**1024, 0, 0), "Vec3.x"),
        (lambda: sa.CargoItem(item_type="ore", quantity=10**400, unit_value=1.0), "quantity"),
        (
            lambda: sa.MarketPrices(commodities={"ore": 10**400}, last_updated=0.0),
            "MarketPrices.commodities['ore']",
        ),
        (lambda: sa.MarketPrices(commodities={}, last_updated=-(10**400)), "last_updated"),
        (lambda: sa.MarketUpdate("sol", {"ore": -(10**400)}), "price_changes['ore']"),
        (lambda: sa.ShipSpecs("hauler", 1.0, 10**400, 1.0), "ShipSpecs.mass"),
        (lambda: sa.ResourceRequest("ore", 1, 10**400), "ResourceRequest.max_price"),
        (lambda: sa.NavigationHazard(sa.Vec3(), 10**400, sa.HazardType.ASTEROID), "radius"),
        (lambda: sa.DockingPermission(False, None, 10**400), "estimated_wait"),
    ],
)
def test_huge_integers_are_invalid_messages_naming_the_field(
    build: Callable[[], object], field: str
) -> None:
    with pytest.raises(sa.InvalidMessage) as caught:
        build()
    assert field in str(caught.value)
    assert "digits" in str(caught.value)  # described by size, not printed in full
    assert len(str(caught.value)) < 200


@pytest.mark.parametrize(
    "value", [HUGER, -HUGER, 10**5000, "9" * 5000, [[[[[[1]]]]]] * 100], ids=short_repr
)
def test_error_messages_cut_hostile_values_short(value: object) -> None:
    with pytest.raises(sa.InvalidMessage) as caught:
        sa.ActorStatus(value, "a", sa.ActorState.RUNNING, 0, 1, 0, 0)  # type: ignore[arg-type]
    assert len(str(caught.value)) < 200
    assert str(caught.value).startswith("ActorStatus.actor_id")


def test_short_repr_never_raises_and_stays_short() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    deep: list[object] = []
    for _ in range(100_000):
        deep = [deep]
    for value in (10**5000, -(10**5000), "x" * 10_000, deep, Broken(), list(range(10**5))):
        assert len(short_repr(value)) <= SHORT + 5
    assert short_repr(1.5) == "1.5"
    assert short_repr("ore") == "'ore'"


async def test_ask_with_a_bad_timeout_raises_value_error_at_the_call(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Echo(sa.Actor):
        async def handle(self, message: object) -> object:
            return message

    async with sa.open_system() as system:
        ref = await system.spawn(Echo, name="echo")
        for bad in ("1", None.__class__, [1], True, math.nan, -1.0, -1, HUGE):
            with pytest.raises(ValueError, match=r"^timeout (must be|is too large)") as caught:
                await ref.ask("hi", timeout=bad)  # type: ignore[arg-type]
            assert type(caught.value) is ValueError
            with pytest.raises(ValueError, match=r"^timeout (must be|is too large)"):
                await system.ask("echo", "hi", timeout=bad)  # type: ignore[arg-type]
        assert ref.status().handled == 0  # nothing was sent
        assert await ref.ask("hi", timeout=1) == "hi"  # an int is seconds
        assert await ref.ask("hi", timeout=math.inf) == "hi"  # no deadline


async def test_timer_and_delay_arguments_refuse_hostile_values(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Idle(sa.Actor):
        async def handle(self, message: object) -> None:
            pass

    async with sa.open_system() as system:
        ref = await system.spawn(Idle, name="idle")
        ctx = sa.ActorContext(system.user._children["idle"].runtime)  # type: ignore[arg-type]
        for bad in (HUGE, "1", True, math.nan, math.inf, -1, None):
            with pytest.raises(ValueError, match=r"^delay (must be|is too large)"):
                system.router.send_later(bad, ref, "x")  # type: ignore[arg-type]
            with pytest.raises(ValueError, match=r"^delay (must be|is too large)"):
                ctx.after(bad, "x")  # type: ignore[arg-type]
            with pytest.raises(ValueError, match=r"^interval (must be|is too large)"):
                ctx.every(bad, "x")  # type: ignore[arg-type]
            if bad is not None:  # first=None: the default, one interval
                with pytest.raises(ValueError, match=r"^first (must be|is too large)"):
                    ctx.every(1.0, "x", first=bad)  # type: ignore[arg-type]


async def test_reliable_send_names_the_arguments_the_user_passed(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Idle(sa.Actor):
        async def handle(self, message: object) -> None:
            pass

    async with sa.open_system() as system:
        ref = await system.spawn(Idle, name="idle")
        cases: list[tuple[dict[str, Any], str]] = [
            ({"max_delay": math.inf}, "^max_delay must be"),
            ({"max_delay": HUGE}, "^max_delay is too large"),
            ({"max_delay": 0.5}, r"^max_delay must be >= timeout \(1\)"),
            ({"timeout": HUGE}, "^timeout is too large"),
            ({"timeout": True}, "^timeout must be a number"),
            ({"jitter": 1.0}, r"^jitter must be in \[0, 1\)"),
            ({"jitter": "x"}, "^jitter must be a number"),
            ({"max_retries": -1}, "^max_retries must be an int >= 0"),
            ({"max_retries": 1.5}, "^max_retries must be an int"),
        ]
        for options, message in cases:
            with pytest.raises(ValueError, match=message) as caught:
                await system.reliable.send(ref, "x", **options)
            assert "Backoff" not in str(caught.value)
            assert not isinstance(caught.value, sa.InvalidSpec)


# --- every public constructor ------------------------------------------------------------------

HOSTILE: list[object] = [
    HUGE,
    -HUGE,
    HUGER,
    math.nan,
    math.inf,
    -math.inf,
    True,
    "1",
    None,
    [1, 2],
    {"a": 1},
    b"x",
    object(),
]


def _raises_only(error: type[BaseException], build: Callable[[], object]) -> None:
    refused: BaseException | None = None
    try:
        build()
    except error as exc:
        refused = exc
    except BaseException as exc:  # pragma: no cover - the assertion says what went wrong
        raise AssertionError(
            f"expected {error.__name__} or success, got {type(exc).__name__}: {exc}"
        ) from exc
    assert refused is None or len(str(refused)) < 400, str(refused)


def _spec_calls(value: Any) -> list[Callable[[], object]]:
    def worker() -> sa.Actor:
        return sa.Actor()

    return [
        lambda: sa.Backoff(initial=value, maximum=5.0),
        lambda: sa.Backoff(initial=1.0, maximum=value),
        lambda: sa.Backoff(initial=1.0, maximum=2.0, jitter=value),
        lambda: sa.Backoff(initial=1.0, maximum=2.0, reset_after=value),
        lambda: sa.ChildSpec("a", worker, mailbox_size=value),
        lambda: sa.ChildSpec("a", worker, shutdown=value),
        lambda: sa.ChildSpec(value, worker),
        lambda: sa.ChildSpec("a", worker, args=value),
        lambda: sa.ChildSpec("a", worker, kwargs=value),
        lambda: sa.ChildSpec("a", worker, restart=value),
        lambda: sa.SupervisorSpec("s", max_restarts=value),
        lambda: sa.SupervisorSpec("s", within=value),
        lambda: sa.SupervisorSpec("s", shutdown=value),
        lambda: sa.SupervisorSpec("s", children=value),
        lambda: sa.SupervisorSpec("s", strategy=value),
        lambda: sa.SupervisorSpec("s", backoff=value),
        lambda: sa.DropMessages(probability=value),
        lambda: sa.DropMessages(start=value),
        lambda: sa.DropMessages(stop=value),
        lambda: sa.DropMessages(name=value),
        lambda: sa.DropMessages(scope=value),
        lambda: sa.DelayMessages(minimum=0.0, maximum=value),
        lambda: sa.DelayMessages(mean=value),
        lambda: sa.ReorderMessages(max_hold=value),
        lambda: sa.Scope(actors=value),
        lambda: sa.Scope(message_types=value),
        lambda: sa.Partition(groups=value),
        lambda: sa.Partition(groups=[["a"], value]),
        lambda: sa.CrashActor(actors=value, nth=1),
        lambda: sa.CrashActor(actors="a", nth=value),
        lambda: sa.CrashActor(actors="a", every=value),
        lambda: sa.CrashActor(actors="a", probability=value),
        lambda: sa.PauseActor(actors="a", duration=value),
        lambda: sa.SlowActor(actors="a", seconds=value),
        lambda: sa.FaultPlan(value),
    ]


@pytest.mark.parametrize("value", HOSTILE, ids=short_repr)
def test_specs_and_fault_rules_raise_only_invalid_spec(value: object) -> None:
    for build in _spec_calls(value):
        _raises_only(sa.InvalidSpec, build)


@pytest.mark.parametrize("value", HOSTILE, ids=short_repr)
def test_flow_control_raises_only_value_error_naming_the_argument(value: object) -> None:
    for name, build in [
        ("capacity", lambda: sa.TokenBucket(capacity=value, rate=1.0)),  # type: ignore[arg-type]
        ("rate", lambda: sa.TokenBucket(capacity=1.0, rate=value)),  # type: ignore[arg-type]
    ]:
        with pytest.raises(ValueError, match=f"^{name}"):
            build()
    for name, build in [
        ("max_concurrent", lambda: sa.FlowController(value, 1)),  # type: ignore[arg-type]
        ("queue_limit", lambda: sa.FlowController(1, value)),  # type: ignore[arg-type]
    ]:
        if type(value) is int and value > 0:
            build()  # a huge count is still a count
        else:
            with pytest.raises(ValueError, match=f"^{name}"):
                build()


def test_token_bucket_take_refuses_hostile_counts() -> None:
    bucket = sa.TokenBucket(capacity=5, rate=1)
    for value in HOSTILE:
        with pytest.raises(ValueError, match="can only take"):
            bucket.try_take(value)  # type: ignore[arg-type]


async def test_rate_limited_sender_names_rate_and_burst(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        for value in HOSTILE:
            with pytest.raises(ValueError, match=r"^rate"):
                sa.RateLimitedSender(system.router, 1, 1, value)  # type: ignore[arg-type]
            if value is not None:  # burst=None: the default
                with pytest.raises(ValueError, match=r"^burst"):
                    sa.RateLimitedSender(system.router, 1, 1, 1.0, burst=value)  # type: ignore[arg-type]
        with pytest.raises(ValueError, match="default burst"):
            sa.RateLimitedSender(system.router, 1, 1, 1e308)


@pytest.mark.parametrize(
    ("options", "name"),
    [
        ({"seed": HUGE}, "seed"),
        ({"seed": "7"}, "seed"),
        ({"dead_letter_keep": -1}, "dead_letter_keep"),
        ({"dead_letter_keep": HUGE}, "dead_letter_keep"),
        ({"max_restarts": True}, "max_restarts"),
        ({"within": HUGE}, "within"),
        ({"within": "5"}, "within"),
        ({"trace": 5}, "trace"),
        ({"faults": [sa.DropMessages()]}, "faults"),
    ],
)
async def test_open_system_refuses_bad_options_naming_them(
    autojump_clock: trio.testing.MockClock, options: dict[str, Any], name: str
) -> None:
    with pytest.raises(sa.InvalidSpec, match=f"^{name}"):
        async with sa.open_system(**options):
            pass  # pragma: no cover


async def test_spawn_refuses_hostile_options_with_invalid_spec(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        for value in HOSTILE:
            for options in ({"mailbox_size": value}, {"shutdown": value}, {"restart": value}):
                if options.get("shutdown") is math.inf:
                    continue  # no limit: allowed
                with pytest.raises(sa.InvalidSpec):
                    await system.spawn(sa.Actor, name="x", **options)
            if not (type(value) is int and value > 0):  # any int >= 0 is a count
                with pytest.raises(sa.InvalidSpec, match="max_restarts"):
                    await system.spawn_supervisor("s", max_restarts=value)  # type: ignore[arg-type]
            if value is not math.inf:  # within=inf: restarts are counted forever
                with pytest.raises(sa.InvalidSpec, match="within"):
                    await system.spawn_supervisor("s", within=value)  # type: ignore[arg-type]
        assert system.user.count_children().specs == 0


# --- every message class: a Hypothesis property -------------------------------------------------

CARGO = m.CargoItem("ore", 1.0, 2.0)
SIGNAL = m.DistressSignal(m.EmergencyType.PIRATE, m.Vec3(1, 2, 3), 5)
OFFER = m.TradeOffer((CARGO,), (m.ResourceRequest("water", 1.0, 3.0),))
SAMPLES: list[object] = [
    m.Vec3(1.0, 2.0, 3.0),
    m.ShipSpecs("hauler", 10.0, 5.0, 100.0),
    CARGO,
    m.ResourceRequest("water", 1.0, 3.0),
    m.ActorStatus(1, "a", m.ActorState.RUNNING, 0, 1, 0, 0),
    m.RequestDocking(m.ShipSpecs("hauler", 10.0, 5.0, 100.0), (CARGO,)),
    m.FormationRequest(m.FormationType.CONVOY, m.Vec3()),
    OFFER,
    SIGNAL,
    m.DockingPermission(True, 1, 0.0),
    m.MarketPrices({"ore": 1.0}, 0.0),
    m.ServiceAvailability(True, False, True),
    m.NavigationHazard(m.Vec3(), 5.0, m.HazardType.DEBRIS),
    m.MarketUpdate("sol", {"ore": -1.0}),
    m.WeatherAlert(("sol",), m.WeatherSeverity.HIGH),
    m.Shutdown(),
    m.Pause(),
    m.Resume(),
    m.GetStatus(),
    m.ShipToShip(1, 2, SIGNAL),
    m.ShipToStation(1, 2, OFFER),
    m.StationToShip(2, 1, m.ServiceAvailability(True, True, True)),
    m.SystemBroadcast(0, m.WeatherAlert(("sol",), m.WeatherSeverity.LOW)),
    m.ActorControl(3, m.Pause()),
    ev.Arrived((1.0, 2.0, 3.0)),
    ev.FuelExhausted(),
    ev.HazardEntered("rocks", (0.0, 0.0, 0.0), 10.0),
    ev.HazardCleared("rocks"),
    ev.Emergency(m.EmergencyType.HULL_BREACH, 3),
    ev.Sabotage(),
    ev.Trade(1, "ship", OFFER, 2.0),
    ev.TradeResult(1, (CARGO,), (), 0.0, -5.0),
    ev.Undock("ship", 0),
    ev.Evicted(),
    ev.Depart(),
    ev.Distress("ship", SIGNAL),
    ev.CollectOffers(),
    ev.RescueOffer("ship", 10.0),
    ev.RescueAccepted("ship", (1.0, 2.0, 3.0)),
    ev.RescueDeclined("ship"),
    ev.Rescued("ship", 1.0),
    ev.BerthCheck(),
    ev.MarketTick(),
    ev.MarketShock("ore", 0.5),
]


def test_the_samples_cover_every_message_class() -> None:
    protocol = set(m.PROTOCOL_TYPES)
    simulation = {
        value for value in vars(ev).values() if attrs.has(value) and value.__module__ == ev.__name__
    }
    assert {type(sample) for sample in SAMPLES} == protocol | simulation


hostile_values = st.one_of(
    st.sampled_from(HOSTILE),
    st.integers(),
    st.integers(min_value=2**1023, max_value=10**500),
    st.floats(),
    st.text(max_size=5),
    st.booleans(),
    st.lists(st.integers(), max_size=3),
    st.tuples(st.floats(), st.floats(), st.floats()),
    st.dictionaries(st.text(max_size=3), st.integers() | st.floats(), max_size=3),
)
fields_of_samples = st.sampled_from(
    [(sample, field.name) for sample in SAMPLES for field in attrs.fields(type(sample))]
)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow])
@given(fields_of_samples, hostile_values)
def test_any_hostile_field_value_raises_only_invalid_message(
    sample_and_field: tuple[object, str], value: object
) -> None:
    sample, field = sample_and_field
    try:
        built = attrs.evolve(sample, **{field: value})
    except sa.InvalidMessage as exc:
        refused = str(exc)
    else:
        refused = None
    if refused is not None:
        # It names the field; or, for a rule across fields (a refusal has no berth), the
        # other field the value now contradicts.
        cls = type(sample).__name__
        named = re.match(rf"{cls}\.(\w+)", refused)
        assert named is not None, refused
        assert named[1] == field or named[1] in attrs.fields_dict(type(sample)), refused
        assert len(refused) < 300
        return
    # Accepted: the value is one the field's domain holds.
    kept = getattr(built, field)
    if isinstance(kept, float):
        assert math.isfinite(kept)


@pytest.mark.parametrize(
    "build",
    [
        lambda v: Body("b", v, 0.0),
        lambda v: Body("b", 0.0, 0.0, vx=v),
        lambda v: Body("b", 0.0, 0.0, max_speed=v),
        lambda v: Body("b", 0.0, 0.0, fuel=v),
        lambda v: Body("b", 0.0, 0.0, target=v),
        lambda v: Body("b", 0.0, 0.0, offset=(0.0, v, 0.0)),
        lambda v: Body(v, 0.0, 0.0),
        lambda v: Commodity(v, 1.0, 1.0),
        lambda v: Commodity(1.0, 1.0, v),
        lambda v: Market.of({"ore": v}),
        lambda v: Market.of({"ore": 1.0}, v),
        lambda v: Market.of(v),
    ],
)
@pytest.mark.parametrize("value", HOSTILE, ids=short_repr)
def test_simulation_value_objects_raise_only_scenario_error(
    build: Callable[[object], object], value: object
) -> None:
    if value in ("1", None, {"a": 1}):  # a name, "no target", a price table: may be valid
        _raises_only(ScenarioError, lambda: build(value))
    else:
        with pytest.raises(ScenarioError):
            build(value)


def test_scenario_error_is_still_importable_from_the_world_module() -> None:
    from spaceactors.sim import ScenarioError as exported
    from spaceactors.sim.world import ScenarioError as from_world

    assert exported is from_world is ScenarioError
    assert issubclass(ScenarioError, ValueError)
    assert typing.get_type_hints(Body.__init__)["x"] is float
