"""A case file is read like any input: anything that is not a valid case is refused in one line.

`spaceactors replay` exits 2 with ``spaceactors: error: ...`` naming the problem (never a
traceback), `sat.replay` raises `sat.CaseError`; a case whose test is gone or changed is
refused the same way. Values are saved as data and rebuilt equal, or refused when saved.
"""

from __future__ import annotations

import io
import json
import math
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import testing as sat
from spaceactors.cli import main
from spaceactors.testing.casefile import Case, decode_value, encode_value
from spaceactors.testing.machine import Example
from spaceactors.testing.replay import report_failure, save_case


class Tally(sa.Actor):
    def __init__(self, seen: list[int]) -> None:
        self.seen = seen

    async def handle(self, message: object) -> object:
        assert isinstance(message, int)
        self.seen.append(message)
        return None


class Counting(sat.ActorSystemMachine):
    async def setup(self) -> None:
        self.seen: list[int] = []
        self.sends = 0
        await self.system.spawn(Tally, self.seen, name="tally")

    @sat.rule(n=st.integers(0, 20))
    async def send(self, n: int) -> None:
        self.sends += 1
        await self.system.send("tally", n)

    @sat.precondition(lambda machine: machine.sends > 0)
    @sat.rule()
    async def wait(self) -> None:
        await trio.sleep(1)

    @sat.rule(thing=st.just(frozenset({1})))
    async def odd(self, thing: object) -> None:
        pass


NOT_A_MACHINE = 42


def valid() -> dict[str, Any]:
    return {
        "format": "spaceactors-case",
        "version": 1,
        "test": {"module": __name__, "qualname": "test_it", "file": None},
        "machine": {"module": __name__, "qualname": "Counting", "file": __file__},
        "seed": 5,
        "scheduler_seed": 5,
        "start_time": 12.5,
        "faults": json.loads(sa.FaultPlan([sa.DropMessages(probability=0.5)]).to_json()),
        "steps": [
            {"rule": "send", "arguments": {"n": 3}},
            {"rule": "wait", "arguments": {}},
            {"rule": "send", "arguments": {"n": 4}},
        ],
        "failure": "",
        "trace": None,
    }


def replace(path: list[str | int], value: object) -> dict[str, Any]:
    document = valid()
    place: Any = document
    for key in path[:-1]:
        place = place[key]
    if value is DELETE:
        del place[path[-1]]
    else:
        place[path[-1]] = value
    return document


DELETE = object()

HOSTILE: dict[str, tuple[str | bytes, str]] = {
    "bad json": ('{"format": "spaceactors-case", ', "not JSON"),
    "not utf-8": (b"\xff\xfe{}", "not JSON"),
    "NaN constant": (json.dumps(valid()).replace("12.5", "NaN"), "NaN is not JSON"),
    "deep nesting": ("[" * 100_000 + "]" * 100_000, "not a case file"),
    "a list": ("[]", "a case is a JSON object"),
    "another format": (json.dumps(replace(["format"], "pytest-case")), "@ $.format"),
    "version 2": (json.dumps(replace(["version"], 2)), "this build reads version 1"),
    "version true": (json.dumps(replace(["version"], True)), "@ $.version"),
    "version string": (json.dumps(replace(["version"], "1")), "@ $.version"),
    "no steps": (json.dumps(replace(["steps"], DELETE)), "missing field(s) steps"),
    "no seed": (json.dumps(replace(["seed"], DELETE)), "missing field(s) seed"),
    "seed string": (json.dumps(replace(["seed"], "5")), "@ $.seed"),
    "seed huge": (json.dumps(replace(["seed"], 2**70)), "@ $.seed"),
    "negative start": (json.dumps(replace(["start_time"], -1)), "@ $.start_time"),
    "huge start": (json.dumps(replace(["start_time"], 1e300)), "@ $.start_time"),
    "bad plan": (
        json.dumps(replace(["faults", "body", "rules", 0, "probability"], 7)),
        "@ $.faults",
    ),
    "steps object": (json.dumps(replace(["steps"], {})), "@ $.steps"),
    "rule not a name": (json.dumps(replace(["steps", 0, "rule"], "os.system")), "rule name"),
    "unknown tag": (
        json.dumps(replace(["steps", 0, "arguments", "n"], {"pickle": "..."})),
        "not a saved value",
    ),
    "bad message": (
        json.dumps(replace(["steps", 0, "arguments", "n"], {"message": {"schema": 9}})),
        "not a protocol message",
    ),
    "unknown enum": (
        json.dumps(replace(["steps", 0, "arguments", "n"], {"enum": "Color", "name": "RED"})),
        "no enum 'Color'",
    ),
    "trace elsewhere": (
        json.dumps(replace(["trace"], {"file": "../../etc/passwd", "hash": "x"})),
        "@ $.trace.file",
    ),
    "module gone": (
        json.dumps(replace(["machine"], {"module": "test_gone_long_ago", "qualname": "Bank"})),
        "cannot import test_gone_long_ago for the machine Bank",
    ),
    "machine gone": (
        json.dumps(replace(["machine", "qualname"], "Renamed")),
        f"{__name__}.Renamed no longer exists",
    ),
    "not a machine": (
        json.dumps(replace(["machine", "qualname"], "NOT_A_MACHINE")),
        "is not an ActorSystemMachine subclass",
    ),
    "module path": (
        json.dumps(replace(["machine", "module"], "../evil")),
        "not a module name",
    ),
    "rule gone": (
        json.dumps(replace(["steps", 0, "rule"], "withdraw")),
        "step 0 calls withdraw, which is no rule of it now",
    ),
    "precondition false": (
        json.dumps(replace(["steps"], [{"rule": "wait", "arguments": {}}])),
        "step 0: the precondition of wait is false now",
    ),
    "other arguments": (
        json.dumps(replace(["steps", 0, "arguments"], {"count": 3})),
        "send takes ['n'] now, the case gives ['count']",
    ),
}


