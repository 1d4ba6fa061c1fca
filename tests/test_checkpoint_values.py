"""The checkpoint's state converter: live values to plain data and back, exactly.

A resumed run must behave as if never stopped, so a restored value is the saved one down to
its types (tuple vs list, int vs float vs bool, key types, a deque's maxlen, nan) and its
aliasing; what cannot be saved is named at the first checkpoint with the actor, field path and
type; and restoring reads data only: it never imports or runs anything the file names.
"""

from __future__ import annotations

import collections
import math
import random
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Callable

import attrs
import hypothesis
import pytest
import trio
import trio.testing
from hypothesis import given
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors.checkpoint.values import restore_actor, restore_value, save_actor, save_value
from spaceactors.sim import events as ev
from tests.checkpoint_values_support import (
    Colour,
    Frozen,
    Level,
    Loose,
    Node,
    Perm,
    Slotted,
    aliased,
    plain_round_trip,
    same,
    values,
)

MOD = __name__  # "tests.test_checkpoint_values" or "test_checkpoint_values", by how pytest ran
SUPPORT = Colour.__module__


def no_refs(actor_id: int) -> sa.ActorRef:
    raise sa.ActorNotFound(f"no actor #{actor_id}")


def round_trip(value: object, shared: dict[str, object] | None = None) -> object:
    shared = shared or {}
    data = plain_round_trip(save_value(value, where="test value", shared=shared))
    return restore_value(data, shared=shared, refs=no_refs)


# --- exact round trips ------------------------------------------------------------------------


@hypothesis.settings(max_examples=300, deadline=None)
@given(values)
def test_every_savable_value_round_trips_exactly_through_msgpack(value: object) -> None:
    assert same(value, round_trip(value))


@pytest.mark.parametrize(
    "value",
    [
        (1, 2),
        [1, 2],
        {1: "int key", 1.5: "float key", "1": "str key", (1, 2): "tuple key", None: "none"},
        {True: "bool key"},
        {frozenset({1, 2}): Colour.GREEN, Level.HIGH: Colour.RED},
        {1, 2.5, "x", (1,)},
        frozenset({b"bytes", 0}),
        [True, 1, 1.0, 0, False, 0.0, -0.0],
        [math.inf, -math.inf, math.nan, 5e-324, 1.7976931348623157e308],
        [2**63, -(2**63) - 1, 2**64 - 1, 2**64, -(2**200), 10**1000],
        collections.deque([1, 2, 3], maxlen=3),
        collections.deque(maxlen=0),
        collections.deque([(1, 2)]),
        collections.OrderedDict([(3, "c"), (1, "a"), (2, "b")]),
        collections.defaultdict(list, {1: [2]}),
        collections.defaultdict(None, {"a": 1}),
        {"é": "non-ASCII key", "\x00": "nul", "": "empty"},
        ["\U0001f680 rocket", "é", b"\xff\x00"],
        Frozen("cargo", 1.5, ("a", "b")),
        Slotted([1, (2, 3)], {"k": Level.LOW}),
        Loose("loose", [1]),
        [Frozen, Colour, Level, int, object, collections.deque, sa.Actor],
        Colour.GREEN,
        [Perm.R | Perm.W, Perm(0), Perm.X, Perm.R | Perm.W | Perm.X],
        ev.Trade(7, "ship-1", sa.TradeOffer((sa.CargoItem("ore", 2.0, 3.0),), ()), 1.0),
    ],
    ids=repr,
)
def test_each_kind_of_value_round_trips_exactly(value: object) -> None:
    restored = round_trip(value)
    assert same(value, restored), (value, restored)


def test_a_random_generator_continues_where_it_was() -> None:
    generator = random.Random(42)
    generator.random()
    generator.gauss(0.0, 1.0)  # leaves a cached second gauss value in the state
    restored = round_trip(generator)
    assert isinstance(restored, random.Random)
    assert restored is not generator
    assert [restored.random() for _ in range(5)] == [generator.random() for _ in range(5)]
    assert restored.gauss(0.0, 1.0) == generator.gauss(0.0, 1.0)


