"""Wire codec: attrs messages to JSON or msgpack bytes and back, through one cattrs converter.

Every payload is an envelope ``{"schema": 1, "type": "<tag>", "body": {...}}``. Unions inside a
message are tagged with a ``"kind"`` key naming the member class. Decoding is strict: wrong types
are not coerced (``"1.5"`` is not a float), unknown or extra keys are refused, NaN and infinities
are refused, and any failure raises `DecodeError` listing each problem with its field path.
Nothing else escapes `Codec.decode`, whatever the bytes. There is no pickle anywhere.
"""

from __future__ import annotations

import enum
import json
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any, Final, Literal

import attrs
import cattrs
import cattrs.cols
import cattrs.gen
import msgpack
from cattrs.v import format_exception

from spaceactors import messages
from spaceactors.checks import short_repr, shorten
from spaceactors.errors import DecodeError, EncodeError, InvalidMessage, InvalidSpec

Format = Literal["json", "msgpack"]
"""The name of a wire format: ``"json"`` or ``"msgpack"``."""
FORMATS: Final = ("json", "msgpack")
"""Every wire format the codec speaks."""
SCHEMA_VERSION: Final = 1
"""The protocol version written in every envelope's ``"schema"`` key; `decode` refuses any other."""
DEFAULT_MAX_PAYLOAD: Final = 1 << 20  # 1 MiB
"""The largest payload, in bytes (1 MiB), that `encode` writes and `decode` reads by default;
``Codec(max_payload=...)`` sets another."""
UNION_TAG: Final = "kind"
_ENVELOPE_KEYS: Final = frozenset({"schema", "type", "body"})
_COMPACT: Final = (",", ":")


class _WireProblem(ValueError):
    """A structuring problem whose text is already the message to show the user."""


def _type_name(value: object) -> str:
    return "null" if value is None else type(value).__name__


def _expect(kind: type | tuple[type, ...], what: str, value: object) -> None:
    if (isinstance(value, bool) and kind is not bool) or not isinstance(value, kind):
        raise _WireProblem(f"expected {what}, got {_type_name(value)}")


def _structure_float(value: object, _: type) -> float:
    _expect((int, float), "a number", value)
    try:
        number = float(typing.cast("float", value))
    except OverflowError:
        raise _WireProblem(
            f"expected a finite number, got {short_repr(value)} (beyond a float's range)"
        ) from None
    if not math.isfinite(number):
        raise _WireProblem(f"expected a finite number, got {number}")
    return number


def _structure_int(value: object, _: type) -> int:
    _expect(int, "an integer", value)
    return typing.cast("int", value)


def _structure_str(value: object, _: type) -> str:
    _expect(str, "a string", value)
    text = typing.cast("str", value)
    if not text.isascii():
        _check_encodable(text)
    return text


def _check_encodable(text: str) -> None:
    # JSON's \ud800 escapes decode to lone surrogates, which no UTF-8 encoder accepts: refuse
    # them here, so that whatever decodes also encodes (the codec round-trips what it accepts).
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise _WireProblem(
            f"expected text, got a lone surrogate {text[exc.start]!r} at index {exc.start} "
            f"of {short_repr(text)}"
        ) from None


def _structure_bool(value: object, _: type) -> bool:
    _expect(bool, "true or false", value)
    return typing.cast("bool", value)


def _structure_vec3(value: object, _: type) -> messages.Vec3:
    if not isinstance(value, list) or len(value) != 3:
        size = f" of {len(value)}" if isinstance(value, list) else ""
        raise _WireProblem(f"expected [x, y, z], got {_type_name(value)}{size}")
    coordinates = []
    for axis, item in zip("xyz", value, strict=True):
        try:
            coordinates.append(_structure_float(item, float))
        except _WireProblem as problem:
            raise _WireProblem(f"{axis}: {problem}") from None
    return messages.Vec3(*coordinates)


