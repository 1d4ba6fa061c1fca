"""Case files: a failing example of a fault test, fully resolved, as JSON.

A case is either a step of an `ActorSystemMachine` (``machine`` names it, ``steps`` lists the
rule calls) or a plain Hypothesis property (``machine`` is null; ``arguments`` holds what
Hypothesis gave the test, ``clocks`` the virtual clocks among its fixtures).

A case file is one JSON object (UTF-8, at most `MAX_CASE_BYTES`), format ``spaceactors-case``,
version 1 (see docs/testing.md, "When a fault test fails")::

    {
      "format": "spaceactors-case",
      "version": 1,
      "test": {"module": "test_bank", "qualname": "test_bank", "file": "tests/test_bank.py"},
      "machine": {"module": "test_bank", "qualname": "Bank", "file": "tests/test_bank.py"},
      "seed": 1734,                  # the system seed (open_system(seed=...))
      "scheduler_seed": 1734,        # Trio's task order (sa.seeded_scheduler)
      "start_time": 812.5,           # the virtual clock when the example began, in seconds
      "faults": {"schema": 1, "type": "FaultPlan", "body": {...}},   # FaultPlan.to_json, or null
      "steps": [{"rule": "transfer", "arguments": {"amount": 5}}, ...],
      "arguments": {},               # a property's arguments by name (a machine's: {})
      "clocks": {},                  # a property's MockClock fixtures: name -> autojump threshold
      "failure": "AssertionError: money was created: 105 != 100",
      "trace": {"file": "test_bank-1a2b3c4d.trace.jsonl", "hash": "3f2a...", "events": 123}
    }

Each argument of a step is a JSON value: ``null``, a bool, an int, a finite float, a string or a
list of values stand for themselves; any other value is an object with one key: ``{"tuple":
[...]}``, ``{"dict": [[key, value], ...]}``, ``{"float": "nan"}`` (or ``"inf"``, ``"-inf"``),
``{"enum": "FormationType", "name": "WEDGE"}`` (an enum of `spaceactors.messages`) or
``{"message": {...}}`` (a protocol message as the codec writes it, `spaceactors.codec`),
``{"fault_plan": {...}}`` (`FaultPlan.to_json`), ``{"fault_rule": {...}}`` (one rule, as the
one rule of a plan) or ``{"draws": [...]}`` (what a test drew from Hypothesis' ``st.data()``,
in order; `Draws`).
Anything else cannot be saved: `encode_value` raises `CaseError` naming it.
"""

from __future__ import annotations

import enum
import hashlib
import json
import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from spaceactors import codec
from spaceactors import messages as m
from spaceactors.checks import short_repr
from spaceactors.errors import DecodeError, EncodeError
from spaceactors.faultplan import FaultPlan, Rule

FORMAT = "spaceactors-case"
VERSION = 1
"""The version of the case format this build writes and reads."""
MAX_CASE_BYTES = 16 * 2**20
"""A case file larger than this is refused (it is read whole)."""

_ENUMS: dict[str, type[enum.Enum]] = {
    cls.__name__: cls
    for cls in vars(m).values()
    if isinstance(cls, type) and issubclass(cls, enum.Enum) and cls.__module__ == m.__name__
}
_DOTTED = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")
_FIELDS = (
    "format",
    "version",
    "test",
    "machine",
    "seed",
    "scheduler_seed",
    "start_time",
    "faults",
    "steps",
    "failure",
    "trace",
)


class CaseError(ValueError):
    """A case file that cannot be read, or an example that cannot be saved or replayed."""


@attrs.frozen
class Step:
    """One rule call: the rule's method name and its keyword arguments."""

    rule: str
    arguments: dict[str, Any]


@attrs.frozen
class Draws:
    """The values a test drew from Hypothesis' ``st.data()``, in the order it drew them."""

    values: tuple[Any, ...]


@attrs.frozen
class Where:
    """Where a test or machine lives: its module, its qualified name and (maybe) its file."""

    module: str
    qualname: str
    file: str | None = None


