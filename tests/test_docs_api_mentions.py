"""Every API name the docs mention in prose exists, with the arguments the docs give it.

Inline code such as `world.formation(leader, followers, formation=...)` or `sa.TokenBucket(capacity,
rate)` in README.md, docs/*.md and the notebooks' text cells is read as a Python expression and
resolved against real objects (a running system, a world, an actor's context, ...). A mention must
name something that exists; a call must fit the signature: each keyword is a parameter, and a bare
name in a positional place is the name of the parameter in that place (a signature in prose names
parameters, so a renamed or misplaced one shows). Code blocks are not read here: test_docs.py runs
them.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import inspect
import json
import math
import re
import typing
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import trio
import trio.testing

import spaceactors as sa
import spaceactors.testing as sat
from spaceactors import sim

ROOT = Path(__file__).resolve().parent.parent
PAGES = [*sorted((ROOT / "docs").rglob("*.md")), ROOT / "README.md"]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
FENCED = re.compile(r"^[ \t]*```.*?^[ \t]*```[ \t]*$", re.S | re.M)
TEXT_BLOCK = re.compile(r"^[ \t]*```text[ \t]*\n(?P<code>.*?)^[ \t]*```[ \t]*$", re.S | re.M)
SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
# The only short names prose may use for a parameter: `ref.send(msg)`, `reliable.delivered(mid)`.
ABBREVIATIONS = {"msg": "message", "mid": "message_id"}
EMPTY_VALUE = re.compile(r"=\s*(?=[,)])")  # `sa.CrashActor(actors=, nth=)`: a value left out


def prose(text: str) -> str:
    """A Markdown text without its fenced code blocks."""
    return FENCED.sub("", text)


def mentions() -> Iterator[tuple[str, str]]:
    """(where, code) for every inline code span of the docs' prose, and every plain ```text
    block (where signatures are shown: `ref = await system.spawn(factory, *args, ...)`)."""
    for page in PAGES:
        text = page.read_text(encoding="utf-8")
        for span in SPAN.findall(prose(text)):
            yield page.relative_to(ROOT).as_posix(), span
        for block in TEXT_BLOCK.finditer(text):
            yield page.relative_to(ROOT).as_posix(), block["code"]
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for number, cell in enumerate(cells, 1):
            if cell["cell_type"] == "markdown":
                for span in SPAN.findall(prose("".join(cell["source"]))):
                    yield f"{path.relative_to(ROOT).as_posix()} cell {number}", span


class Actor(sa.Actor):
    async def on_start(self) -> None:
        self.ctx.self_ref  # noqa: B018 - the context is ready

    async def handle(self, message: object) -> object:
        return self.ctx


async def receivers() -> dict[str, Any]:
    """The objects the docs' names start from, as a user would hold them."""
    async with sa.open_system(seed=1, trace=True, faults=sa.FaultPlan([])) as system:
        ref = await system.spawn(Actor, name="a")
        ctx = await ref.ask("context")
        flow = sa.FlowController(max_concurrent=1, queue_limit=1)
        try:
            sa.decode(b"{}")
        except sa.DecodeError as decode_error:
            error = decode_error
        objects: dict[str, Any] = {
            "sa": sa,
            "spaceactors": sa,
            "sim": sim,
            "sat": sat,
            "trio": trio,
            "math": math,
            "system": system,
            "ref": ref,
            "ctx": ctx,
            "self": type("ActorSelf", (), {"ctx": ctx})(),
            "world": sim.World(system),
            "bucket": sa.TokenBucket(capacity=1, rate=1.0),
            "flow": flow,
            "permit": flow.try_acquire(),
            "sender": sa.RateLimitedSender(
                system.router, max_concurrent=1, queue_limit=1, rate=1.0
            ),
            "timer": ctx.after(60.0, "tick"),
            "trace": sa.Trace(),
            "plan": sa.FaultPlan([]),
            "codec": sa.default_codec,
            "error": error,
            "router": system.router,
            "reliable": system.reliable,
            "summary": sim.Summary,
        }
        await ref.stop()
        return objects


@pytest.fixture(scope="module")
def objects() -> dict[str, Any]:
    return trio.run(receivers, clock=trio.testing.MockClock(autojump_threshold=0))


def resolve(node: ast.expr, objects: dict[str, Any]) -> Any:
    """Check what an expression names, and return it; a call stands for what it returns."""
    if isinstance(node, ast.Name):
        return objects[node.id]
    if isinstance(node, ast.Attribute):
        return attribute(resolve(node.value, objects), node.attr, ast.unparse(node.value))
    if isinstance(node, ast.Call):
        function = resolve(node.func, objects)
        check_call(node, function)
        return returned(function)
    raise LookupError(f"cannot resolve {ast.unparse(node)}")


def attribute(owner: Any, name: str, owner_text: str) -> Any:
    """An attribute, read without running it: a property stands for the type it returns."""
    if inspect.ismodule(owner) and not hasattr(owner, name):
        # A submodule is an attribute of its package once imported: import what the path names
        # (whatever other tests imported before, or not).
        with contextlib.suppress(ModuleNotFoundError):
            importlib.import_module(f"{owner.__name__}.{name}")
    try:
        found = inspect.getattr_static(owner, name)
    except AttributeError:
        raise LookupError(f"{owner_text} has no attribute {name!r}") from None
    if isinstance(found, property) and found.fget is not None:
        return returned(found.fget)
    return getattr(owner, name)


def returned(function: Any) -> Any:
    """What a call gives: a class stands for its instances; else the return annotation."""
    if isinstance(function, type):
        return function
    try:
        return typing.get_type_hints(function).get("return", object)
    except (TypeError, NameError):  # a name imported only for type checking
        return object