@pytest.mark.parametrize(("text", "says"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_hostile_case_file_is_refused_in_one_line(
    text: str | bytes, says: str, tmp_path: Path
) -> None:
    path = tmp_path / "case.json"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    with pytest.raises(sat.CaseError, match=r"case\.json") as refused:
        sat.replay(path)
    assert says in str(refused.value)

    out, err = io.StringIO(), io.StringIO()
    assert main(["replay", str(path)], out, err) == 2
    assert out.getvalue() == ""
    (line,) = err.getvalue().splitlines()
    assert line.startswith("spaceactors: error: ")
    assert says in line


def test_a_missing_or_huge_case_file_is_refused(tmp_path: Path) -> None:
    out, err = io.StringIO(), io.StringIO()
    assert main(["replay", str(tmp_path / "nowhere.json")], out, err) == 2
    assert err.getvalue().startswith("spaceactors: error: cannot read the case")
    huge = tmp_path / "huge.json"
    huge.write_bytes(b" " * (16 * 2**20 + 1))
    with pytest.raises(sat.CaseError, match="over 16 MiB"):
        sat.replay(huge)


@pytest.mark.parametrize("path", [None, 1, b"case.json", ["x"], "a\x00b", "\ud800", "x" * 5000])
def test_a_path_that_is_no_path_is_refused(path: object) -> None:
    with pytest.raises(sat.CaseError):
        sat.replay(path)  # type: ignore[arg-type]
    if not isinstance(path, str):
        with pytest.raises(sat.CaseError, match="a case file or folder"):
            sat.cases(path)  # type: ignore[arg-type]


def test_a_valid_case_of_a_passing_example_replays_and_exits_0(tmp_path: Path) -> None:
    path = tmp_path / "case.json"
    path.write_text(json.dumps(valid()), encoding="utf-8")
    first, second = sat.replay(path), sat.replay(path)
    assert first.passed
    assert first.failure == ""
    assert first.trace_hash == second.trace_hash
    assert first.events > 0
    out, err = io.StringIO(), io.StringIO()
    assert main(["replay", str(path)], out, err) == 0
    assert out.getvalue().splitlines()[-1].startswith(f"passed: {path} no longer fails")
    assert "  step 1: wait()" in out.getvalue()


def test_an_argument_that_is_no_json_value_nor_message_is_refused_when_saved(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    example = Example(1, 1, 0.0, None)
    example.steps.append(sat.casefile.Step("odd", {"thing": frozenset({1})}))
    with pytest.raises(sat.CaseError, match=r"step 0 \(odd\), argument 'thing' is frozenset"):
        save_case(Counting, None, example, AssertionError("x"))
    failure = AssertionError("broken")
    assert report_failure(Counting, None, example, failure) is None
    assert failure.__notes__[-1].startswith("spaceactors: no case file for this example: ")
    assert not (tmp_path / ".spaceactors" / "cases").exists()


def test_the_last_line_stays_last_when_more_notes_come() -> None:
    example = Example(1, 1, 0.0, None)
    failure = AssertionError("broken")

    class Nowhere(Counting):
        cases_folder = None

    report_failure(Nowhere, None, example, failure)
    failure.add_note("Explanation: added by Hypothesis afterwards")
    assert list(failure.__notes__)[-1] == "spaceactors: no case file (cases_folder is None)"
    assert failure.__notes__[-1] == "spaceactors: no case file (cases_folder is None)"


values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text()
    | sat.any_message()
    | st.sampled_from(sa.FormationType),
    lambda inner: st.lists(inner, max_size=3)
    | st.lists(inner, max_size=3).map(tuple)
    | st.dictionaries(st.text(max_size=3) | st.integers(), inner, max_size=3),
    max_leaves=8,
)


def same(a: object, b: object) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    if isinstance(a, list | tuple) and type(a) is type(b):
        return len(a) == len(b) and all(map(same, a, b))  # type: ignore[arg-type]
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and a == b


@given(value=values)
def test_a_saved_value_is_rebuilt_equal(value: object) -> None:
    text = json.dumps(encode_value(value), allow_nan=False)
    assert same(decode_value(json.loads(text)), value)


def test_a_case_file_round_trips(tmp_path: Path) -> None:
    case = Case.from_json(json.dumps(valid()))
    assert Case.from_json(case.to_json()) == case
    assert case.file_name() == f"test_it-{case.key()}.json"