def _structure_enum(value: object, cl: type[enum.Enum]) -> enum.Enum:
    try:
        return cl(value)
    except ValueError:
        names = ", ".join(repr(member.value) for member in cl)
        raise _WireProblem(
            f"{short_repr(value)} is not a valid {cl.__name__}; expected one of {names}"
        ) from None


def _format_problem(exc: BaseException, type_: type | None) -> str:
    if isinstance(exc, _WireProblem | InvalidMessage | InvalidSpec):
        return str(exc)
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        extra = sorted(exc.extra_fields)
        shown = ", ".join(shorten(str(name)) for name in extra[:5])
        return f"extra fields found ({shown}{', ...' if len(extra) > 5 else ''})"
    return format_exception(exc, type_)


def _is_homogeneous_tuple(type_: Any) -> bool:
    origin: object = typing.get_origin(type_)
    return origin is tuple and typing.get_args(type_)[1:] == (Ellipsis,)


def _strict_converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    converter.register_structure_hook(float, _structure_float)
    converter.register_structure_hook(int, _structure_int)
    converter.register_structure_hook(str, _structure_str)
    converter.register_structure_hook(bool, _structure_bool)
    converter.register_structure_hook(messages.Vec3, _structure_vec3)
    converter.register_structure_hook_factory(
        lambda t: isinstance(t, type) and issubclass(t, enum.Enum), lambda _: _structure_enum
    )
    converter.register_unstructure_hook(messages.Vec3, lambda v: [v.x, v.y, v.z])

    def tuple_factory(type_: Any) -> Callable[[object, Any], Any]:
        structure_items = cattrs.cols.homogenous_tuple_structure_factory(type_, converter)

        def structure(value: object, cl: Any) -> Any:
            _expect(list, "an array", value)
            return structure_items(value, cl)

        return structure

    def mapping_factory(type_: Any) -> Callable[[object, Any], Any]:
        structure_items = cattrs.cols.mapping_structure_factory(type_, converter)

        def structure(value: object, cl: Any) -> Any:
            _expect(dict, "an object", value)
            for key in typing.cast("Mapping[Any, Any]", value):
                if isinstance(key, str) and not key.isascii():
                    _check_encodable(key)
            return structure_items(typing.cast("Mapping[Any, Any]", value), cl)

        return structure

    converter.register_structure_hook_factory(
        _is_homogeneous_tuple,
        tuple_factory,
    )

    def attrs_factory(type_: Any) -> Callable[[object, Any], Any]:
        structure_fields = cattrs.gen.make_dict_structure_fn(type_, converter)

        def structure(value: object, cl: Any) -> Any:
            _expect(dict, f"an object for {type_.__name__}", value)
            return structure_fields(typing.cast("Mapping[str, Any]", value), cl)

        return structure

    converter.register_structure_hook_factory(cattrs.cols.is_mapping, mapping_factory)
    converter.register_structure_hook_factory(attrs.has, attrs_factory)
    return converter


