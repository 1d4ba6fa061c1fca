"""Every public callable refuses hostile arguments with the documented error, cut short.

A sweep over ``spaceactors.__all__``, ``spaceactors.sim.__all__`` and
``spaceactors.testing.__all__``: each argument of each public constructor and function is given
huge integers, NaN, infinities, bools, None, lists, strings (long ones and lone surrogates),
bytes, deeply nested lists and plain objects. Only ``ValueError`` and its documented subclasses
may come out (``OSError`` too where a path names a file to open), with a short message -- never
a bare ``TypeError``, ``OverflowError``, ``AttributeError`` or ``RecursionError``.

Names taken by callables the system builds for you (an `ActorRef`, the `Router`, a `World`, the
assertions on a running system) are listed in `BUILT_BY_THE_SYSTEM`; the sweep checks that every
other public callable is covered, so a new public name cannot slip past it.
"""

from __future__ import annotations

import enum
import functools
import inspect
import math
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio

import spaceactors as sa
from spaceactors import sim, testing

_deep: list[Any] = []
_cursor = _deep
for _ in range(100_000):
    _cursor.append([])
    _cursor = _cursor[0]

HOSTILE: dict[str, object] = {
    "huge": 10**400,
    "2**1024": 2**1024,
    "-huge": -(10**400),
    "nan": math.nan,
    "inf": math.inf,
    "-inf": -math.inf,
    "True": True,
    "False": False,
    "None": None,
    "str": "x",
    "surrogate": "\ud800",
    "long str": "a" * 100_000,
    "list": [1],
    "deep": _deep,
    "bytes": b"x",
    "complex": 1j,
    "object": object(),
    "-1": -1,
}

BUILT_BY_THE_SYSTEM = {
    # made by the system (they need its internals), never by hand
    "ActorContext", "ActorRef", "ActorSystem", "Reliable", "Router", "Supervisor", "Permit",
    "Timer", "Ship", "Station", "World", "Actor", "ActorSystemMachine",
    # read-only reports the system fills in
    "ActorStatus", "BucketStats", "ChildCounts", "ChildInfo", "DeadLetter", "DeadLetters",
    "FlowStats", "Receipt", "ReliableStats", "RouterStats", "Progress", "ShipRecord",
    "StationState", "Summary", "Lifecycle", "LifecycleEvent",
    # typing aliases and decorators over Hypothesis's own checks
    "ActorId", "MessageId", "Format", "Point", "rule", "precondition", "invariant",
    # run by `run`/`open_system` in a Trio context, or taking a running system
    "run", "open_system", "seeded_scheduler", "run_scenario", "assert_exactly_once",
    "assert_no_reliable_message_lost", "assert_no_task_leaked",
    "assert_restarts_within_intensity", "busy", "reliable_outcome", "task_count",
    "wait_until_idle", "RunControl", "run_control",
    # needs a running system's router: swept by the async test at the end of this file
    "RateLimitedSender",
    # need a saved case file, or are read from one: swept by tests/test_case_files_hostile.py
    "replay", "cases", "Case", "ReplayResult",
}  # fmt: skip


class _Echo(sa.Actor):
    async def handle(self, message: object) -> object:
        return message


async def _build(world: Any) -> None:
    pass


def _value(summary: object) -> float:
    return 1.0


async def _serve(task_status: object) -> None:
    """A service's `serve` (never run here)."""


# Valid arguments for the callables whose required arguments cannot be guessed.
BASE: dict[str, dict[str, Any]] = {
    "ActorControl": {"target": 1, "command": sa.Shutdown()},
    "CargoItem": {"item_type": "ore", "quantity": 1.0, "unit_value": 1.0},
    "ChildSpec": {"name": "a", "factory": _Echo},
    "Codec": {},
    "CrashActor": {"actors": ["a"], "nth": 1},
    "DistressSignal": {
        "emergency_type": next(iter(sa.EmergencyType)),
        "location": sa.Vec3(),
        "severity": 1,
    },
    "DockingPermission": {"granted": False},
    "FaultInjector": {"plan": sa.FaultPlan([]), "rng": random.Random(1)},
    "FaultPlan": {"rules": []},
    "FlowController": {"max_concurrent": 1, "queue_limit": 1},
    "FormationRequest": {"formation_type": next(iter(sa.FormationType)), "position": sa.Vec3()},
    "MarketPrices": {"commodities": {"ore": 1.0}, "last_updated": 0.0},
    "MarketUpdate": {"sector": "sol", "price_changes": {"ore": 1.0}},
    "NavigationHazard": {
        "location": sa.Vec3(),
        "radius": 1.0,
        "hazard_type": next(iter(sa.HazardType)),
    },
    "Partition": {"groups": [["a"], ["b"]]},
    "PauseActor": {"actors": ["a"], "duration": 1.0},
    "RequestDocking": {"ship_specs": sa.ShipSpecs("hauler", 1.0, 1.0, 1.0)},
    "ResourceRequest": {"resource_type": "ore", "quantity": 1.0, "max_price": 1.0},
    "ServiceAvailability": {"repairs": True, "refueling": True, "crew_quarters": True},
    "ServiceSpec": {"name": "svc", "serve": _serve},
    "ShipSpecs": {"ship_class": "hauler", "length": 1.0, "mass": 1.0, "cargo_capacity": 1.0},
    "ShipToShip": {"sender": 1, "recipient": 2, "content": sa.DistressSignal(
        next(iter(sa.EmergencyType)), sa.Vec3(), 1
    )},
    "ShipToStation": {"sender": 1, "recipient": 2, "content": sa.DistressSignal(
        next(iter(sa.EmergencyType)), sa.Vec3(), 1
    )},
    "SlowActor": {"actors": ["a"], "seconds": 1.0},
    "StationToShip": {"sender": 1, "recipient": 2, "content": sa.DockingPermission(False)},
    "SupervisorSpec": {"name": "s"},
    "SystemBroadcast": {"sender": 1, "content": sa.WeatherAlert(
        ["sol"], next(iter(sa.WeatherSeverity))
    )},
    "TokenBucket": {"capacity": 1.0, "rate": 1.0},
    "TraceEvent": {"time": 0.0, "kind": next(iter(sa.EventKind))},
    "WeatherAlert": {"affected_regions": ["sol"], "severity": next(iter(sa.WeatherSeverity))},
    "decode": {"data": sa.encode(sa.Vec3())},
    "encode": {"message": sa.Vec3()},
    "trace_hash": {"events": []},
    "decode_segment": {"data": sa.encode_segment([])},
    "encode_segment": {"events": []},
    "Backoff": {"initial": 1.0, "maximum": 2.0},
    "Body": {"name": "b", "x": 0.0, "y": 0.0},
    "Commodity": {"base_price": 1.0, "target": 1.0, "stock": 1.0},
    "Scenario": {"name": "s", "build": _build},
    "at_least": {"what": "dockings", "value": _value, "count": 1, "per": 1.0, "duration": 1.0},
    "every_distress_answered_within": {"seconds": 1.0},
    "scaled": {"count": 1, "per": 1.0, "duration": 1.0},
    "compare": {"what": "dockings", "measured": 3, "op": ">=", "threshold": 1.0},
    "Verdict": {"held": False, "why": "dockings: 3 < 10"},
    "actor_faults": {"actors": ["a"]},
    "crash_schedules": {"actors": ["a"]},
    "partitions": {"actors": ["a", "b"]},
}