@attrs.frozen
class Case:
    """A failing example, resolved: replaying it needs no Hypothesis."""

    test: Where
    machine: Where | None
    """The `ActorSystemMachine` of the case; None for a plain property."""
    seed: int
    scheduler_seed: int
    start_time: float
    faults: FaultPlan | None
    steps: tuple[Step, ...]
    failure: str = ""
    trace_file: str | None = None
    trace_hash: str | None = None
    trace_events: int | None = None
    arguments: dict[str, Any] = attrs.Factory(dict)
    """A property's arguments by name (a `Draws` for ``st.data()``); empty for a machine."""
    clocks: dict[str, float] = attrs.Factory(dict)
    """A property's `trio.testing.MockClock` arguments: name -> autojump threshold (s)."""

    def key(self) -> str:
        """A short hash of what makes the example (not of its outcome)."""
        document = self._document()
        for field in ("failure", "trace", "start_time"):  # the same example, run again: one file
            document.pop(field)
        text = json.dumps(document, sort_keys=True, ensure_ascii=True)
        return hashlib.sha256(text.encode()).hexdigest()[:8]

    def file_name(self) -> str:
        """``<test>-<short hash>.json``: the test function's name and `key`."""
        name = re.sub(r"[^\w.-]", "_", self.test.qualname.rpartition(".")[2]) or "case"
        return f"{name[:80]}-{self.key()}.json"

    def to_json(self) -> str:
        """The case file's text (indented JSON, ASCII only)."""
        return json.dumps(self._document(), indent=2, ensure_ascii=True, allow_nan=False) + "\n"

    def _document(self) -> dict[str, Any]:
        trace = None
        if self.trace_hash is not None:
            trace = {"file": self.trace_file, "hash": self.trace_hash, "events": self.trace_events}
        return {
            "format": FORMAT,
            "version": VERSION,
            "test": attrs.asdict(self.test),
            "machine": None if self.machine is None else attrs.asdict(self.machine),
            "seed": self.seed,
            "scheduler_seed": self.scheduler_seed,
            "start_time": self.start_time,
            "faults": None if self.faults is None else json.loads(self.faults.to_json()),
            "steps": [
                {"rule": step.rule, "arguments": _encode_arguments(index, step)}
                for index, step in enumerate(self.steps)
            ],
            "arguments": {
                name: encode_value(value, f"argument {name!r}")
                for name, value in self.arguments.items()
            },
            "clocks": dict(self.clocks),
            "failure": self.failure,
            "trace": trace,
        }

    @classmethod
    def from_json(cls, text: str | bytes) -> Case:
        """Read a case file's text.

        Raises:
            CaseError: not JSON, not a case, another version, a field missing or of the wrong
                type (the message names it, as ``@ $.steps[2].rule``).
        """
        try:
            document = json.loads(text, parse_constant=_no_constant, object_pairs_hook=_unique)
        except (ValueError, RecursionError) as exc:
            raise CaseError(f"not JSON: {exc}") from None
        try:
            return _read_case(document)
        except RecursionError:
            raise CaseError("nested too deeply") from None

    @classmethod
    def read(cls, path: str | os.PathLike[str]) -> Case:
        """Read the case file at `path`.

        Raises:
            CaseError: the file cannot be read or is not a case (the message starts with `path`).
        """
        if not isinstance(path, str | os.PathLike):
            raise CaseError(f"a case is the path of a file, got {short_repr(path)}")
        try:
            with open(path, "rb") as file:
                data = file.read(MAX_CASE_BYTES + 1)
        except (OSError, ValueError) as exc:  # ValueError: a NUL or a lone surrogate in it
            raise CaseError(
                f"cannot read the case {short_repr(path)}: {getattr(exc, 'strerror', None) or exc}"
            ) from None
        if len(data) > MAX_CASE_BYTES:
            raise CaseError(
                f"{short_repr(path)}: not a case file: over {MAX_CASE_BYTES // 2**20} MiB"
            )
        try:
            return cls.from_json(data)
        except CaseError as exc:
            raise CaseError(f"{os.fspath(path)}: not a case file: {exc}") from None