@pytest.mark.parametrize(
    "make",
    [
        list,
        dict,
        set,
        collections.deque,
        collections.OrderedDict,
        lambda: Slotted([1]),
        lambda: Loose("x"),
        lambda: random.Random(3),
        lambda: collections.defaultdict(int),
    ],
    ids=[
        "list",
        "dict",
        "set",
        "deque",
        "OrderedDict",
        "attrs slots",
        "attrs dict",
        "Random",
        "defaultdict",
    ],
)
def test_one_mutable_value_met_twice_stays_one_value(make: Callable[[], object]) -> None:
    restored = round_trip(aliased(make))
    assert isinstance(restored, list)
    first, holder, wrapped = restored
    assert holder["again"] is first
    assert wrapped[0] is first


def test_cycles_survive() -> None:
    loop: list[object] = [1]
    loop.append(loop)
    ring = Node("a", Node("b"))
    assert ring.next is not None
    ring.next.next = ring
    selfish = Slotted()
    selfish.other = selfish
    table: dict[str, object] = {}
    table["me"] = (table, [table])
    restored = round_trip([loop, ring, selfish, table])
    assert isinstance(restored, list)
    r_loop, r_ring, r_selfish, r_table = restored
    assert r_loop[1] is r_loop
    assert r_loop[0] == 1
    assert r_ring.next.next is r_ring
    assert r_ring.next.name == "b"
    assert r_selfish.other is r_selfish
    assert r_table["me"][0] is r_table
    assert r_table["me"][1][0] is r_table


def test_shared_objects_are_saved_by_name_and_restored_as_the_same_object() -> None:
    class World:  # not savable by value: only by name
        pass

    world, other = World(), [1, 2]
    shared: dict[str, object] = {"world": world, "table": other}
    data = save_value({"w": world, "t": other, "copy": [1, 2]}, where="x", shared=shared)
    assert data == ["d", {"w": ["S", "world"], "t": ["S", "table"], "copy": ["l", 1, 2]}]
    restored = restore_value(plain_round_trip(data), shared=shared, refs=no_refs)
    assert isinstance(restored, dict)
    assert restored["w"] is world
    assert restored["t"] is other
    assert restored["copy"] is not other


