"""A failing fault test writes a case file that replays the very same run, bug and trace hash.

A bug is planted in a user's actor (a module written to a temporary folder, as a user's own
test module would be); Hypothesis finds it through a fault plan; the failure's last line names
the case file; replaying it (in Python and with the command) fails the same way with the same
trace hash each time; once the bug is fixed the same case passes, and `@sat.cases` pins it.
"""

from __future__ import annotations

import functools
import importlib
import json
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import Phase, given, settings
from hypothesis import strategies as st
from test_property_cases import failure_lines

import spaceactors as sa
from spaceactors import testing as sat

BANK = '''
import trio
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import testing as sat


class Account(sa.Actor):
    """Books each deposit it handles. `book` is shared, so it outlives a restart."""

    def __init__(self, book: list[int]) -> None:
        self.book = book

    async def on_start(self) -> None:
        if self.book:  # PLANTED: a restarted account books its last deposit again
            self.book.append(self.book[-1])

    async def handle(self, message: object) -> object:
        assert isinstance(message, int)
        self.book.append(message)
        return None


class Bank(sat.ActorSystemMachine):
    faults = sat.fault_plans(actors=("account",), max_rules=2)
    max_restarts = 1000

    async def setup(self) -> None:
        self.book: list[int] = []
        self.sent: dict[int, int] = {}
        await self.system.spawn(Account, self.book, name="account")

    @sat.rule(amount=st.integers(1, 100))
    async def deposit(self, amount: int) -> None:
        self.sent[len(self.sent)] = await self.system.reliable.send(
            "account", amount, max_retries=8
        )

    @sat.rule(seconds=st.sampled_from([0.1, 1.0]))
    async def wait(self, seconds: float) -> None:
        await trio.sleep(seconds)

    async def teardown(self) -> None:
        sat.assert_no_reliable_message_lost(self.system)
        assert len(self.book) <= len(self.sent), f"booked {self.book} for {len(self.sent)} deposits"
'''
FIX = ("if self.book:  # PLANTED", "if False:  # FIXED")


def write_bank(folder: Path, name: str, *, fixed: bool = False) -> ModuleType:
    source = BANK.replace(*FIX) if fixed else BANK
    (folder / f"{name}.py").write_text(source, encoding="utf-8")
    importlib.invalidate_caches()
    return importlib.import_module(name)


def find_the_bug(machine: type[sat.ActorSystemMachine]) -> AssertionError:
    """Let Hypothesis find the bug, each example in a fresh Trio run on a fresh virtual clock
    (pytest-trio's shared clock is the next test's)."""

    @settings(
        max_examples=300,
        deadline=None,
        database=None,
        derandomize=True,  # the same search every run: never a run that misses the bug
        phases=[Phase.generate, Phase.shrink],
    )
    @given(data=st.data())
    def test_bank(data: Any) -> None:
        clock = trio.testing.MockClock(autojump_threshold=0)
        trio.run(functools.partial(machine.run, data, max_steps=12), clock=clock)

    with pytest.raises(AssertionError) as failure:
        test_bank()
    return failure.value


def case_path(failure: BaseException) -> Path:
    last = failure.__notes__[-1]
    assert last.startswith("reproduce with: spaceactors replay "), last
    return Path(last.removeprefix("reproduce with: spaceactors replay "))


