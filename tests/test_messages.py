"""Protocol messages validate at construction and name the offending field."""

from __future__ import annotations

import math
from typing import Any

import pytest

import spaceactors as sa

HULL = sa.ShipSpecs("Merchant", 150.0, 2000.0, 500.0)
HERE = sa.Vec3(1.0, 2.0, 3.0)


@pytest.mark.parametrize(
    ("build", "expected"),
    [
        (lambda: sa.Vec3(math.nan, 0, 0), "Vec3.x must be finite, got nan"),
        (lambda: sa.Vec3(0, math.inf, 0), "Vec3.y must be finite, got inf"),
        (lambda: sa.Vec3(0, 0, "1"), "Vec3.z must be a number, got '1'"),
        (lambda: sa.Vec3(True, 0, 0), "Vec3.x must be a number, got True"),
        (lambda: sa.CargoItem("ore", -1.0, 2.0), "CargoItem.quantity must be non-negative"),
        (lambda: sa.CargoItem("  ", 1.0, 2.0), "CargoItem.item_type must be a non-empty string"),
        (lambda: sa.CargoItem("ore", 1.0, -0.5), "CargoItem.unit_value must be non-negative"),
        (lambda: sa.ShipSpecs("", 1, 1, 1), "ShipSpecs.ship_class must be a non-empty string"),
        (lambda: sa.ShipSpecs("X", 1, -2, 1), "ShipSpecs.mass must be non-negative"),
        (lambda: sa.ShipSpecs("X", 1, 1, math.inf), "ShipSpecs.cargo_capacity must be finite"),
        (
            lambda: sa.ResourceRequest("fuel", 1, -3),
            "ResourceRequest.max_price must be non-negative",
        ),
        (
            lambda: sa.DistressSignal(sa.EmergencyType.PIRATE, HERE, 0),
            "DistressSignal.severity must be in [1, 10], got 0",
        ),
        (
            lambda: sa.DistressSignal(sa.EmergencyType.PIRATE, HERE, 11),
            "DistressSignal.severity must be in [1, 10], got 11",
        ),
        (
            lambda: sa.DistressSignal("pirate", HERE, 5),
            "DistressSignal.emergency_type must be EmergencyType",
        ),
        (
            lambda: sa.NavigationHazard(HERE, -1.0, sa.HazardType.DEBRIS),
            "NavigationHazard.radius must be non-negative",
        ),
        (
            lambda: sa.MarketPrices({"ore": -1.0}, 0.0),
            "MarketPrices.commodities['ore'] must be finite and non-negative, got -1.0",
        ),
        (
            lambda: sa.MarketPrices({"": 1.0}, 0.0),
            "MarketPrices.commodities keys must be non-empty",
        ),
        (lambda: sa.MarketPrices({"ore": 1.0}, -5.0), "MarketPrices.last_updated must be non-neg"),
        (
            lambda: sa.MarketUpdate("sol", {"ore": math.nan}),
            "MarketUpdate.price_changes['ore'] must be finite",
        ),
        (lambda: sa.MarketUpdate(" ", {}), "MarketUpdate.sector must be a non-empty string"),
        (
            lambda: sa.WeatherAlert(["belt", ""], sa.WeatherSeverity.LOW),
            "WeatherAlert.affected_regions[1] must be a non-empty string",
        ),
        (
            lambda: sa.RequestDocking(HULL, ["ore"]),
            "RequestDocking.cargo_manifest[0] must be CargoItem, got 'ore'",
        ),
        (
            lambda: sa.DockingPermission(True, None, 0.0),
            "DockingPermission.berth_assignment: a grant needs a berth",
        ),
        (
            lambda: sa.DockingPermission(False, 3, 0.0),
            "DockingPermission.berth_assignment: a refusal has no berth",
        ),
        (lambda: sa.DockingPermission(True, -1), "DockingPermission.berth_assignment must be in"),
        (lambda: sa.DockingPermission(False, None, -2.0), "estimated_wait must be non-negative"),
        (lambda: sa.DockingPermission(1, 1), "DockingPermission.granted must be a bool, got 1"),
        (lambda: sa.ShipToShip(-1, 2, sa.TradeOffer()), "ShipToShip.sender must be in [0, "),
        (lambda: sa.ShipToShip(1, 2**63, sa.TradeOffer()), "ShipToShip.recipient must be in"),
        (
            lambda: sa.ShipToStation(1, 2, sa.DockingPermission(False)),
            "ShipToStation.content must be RequestDocking | FormationRequest",
        ),
        (lambda: sa.ActorControl(1, sa.TradeOffer()), "ActorControl.command must be Shutdown"),
    ],
)
def test_invalid_values_raise_invalid_message_naming_the_field(build: Any, expected: str) -> None:
    with pytest.raises(sa.InvalidMessage, match=None) as caught:
        build()
    assert expected in str(caught.value)
    assert isinstance(caught.value, ValueError)  # callers may catch it as a plain ValueError


def test_docking_permission_is_a_grant_with_berth_or_a_refusal_with_wait() -> None:
    granted = sa.DockingPermission(granted=True, berth_assignment=4)
    refused = sa.DockingPermission(granted=False, estimated_wait=90.0)
    assert (granted.berth_assignment, refused.estimated_wait) == (4, 90.0)


def test_a_ship_asks_for_docking_with_request_docking_not_a_permission() -> None:
    ask = sa.ShipToStation(7, 1, sa.RequestDocking(HULL))
    answer = sa.StationToShip(1, 7, sa.DockingPermission(granted=True, berth_assignment=2))
    assert isinstance(ask.content, sa.RequestDocking)
    assert isinstance(answer.content, sa.DockingPermission)
    with pytest.raises(sa.InvalidMessage):
        sa.StationToShip(1, 7, sa.RequestDocking(HULL))  # type: ignore[arg-type]


def test_messages_are_immutable_even_their_price_tables() -> None:
    table = {"ore": 3.0}
    prices = sa.MarketPrices(table, 10.0)
    table["ore"] = 99.0  # the caller's dict is copied, not shared
    assert prices.commodities["ore"] == 3.0
    with pytest.raises(TypeError):
        prices.commodities["ore"] = 1.0  # type: ignore[index]
    with pytest.raises(AttributeError):
        prices.last_updated = 11.0  # type: ignore[misc]


def test_sequences_are_stored_as_tuples() -> None:
    offer = sa.TradeOffer([sa.CargoItem("ore", 1, 1)], [sa.ResourceRequest("fuel", 2, 3)])
    alert = sa.WeatherAlert("belt", sa.WeatherSeverity.HIGH)
    assert isinstance(offer.offering, tuple)
    assert isinstance(offer.requesting, tuple)
    assert alert.affected_regions == ("belt",)


def test_vectors_support_the_arithmetic_navigation_needs() -> None:
    a, b = sa.Vec3(1, 2, 2), sa.Vec3(4, 6, 2)
    assert a.length() == 3.0
    assert a.distance_to(b) == 5.0
    assert b - a == sa.Vec3(3, 4, 0)
    assert 2 * a == a * 2 == sa.Vec3(2, 4, 4)
    assert a + b == sa.Vec3(5, 8, 4)


def test_weather_severity_levels_are_ordered() -> None:
    levels = [severity.level for severity in sa.WeatherSeverity]
    assert levels == [1, 2, 3, 4]
