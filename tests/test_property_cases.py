"""A plain Hypothesis property (not a machine) that fails writes a case file that replays it.

The user's test module is written to a temporary folder and run by pytest in a subprocess, as
a user's project would be: the plugin that ships with the package records each example; the
failure's last line names the case; `spaceactors replay` fails with the same trace hash each
time, and passes once the planted bug is fixed. Async properties (pytest-trio, a virtual
clock), sync ones (`sa.run` inside) and ``st.data()`` draws are each replayed.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import spaceactors as sa
from spaceactors import testing as sat

ACCOUNT = """
from typing import Any

import trio
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


async def bank(plan: sa.FaultPlan, amounts: list[int], seed: int) -> list[int]:
    book: list[int] = []
    async with sa.open_system(seed=seed, faults=plan) as system:
        await system.spawn(Account, book, name="account")
        for amount in amounts:
            await system.reliable.send("account", amount, max_retries=8)
        await sat.wait_until_idle(system)
        sat.assert_no_reliable_message_lost(system)
    return book


SETTINGS = settings(
    deadline=None,
    database=None,
    derandomize=True,  # the same search every run: never a run that misses the bug
    phases=[Phase.generate, Phase.shrink],
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
"""

TESTS = {
    "async": """
@SETTINGS
@given(
    plan=sat.fault_plans(max_rules=2),
    amounts=st.lists(st.integers(1, 10), max_size=6),
    seed=st.integers(0, 2**32 - 1),
)
async def test_bank(
    plan: sa.FaultPlan, amounts: list[int], seed: int, virtual_clock: trio.testing.MockClock
) -> None:
    book = await bank(plan, amounts, seed)
    assert sorted(book) == sorted(amounts), f"booked {book} for {amounts}"
""",
    "sync": """
@SETTINGS
@given(plan=sat.fault_plans(max_rules=2), amounts=st.lists(st.integers(1, 10), max_size=6))
def test_bank(plan: sa.FaultPlan, amounts: list[int]) -> None:
    book = sa.run(bank, plan, amounts, 5)
    assert sorted(book) == sorted(amounts), f"booked {book} for {amounts}"
""",
    "data": """
class TestBank:
    @SETTINGS
    @given(data=st.data())
    async def test_bank(self, data: Any, virtual_clock: trio.testing.MockClock) -> None:
        plan = data.draw(sat.fault_plans(max_rules=2), label="plan")
        amounts = data.draw(st.lists(st.integers(1, 10), max_size=6), label="amounts")
        book = await bank(plan, amounts, 11)
        assert sorted(book) == sorted(amounts), f"booked {book} for {amounts}"
""",
}
FIX = ("if message == 7:  # PLANTED", "if False:  # FIXED")


def write_project(folder: Path, kind: str, *, fixed: bool = False) -> None:
    source = ACCOUNT + TESTS[kind]
    if fixed:
        source = source.replace(*FIX)
    (folder / "test_user_bank.py").write_text(source, encoding="utf-8")
    (folder / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n", encoding="utf-8")


def run(words: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *words],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def failure_lines(stdout: str) -> list[str]:
    """The failure's message as pytest shows it (without pytest's ``file:line: Error``
    trailer), before the captured output and the summary."""
    report = stdout.split("short test summary info")[0].split(" Captured ")[0]
    lines = [line.strip(" |").removeprefix("E ").strip() for line in report.splitlines()]
    lines = [line for line in lines if line.strip(" |+-=")]
    return [line for line in lines if not re.match(r"^[\w/.-]+\.py:\d+: \w+$", line)]


@pytest.mark.parametrize("kind", sorted(TESTS))
def test_a_failing_property_saves_a_case_that_replays_with_the_same_hash(
    tmp_path: Path, kind: str
) -> None:
    write_project(tmp_path, kind)
    done = run(["pytest", "-q", "-p", "no:cacheprovider", "test_user_bank.py"], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    said = failure_lines(done.stdout)
    assert said[-1].startswith("reproduce with: spaceactors replay .spaceactors/cases/test_bank-")
    path = said[-1].removeprefix("reproduce with: spaceactors replay ")
    case = json.loads((tmp_path / path).read_text(encoding="utf-8"))
    assert case["machine"] is None
    assert case["test"]["module"] == "test_user_bank"
    assert case["test"]["qualname"].endswith("test_bank")
    assert case["failure"].startswith("AssertionError: booked [")
    recorded = case["trace"]["hash"]
    assert said[-2].endswith(f"trace hash {recorded[:16]}")
    if kind == "data":
        plan, amounts = case["arguments"]["data"]["draws"]
        assert "fault_plan" in plan
        assert 7 in amounts  # a list: the draws keep their type
        assert case["clocks"] == {"virtual_clock": 0.0}
    else:
        assert 7 in case["arguments"]["amounts"]
        assert "fault_plan" in case["arguments"]["plan"]

    # The trace beside the case is that example's, event for event.
    events = sa.load_trace(tmp_path / ".spaceactors/cases" / case["trace"]["file"])
    assert sa.trace_hash(events) == recorded
    assert len(events) == case["trace"]["events"] > 0

    for _ in range(3):  # each replay: the same failure, the same trace hash
        replayed = run(["spaceactors", "replay", path], tmp_path)
        assert replayed.returncode == 1, replayed.stdout + replayed.stderr
        assert f"trace hash {recorded} " in replayed.stdout
        assert "the same as the failing run" in replayed.stdout
        last = replayed.stdout.splitlines()[-1]
        assert last.startswith("FAILED again: AssertionError: booked [")
        # pytest's assertion rewriting explains more under pytest than in the replay
        assert case["failure"].startswith(last.removeprefix("FAILED again: "))

    write_project(tmp_path, kind, fixed=True)
    replayed = run(["spaceactors", "replay", path], tmp_path)
    assert replayed.returncode == 0, replayed.stdout + replayed.stderr


def test_a_property_that_opens_no_system_writes_no_case(tmp_path: Path) -> None:
    (tmp_path / "test_plain.py").write_text(
        textwrap.dedent(
            """
            from hypothesis import given, settings
            from hypothesis import strategies as st

            @settings(database=None)
            @given(n=st.integers())
            def test_small(n: int) -> None:
                assert n < 10
            """
        ),
        encoding="utf-8",
    )
    done = run(["pytest", "-q", "-p", "no:cacheprovider", "test_plain.py"], tmp_path)
    assert done.returncode == 1
    assert "spaceactors" not in done.stdout
    assert not (tmp_path / ".spaceactors").exists()


@pytest.mark.parametrize(
    ("fixture", "conftest"),
    [
        ("tmp_path", ""),
        ("limit", "import pytest\n\n@pytest.fixture\ndef limit() -> int:\n    return 40\n"),
    ],
)
def test_a_property_with_a_fixture_a_replay_cannot_give_says_so(
    tmp_path: Path, fixture: str, conftest: str
) -> None:
    source = ACCOUNT + TESTS["async"].replace(
        "virtual_clock: trio.testing.MockClock",
        f"virtual_clock: trio.testing.MockClock, {fixture}: Any",
    )
    (tmp_path / "test_user_bank.py").write_text(source, encoding="utf-8")
    (tmp_path / "conftest.py").write_text(conftest, encoding="utf-8")
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n", encoding="utf-8")
    done = run(["pytest", "-q", "-p", "no:cacheprovider", "test_user_bank.py"], tmp_path)
    assert done.returncode == 1
    said = failure_lines(done.stdout)
    assert said[-1] == (
        f"spaceactors: no case file for this example: the test takes the fixture(s) "
        f"'{fixture}', which a replay cannot give (it gives `virtual_clock`, Hypothesis' and "
        "parametrize's values): draw the value instead"
    )
    assert not (tmp_path / ".spaceactors").exists()


def test_a_case_the_test_no_longer_fits_is_bad_input_not_a_failure(tmp_path: Path) -> None:
    """A parameter renamed, or fewer draws than recorded: exit 2 with one line, never
    `FAILED again` (which would read as the bug coming back)."""
    write_project(tmp_path, "async")
    run(["pytest", "-q", "-p", "no:cacheprovider", "test_user_bank.py"], tmp_path)
    (path,) = (tmp_path / ".spaceactors/cases").glob("*.json")
    source = (tmp_path / "test_user_bank.py").read_text(encoding="utf-8")
    renamed = source.replace("amounts=st.lists", "deposits=st.lists").replace(
        "amounts: list[int], seed", "deposits: list[int], seed"
    )
    (tmp_path / "test_user_bank.py").write_text(
        renamed.replace("bank(plan, amounts, seed)", "bank(plan, deposits, seed)"),
        encoding="utf-8",
    )
    done = run(["spaceactors", "replay", str(path)], tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stdout == ""
    (line,) = done.stderr.splitlines()
    assert "the case no longer fits test_bank: it takes other arguments now" in line

    write_project(tmp_path, "data", fixed=True)
    run(["pytest", "-q", "-p", "no:cacheprovider", "test_user_bank.py"], tmp_path)
    write_project(tmp_path, "data")
    run(["pytest", "-q", "-p", "no:cacheprovider", "test_user_bank.py"], tmp_path)
    (path,) = [
        case
        for case in (tmp_path / ".spaceactors/cases").glob("*.json")
        if "TestBank" in case.read_text(encoding="utf-8")
    ]
    fewer = (tmp_path / "test_user_bank.py").read_text(encoding="utf-8")
    fewer = fewer.replace(
        'amounts = data.draw(st.lists(st.integers(1, 10), max_size=6), label="amounts")',
        "amounts = [1]",
    )
    (tmp_path / "test_user_bank.py").write_text(fewer, encoding="utf-8")
    done = run(["spaceactors", "replay", str(path)], tmp_path)
    assert done.returncode == 2, done.stdout + done.stderr
    assert "it drew 2 value(s) from st.data(), the test now draws 1" in done.stderr


def test_a_replay_writes_its_trace_to_diff_with_the_failing_run(tmp_path: Path) -> None:
    write_project(tmp_path, "sync")
    run(["pytest", "-q", "-p", "no:cacheprovider", "test_user_bank.py"], tmp_path)
    (path,) = (tmp_path / ".spaceactors/cases").glob("*.json")
    done = run(["spaceactors", "replay", str(path), "--trace", "again.jsonl"], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "the replay's trace: again.jsonl" in done.stdout
    diff = run(
        ["spaceactors", "trace", "diff", str(path.with_suffix(".trace.jsonl")), "again.jsonl"],
        tmp_path,
    )
    assert diff.returncode == 0, diff.stdout + diff.stderr
    refused = run(["spaceactors", "replay", str(path), "--trace", "again.txt"], tmp_path)
    assert refused.returncode == 2
    assert refused.stdout == ""
    assert refused.stderr.count("\n") == 1


def test_cases_refuses_an_async_check_that_would_never_run(tmp_path: Path) -> None:
    (tmp_path / "case.json").write_text("{}", encoding="utf-8")
    with pytest.raises(sat.CaseError, match="is async, and would never run"):

        @sat.cases(tmp_path / "case.json")
        async def test_pinned(result: sat.ReplayResult) -> None:
            raise AssertionError


def test_replaying_a_property_that_is_gone_is_a_case_error(tmp_path: Path) -> None:
    case = sat.Case(
        test=sat.casefile.Where("no_such_module_here", "test_bank"),
        machine=None,
        seed=0,
        scheduler_seed=0,
        start_time=0.0,
        faults=None,
        steps=(),
        arguments={"n": 1},
    )
    path = tmp_path / "gone.json"
    path.write_text(case.to_json(), encoding="utf-8")
    with pytest.raises(
        sat.CaseError, match="cannot import no_such_module_here for the test test_bank"
    ):
        sat.replay(path)


def test_the_captured_log_is_the_failing_examples_alone(tmp_path: Path) -> None:
    (tmp_path / "test_logs.py").write_text(
        textwrap.dedent(
            """
            import logging

            import trio.testing
            from hypothesis import given, settings
            from hypothesis import strategies as st

            import spaceactors as sa

            @settings(settings.get_profile("spaceactors-faults"), database=None)
            @given(n=st.integers(0, 1000))
            async def test_logs(n: int, virtual_clock: trio.testing.MockClock) -> None:
                logging.getLogger("user").warning("example n=%d", n)
                async with sa.open_system(seed=n):
                    pass
                assert n < 500
            """
        ),
        encoding="utf-8",
    )
    (tmp_path / "pytest.ini").write_text("[pytest]\ntrio_mode = true\n", encoding="utf-8")
    done = run(["pytest", "-q", "-p", "no:cacheprovider", "test_logs.py"], tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    log = done.stdout.split("Captured log call")[1].split("short test summary info")[0]
    logged = [line for line in log.splitlines() if "example n=" in line]
    assert logged == [logged[-1]]
    assert logged[-1].endswith("example n=500")  # the shrunk, failing example's
