"""The wire codec: exact round trips, and DecodeError (only) for anything malformed."""

from __future__ import annotations

import ast
import contextlib
import json
import pathlib
from typing import Any

import attrs
import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors.messages import PROTOCOL_TYPES
from spaceactors.testing import STRATEGIES, any_message

FORMATS = ("json", "msgpack")
PACKAGE = pathlib.Path(sa.__file__).parent


def _envelope(type_: str, body: object) -> bytes:
    return json.dumps({"schema": 1, "type": type_, "body": body}).encode()


@pytest.mark.parametrize("wire_format", FORMATS)
@pytest.mark.parametrize("cls", PROTOCOL_TYPES, ids=lambda cls: cls.__name__)
@given(data=st.data())
def test_every_message_type_round_trips_exactly(cls: type, wire_format: Any, data: Any) -> None:
    message = data.draw(STRATEGIES[cls])
    decoded = sa.decode(sa.encode(message, wire_format), wire_format)
    assert type(decoded) is cls
    assert decoded == message


def test_payload_is_a_versioned_envelope_with_tagged_unions() -> None:
    message = sa.ActorControl(5, sa.Pause())
    assert json.loads(sa.encode(message)) == {
        "schema": sa.SCHEMA_VERSION,
        "type": "ActorControl",
        "body": {"target": 5, "command": {"kind": "Pause"}},
    }
    assert msgpack.unpackb(sa.encode(message, "msgpack")) == json.loads(sa.encode(message))


DOCKING = {
    "sender": 1,
    "recipient": 2,
    "content": {"kind": "DockingPermission", "granted": False, "estimated_wait": 5.0},
}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"\xff\xfe garbage", "malformed json payload"),
        (b'{"schema":1,"type":"Pause","bo', "malformed json payload"),
        (b"[1, 2]", "expected an object, got list @ $"),
        (b'{"schema":1,"type":"Pause"}', "missing body @ $"),
        (b'{"schema":1,"type":"Pause","body":{},"x":0}', "extra 'x' @ $"),
        (b'{"schema":2,"type":"Pause","body":{}}', "unsupported schema 2; this build reads 1"),
        (b'{"schema":true,"type":"Pause","body":{}}', "unsupported schema True"),
        (b'{"schema":1,"type":"Teleport","body":{}}', "unknown message type 'Teleport' @ $.type"),
        (_envelope("Pause", []), "expected an object"),
        (
            _envelope("StationToShip", {**DOCKING, "recipient": "2"}),
            "expected an integer, got str @ $.body.recipient",
        ),
        (
            _envelope("StationToShip", {**DOCKING, "sender": True}),
            "expected an integer, got bool @ $.body.sender",
        ),
        (
            _envelope("StationToShip", {"sender": 1, "recipient": 2}),
            "required field missing @ $.body.content",
        ),
        (
            _envelope("StationToShip", {**DOCKING, "extra": 1}),
            "extra fields found (extra) @ $.body",
        ),
        (
            _envelope("StationToShip", {**DOCKING, "content": {"kind": "Teleport"}}),
            "unknown kind 'Teleport'; expected one of DockingPermission, MarketPrices, "
            "ServiceAvailability @ $.body.content",
        ),
        (
            _envelope("StationToShip", {**DOCKING, "content": {"granted": False}}),
            "unknown kind None",
        ),
        (
            _envelope(
                "StationToShip",
                {**DOCKING, "content": {**DOCKING["content"], "estimated_wait": "5"}},
            ),  # type: ignore[dict-item]
            "expected a number, got str @ $.body.content.estimated_wait",
        ),
        (
            _envelope(
                "StationToShip",
                {**DOCKING, "content": {**DOCKING["content"], "estimated_wait": -5}},
            ),  # type: ignore[dict-item]
            "DockingPermission.estimated_wait must be non-negative, got -5.0 @ $.body.content",
        ),
        (b'{"schema":1,"type":"Vec3","body":[1, NaN, 2]}', "NaN is not allowed"),
        (b'{"schema":1,"type":"Vec3","body":[1, Infinity, 2]}', "Infinity is not allowed"),
        (b'{"schema":1,"type":"Vec3","body":[1, 1e400, 2]}', "1e400 overflows to inf"),
        (_envelope("Vec3", [1, 2]), "expected [x, y, z], got list of 2 @ $.body"),
        (_envelope("Vec3", {"x": 1}), "expected [x, y, z], got dict @ $.body"),
        (
            _envelope("WeatherAlert", {"affected_regions": "belt", "severity": "low"}),
            "expected an array, got str @ $.body.affected_regions",
        ),
        (
            _envelope("WeatherAlert", {"affected_regions": ["belt"], "severity": "apocalyptic"}),
            "'apocalyptic' is not a valid WeatherSeverity; expected one of 'low'",
        ),
        (
            _envelope("MarketPrices", {"commodities": [["ore", 1]], "last_updated": 0}),
            "expected an object, got list @ $.body.commodities",
        ),
        (
            _envelope("MarketPrices", {"commodities": {"ore": None}, "last_updated": 0}),
            "expected a number, got null @ $.body.commodities['ore']",
        ),
        (
            _envelope(
                "DistressSignal",
                {"emergency_type": "pirate", "location": [0, 0, 0], "severity": 99},
            ),
            "DistressSignal.severity must be in [1, 10], got 99 @ $.body",
        ),
        (
            _envelope("TradeOffer", {"offering": [{"item_type": "ore", "quantity": 1}]}),
            "required field missing @ $.body.offering[0].unit_value",
        ),
        (b"[" * 200_000, "malformed json payload"),
    ],
)
def test_bad_json_raises_decode_error_saying_what_and_where(data: bytes, expected: str) -> None:
    with pytest.raises(sa.DecodeError) as caught:
        sa.decode(data)
    assert expected in str(caught.value)