def check_call(call: ast.Call, function: Any) -> None:
    """Each argument of a call in prose fits the signature of what it calls."""
    name = ast.unparse(call.func)
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return  # a builtin without a signature: nothing to compare
    parameters = list(signature.parameters.values())
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    takes_varargs = any(p.kind is p.VAR_POSITIONAL for p in parameters)
    takes_kwargs = any(p.kind is p.VAR_KEYWORD for p in parameters)
    for index, argument in enumerate(call.args):
        if isinstance(argument, ast.Starred):
            continue
        if index >= len(positional):
            if takes_varargs:
                continue
            raise LookupError(f"{name} takes {len(positional)} positional argument(s): {signature}")
        expected = positional[index].name
        if not isinstance(argument, ast.Name):
            continue
        if ABBREVIATIONS.get(argument.id, argument.id) != expected:
            raise LookupError(f"{name}: argument {index + 1} is {expected!r}, not {argument.id!r}")
    # `world.emergency(ship, emergency_type, severity=5)` is a signature (its values are names or
    # `...`), so its constants are the defaults; `sa.Codec(protocol=False)` is an example.
    values = [*call.args, *(keyword.value for keyword in call.keywords)]
    signature_like = any(
        isinstance(value, ast.Name) or (isinstance(value, ast.Constant) and value.value is ...)
        for value in values
    )
    by_name = {p.name: p for p in parameters if p.kind is not p.POSITIONAL_ONLY}
    for keyword in call.keywords:
        if keyword.arg is None:
            continue
        parameter = by_name.get(keyword.arg)
        if parameter is None:
            if takes_kwargs:
                continue
            raise LookupError(f"{name} has no parameter {keyword.arg!r}: {signature}")
        shown = keyword.value
        if (
            signature_like
            and isinstance(shown, ast.Constant)
            and shown.value is not Ellipsis
            and parameter.default is not parameter.empty
            and shown.value != parameter.default
        ):
            default = parameter.default
            raise LookupError(f"{name}: {keyword.arg} defaults to {default!r}: {signature}")


def chains(code: str) -> list[ast.expr]:
    """The longest names and calls (`a.b(c).d`) in a piece of code that parses as Python."""
    try:
        tree = ast.parse(EMPTY_VALUE.sub("=...", code))
    except SyntaxError:
        return []
    inner = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            inner.add(id(node.value))
        elif isinstance(node, ast.Call):
            inner.add(id(node.func))
    return [
        node
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute | ast.Call) and id(node) not in inner
    ]


def parse(span: str) -> ast.expr | None:
    """The span's one name or call, if it is one (`world.at(time, action)`), else None."""
    found = chains(span)
    return found[0] if len(found) == 1 and isinstance(found[0], ast.Attribute | ast.Call) else None


def api_mentions(objects: dict[str, Any]) -> list[tuple[str, str, ast.expr]]:
    found = []
    for where, code in mentions():
        for node in chains(code):
            if root_name(node) in objects:
                found.append((where, ast.unparse(node), node))
    return found


def root_name(node: ast.expr) -> str:
    while isinstance(node, ast.Attribute | ast.Call):
        node = node.value if isinstance(node, ast.Attribute) else node.func
    return node.id if isinstance(node, ast.Name) else ""


def test_every_api_name_the_docs_mention_exists_with_its_arguments(
    objects: dict[str, Any],
) -> None:
    found = api_mentions(objects)
    assert len(found) > 100, "the docs mention far more API names than were found"
    wrong = []
    for where, span, node in found:
        try:
            resolve(node, objects)
        except LookupError as error:
            wrong.append(f"{where}: `{span}`: {error}")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize(
    "span",
    [
        "world.formation(leader, followers, formation_type)",  # the parameter is `formation`
        "world.hazard(name, center, radius, kind=...)",  # no such keyword
        "sa.TokenBucket(capacity, rate, burst, extra)",  # too many positional arguments
        "system.router.no_such_method",
        "sa.NoSuchName",
        "sa.CrashActor(actors=, nth=, times=)",
        "world.emergency(ship, emergency_type, severity=3)",  # the default is 5
        "world.at(t, action)",  # the parameter is `time`
    ],
)
def test_a_wrong_mention_is_caught(span: str, objects: dict[str, Any]) -> None:
    node = parse(span)
    assert node is not None
    with pytest.raises(LookupError):
        resolve(node, objects)


@pytest.mark.parametrize(
    "span",
    [
        "world.formation(leader, followers, formation=..., spacing=...)",
        "sa.CrashActor(actors=, nth=, every=, probability=)",
        "system.router.subscribe(ref, topic, policy=...)",
        "sa.FaultPlan(...).to_json()",
    ],
)
def test_a_right_mention_passes(span: str, objects: dict[str, Any]) -> None:
    node = parse(span)
    assert node is not None
    resolve(node, objects)


def test_a_signature_in_a_text_block_is_checked_call_by_call(objects: dict[str, Any]) -> None:
    block = (
        "ref = await system.spawn(factory, *args, name=None, mailbox_size=64,\n"
        "                         restart=sa.Restart.TEMPORARILY, shutdown=5.0)\n"
        "sa.ChildSpec(name, factory, args=(), kwargs={}, restart=sa.Restart.PERMANENT)\n"
    )
    found = [ast.unparse(node) for node in chains(block)]
    assert any(call.startswith("system.spawn(factory") for call in found)
    assert "sa.Restart.TEMPORARILY" in found
    with pytest.raises(LookupError, match="TEMPORARILY"):
        resolve(
            next(n for n in chains(block) if ast.unparse(n) == "sa.Restart.TEMPORARILY"), objects
        )
    assert chains("root ── services   one_for_one\n") == []