class Codec:
    """Encodes registered message classes to bytes and decodes them back.

    Args:
        max_payload: the largest payload, in bytes, that `encode` produces or `decode` accepts.
        protocol: register every class of the space protocol (`spaceactors.messages`); pass
            False for a codec that only knows what you register.
    """

    def __init__(self, *, max_payload: int = DEFAULT_MAX_PAYLOAD, protocol: bool = True) -> None:
        if isinstance(max_payload, bool) or not isinstance(max_payload, int) or max_payload <= 0:
            raise ValueError(
                f"max_payload must be a positive number of bytes, got {short_repr(max_payload)}"
            )
        self.max_payload = max_payload
        self._converter = _strict_converter()
        self._class_by_tag: dict[str, type] = {}
        self._tag_by_class: dict[type, str] = {}
        if protocol:
            for union in messages.UNIONS:
                self.register_union(union)
            for cls in messages.PROTOCOL_TYPES:
                self.register(cls)

    def register(self, cls: type, *, tag: str | None = None) -> None:
        """Make an attrs class encodable under `tag` (default: its class name).

        Raises:
            TypeError: `cls` is not an attrs class.
            ValueError: the tag is already taken by another class.
        """
        if not attrs.has(cls):
            raise TypeError(f"{cls!r} is not an attrs class; only attrs messages go on the wire")
        tag = tag or cls.__name__
        owner = self._class_by_tag.get(tag)
        if owner is not None and owner is not cls:
            raise ValueError(f"wire tag {tag!r} is already used by {owner.__qualname__}")
        self._class_by_tag.pop(self._tag_by_class.get(cls, tag), None)
        self._class_by_tag[tag] = cls
        self._tag_by_class[cls] = tag

    def register_union(self, union: Any) -> None:
        """Tag union-typed fields with each member's wire tag under the key ``"kind"``.

        Members not yet registered are registered under their class name; members already
        registered keep their tag (and follow later re-tags).

        Raises:
            ValueError: a member has a field named ``"kind"``; nothing is registered.
        """
        members: tuple[type, ...] = typing.get_args(union)
        for member in members:
            if any(field.name == UNION_TAG for field in attrs.fields(member)):
                raise ValueError(
                    f"{member.__qualname__} has a field named {UNION_TAG!r}, "
                    "which the union tag uses on the wire"
                )
        for member in members:
            if member not in self._tag_by_class:
                self.register(member)
        converter = self._converter

        def unstructure(value: Any) -> dict[str, Any]:
            body: dict[str, Any] = converter.unstructure(value, unstructure_as=type(value))
            body[UNION_TAG] = self._tag_by_class[type(value)]
            return body

        def structure(value: object, _: Any) -> Any:
            _expect(dict, f"an object tagged with {UNION_TAG!r}", value)
            fields = dict(typing.cast("dict[str, Any]", value))
            tag = fields.pop(UNION_TAG, None)
            member = self._class_by_tag.get(tag) if isinstance(tag, str) else None
            if member not in members:
                known = ", ".join(sorted(self._tag_by_class[m] for m in members))
                raise _WireProblem(
                f"unknown {UNION_TAG} {short_repr(tag)}; expected one of {known}"
            )
            return converter.structure(fields, member)

        converter.register_unstructure_hook(union, unstructure)
        converter.register_structure_hook(union, structure)

    def encode(self, message: object, format: Format = "json") -> bytes:
        """Encode a registered message as a versioned envelope.

        Raises:
            EncodeError: the type is not registered, the text cannot be encoded,
                or the payload is larger than `max_payload`.
            ValueError: `format` is neither ``"json"`` nor ``"msgpack"``.
        """
        _check_format(format)
        tag = self._tag_by_class.get(type(message))
        if tag is None:
            raise EncodeError(
                f"{type(message).__qualname__} is not registered with the codec; "
                "call codec.register(cls) first"
            )
        envelope = {
            "schema": SCHEMA_VERSION,
            "type": tag,
            "body": self._converter.unstructure(message),
        }
        try:
            if format == "json":
                text = json.dumps(
                    envelope, allow_nan=False, ensure_ascii=False, separators=_COMPACT
                )
                data = text.encode("utf-8")
            else:
                data = msgpack.packb(envelope, use_bin_type=True)
        # Unencodable text (UnicodeError is a ValueError), NaN or infinities refused by json,
        # integers msgpack cannot carry, objects neither knows.
        except (ValueError, OverflowError, TypeError) as exc:
            raise EncodeError(f"{tag} cannot be encoded as {format}: {exc}") from exc
        if len(data) > self.max_payload:  # bytes: len() is the size
            raise EncodeError(
                f"{tag} encodes to {len(data)} bytes of {format}, "
                f"over the {self.max_payload}-byte payload limit"
            )
        return data

    def decode(self, data: bytes | bytearray | memoryview, format: Format = "json") -> Any:
        """Decode an envelope produced by `encode`.

        Whatever decodes encodes again to an equal message, in either format: text that UTF-8
        cannot carry (a lone surrogate from a JSON ``\\ud800`` escape) and numbers beyond a
        float's range are refused here. The payload limit counts bytes (a memoryview's
        ``nbytes``, whatever its item size).

        Raises:
            DecodeError: anything at all is wrong with `data`; `problems` lists each with its path.
            ValueError: `format` is neither ``"json"`` nor ``"msgpack"``.
        """
        _check_format(format)
        if not isinstance(data, bytes | bytearray | memoryview):
            raise DecodeError(f"expected bytes to decode, got {_type_name(data)}")
        try:
            size = data.nbytes if isinstance(data, memoryview) else len(data)
            raw = bytes(data)
        except ValueError as exc:  # a released memoryview
            raise DecodeError(f"cannot read the {format} payload: {exc}") from None
        if size > self.max_payload:
            raise DecodeError(
                f"{format} payload of {size} bytes is over the {self.max_payload}-byte limit"
            )
        tag, cls, body = self._open_envelope(_parse(raw, format), format)
        try:
            return self._converter.structure(body, cls)
        except Exception as exc:  # cattrs groups every field's failure; we report them all
            problems = cattrs.transform_error(exc, path="$.body", format_exception=_format_problem)
            raise DecodeError(f"invalid {tag} in {format} payload", tuple(problems)) from exc

    def _open_envelope(self, envelope: object, format: str) -> tuple[str, type, object]:
        try:
            return self._check_envelope(envelope, format)
        except _WireProblem as problem:
            raise DecodeError(f"invalid {format} envelope", (str(problem),)) from None

    def _check_envelope(self, envelope: object, format: str) -> tuple[str, type, object]:
        if not isinstance(envelope, dict):
            raise _WireProblem(f"expected an object, got {_type_name(envelope)} @ $")
        missing = ", ".join(sorted(_ENVELOPE_KEYS - envelope.keys()))
        extra = ", ".join(sorted(map(short_repr, envelope.keys() - _ENVELOPE_KEYS))[:5])
        if missing or extra:
            said = "; ".join(
                text
                for text in (missing and f"missing {missing}", extra and f"extra {extra}")
                if text
            )
            raise _WireProblem(f"{said} @ $")
        schema, tag = envelope["schema"], envelope["type"]
        if type(schema) is not int or schema != SCHEMA_VERSION:
            raise _WireProblem(
                f"unsupported schema {short_repr(schema)}; this build reads {SCHEMA_VERSION}"
                " @ $.schema"
            )
        cls = self._class_by_tag.get(tag) if isinstance(tag, str) else None
        if cls is None:
            raise _WireProblem(f"unknown message type {short_repr(tag)} @ $.type")
        return tag, cls, envelope["body"]


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"unknown wire format {short_repr(format)}; use one of {FORMATS}")