def test_decode_error_lists_every_problem_with_its_path() -> None:
    body = {"sender": "a", "recipient": -1.5, "content": {"kind": "MarketPrices"}}
    with pytest.raises(sa.DecodeError) as caught:
        sa.decode(_envelope("StationToShip", body))
    assert caught.value.problems == (
        "expected an integer, got str @ $.body.sender",
        "expected an integer, got float @ $.body.recipient",
        "required field missing @ $.body.content.commodities",
        "required field missing @ $.body.content.last_updated",
    )


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"\xc1", "malformed msgpack payload"),  # 0xc1 is never used
        (msgpack.packb({"schema": 1, "type": "Pause"}), "missing body"),
        (
            msgpack.packb({"schema": 1, "type": "Vec3", "body": [1, float("nan"), 2]}),
            "y: expected a finite number, got nan @ $.body",
        ),
        (
            msgpack.packb({"schema": 1, "type": "Vec3", "body": [1, 2, 3]}) + b"\x00",
            "malformed msgpack",
        ),
        (msgpack.packb({1: 2}), "malformed msgpack payload"),  # non-string keys
        (msgpack.packb({"schema": 1, "type": "Vec3", "body": b"\x00" * 3}), "got bytes"),
        (
            msgpack.packb({"schema": 1, "type": "Vec3", "body": msgpack.ExtType(1, b"x")}),
            "got ExtType",
        ),
    ],
)
def test_bad_msgpack_raises_decode_error(payload: bytes, expected: str) -> None:
    with pytest.raises(sa.DecodeError) as caught:
        sa.decode(payload, "msgpack")
    assert expected in str(caught.value)


def test_oversize_payloads_are_refused_both_ways() -> None:
    codec = sa.Codec(max_payload=200)
    big = sa.WeatherAlert([f"region-{i}" for i in range(50)], sa.WeatherSeverity.LOW)
    with pytest.raises(sa.EncodeError, match="over the 200-byte payload limit"):
        codec.encode(big)
    with pytest.raises(sa.DecodeError, match="over the 200-byte limit"):
        codec.decode(sa.encode(big))
    assert codec.decode(codec.encode(sa.Vec3(1, 2, 3))) == sa.Vec3(1, 2, 3)


def test_default_payload_limit_is_one_mebibyte() -> None:
    with pytest.raises(sa.DecodeError, match="over the 1048576-byte limit"):
        sa.decode(b" " * (sa.DEFAULT_MAX_PAYLOAD + 1))


def test_encoding_an_unregistered_type_says_how_to_register_it() -> None:
    @attrs.frozen
    class Ping:
        seq: int

    with pytest.raises(sa.EncodeError, match=r"Ping is not registered .* codec.register\(cls\)"):
        sa.encode(Ping(1))
    with pytest.raises(sa.EncodeError):
        sa.encode(object())


def test_user_types_round_trip_once_registered() -> None:
    @attrs.frozen
    class Ping:
        seq: int
        at: sa.Vec3

    codec = sa.Codec()
    codec.register(Ping, tag="test.Ping")
    for wire_format in FORMATS:
        assert codec.decode(
            codec.encode(Ping(3, sa.Vec3(1, 2, 3)), wire_format), wire_format
        ) == Ping(3, sa.Vec3(1, 2, 3))
    with pytest.raises(ValueError, match="already used"):
        codec.register(sa.Vec3, tag="test.Ping")
    with pytest.raises(TypeError, match="not an attrs class"):
        codec.register(dict)


