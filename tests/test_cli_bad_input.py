"""Bad input to `spaceactors run` and `list`: always one line on stderr and exit code 2.

Whatever the user gives (a scenario file that exits or is not Python, a duration or step that
would never end, a trace that cannot be written, a fault plan that is not one), the command
ends with one line that names the problem, never a traceback, and never exit 0 or 1.
"""

from __future__ import annotations

import errno
import io
import os
from pathlib import Path

import pytest

import spaceactors as sa
from spaceactors.cli import main
from spaceactors.trace import JsonLinesSink

TWO = """
from spaceactors import sim

@sim.scenario(duration=60)
async def first(world):
    await world.add_station("a", (0, 0, 0), sector="x")

@sim.scenario(duration=30)
async def second(world):
    await world.add_station("b", (0, 0, 0), sector="x")
"""


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def refused(argv: list[str]) -> str:
    """Run `argv`, check it was refused with one line and exit code 2; return the line."""
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main(argv, out=out, err=err)
    except SystemExit as exited:  # argparse refuses options this way, on sys.stderr
        code = exited.code  # type: ignore[assignment]
        err.write(_captured.readouterr().err)
    line = err.getvalue()
    assert code == 2, (code, line)
    assert line.count("\n") == 1, line
    assert line.endswith("\n")
    assert "Traceback" not in line
    assert out.getvalue() == ""
    return line


_captured: pytest.CaptureFixture[str]


@pytest.fixture(autouse=True)
def _capture(capsys: pytest.CaptureFixture[str]) -> None:
    global _captured
    _captured = capsys


def script(tmp_path: Path, text: str, name: str = "scenario.py") -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("import sys\nsys.exit(0)\n", ":2: the file called sys.exit(0) while loading"),
        ("import sys\nsys.exit(1)\n", ":2: the file called sys.exit(1) while loading"),
        ("raise SystemExit\n", ":1: the file called sys.exit(None) while loading"),
        ("raise KeyboardInterrupt\n", ": the scenario file raised KeyboardInterrupt while loading"),
        ("def broken(:\n", ":1: syntax error"),
        ("x = 1 / 0\n", ":1: ZeroDivisionError: division by zero"),
        ("class Odd(BaseException): pass\nraise Odd('no')\n", ":2: Odd: no"),
    ],
)
def test_a_scenario_file_that_exits_or_fails_at_import_is_one_line_naming_it(
    tmp_path: Path, body: str, message: str
) -> None:
    path = script(tmp_path, body)
    line = refused(["run", path])
    assert line.startswith(f"spaceactors: error: {path}")
    assert message in line


