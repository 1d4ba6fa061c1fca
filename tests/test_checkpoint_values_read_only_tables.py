"""A message's read-only table (a ``types.MappingProxyType``, as `spaceactors.fields` freezes
one) is saved and comes back read-only and equal: a message a fault holds back in flight holds
such tables (a market's price changes)."""

from __future__ import annotations

import types

import msgpack
import pytest

from spaceactors.checkpoint.values import restore_value, save_value
from spaceactors.errors import CheckpointError


def round_trip(value: object) -> object:
    data = save_value(value, where="test", shared={})
    data = msgpack.unpackb(msgpack.packb(data, use_bin_type=True), raw=False)
    return restore_value(data, shared={}, refs=lambda i: pytest.fail(f"ref {i}"))


def test_a_read_only_table_comes_back_read_only_and_equal() -> None:
    table = types.MappingProxyType({"ore": 1.5, 3: [1, 2], ("a", 1): None})
    back = round_trip([table, table])
    assert isinstance(back, list)
    assert back == [table, table]
    assert all(type(item) is types.MappingProxyType for item in back)
    with pytest.raises(TypeError):
        back[0]["ore"] = 2.0  # type: ignore[index]


def test_a_read_only_table_of_what_cannot_be_saved_names_it() -> None:
    with pytest.raises(CheckpointError, match=r"'bad'.*object"):
        round_trip(types.MappingProxyType({"bad": object()}))