# Arguments that name a file to open: OSError is their documented error too.
PATHS = {("JsonLinesSink", "path"), ("SQLiteSink", "path"), ("load_trace", "path"),
         ("load", "name_or_path")}  # fmt: skip


def _public() -> list[tuple[str, Callable[..., Any]]]:
    found = []
    for module in (sa, sim, testing):
        for name in module.__all__:
            obj = getattr(module, name)
            if not callable(obj) or name in BUILT_BY_THE_SYSTEM:
                continue
            if isinstance(obj, type) and issubclass(obj, BaseException | enum.Enum):
                continue
            found.append((name, obj))
    return found


PUBLIC = _public()


def _call(obj: Callable[..., Any], kwargs: dict[str, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = obj(**kwargs)
    if inspect.iscoroutine(result) or isinstance(result, sa.JsonLinesSink | sa.SQLiteSink):
        result.close()


def _parameters(obj: Callable[..., Any]) -> list[inspect.Parameter]:
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return [p for p in inspect.signature(obj).parameters.values() if p.kind in kinds]


def _cases() -> list[tuple[str, str]]:
    return [(name, p.name) for name, obj in PUBLIC for p in _parameters(obj)]


def test_every_public_callable_has_valid_base_arguments(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    for name, obj in PUBLIC:
        kwargs = _base(name, obj, tmp_path)
        _call(obj, kwargs)  # raises if the table above is stale


def _base(name: str, obj: Callable[..., Any], tmp_path: Path) -> dict[str, Any]:
    kwargs = dict(BASE.get(name, {}))
    for p in _parameters(obj):
        if p.name in kwargs:
            continue
        if (name, p.name) in PATHS:
            kwargs[p.name] = str(tmp_path / "t.jsonl") if name != "load" else "trade-route"
        else:
            assert p.default is not inspect.Parameter.empty, f"{name}({p.name}) needs a BASE"
            kwargs[p.name] = p.default
    if name == "load_trace":
        (tmp_path / "t.jsonl").write_text("")
    return kwargs


@pytest.mark.parametrize(("name", "argument"), _cases())
def test_hostile_values_raise_only_value_errors_with_short_messages(
    name: str, argument: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a path argument given "x" creates ./x
    obj = dict(PUBLIC)[name]
    allowed: tuple[type[BaseException], ...] = (ValueError,)
    if (name, argument) in PATHS:
        allowed = (ValueError, OSError, sim.ScenarioNotFound)  # no such file or scenario
    for label, value in HOSTILE.items():
        kwargs = _base(name, obj, tmp_path)
        kwargs[argument] = value
        raised = _raised(functools.partial(_call, obj, kwargs))
        where = f"{name}({argument}={label})"
        if raised is None:
            continue
        assert isinstance(raised, allowed), f"{where} raised {_said(raised)}"
        if not isinstance(raised, OSError | sim.ScenarioNotFound):  # the OS's words on a file
            assert len(str(raised)) < 400, f"{where}: {len(str(raised))} chars"


def _raised(call: Callable[[], object]) -> BaseException | None:
    try:
        call()
    except BaseException as exc:  # every kind is checked by the caller
        return exc
    return None


def _said(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200]}"


async def test_rate_limited_sender_refuses_hostile_values_for_every_argument(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        base: dict[str, Any] = {
            "router": system.router,
            "max_concurrent": 1,
            "queue_limit": 1,
            "rate": 1.0,
            "burst": None,
        }
        sa.RateLimitedSender(**base)
        for argument in base:
            for label, value in HOSTILE.items():
                kwargs = dict(base)
                kwargs[argument] = value
                raised = _raised(functools.partial(sa.RateLimitedSender, **kwargs))
                if raised is None:
                    continue
                where = f"RateLimitedSender({argument}={label})"
                assert isinstance(raised, ValueError), f"{where} raised {_said(raised)}"
                assert len(str(raised)) < 400, where
                assert argument in str(raised), f"{where}: {raised}"