def _unique(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """A JSON object whose keys are all different (a key given twice is an edited file)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            raise ValueError(f"the key {key!r} appears twice in one object")
        seen.add(key)
    return dict(pairs)


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not JSON")


def encode_value(value: object, where: str = "$") -> object:
    """`value` as case JSON (see the module notes).

    Raises:
        CaseError: a value that is neither a JSON value, a tuple, a dict, an enum of
            `spaceactors.messages` nor a protocol message (`where` names it).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return {"float": repr(value)}
    if isinstance(value, list):
        return [encode_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if isinstance(value, tuple) and type(value) is tuple:
        return {"tuple": [encode_value(item, f"{where}[{i}]") for i, item in enumerate(value)]}
    if isinstance(value, dict) and type(value) is dict:
        return {
            "dict": [
                [encode_value(key, f"{where}.key"), encode_value(item, f"{where}[{key!r}]")]
                for key, item in value.items()
            ]
        }
    if isinstance(value, enum.Enum) and _ENUMS.get(type(value).__name__) is type(value):
        return {"enum": type(value).__name__, "name": value.name}
    if isinstance(value, FaultPlan):
        return {"fault_plan": json.loads(value.to_json())}
    if isinstance(value, Rule):
        return {"fault_rule": json.loads(FaultPlan([value]).to_json())}
    if isinstance(value, Draws):
        return {
            "draws": [encode_value(item, f"{where}[{i}]") for i, item in enumerate(value.values)]
        }
    try:
        return {"message": json.loads(codec.encode(value))}
    except EncodeError as exc:
        hint = f" ({exc})" if attrs.has(type(value)) else ""  # an attrs class may be registered
        raise CaseError(
            f"{where} is {short_repr(value)}, a {type(value).__qualname__}: a case holds JSON "
            f"values, tuples, dicts, fault plans and protocol messages only{hint}"
        ) from None


def decode_value(value: object, where: str = "$") -> Any:
    """Rebuild a value `encode_value` wrote.

    Raises:
        CaseError: `value` is not what `encode_value` writes (`where` names the place).
    """
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value
    if isinstance(value, list):
        return [decode_value(item, f"{where}[{i}]") for i, item in enumerate(value)]
    if not isinstance(value, dict) or (len(value) != 1 and set(value) != {"enum", "name"}):
        raise CaseError(f"not a saved value: {short_repr(value)} @ {where}")
    if set(value) == {"enum", "name"}:
        return _decode_enum(value, where)
    ((tag, body),) = value.items()
    if tag == "tuple" and isinstance(body, list):
        return tuple(decode_value(item, f"{where}[{i}]") for i, item in enumerate(body))
    if tag == "dict" and isinstance(body, list):
        return _decode_dict(body, where)
    if tag == "float" and body in ("nan", "inf", "-inf"):
        return float(body)
    if tag in ("fault_plan", "fault_rule"):
        try:
            plan = FaultPlan.from_json(json.dumps(body, allow_nan=False))
        except (DecodeError, ValueError) as exc:
            raise CaseError(f"not a fault plan: {exc} @ {where}") from None
        if tag == "fault_plan":
            return plan
        if len(plan.rules) != 1:
            raise CaseError(f"a fault rule is a plan of one rule @ {where}")
        return plan.rules[0]
    if tag == "draws" and isinstance(body, list):
        return Draws(tuple(decode_value(item, f"{where}[{i}]") for i, item in enumerate(body)))
    if tag == "message":
        try:
            return codec.decode(json.dumps(body, allow_nan=False).encode())
        except (DecodeError, ValueError) as exc:
            raise CaseError(f"not a protocol message: {exc} @ {where}") from None
    raise CaseError(f"not a saved value: {short_repr(value)} @ {where}")


def _decode_enum(value: dict[str, Any], where: str) -> enum.Enum:
    cls = _ENUMS.get(value["enum"]) if isinstance(value["enum"], str) else None
    if cls is None:
        raise CaseError(f"no enum {short_repr(value['enum'])} in spaceactors.messages @ {where}")
    name = value["name"]
    if not isinstance(name, str) or name not in cls.__members__:
        raise CaseError(f"{cls.__name__} has no member {short_repr(name)} @ {where}")
    return cls[name]


def _decode_dict(body: list[object], where: str) -> dict[Any, Any]:
    result: dict[Any, Any] = {}
    for i, pair in enumerate(body):
        if not isinstance(pair, list) or len(pair) != 2:
            raise CaseError(f"a dict item is a [key, value] pair @ {where}[{i}]")
        key = decode_value(pair[0], f"{where}[{i}][0]")
        try:
            result[key] = decode_value(pair[1], f"{where}[{i}][1]")
        except TypeError:
            raise CaseError(f"a dict key must be hashable @ {where}[{i}][0]") from None
    return result


def _encode_arguments(index: int, step: Step) -> dict[str, object]:
    return {
        name: encode_value(value, f"step {index} ({step.rule}), argument {name!r}")
        for name, value in step.arguments.items()
    }


def _read_case(document: object) -> Case:
    if not isinstance(document, dict):
        raise CaseError(f"a case is a JSON object, got {short_repr(document)}")
    if document.get("format") != FORMAT:
        raise CaseError(
            f"format is {short_repr(document.get('format'))}, not {FORMAT!r} @ $.format"
        )
    version = document.get("version")
    if type(version) is not int or version != VERSION:
        raise CaseError(
            f"version {short_repr(version)}: this build reads version {VERSION} @ $.version"
        )
    missing = [field for field in _FIELDS if field not in document]
    if missing:
        raise CaseError(f"missing field(s) {', '.join(missing)} @ $")
    faults = document["faults"]
    plan = None
    if faults is not None:
        try:
            plan = FaultPlan.from_json(json.dumps(faults, allow_nan=False))
        except DecodeError as exc:
            raise CaseError(f"not a fault plan: {exc} @ $.faults") from None
    trace = document["trace"]
    if trace is not None and not isinstance(trace, dict):
        raise CaseError(f"trace is an object or null, got {short_repr(trace)} @ $.trace")
    trace = trace or {}
    machine = document["machine"]
    return Case(
        test=_where(document["test"], "$.test"),
        machine=None if machine is None else _where(machine, "$.machine"),
        seed=_int(document["seed"], "$.seed", -(2**63), 2**64),
        scheduler_seed=_int(document["scheduler_seed"], "$.scheduler_seed", -(2**63), 2**64),
        start_time=_start_time(document["start_time"]),
        faults=plan,
        steps=_steps(document["steps"]),
        failure=_text(document["failure"], "$.failure"),
        trace_file=_file_name(trace.get("file"), "$.trace.file"),
        trace_hash=_optional_text(trace.get("hash"), "$.trace.hash"),
        trace_events=None
        if trace.get("events") is None
        else _int(trace["events"], "$.trace.events", 0, 2**63),
        arguments=_arguments(document.get("arguments", {}), "$.arguments"),
        clocks=_clocks(document.get("clocks", {})),
    )


def _where(value: object, where: str) -> Where:
    if not isinstance(value, dict):
        raise CaseError(f"expected an object, got {short_repr(value)} @ {where}")
    module, qualname = value.get("module"), value.get("qualname")
    if not isinstance(module, str) or not _DOTTED.match(module):
        raise CaseError(f"not a module name: {short_repr(module)} @ {where}.module")
    if not isinstance(qualname, str) or not qualname:
        raise CaseError(f"not a qualified name: {short_repr(qualname)} @ {where}.qualname")
    return Where(module, qualname, _optional_text(value.get("file"), f"{where}.file"))


def _int(value: object, where: str, low: int, high: int) -> int:
    if type(value) is not int or not low <= value < high:
        raise CaseError(f"expected an int in [{low}, {high}), got {short_repr(value)} @ {where}")
    return value


def _start_time(value: object) -> float:
    if type(value) not in (int, float) or not 0 <= value < 2**53:  # type: ignore[operator]
        raise CaseError(f"expected seconds in [0, 2**53), got {short_repr(value)} @ $.start_time")
    return float(value)  # type: ignore[arg-type]


def _text(value: object, where: str) -> str:
    if not isinstance(value, str):
        raise CaseError(f"expected a string, got {short_repr(value)} @ {where}")
    return value


def _optional_text(value: object, where: str) -> str | None:
    return None if value is None else _text(value, where)


def _file_name(value: object, where: str) -> str | None:
    name = _optional_text(value, where)
    if name is not None and (Path(name).name != name or name in ("", ".", "..")):
        raise CaseError(f"the trace is a file beside the case, got {short_repr(name)} @ {where}")
    return name


def _arguments(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping) or not all(map(str.isidentifier, value)):
        raise CaseError(f"arguments is an object keyed by names, got {short_repr(value)} @ {where}")
    return {name: decode_value(given, f"{where}.{name}") for name, given in value.items()}


def _clocks(value: object) -> dict[str, float]:
    if not isinstance(value, Mapping) or not all(map(str.isidentifier, value)):
        raise CaseError(f"clocks is an object keyed by names, got {short_repr(value)} @ $.clocks")
    clocks = {}
    for name, threshold in value.items():
        if type(threshold) not in (int, float) or not 0 <= threshold < 2**53:
            raise CaseError(
                f"an autojump threshold is seconds in [0, 2**53), got {short_repr(threshold)} "
                f"@ $.clocks.{name}"
            )
        clocks[name] = float(threshold)
    return clocks


def _steps(value: object) -> tuple[Step, ...]:
    if not isinstance(value, list):
        raise CaseError(f"steps is a list, got {short_repr(value)} @ $.steps")
    steps = []
    for i, item in enumerate(value):
        where = f"$.steps[{i}]"
        if not isinstance(item, dict) or set(item) != {"rule", "arguments"}:
            raise CaseError(f"a step is {{'rule': ..., 'arguments': {{...}}}} @ {where}")
        rule, arguments = item["rule"], item["arguments"]
        if not isinstance(rule, str) or not rule.isidentifier():
            raise CaseError(f"not a rule name: {short_repr(rule)} @ {where}.rule")
        if not isinstance(arguments, Mapping) or not all(map(str.isidentifier, arguments)):
            raise CaseError(
                f"arguments is an object keyed by names, got {short_repr(arguments)} @ {where}"
            )
        steps.append(
            Step(
                rule,
                _arguments(arguments, f"{where}.arguments"),
            )
        )
    return tuple(steps)


__all__ = ["FORMAT", "MAX_CASE_BYTES", "VERSION", "Case", "CaseError", "Draws", "Step", "Where"]
