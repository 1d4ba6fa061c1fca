"""Helpers for users' own tests: Hypothesis strategies for the protocol (needs ``hypothesis``)."""

from spaceactors.testing.strategies import (
    STRATEGIES,
    actor_ids,
    any_message,
    control_commands,
    names,
    ship_messages,
    station_messages,
    system_messages,
    vectors,
)

__all__ = [
    "STRATEGIES",
    "actor_ids",
    "any_message",
    "control_commands",
    "names",
    "ship_messages",
    "station_messages",
    "system_messages",
    "vectors",
]