def test_a_scenario_whose_build_calls_sys_exit_is_one_line(tmp_path: Path) -> None:
    path = script(
        tmp_path,
        "import sys\nfrom spaceactors import sim\n\n@sim.scenario(duration=10)\n"
        "async def quits(world):\n    sys.exit(0)\n",
    )
    line = refused(["run", path])
    assert f"failed while building its world at {path}:6: SystemExit: 0" in line


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("notes.txt", "hello", "notes.txt is not a scenario file (a Python file ending in .py)"),
        ("plan.json", "{}", "plan.json is not a scenario file"),
        ("noext", "x = 1", "noext is not a scenario file"),
    ],
)
def test_a_file_that_is_not_python_is_one_line(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = script(tmp_path, content, name)
    assert message in refused(["run", path])


def test_a_directory_is_not_a_scenario(tmp_path: Path) -> None:
    (tmp_path / "dir.py").mkdir()
    assert "(it is a directory)" in refused(["run", str(tmp_path / "dir.py")])
    assert "(it is a directory)" in refused(["run", str(tmp_path)])


def test_a_file_with_two_scenarios_is_refused_with_their_names(tmp_path: Path) -> None:
    path = script(tmp_path, TWO, "two.py")
    line = refused(["run", path])
    assert f"{path} defines 2 scenarios (first, second): name one, as in {path}:first" in line


def test_a_file_with_two_scenarios_runs_the_one_named_after_a_colon(tmp_path: Path) -> None:
    path = script(tmp_path, TWO, "two.py")
    code, out, _ = run("run", f"{path}:second")
    assert code == 0, out
    assert out.startswith("scenario second: seed 0, 30 s simulated")
    line = refused(["run", f"{path}:third"])
    assert "defines no scenario named 'third' (it has: first, second)" in line


@pytest.mark.parametrize(
    ("decorator", "message"),
    [
        ("step=0", "the tick step must be a finite number of seconds > 0, got 0"),
        ("step=float('nan')", "the tick step must be a number, got nan"),
        ("step=float('inf')", "the tick step must be a finite number of seconds > 0, got inf"),
        ("step=-1", "the tick step must be a finite number of seconds > 0, got -1"),
        ("step=1e-9", "at least 1e-06 s"),
        ("step='1'", "the tick step must be a number, got '1'"),
        ("duration=-5", "the duration must be a finite number of seconds > 0, got -5"),
        ("duration=0", "the duration must be a finite number of seconds > 0, got 0"),
        ("duration=float('nan')", "the duration must be a number, got nan"),
        ("duration=float('inf')", "the duration must be a finite number of seconds > 0, got inf"),
        ("duration=10**400", "the duration is too large: <int of about 401 digits>"),
        ("duration=1e308", "a run has at most 1,000,000,000 ticks"),
        ("duration=True", "the duration must be a number, got True"),
        ("duration=1.1e6, step=1e-3", "1.1e+09 ticks of 0.001 s"),
        ("duration=0.5, step=1.0", "a duration of 0.5 s is shorter than one tick of 1 s"),
    ],
)
def test_a_scenario_with_a_bad_duration_or_step_is_one_line(
    tmp_path: Path, decorator: str, message: str
) -> None:
    body = "from spaceactors import sim\n\n@sim.scenario({})\nasync def s(world):\n    pass\n"
    body = body.format(decorator)
    path = script(tmp_path, body)
    line = refused(["run", path])
    assert f"{path}:3: ScenarioError" in line
    assert message in line


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--duration", "1e308"], "--duration 1e+308: a duration of 1e+308 s is 1e+308 ticks"),
        (["--duration", "1e10"], "a run has at most 1,000,000,000 ticks"),
        (["--duration", "1e-9"], "shorter than one tick of 1 s"),
        (["--duration", "nan"], "argument --duration: must be a positive number of seconds"),
        (["--duration", "inf"], "argument --duration: must be a positive number of seconds"),
        (["--duration", "1e400"], "argument --duration: must be a positive number of seconds"),
        (["--duration", "-0"], "argument --duration: must be a positive number of seconds"),
        (["--duration", "0"], "argument --duration: must be a positive number of seconds"),
        (["--duration", "ten"], "argument --duration: not a number of seconds: 'ten'"),
        (["--duration", "9" * 5000], "argument --duration: must be a positive number"),
        (["--seed", "-1"], "argument --seed: must be a whole number from 0 to 2**64 - 1"),
        (["--seed", str(2**64)], "argument --seed: must be a whole number from 0 to 2**64 - 1"),
        (["--seed", "1.5"], "argument --seed: not a whole number: '1.5'"),
        (["--seed", "nan"], "argument --seed: not a whole number: 'nan'"),
        (["--seed", ""], "argument --seed: not a whole number: ''"),
        (["--seed", "9" * 5000], "argument --seed: not a whole number"),
        (["--clock", "moon"], "argument --clock: invalid choice: 'moon'"),
        (["--progress", "maybe"], "argument --progress: invalid choice: 'maybe'"),
        (["--trace"], "argument --trace: expected one argument"),
        (["--colour"], "unrecognized arguments: --colour"),
    ],
)
def test_bad_run_options_are_one_line(argv: list[str], message: str) -> None:
    line = refused(["run", "trade-route", *argv])
    assert message in line
    assert len(line) < 300  # a 5,000-digit value is not echoed in full


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "extra"], "unrecognized arguments: extra"),
        (["list", "--all"], "unrecognized arguments: --all"),
        (["demo", "--seed", "x"], "argument --seed: not a whole number"),
        (["teleport"], "invalid choice: 'teleport'"),
        ([], "the following arguments are required: COMMAND"),
    ],
)
def test_bad_list_demo_and_command_options_are_one_line(argv: list[str], message: str) -> None:
    assert message in refused(argv)


