"""Hypothesis strategies that build valid values of every protocol message type.

`STRATEGIES` maps each class of `spaceactors.messages.PROTOCOL_TYPES` to a strategy for it;
`any_message()` draws from all of them.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from spaceactors import messages as m

_finite = st.floats(allow_nan=False, allow_infinity=False)
_amount = st.floats(min_value=0.0, allow_nan=False, allow_infinity=False)


def names() -> st.SearchStrategy[str]:
    """Non-empty names (at least one non-space character)."""
    return st.text(min_size=1, max_size=20).filter(str.strip)


def actor_ids() -> st.SearchStrategy[int]:
    """Valid wire actor ids."""
    return st.integers(min_value=0, max_value=2**63 - 1)


def vectors() -> st.SearchStrategy[m.Vec3]:
    """Points with finite coordinates."""
    return st.builds(m.Vec3, _finite, _finite, _finite)


_specs = st.builds(m.ShipSpecs, names(), _amount, _amount, _amount)
_cargo = st.builds(m.CargoItem, names(), _amount, _amount)
_request = st.builds(m.ResourceRequest, names(), _amount, _amount)
_table = st.dictionaries(names(), _amount, max_size=5)

_ship: dict[type, st.SearchStrategy[Any]] = {
    m.RequestDocking: st.builds(m.RequestDocking, _specs, st.lists(_cargo, max_size=4)),
    m.FormationRequest: st.builds(m.FormationRequest, st.sampled_from(m.FormationType), vectors()),
    m.TradeOffer: st.builds(
        m.TradeOffer, st.lists(_cargo, max_size=4), st.lists(_request, max_size=4)
    ),
    m.DistressSignal: st.builds(
        m.DistressSignal,
        st.sampled_from(m.EmergencyType),
        vectors(),
        st.integers(m.MIN_SEVERITY, m.MAX_SEVERITY),
    ),
}
_station: dict[type, st.SearchStrategy[Any]] = {
    m.DockingPermission: st.one_of(
        st.builds(m.DockingPermission, st.just(True), st.integers(0, 2**32 - 1), _amount),
        st.builds(m.DockingPermission, st.just(False), st.none(), _amount),
    ),
    m.MarketPrices: st.builds(m.MarketPrices, _table, _amount),
    m.ServiceAvailability: st.builds(
        m.ServiceAvailability, st.booleans(), st.booleans(), st.booleans()
    ),
}
_system: dict[type, st.SearchStrategy[Any]] = {
    m.NavigationHazard: st.builds(
        m.NavigationHazard, vectors(), _amount, st.sampled_from(m.HazardType)
    ),
    m.MarketUpdate: st.builds(
        m.MarketUpdate, names(), st.dictionaries(names(), _finite, max_size=5)
    ),
    m.WeatherAlert: st.builds(
        m.WeatherAlert, st.lists(names(), max_size=4), st.sampled_from(m.WeatherSeverity)
    ),
}
_control: dict[type, st.SearchStrategy[Any]] = {
    cls: st.builds(cls) for cls in (m.Shutdown, m.Pause, m.Resume, m.GetStatus)
}


def ship_messages() -> st.SearchStrategy[m.ShipMessage]:
    """Any message a ship sends."""
    return st.one_of(*_ship.values())


def station_messages() -> st.SearchStrategy[m.StationMessage]:
    """Any answer a station sends."""
    return st.one_of(*_station.values())


def system_messages() -> st.SearchStrategy[m.SystemMessage]:
    """Any world announcement."""
    return st.one_of(*_system.values())


def control_commands() -> st.SearchStrategy[m.ControlCommand]:
    """Any runtime control command."""
    return st.one_of(*_control.values())


_envelopes: dict[type, st.SearchStrategy[Any]] = {
    m.ShipToShip: st.builds(m.ShipToShip, actor_ids(), actor_ids(), ship_messages()),
    m.ShipToStation: st.builds(m.ShipToStation, actor_ids(), actor_ids(), ship_messages()),
    m.StationToShip: st.builds(m.StationToShip, actor_ids(), actor_ids(), station_messages()),
    m.SystemBroadcast: st.builds(m.SystemBroadcast, actor_ids(), system_messages()),
    m.ActorControl: st.builds(m.ActorControl, actor_ids(), control_commands()),
}

_status = st.builds(
    m.ActorStatus,
    actor_ids(),
    names(),
    st.sampled_from(m.ActorState),
    st.integers(0, 2**20),
    st.integers(1, 2**20),
    st.integers(0, 2**20),
    st.integers(0, 2**40),
    st.none() | st.text(max_size=40),
)

STRATEGIES: dict[type, st.SearchStrategy[Any]] = {
    m.ActorStatus: _status,
    m.Vec3: vectors(),
    m.ShipSpecs: _specs,
    m.CargoItem: _cargo,
    m.ResourceRequest: _request,
    **_ship,
    **_station,
    **_system,
    **_control,
    **_envelopes,
}
"""A strategy for each protocol class."""


def any_message() -> st.SearchStrategy[Any]:
    """Any value of any protocol class."""
    return st.one_of(*STRATEGIES.values())
