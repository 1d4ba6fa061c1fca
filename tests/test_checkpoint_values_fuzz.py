"""A state file is data from outside: restoring any plain data either rebuilds a value or
raises `CheckpointError` saying where; nothing else escapes, whatever the data.

Fuzzed three ways: arbitrary plain data (what a tampered msgpack file decodes to), plain data
shaped like the converter's tags with arbitrary payloads, and valid saved values with one node
mutated (replaced, dropped, duplicated, or its tag swapped).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from typing import Any

import hypothesis
import pytest
from hypothesis import given
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors.checkpoint.loading import LOADERS
from spaceactors.checkpoint.values import restore_actor, restore_value, save_actor, save_value
from tests.checkpoint_values_support import plain_round_trip, values

SETTINGS = hypothesis.settings(max_examples=400, deadline=None)
TYPE_NAMES = [
    "tests.checkpoint_values_support:Frozen",
    "tests.checkpoint_values_support:Colour",
    "checkpoint_values_support:Slotted",
    "spaceactors.sim.records:ShipRecord",
    "spaceactors.sim.records:ShipMode",
    "builtins:int",
    "builtins:eval",
    "os:system",
    "collections:deque",
    "random:Random",
    "spaceactors.actor:Actor",
    "no.such.module:Thing",
    ":",
    "",
]


def refs(actor_id: int) -> sa.ActorRef:
    raise sa.ActorNotFound(f"no actor #{actor_id}")


SHARED: dict[str, object] = {"world": object()}

plain_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats()
    | st.text(max_size=10)
    | st.binary(max_size=6)
    | st.sampled_from(TYPE_NAMES)
    | st.sampled_from(sorted(LOADERS))
)


def _plain_containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    tagged = st.builds(
        lambda tag, rest: [tag, *rest],
        st.sampled_from(sorted(LOADERS)),
        st.lists(inner, max_size=4),
    )
    return (
        st.lists(inner, max_size=5)
        | st.dictionaries(
            st.text(max_size=6) | st.sampled_from(["label", "weight", "tags"]), inner, max_size=4
        )
        | tagged
    )


plain = st.recursive(plain_scalars, _plain_containers, max_leaves=25)


def refusal(restore: Callable[[], object]) -> str | None:
    """The text of the `CheckpointError` that `restore` raised (None: it restored)."""
    try:
        restore()
    except sa.CheckpointError as error:
        return str(error)
    return None


def restores_or_refuses(data: object) -> None:
    text = refusal(lambda: restore_value(data, shared=SHARED, refs=refs, where="fuzzed"))
    if text is not None:
        assert text.startswith("fuzzed: cannot restore the value")
        assert "\n" not in text


@SETTINGS
@given(plain)
def test_arbitrary_plain_data_restores_or_is_refused(data: object) -> None:
    restores_or_refuses(data)


def _nodes(data: object, path: tuple[int | str, ...] = ()) -> list[tuple[int | str, ...]]:
    """Every path into `data` (list indices, dict keys), the root first."""
    found = [path]
    if isinstance(data, list):
        for index, item in enumerate(data):
            found += _nodes(item, (*path, index))
    elif isinstance(data, dict):
        for key, item in data.items():
            found += _nodes(item, (*path, key))
    return found


def _parent(root: Any, path: tuple[int | str, ...]) -> Any:
    for step in path[:-1]:
        root = root[step]
    return root


@SETTINGS
@given(values, st.data())
def test_a_saved_value_with_one_node_mutated_restores_or_is_refused(
    value: object, data: st.DataObject
) -> None:
    saved = plain_round_trip(save_value(value, where="x", shared={}))
    paths = _nodes(saved)
    path = data.draw(st.sampled_from(paths[1:])) if len(paths) > 1 else None
    if path is None:
        restores_or_refuses(data.draw(plain))
        return
    mutated = copy.deepcopy(saved)
    parent = _parent(mutated, path)
    how = data.draw(st.sampled_from(["replace", "drop", "duplicate", "retag"]))
    if how == "replace":
        parent[path[-1]] = data.draw(plain)
    elif how == "drop":
        del parent[path[-1]]
    elif how == "duplicate" and isinstance(parent, list):
        parent.insert(path[-1], copy.deepcopy(parent[path[-1]]))
    elif isinstance(parent, list) and path[-1] == 0:
        parent[0] = data.draw(st.sampled_from(sorted(LOADERS)))
    restores_or_refuses(mutated)


class Tiny(sa.Actor):
    def __init__(self) -> None:
        self.count = 1
        self.items = [1.5, (2, "x")]


@SETTINGS
@given(
    st.dictionaries(
        st.sampled_from(["class", "attributes", "snapshot"]) | st.text(max_size=5),
        plain,
        max_size=3,
    )
)
def test_arbitrary_actor_data_restores_or_is_refused(data: dict[str, object]) -> None:
    good = save_actor(Tiny(), path="t", shared={})
    if data.get("class") == "fuzz-good-class":
        data["class"] = good["class"]
    text = refusal(lambda: restore_actor(Tiny, data, shared=SHARED, refs=refs, where="tiny-1"))
    assert text is None or text.startswith("tiny-1: ")


@SETTINGS
@given(st.dictionaries(st.text(max_size=5), plain, max_size=3))
def test_arbitrary_attributes_of_the_right_class_restore_or_are_refused(
    attributes: dict[str, object],
) -> None:
    good = save_actor(Tiny(), path="t", shared={})
    document = {"class": good["class"], "attributes": attributes}
    restored: list[sa.Actor] = []
    text = refusal(lambda: restored.append(restore_actor(Tiny, document, shared=SHARED, refs=refs)))
    if text is not None:
        assert text.startswith("Tiny: ")
    else:
        (actor,) = restored
        assert isinstance(actor, Tiny)
        assert "ctx" not in vars(actor)


@pytest.mark.parametrize("keep", [0, 1, 3])
def test_a_saved_value_cut_short_is_refused(keep: int) -> None:
    saved = save_value({"a": [1.0, (2, 3)], 5: {math.pi}}, where="x", shared={})
    assert isinstance(saved, list)
    assert saved[0] == "m"
    pairs = saved[1]
    with pytest.raises(sa.CheckpointError):
        restore_value(["m", pairs[:keep]] if keep else ["m"], shared={}, refs=refs)


@pytest.mark.parametrize(
    "data",
    [
        ["q", 2**63, 1],
        ["q", 2**64 - 1],
        ["a", "builtins:int", {}],
        ["d", {"x": ["q", -1]}],
    ],
)
def test_values_at_the_edges_of_their_domain_are_refused(data: object) -> None:
    with pytest.raises(sa.CheckpointError):
        restore_value(data, shared={}, refs=refs)


@pytest.mark.parametrize("name", ["handle", "on_start", "__class__", "__dict__", "ctx", "__init__"])
def test_an_attribute_that_would_hide_a_method_or_special_name_is_refused(name: str) -> None:
    good = save_actor(Tiny(), path="t", shared={})
    document = {"class": good["class"], "attributes": {name: 1}}
    with pytest.raises(sa.CheckpointError, match="is not one an actor may have"):
        restore_actor(Tiny, document, shared={}, refs=refs, where="tiny-1")
    actor = Tiny()
    if name != "ctx":
        vars(actor)[name] = 1
        with pytest.raises(sa.CheckpointError, match=f"the attribute '{name}' hides a method"):
            save_actor(actor, path="tiny-1", shared={})