def _reject_constant(name: str) -> float:
    raise _WireProblem(f"{name} is not allowed; numbers must be finite")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _WireProblem(f"{shorten(text)} overflows to {value}; numbers must be finite")
    return value


def _parse(data: bytes, format: str) -> object:
    # The parsers raise a zoo of exception types on hostile input (ValueError and its subclasses,
    # RecursionError on deep nesting, msgpack's own errors); all of them mean "bad bytes".
    try:
        if format == "json":
            return json.loads(data, parse_constant=_reject_constant, parse_float=_finite_float)
        return msgpack.unpackb(data, raw=False, strict_map_key=True, use_list=True)
    except Exception as exc:
        said = str(exc) or type(exc).__name__
        if len(said) > 200:
            said = said[:200] + "..."
        raise DecodeError(f"malformed {format} payload", (f"{said} @ $",)) from exc


default_codec: Final = Codec()
"""The codec every protocol message is registered with; `encode` and `decode` use it."""


def encode(message: object, format: Format = "json") -> bytes:
    """Encode `message` with the default codec (see `Codec.encode`)."""
    return default_codec.encode(message, format)


def decode(data: bytes | bytearray | memoryview, format: Format = "json") -> Any:
    """Decode `data` with the default codec (see `Codec.decode`)."""
    return default_codec.decode(data, format)
