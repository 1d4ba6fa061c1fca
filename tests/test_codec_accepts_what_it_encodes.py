"""The codec round-trips what it accepts, counts the payload limit in bytes, and keeps its
error messages short, whatever the input."""

from __future__ import annotations

import array
import json
import typing

import msgpack
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors.testing import strategies as sst

FORMATS: tuple[sa.codec.Format, ...] = ("json", "msgpack")


def test_the_payload_limit_counts_bytes_of_a_memoryview() -> None:
    codec = sa.Codec(max_payload=1000)
    data = codec.encode(sa.Vec3(1, 2, 3))
    padded = data + b" " * (1200 - len(data))  # 1,200 bytes: over the limit
    as_doubles = memoryview(array.array("d", padded[: 1200 // 8 * 8]))
    assert len(as_doubles) == 150
    assert as_doubles.nbytes == 1200
    with pytest.raises(sa.DecodeError, match="payload of 1200 bytes is over the 1000-byte limit"):
        codec.decode(as_doubles)
    assert codec.decode(memoryview(data)) == sa.Vec3(1, 2, 3)


def test_a_released_memoryview_is_a_decode_error() -> None:
    view = memoryview(sa.encode(sa.Pause()))
    view.release()
    with pytest.raises(sa.DecodeError):
        sa.decode(view)


@pytest.mark.parametrize(
    "payload",
    [
        {
            "schema": 1,
            "type": "ShipSpecs",
            "body": {"ship_class": "\ud800", "length": 1, "mass": 1, "cargo_capacity": 1},
        },
        {
            "schema": 1,
            "type": "MarketPrices",
            "body": {"commodities": {"ore\udfff": 1.0}, "last_updated": 0.0},
        },
        {
            "schema": 1,
            "type": "WeatherAlert",
            "body": {"affected_regions": ["ok", "x\ud83d"], "severity": "low"},
        },
    ],
)
def test_json_with_a_lone_surrogate_is_refused_at_decode(payload: object) -> None:
    data = json.dumps(payload).encode()  # ensure_ascii: the surrogate travels as \\udXXX
    with pytest.raises(sa.DecodeError, match="lone surrogate"):
        sa.decode(data)


@pytest.mark.parametrize("format", FORMATS)
def test_a_number_beyond_a_float_is_a_decode_error(format: sa.codec.Format) -> None:
    envelope = {"schema": 1, "type": "Vec3", "body": [2**63 - 1, 0, 0]}
    data = json.dumps(envelope).replace(str(2**63 - 1), str(10**400)).encode()
    if format == "json":
        with pytest.raises(sa.DecodeError, match=r"x: expected a finite number"):
            sa.decode(data, "json")
    else:
        decoded = sa.decode(msgpack.packb(envelope), "msgpack")  # msgpack ints fit a float
        assert decoded == sa.Vec3(float(2**63 - 1), 0, 0)


def test_decode_error_messages_cut_long_values_short() -> None:
    huge = "9" * 4000
    bodies = [
        f'{{"schema": 1, "type": "DistressSignal", "body": {{"emergency_type": "pirate",'
        f' "location": [0, 0, 0], "severity": {huge}}}}}',
        f'{{"schema": {huge}, "type": "Vec3", "body": [0, 0, 0]}}',
        f'{{"schema": 1, "type": "{huge}", "body": [0, 0, 0]}}',
        f'{{"schema": 1, "type": "Vec3", "body": [{huge}.0e9999, 0, 0]}}',
        f'{{"schema": 1, "type": "WeatherAlert", "body": {{"affected_regions": ["a"],'
        f' "severity": "{huge}"}}}}',
        f'{{"schema": 1, "type": "ShipSpecs", "body": {{"ship_class": "a", "length": 1,'
        f' "mass": 1, "cargo_capacity": 1, "{huge}": 1}}}}',
    ]
    for body in bodies:
        with pytest.raises(sa.DecodeError) as caught:
            sa.decode(body.encode())
        assert len(str(caught.value)) < 400, str(caught.value)


# --- the round trip, as a property ----------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**64), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=6)
    | st.sampled_from(["ore", "low", "pirate", "convoy", "debris", "\ud800", "x\udc00"]),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def _mutated(draw: st.DrawFn) -> object:
    """A valid envelope with one value replaced by something hostile, or the envelope whole."""
    message = draw(sst.any_message())
    envelope = json.loads(sa.encode(message))
    node: typing.Any = envelope
    for _ in range(draw(st.integers(0, 6))):
        keys = list(node) if isinstance(node, dict) else list(range(len(node)))
        if not keys or not isinstance(node, dict | list):
            break
        key = draw(st.sampled_from(keys))
        if not isinstance(node[key], dict | list) or draw(st.booleans()):
            node[key] = draw(json_values)
            break
        node = node[key]
    return envelope


envelopes = st.composite(_mutated)()


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(envelopes, st.sampled_from(FORMATS))
def test_whatever_decodes_encodes_again_to_an_equal_message(
    envelope: object, format: sa.codec.Format
) -> None:
    if format == "json":
        data = json.dumps(envelope).encode()
    else:
        try:
            data = msgpack.packb(envelope, use_bin_type=True, unicode_errors="surrogatepass")
        except (OverflowError, ValueError, TypeError):  # not expressible in msgpack at all
            return
    try:
        message = sa.decode(data, format)
    except sa.DecodeError:
        return  # refused, with the one documented error
    again = sa.encode(message, format)  # never EncodeError for what decode accepted
    assert sa.decode(again, format) == message


def _string_slots(node: typing.Any) -> list[tuple[typing.Any, typing.Any]]:
    """Every (container, key) whose value is a string, inside the body of an envelope."""
    slots = []
    items = node.items() if isinstance(node, dict) else enumerate(node)
    for key, value in items:
        if isinstance(value, str):
            slots.append((node, key))
        elif isinstance(value, dict | list):
            slots.extend(_string_slots(value))
    return slots


@settings(max_examples=300)
@given(sst.any_message(), st.data(), st.sampled_from(["\ud800", "\udfff", "\ud83d"]))
def test_a_lone_surrogate_anywhere_is_refused_or_round_trips(
    message: object, data: st.DataObject, surrogate: str
) -> None:
    envelope = json.loads(sa.encode(message))
    slots = _string_slots(envelope["body"]) if isinstance(envelope["body"], dict | list) else []
    if not slots:
        return
    node, key = data.draw(st.sampled_from(slots))
    node[key] = node[key] + surrogate
    try:
        decoded = sa.decode(json.dumps(envelope).encode())
    except sa.DecodeError:
        return
    assert sa.decode(sa.encode(decoded)) == decoded  # e.g. a tag that is not text


@settings(max_examples=200)
@given(st.binary(max_size=200), st.sampled_from(FORMATS))
def test_any_bytes_decode_or_raise_decode_error_and_round_trip(
    data: bytes, format: sa.codec.Format
) -> None:
    try:
        message = sa.decode(memoryview(data), format)
    except sa.DecodeError as exc:
        said = str(exc)
    else:
        said = None
    if said is not None:
        assert len(said) < 2000
        return
    assert sa.decode(sa.encode(message, format), format) == message