def test_unencodable_text_is_an_encode_error() -> None:
    with pytest.raises(sa.EncodeError, match="cannot be encoded"):
        sa.encode(sa.CargoItem("ore\udc80", 1, 1))


def test_unknown_format_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="unknown wire format 'xml'"):
        sa.encode(sa.Pause(), "xml")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown wire format 'xml'"):
        sa.decode(b"{}", "xml")  # type: ignore[arg-type]


def test_decode_refuses_text_instead_of_bytes() -> None:
    with pytest.raises(sa.DecodeError, match="expected bytes to decode, got str"):
        sa.decode('{"schema": 1}')  # type: ignore[arg-type]


# --- "never any other exception": fuzzing -------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)  # what msgpack can carry
    | st.floats()
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=20,
)


def _decodes_or_raises_decode_error(data: bytes, wire_format: Any) -> None:
    with contextlib.suppress(sa.DecodeError):
        sa.decode(data, wire_format)


@pytest.mark.parametrize("wire_format", FORMATS)
@given(data=st.binary(max_size=256))
def test_arbitrary_bytes_only_ever_raise_decode_error(wire_format: Any, data: bytes) -> None:
    _decodes_or_raises_decode_error(data, wire_format)


@given(value=json_values)
def test_arbitrary_json_documents_only_ever_raise_decode_error(value: object) -> None:
    _decodes_or_raises_decode_error(json.dumps(value).encode(), "json")
    _decodes_or_raises_decode_error(msgpack.packb(value), "msgpack")


@given(tag=st.sampled_from([cls.__name__ for cls in PROTOCOL_TYPES]), body=json_values)
def test_arbitrary_bodies_under_known_tags_only_ever_raise_decode_error(
    tag: str, body: object
) -> None:
    payload = {"schema": 1, "type": tag, "body": body}
    _decodes_or_raises_decode_error(json.dumps(payload).encode(), "json")
    _decodes_or_raises_decode_error(msgpack.packb(payload), "msgpack")


def _leaf_paths(value: object, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _leaf_paths(item, (*path, key))] or [path]
    if isinstance(value, list):
        return [p for i, item in enumerate(value) for p in _leaf_paths(item, (*path, i))] or [path]
    return [path]


@settings(max_examples=300)
@given(message=any_message(), data=st.data())
def test_valid_payloads_with_one_value_replaced_only_ever_raise_decode_error(
    message: object, data: Any
) -> None:
    document = json.loads(sa.encode(message))
    path = data.draw(st.sampled_from(_leaf_paths(document["body"])), label="path")
    replacement = data.draw(json_values, label="replacement")
    if path:
        parent = document["body"]
        for key in path[:-1]:
            parent = parent[key]
        parent[path[-1]] = replacement
    else:
        document["body"] = replacement
    _decodes_or_raises_decode_error(json.dumps(document).encode(), "json")
    _decodes_or_raises_decode_error(msgpack.packb(document), "msgpack")


@given(message=any_message(), cut=st.integers(min_value=1, max_value=400))
def test_truncated_payloads_raise_decode_error(message: object, cut: int) -> None:
    for wire_format in FORMATS:
        data = sa.encode(message, wire_format)
        with pytest.raises(sa.DecodeError):
            sa.decode(data[: max(0, len(data) - cut)], wire_format)


def test_no_pickle_anywhere_in_the_package() -> None:
    forbidden = {"pickle", "cPickle", "_pickle", "dill", "cloudpickle", "marshal", "shelve"}
    for source in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(source.read_text(), str(source))):
            if isinstance(node, ast.Import):
                imported = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported = {(node.module or "").split(".")[0]}
            else:
                continue
            assert not imported & forbidden, f"{source} imports {imported & forbidden}"


def test_union_tags_follow_a_retag_of_their_member() -> None:
    codec = sa.Codec()
    codec.register(sa.Pause, tag="control.pause")
    data = codec.encode(sa.ActorControl(1, sa.Pause()))
    assert json.loads(data)["body"]["command"]["kind"] == "control.pause"
    assert codec.decode(data) == sa.ActorControl(1, sa.Pause())


def test_register_union_refuses_a_member_with_a_kind_field_and_registers_nothing() -> None:
    @attrs.frozen
    class Plain:
        x: int

    @attrs.frozen
    class Kinded:
        kind: str

    codec = sa.Codec(protocol=False)
    with pytest.raises(ValueError, match="field named 'kind'"):
        codec.register_union(Plain | Kinded)
    with pytest.raises(sa.EncodeError, match="not registered"):
        codec.encode(Plain(1))