def faults_file(tmp_path: Path, content: bytes) -> str:
    path = tmp_path / "plan.json"
    path.write_bytes(content)
    return str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is not a fault plan: malformed json payload"),
        (b"{not json", "is not a fault plan: malformed json payload"),
        (b"\xff\xfe\x00", "is not a fault plan"),
        (b"[" * 100_000 + b"]" * 100_000, "is not a fault plan"),
        (b"[]", "is not a fault plan: invalid json envelope: expected an object, got list"),
        (b'{"schema": 99, "type": "FaultPlan", "body": {"rules": []}}', "unsupported schema 99"),
        (b'{"schema": 1, "type": "Vec3", "body": {}}', "unknown message type 'Vec3'"),
        (
            b'{"schema": 1, "type": "FaultPlan", "body": {"rules": [{"kind": "drop", '
            b'"probability": 1e400}]}}',
            "is not a fault plan",
        ),
        (
            b'{"schema": 1, "type": "FaultPlan", "body": {"rules": [{"kind": "melt"}]}}',
            "unknown kind 'melt'",
        ),
    ],
)
def test_a_fault_plan_that_is_not_one_is_one_line(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = faults_file(tmp_path, content)
    line = refused(["run", "trade-route", "--faults", path])
    assert f"spaceactors: error: {path}" in line
    assert message in line


def test_a_missing_or_unreadable_fault_plan_is_one_line(tmp_path: Path) -> None:
    missing = str(tmp_path / "missing.json")
    assert f"cannot read the fault plan {missing}: No such file or directory" in refused(
        ["run", "trade-route", "--faults", missing]
    )
    assert f"cannot read the fault plan {tmp_path}: Is a directory" in refused(
        ["run", "trade-route", "--faults", str(tmp_path)]
    )


@pytest.mark.skipif(not Path("/dev/zero").exists(), reason="needs /dev/zero")
def test_an_endless_fault_plan_is_refused_not_read_forever() -> None:
    assert "/dev/zero is not a fault plan: over 16 MiB" in refused(
        ["run", "trade-route", "--faults", "/dev/zero"]
    )


@pytest.mark.parametrize("name", ["run.csv", "run.json", "run.JSONL", "run", "run.jsonl.txt"])
def test_a_trace_with_an_unknown_suffix_is_refused_listing_the_known_ones(
    tmp_path: Path, name: str
) -> None:
    path = tmp_path / name
    line = refused(["run", "trade-route", "--trace", str(path)])
    assert "not a trace format (use .jsonl, .ndjson, .sqlite, .sqlite3, .db)" in line
    assert not path.exists()


@pytest.mark.parametrize("suffix", [".jsonl", ".sqlite"])
def test_an_unwritable_trace_is_refused_before_the_run(tmp_path: Path, suffix: str) -> None:
    directory = tmp_path / f"taken{suffix}"
    directory.mkdir()
    line = refused(["run", "trade-route", "--trace", str(directory)])
    assert f"cannot write the trace {directory}: Is a directory" in line
    missing = tmp_path / "no" / "such" / f"t{suffix}"
    line = refused(["run", "trade-route", "--trace", str(missing)])
    assert f"cannot write the trace {missing}: no directory {missing.parent}" in line


def test_a_read_only_trace_path_is_refused_before_the_run(tmp_path: Path) -> None:
    if os.geteuid() == 0:  # root writes anywhere but in /sys
        if not Path("/sys/kernel").is_dir():
            pytest.skip("running as root without /sys")
        target = Path("/sys/kernel/spaceactors-trace.jsonl")
    else:
        locked = tmp_path / "locked"
        locked.mkdir()
        locked.chmod(0o500)
        target = locked / "t.jsonl"
    line = refused(["run", "trade-route", "--trace", str(target)])
    assert f"cannot write the trace {target}: Permission denied" in line


def test_a_bad_input_does_not_truncate_an_existing_trace(tmp_path: Path) -> None:
    trace = tmp_path / "old.jsonl"
    trace.write_text("precious\n")
    refused(["run", "nowhere", "--trace", str(trace)])
    refused(["run", "trade-route", "--duration", "1e308", "--trace", str(trace)])
    assert trace.read_text() == "precious\n"


def test_a_full_disk_during_the_run_is_one_line_and_keeps_what_was_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = 0
    real_write = JsonLinesSink.write

    def write_until_full(self: JsonLinesSink, event: sa.TraceEvent, line: str) -> None:
        nonlocal written
        if written == 500:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written += 1
        real_write(self, event, line)

    monkeypatch.setattr(JsonLinesSink, "write", write_until_full)
    trace = tmp_path / "run.jsonl"
    line = refused(["run", "trade-route", "--trace", str(trace)])
    assert f"cannot write the trace {trace}: No space left on device" in line
    assert "the file keeps the events written before; the run stopped at t=" in line
    assert len(sa.load_trace(trace)) == 500


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
def test_a_trace_on_a_really_full_device_is_one_line(tmp_path: Path) -> None:
    trace = tmp_path / "full.jsonl"
    trace.symlink_to("/dev/full")
    line = refused(["run", "trade-route", "--trace", str(trace)])
    assert f"cannot write the trace {trace}: No space left on device" in line


class _Gone(io.StringIO):
    def write(self, text: str) -> int:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


@pytest.mark.parametrize("argv", [["list"], ["run", "trade-route", "--duration", "10"]])
def test_a_reader_that_left_ends_the_command_quietly_with_141(argv: list[str]) -> None:
    err = io.StringIO()
    assert main(argv, out=_Gone(), err=err) == 141
    assert err.getvalue() == ""