async def test_actor_refs_are_saved_as_ids_and_restored_through_refs(
    autojump_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system(seed=1) as system:
        ref = await system.spawn(sa.Actor, name="target")
        other = await system.spawn(sa.Actor, name="other")
        data = save_value({"to": ref, "pair": (ref, other)}, where="x", shared={})
        assert data == ["d", {"to": ["A", ref.id], "pair": ["t", ["A", ref.id], ["A", other.id]]}]
        restored = restore_value(plain_round_trip(data), shared={}, refs=system.lookup)
        assert restored == {"to": ref, "pair": (ref, other)}
        assert isinstance(restored, dict)
        assert restored["to"] is ref
        with pytest.raises(sa.CheckpointError, match=r"refers to actor #424242, which cannot"):
            restore_value(["A", 424242], shared={}, refs=system.lookup)


# --- actors -----------------------------------------------------------------------------------


class Plain(sa.Actor):
    def __init__(self, start: int) -> None:
        self.count = start
        self.seen: list[object] = []
        self.by_key = {(1, 2): Colour.RED}

    async def handle(self, message: object) -> object:
        self.seen.append(message)
        return None


class WithSlots(sa.Actor):
    __slots__ = ("__hidden", "kind", "unset")

    def __init__(self) -> None:
        self.kind = "slotted"
        self.__hidden = 3
        self.more = 4  # sa.Actor has no __slots__: the instance has a __dict__ as well

    def hidden(self) -> int:
        return self.__hidden


@attrs.define
class AttrsActor(sa.Actor):
    name: str
    queue: collections.deque[int] = attrs.field(factory=lambda: collections.deque(maxlen=4))
    rng: random.Random = attrs.field(factory=lambda: random.Random(5))


class Hooked(sa.Actor):
    """Keeps a socket (not savable) and says what to save instead."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.conn = socket.socket()
        self.inits = 1

    def snapshot_state(self) -> object:
        return {"port": self.port}

    def restore_state(self, state: object) -> None:
        assert isinstance(state, dict)
        self.port = state["port"]
        self.conn = None  # type: ignore[assignment]
        self.restored = True


def restore(actor: sa.Actor, *, shared: dict[str, object] | None = None) -> sa.Actor:
    shared = shared or {}
    data = plain_round_trip(save_actor(actor, path="a-1", shared=shared))
    return restore_actor(type(actor), data, shared=shared, refs=no_refs)


def test_an_actor_is_saved_by_its_attributes_without_ctx_and_restored_without_init() -> None:
    actor = Plain(3)
    actor.seen += [(1, "two"), {3.0}]
    actor.ctx = object()  # type: ignore[assignment]  # the engine's: not state
    data = save_actor(actor, path="plain-1", shared={})
    assert data["class"] == f"{MOD}:Plain"
    assert isinstance(data["attributes"], dict)
    assert "ctx" not in data["attributes"]
    restored = restore(actor)
    assert type(restored) is Plain
    assert not hasattr(restored, "ctx")
    assert vars(restored).keys() == {"count", "seen", "by_key"}
    assert same(
        [actor.count, actor.seen, actor.by_key], [restored.count, restored.seen, restored.by_key]
    )


def test_slots_private_names_and_unset_slots_round_trip() -> None:
    actor = WithSlots()
    restored = restore(actor)
    assert isinstance(restored, WithSlots)
    assert restored.kind == "slotted"
    assert restored.hidden() == 3
    assert restored.more == 4
    assert not hasattr(restored, "unset")


def test_an_attrs_actor_round_trips_its_fields() -> None:
    actor = AttrsActor("a", collections.deque([1, 2], maxlen=4))
    actor.rng.random()
    restored = restore(actor)
    assert isinstance(restored, AttrsActor)
    assert same([actor.name, actor.queue, actor.rng], [restored.name, restored.queue, restored.rng])


def test_hooks_replace_the_attributes() -> None:
    actor = Hooked(8080)
    try:
        data = save_actor(actor, path="hooked", shared={})
        assert data == {
            "class": f"{MOD}:Hooked",
            "snapshot": ["d", {"port": 8080}],
        }
        restored = restore(actor)
    finally:
        actor.conn.close()
    assert isinstance(restored, Hooked)
    assert restored.port == 8080
    assert restored.restored
    assert not hasattr(restored, "inits")


def test_a_hook_without_its_twin_is_refused() -> None:
    class OnlySnapshot(sa.Actor):
        def snapshot_state(self) -> object:
            return 1

    with pytest.raises(
        sa.CheckpointError, match=r"defines snapshot_state\(\) but not restore_state\(\)"
    ):
        save_actor(OnlySnapshot(), path="half", shared={})


def test_hooks_that_raise_are_named() -> None:
    class Broken(sa.Actor):
        def snapshot_state(self) -> object:
            raise ValueError("no state today")

        def restore_state(self, state: object) -> None:
            raise KeyError("nope")

    Broken.__qualname__ = "Broken"  # nameable at module level for this test
    globals()["Broken"] = Broken
    try:
        with pytest.raises(
            sa.CheckpointError,
            match=r"^b-1: Broken.snapshot_state\(\) raised ValueError: no state today$",
        ):
            save_actor(Broken(), path="b-1", shared={})
        data = {"class": f"{MOD}:Broken", "snapshot": None}
        with pytest.raises(
            sa.CheckpointError, match=r"^b-1: Broken.restore_state\(\) raised KeyError"
        ):
            restore_actor(Broken, data, shared={}, refs=no_refs, where="b-1")
    finally:
        del globals()["Broken"]


def test_data_of_another_class_is_refused() -> None:
    data = save_actor(Plain(1), path="p", shared={})
    with pytest.raises(
        sa.CheckpointError,
        match=re.escape(f"not a {MOD}:WithSlots actor's (it was saved from '{MOD}:Plain')"),
    ):
        restore_actor(WithSlots, data, shared={}, refs=no_refs)


# --- what cannot be saved is named ------------------------------------------------------------


@attrs.define
class Offer:
    ship: str
    socket: object


class Ship(sa.Actor):
    def __init__(self, offers: list[Offer]) -> None:
        self.offers = offers


def test_the_issue_example_names_actor_field_path_type_and_remedy() -> None:
    with socket.socket() as conn:
        ship = Ship([Offer("a", None), Offer("b", None), Offer("c", conn)])
        with pytest.raises(sa.CheckpointError) as caught:
            save_actor(ship, path="ship-7", shared={})
    assert str(caught.value) == (
        "ship-7: field 'offers[2].socket' holds a socket.socket, which a checkpoint cannot "
        "save; give Ship snapshot_state()/restore_state(), or keep it out of the actor's "
        "attributes"
    )


def _local_attrs() -> object:
    @attrs.define
    class Local:
        x: int = 1

    return Local()


class Text(str):
    pass


UNSAVABLE: list[tuple[str, Callable[[], object], str]] = [
    ("a lock", threading.Lock, "a _thread.lock"),
    ("a lambda", lambda: lambda: 1, "a function"),
    ("a generator", lambda: (i for i in ()), "a generator"),
    ("an object", object, "a object"),
    ("a plain class instance", lambda: Plain(1), f"a {__name__}.Plain"),
    ("a str subclass", lambda: Text("x"), f"a {__name__}.Text"),
    ("a bytearray", lambda: bytearray(b"x"), "a bytearray"),
    ("a module", lambda: sys, "a module"),
    ("a lone surrogate", lambda: "ok\udc80", "a str with a lone surrogate '\\udc80' at index 2"),
    ("a local attrs class", _local_attrs, "_local_attrs.<locals>.Local"),
    ("a function's class", lambda: type(lambda: 1), "the class function"),
    (
        "a defaultdict of a lambda",
        lambda: collections.defaultdict(lambda: 0),
        "a defaultdict whose default_factory is",
    ),
]
PLACES: list[tuple[str, Callable[[object], object], str]] = [
    ("itself", lambda bad: bad, ""),
    ("in a list", lambda bad: [0, 1, bad], "[2]"),
    ("in a tuple", lambda bad: (bad,), "[0]"),
    ("in a dict", lambda bad: {"key": bad}, "['key']"),
    ("in an int-keyed dict", lambda bad: {7: bad}, "[7]"),
    ("as a dict key", lambda bad: {(1, bad): 0} if _hashable(bad) else {"k": [bad]}, "<key (1, "),
    ("in a deque", lambda bad: collections.deque([bad]), "[0]"),
    ("in an attrs field", lambda bad: Slotted(items=[], other=bad), "other"),
    (
        "deep inside",
        lambda bad: {"a": [Frozen("f", 1.0), Loose("l", (1, {"x": bad}))]},
        "['a'][1].extra[1]['x']",
    ),
]


def _hashable(value: object) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


@pytest.mark.parametrize(("kind", "make", "named"), UNSAVABLE, ids=[u[0] for u in UNSAVABLE])
@pytest.mark.parametrize(("place", "put", "path"), PLACES, ids=[p[0] for p in PLACES])
def test_what_cannot_be_saved_is_named_with_its_path_and_type(
    kind: str,
    make: Callable[[], object],
    named: str,
    place: str,
    put: Callable[[object], object],
    path: str,
) -> None:
    value = put(make())
    with pytest.raises(sa.CheckpointError) as caught:
        save_value(value, where="mailbox of 'ship-7', message 3", shared={})
    text = str(caught.value)
    assert text.startswith("mailbox of 'ship-7', message 3: the value")
    assert named in text
    assert "which a checkpoint cannot save" in text
    if path and not (place == "as a dict key" and not _hashable(make())):
        assert f"at '{path}" in text
    actor = Ship([])
    actor.offers = [value]  # type: ignore[list-item]
    with pytest.raises(sa.CheckpointError, match=r"^ship-9: field 'offers\[0\]"):
        save_actor(actor, path="ship-9", shared={})


def test_a_value_nested_too_deep_is_refused_not_crashed() -> None:
    deep: list[object] = []
    for _ in range(5000):
        deep = [deep]
    with pytest.raises(sa.CheckpointError, match="nested too deep"):
        save_value(deep, where="deep", shared={})


def test_an_attrs_instance_with_an_unset_field_is_named() -> None:
    @attrs.define
    class Later:
        ready: int = attrs.field(init=False)

    globals()["Later"] = Later
    Later.__qualname__ = "Later"
    try:
        with pytest.raises(sa.CheckpointError, match=r"whose field 'ready' is not set"):
            save_value([Later()], where="x", shared={})
    finally:
        del globals()["Later"]


# --- restoring names only what it may ---------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (["T", "builtins:eval"], "'builtins:eval' names a builtin_function_or_method, not a class"),
        (["T", "os:system"], "names a builtin_function_or_method, not a class"),
        (["T", "subprocess:Popen"], "may not be restored"),
        (["a", "subprocess:Popen", {}], "may not be restored"),
        (["T", "not_imported_module_xyz:Thing"], "is not defined by any imported module"),
        (["T", "spaceactors.sim.records:ShipRecord.snapshot"], "names a function, not a class"),
        (["T", "spaceactors.sim.records"], "is not defined"),
        (["T", 5], "a type name must be a string"),
        (["a", f"{SUPPORT}:Colour", {}], "is not an attrs class"),
        (["e", f"{SUPPORT}:Frozen", "RED"], "is not an enum"),
        (["e", f"{SUPPORT}:Colour", "BLUE"], "Colour has no member 'BLUE'"),
        (
            ["a", f"{SUPPORT}:Frozen", {"label": "x"}],
            "lacks ['tags', 'weight']",
        ),
        (
            [
                "a",
                f"{SUPPORT}:Frozen",
                {"label": "x", "weight": 1.0, "tags": ["t"], "x": 1},
            ],
            "has unknown ['x']",
        ),
        (["z", 1], "unknown tag 'z'"),
        ([], "an empty list"),
        ({"a": 1}, "a dict where a saved value belongs"),
        (["r", 0], "a reference to value 0, which was not restored before it"),
        (["S", "world"], "shared object 'world', not given"),
        (["q", 1, 1, 2], "more than its maxlen 1"),
        (["d", {"a": ["l", ["zz"]]}], "at '['a'][0]': unknown tag 'zz'"),
        (["s", ["l"]], "unhashable"),
        (["R", 3, [1, 2], None], "not one Python wrote"),
        (["i", "12x"], "decimal digits"),
        (["e", f"{SUPPORT}:Colour", None, 1], "is not a Flag enum"),
        (["e", f"{SUPPORT}:Perm", None, "3"], "the bits of a Perm must be an int"),
    ],
)
def test_bad_data_is_refused_saying_where(data: object, problem: str) -> None:
    before = set(sys.modules)
    with pytest.raises(sa.CheckpointError) as caught:
        restore_value(data, shared={}, refs=no_refs, where="mailbox of 'ship-1'")
    assert str(caught.value).startswith("mailbox of 'ship-1': cannot restore the value")
    assert problem in str(caught.value)
    assert set(sys.modules) == before  # nothing imported


def test_a_validator_refuses_restored_fields_as_a_checkpoint_error() -> None:
    data = save_value(ev.RescueOffer("ship-1", 5.0), where="x", shared={})
    assert isinstance(data, list)
    assert isinstance(data[2], dict)
    data[2]["distance"] = -1.0
    with pytest.raises(sa.CheckpointError, match="RescueOffer refuses the saved fields"):
        restore_value(data, shared={}, refs=no_refs)


def test_restoring_never_runs_init() -> None:
    calls: list[str] = []

    @attrs.define
    class Counted:
        x: int

        def __attrs_post_init__(self) -> None:
            calls.append("init")

    globals()["Counted"] = Counted
    Counted.__qualname__ = "Counted"
    try:
        data = save_value(Counted(1), where="x", shared={})
        calls.clear()
        restored = restore_value(data, shared={}, refs=no_refs)
    finally:
        del globals()["Counted"]
    assert calls == []
    assert isinstance(restored, Counted)
    assert restored.x == 1


def test_a_restore_never_imports_the_module_a_file_names() -> None:
    code = (
        "import sys; from spaceactors.checkpoint.values import restore_value\n"
        "try:\n restore_value(['T', 'xml.dom.minidom:Document'], shared={}, refs=None)\n"
        "except Exception as e: print(type(e).__name__)\n"
        "print('xml.dom.minidom' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.stdout.split() == ["CheckpointError", "False"], out.stderr


@given(st.integers(min_value=0, max_value=2**64 - 1))
def test_ints_stay_plain_within_64_bits(n: int) -> None:
    assert save_value(n, where="x", shared={}) == n
    assert save_value(-n - 1, where="x", shared={}) == (-n - 1 if n < 2**63 else ["i", str(-n - 1)])


def test_every_message_is_one_line_even_when_a_hook_says_more() -> None:
    class Chatty(sa.Actor):
        def snapshot_state(self) -> object:
            raise ValueError("first line\nsecond line")

        def restore_state(self, state: object) -> None:
            raise ValueError("again\nand again")

    Chatty.__qualname__ = "Chatty"
    globals()["Chatty"] = Chatty
    try:
        with pytest.raises(sa.CheckpointError) as saving:
            save_actor(Chatty(), path="c-1", shared={})
        data = {"class": f"{MOD}:Chatty", "snapshot": None}
        with pytest.raises(sa.CheckpointError) as restoring:
            restore_actor(Chatty, data, shared={}, refs=no_refs, where="c-1")
    finally:
        del globals()["Chatty"]
    assert (
        str(saving.value)
        == "c-1: Chatty.snapshot_state() raised ValueError: first line second line"
    )
    assert str(restoring.value) == "c-1: Chatty.restore_state() raised ValueError: again and again"