def command(*words: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "spaceactors", *words],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_planted_bug_found_by_the_machine_replays_with_the_same_failure_and_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    bank = write_bank(tmp_path, "planted_bank")
    failure = find_the_bug(bank.Bank)
    assert "booked" in str(failure)
    path = case_path(failure)
    assert path.parent == Path(".spaceactors/cases")
    assert path.name.startswith("test_bank-")
    assert path.suffix == ".json"
    case = json.loads(path.read_text(encoding="utf-8"))
    assert case["machine"] == {
        "module": "planted_bank",
        "qualname": "Bank",
        "file": "planted_bank.py",
    }
    assert case["test"]["qualname"].endswith("test_bank")
    rules = [rule["kind"] for rule in case["faults"]["body"]["rules"]]
    assert "crash" in rules, "the bug needs a restart: the plan that found it has a crash"
    assert case["failure"] == f"AssertionError: {failure}"
    recorded = case["trace"]["hash"]
    assert any(
        recorded.startswith(note.split()[-1]) for note in failure.__notes__ if "trace hash" in note
    )

    # The trace beside the case is that run's, event for event.
    events = sa.load_trace(path.parent / case["trace"]["file"])
    assert sa.trace_hash(events) == recorded
    assert len(events) == case["trace"]["events"]
    assert any(event.kind is sa.EventKind.RESTART for event in events)

    # Three replays, two in Python and one with the command: the same failure, the same hash.
    seconds = []  # each replay is one example, not a search: well under 2 s
    for _ in range(2):
        started = time.perf_counter()
        result = sat.replay(path)
        seconds.append(time.perf_counter() - started)
        assert not result.passed
        assert result.failure == case["failure"]
        assert result.trace_hash == recorded
        assert result.same_trace
        assert isinstance(result.error, AssertionError)
    done = command("replay", str(path), cwd=tmp_path)
    assert done.returncode == 1, done.stderr
    assert done.stdout.splitlines()[-1] == f"FAILED again: {case['failure']}"
    assert f"trace hash {recorded} " in done.stdout
    assert "the same as the failing run" in done.stdout

    # The bug fixed (the file edited, as a user would), the same case passes.
    write_bank(tmp_path, "planted_bank", fixed=True)
    done = command("replay", str(path), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.splitlines()[-1].startswith(f"passed: {path} no longer fails")


def test_a_saved_case_becomes_a_regression_test(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    bank = write_bank(tmp_path, "pinned_bank")
    path = case_path(find_the_bug(bank.Bank))
    pinned = tmp_path / "cases"
    pinned.mkdir()
    (pinned / path.name).write_bytes(path.read_bytes())

    seen: list[sat.ReplayResult] = []

    @sat.cases(pinned)
    def test_bank_regressions(result: sat.ReplayResult) -> None:
        seen.append(result)

    (mark,) = test_bank_regressions.pytestmark  # type: ignore[attr-defined]
    assert mark.name == "parametrize"
    assert mark.args[0] == "case"
    assert mark.args[1] == [pinned / path.name]
    again = "fails again: AssertionError: teardown failed: booked"
    with pytest.raises(AssertionError, match=again) as failure:
        test_bank_regressions(pinned / path.name)
    assert (
        str(failure.value).splitlines()[-1]
        == f"reproduce with: spaceactors replay {pinned / path.name}"
    )
    assert seen == []

    monkeypatch.setitem(
        sys.modules, "pinned_bank", write_bank(tmp_path, "pinned_fixed", fixed=True)
    )
    test_bank_regressions(pinned / path.name)
    assert [result.passed for result in seen] == [True]


def test_a_case_folder_that_does_not_exist_is_refused_when_the_test_is_defined(
    tmp_path: Path,
) -> None:
    with pytest.raises(sat.CaseError, match="no case file or folder"):

        @sat.cases(tmp_path / "nowhere")
        def test_nothing(result: sat.ReplayResult) -> None:
            pass


USER_TEST = """
from typing import Any

import trio.testing
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

import spaceactors as sa
from spaceactors import testing as sat


class Account(sa.Actor):
    def __init__(self, book: list[int]) -> None:
        self.book = book

    async def handle(self, message: object) -> object:
        assert isinstance(message, int)
        self.book.append(message)
        if message == 7:  # PLANTED: a deposit of 7 is booked twice
            self.book.append(message)
        return None


class Bank(sat.ActorSystemMachine):
    faults = sat.fault_plans(max_rules=2)  # loss, duplicates, delays, reordering

    async def setup(self) -> None:
        self.book: list[int] = []
        self.sent: dict[int, int] = {{}}
        await self.system.spawn(Account, self.book, name="account")

    @sat.rule(amount=st.integers(1, 10))
    async def deposit(self, amount: int) -> None:
        self.sent[len(self.sent)] = await self.system.reliable.send(
            "account", amount, max_retries=8
        )

    async def teardown(self) -> None:
        sat.assert_no_reliable_message_lost(self.system)
        assert len(self.book) <= len(self.sent), f"booked {{self.book}}"


@settings(
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.generate, Phase.shrink, Phase.explain],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(data=st.data())
async def test_bank(data: Any, autojump_clock: trio.testing.MockClock) -> None:
    await Bank.run(data, max_steps=12)
"""


def test_under_pytest_trio_the_failure_ends_with_the_line_that_replays_it(tmp_path: Path) -> None:
    # One autojump clock for every example: the case keeps the time the failing one began at.
    (tmp_path / "test_user_bank.py").write_text(USER_TEST.format())
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n")
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_user_bank.py"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    said = failure_lines(done.stdout)
    # What broke leads, then the shrunk steps, then Hypothesis' example, then the replay line.
    order = [
        next(
            i for i, line in enumerate(said) if line.startswith("AssertionError: teardown failed")
        ),
        said.index("spaceactors: the example's 1 step(s), after setup:"),
        next(i for i, line in enumerate(said) if line.startswith("Failing test case: test_bank(")),
        len(said) - 1,
    ]
    assert order == sorted(order), said
    assert said[-1].startswith("reproduce with: spaceactors replay .spaceactors/cases/test_bank-")
    path = said[-1].removeprefix("reproduce with: spaceactors replay ")
    recorded = json.loads((tmp_path / path).read_text(encoding="utf-8"))["trace"]["hash"]
    assert said[-2].startswith("spaceactors: system seed ")
    assert said[-2].endswith(f"trace hash {recorded[:16]}")
    replayed = command("replay", path, cwd=tmp_path)
    assert replayed.returncode == 1, replayed.stderr
    assert f"trace hash {recorded} " in replayed.stdout
