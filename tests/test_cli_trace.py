"""``spaceactors trace summary|show|diff`` on real trace files, and on files that are not
traces: always one line on stderr and exit code 2 for those, never a traceback."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from trace_runs import CRASH_AT, crew_run

import spaceactors as sa
from spaceactors.cli import main
from spaceactors.trace_analysis import first_divergence

DOCS = Path(__file__).resolve().parent.parent / "docs"


def run(*argv: str | Path) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main([str(a) for a in argv], out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture(scope="module")
def crew(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, str]]:
    """Trace files of real seeded runs, and their hashes: seed 0 twice, seed 1."""
    folder = tmp_path_factory.mktemp("cli-trace")
    return {
        name: (folder / f"{name}.jsonl", crew_run(folder / f"{name}.jsonl", seed=seed))
        for name, seed in (("a", 0), ("again", 0), ("b", 1))
    }


def test_summary_counts_restarts_dead_letters_and_ends_with_the_hash(
    crew: dict[str, tuple[Path, str]],
) -> None:
    path, run_hash = crew["a"]
    code, out, err = run("trace", "summary", path)
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].startswith(f"trace {path}: {len(sa.load_trace(path))} events from t=0 s")
    assert lines[-1] == f"hash {run_hash}"
    assert re.search(r"^    send +41$", out, re.M)
    assert "  restarts 2\n" in out
    assert (
        f"    t={CRASH_AT:g} s  pilot under root/user/crew (incarnation 2): it crashed: "
        "RuntimeError('pilot was told to crash')\n"
    ) in out
    assert "engineer under root/user/crew (incarnation 2): with pilot, which crashed: " in out
    assert "  dead letters 2 (1 crashed_while_handling, 1 unknown_actor)\n" in out
    assert "str to nobody: unknown_actor\n" in out


def test_summary_top_limits_the_lists(crew: dict[str, tuple[Path, str]]) -> None:
    path, _ = crew["a"]
    _, out, _ = run("trace", "summary", path, "--top", "1")
    assert "    ... 2 more (" in out  # 3 actors, 1 shown
    assert "    ... 1 more (--top 0 shows all)" in out  # 2 restarts, 1 shown
    _, everything, _ = run("trace", "summary", path, "--top", "0")
    assert "more" not in everything


def test_a_sqlite_trace_and_a_json_lines_trace_of_one_run_read_the_same(
    tmp_path: Path,
) -> None:
    summaries = []
    for name in ("run.jsonl", "run.sqlite"):
        trace = tmp_path / name
        code, _, _ = run("run", "trade-route", "--duration", "1300", "--trace", trace)
        assert code in (0, 1)
        code, out, err = run("trace", "summary", trace)
        assert (code, err) == (0, "")
        summaries.append(out.split("\n", 1)[1])
    assert summaries[0] == summaries[1]
    assert "hauler-3 under root/user (incarnation 2): it crashed: RuntimeError(" in summaries[0]


def test_show_filters_combine_one_line_per_event(crew: dict[str, tuple[Path, str]]) -> None:
    path, _ = crew["a"]
    events = sa.load_trace(path)
    code, out, err = run("trace", "show", path, "--actor", "engineer", "--kind", "restart")
    assert (code, err) == (0, "")
    (line, last) = out.splitlines()
    number = next(
        n for n, e in enumerate(events, 1) if e.kind.value == "restart" and e.actor == "engineer"
    )
    assert re.fullmatch(
        rf" *{number} +{CRASH_AT:.6f}  restart +engineer under root/user/crew \| incarnation 2",
        line,
    )
    assert last == f"1 of {len(events)} events"
    _, out, _ = run(
        "trace", "show", path, "--from", "10", "--to", "10", "--kind", "crash", "--kind", "handle"
    )
    shown = out.splitlines()[:-1]
    expected = [e for e in events if e.time == 10 and e.kind.value in ("crash", "handle")]
    assert len(shown) == len(expected) > 1
    assert all(" 10.000000  " in line for line in shown)
    assert any("crash       pilot under root/user/crew | RuntimeError(" in line for line in shown)
    _, out, _ = run("trace", "show", path)
    assert len(out.splitlines()) == len(events) + 1


def test_show_keeps_each_event_on_one_line_whatever_its_text(tmp_path: Path) -> None:
    path = tmp_path / "odd.jsonl"
    trace = sa.Trace(sa.JsonLinesSink(path))
    trace.record(sa.EventKind.CRASH, "a\nb", peer="sup", detail="Boom('line 1\\nline 2\x1b[31m')\n")
    trace.close()
    code, out, _ = run("trace", "show", path)
    assert code == 0
    assert out.count("\n") == 2
    assert "\x1b" not in out
    assert "a\\nb under sup | Boom('line 1\\nline 2\\x1b[31m')\\n" in out


def test_diff_of_the_same_seed_says_identical_and_exits_0(
    crew: dict[str, tuple[Path, str]],
) -> None:
    (a, run_hash), (again, _) = crew["a"], crew["again"]
    code, out, err = run("trace", "diff", a, again)
    assert (code, err) == (0, "")
    events = len(sa.load_trace(a))
    assert out == f"{a} and {again} are identical: {events} events, trace hash {run_hash}\n"


def test_diff_shows_the_first_difference_with_context_and_exits_1(
    crew: dict[str, tuple[Path, str]],
) -> None:
    (a, _), (b, _) = crew["a"], crew["b"]
    found = first_divergence(sa.load_trace(a), sa.load_trace(b))
    assert found is not None
    at = found.index + 1
    code, out, err = run("trace", "diff", a, b, "--context", "2")
    assert (code, err) == (1, "")
    lines = out.splitlines()
    assert lines[-1] == f"the traces differ from event {at} on"
    marked = [(line[:4], int(line[4:].split()[0])) for line in lines[1:] if line[2] in "=AB"]
    assert ("  = ", at - 1) in marked
    assert ("  A ", at) in marked
    assert ("  B ", at) in marked
    assert ("  A ", at + 2) in marked
    assert ("  B ", at + 2) in marked
    assert ("  A ", at + 3) not in marked
    assert any(line.startswith("    differs in ") for line in lines)


def test_an_old_headerless_file_diffs_identical_with_its_new_copy(
    crew: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    path, _ = crew["a"]
    old = tmp_path / "old.jsonl"
    old.write_text("".join(path.read_text(encoding="utf-8").splitlines(True)[1:]))
    assert run("trace", "diff", old, path)[0] == 0
    assert run("trace", "diff", old, crew["b"][0])[0] == 1


def test_diff_of_a_trace_that_stopped_early_says_where_it_ended(
    crew: dict[str, tuple[Path, str]], tmp_path: Path
) -> None:
    path, _ = crew["a"]
    short = tmp_path / "short.jsonl"
    short.write_text("".join(path.read_text(encoding="utf-8").splitlines(True)[:6]))
    code, out, _ = run("trace", "diff", short, path)
    assert code == 1
    assert "  A (the trace ended)\n" in out
    assert out.endswith("the traces differ from event 6 on\n")


def refused(*argv: str | Path) -> str:
    """Run the command; check it ended with exit code 2 and one line on stderr; the line."""
    out, err = io.StringIO(), io.StringIO()
    try:
        code = main([str(a) for a in argv], out=out, err=err)
    except SystemExit as exited:  # argparse refuses options this way, on sys.stderr
        code = exited.code  # type: ignore[assignment]
    line = err.getvalue()
    assert code == 2, (code, line)
    assert out.getvalue() == ""
    return line


def _hostile(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A file of that kind, and what the error line must say after the path."""
    path = tmp_path / "t.jsonl"
    if kind == "missing":
        return path, ": No such file or directory"
    if kind == "directory":
        path.mkdir()
        return path, ": Is a directory"
    if kind == "sqlite directory":
        path = tmp_path / "t.db"
        path.mkdir()
        return path, ": no trace database at"
    if kind == "bad json":
        path.write_text('[0.5, "send", "a", null, null, null, ""]\n[0.5, "send", "a"\n')
        return path, ":2: not a trace event: not JSON"
    if kind == "binary":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4)
        return path, ":1: not UTF-8 text"
    if kind == "huge line":
        with path.open("wb") as file:
            file.truncate(65 * 2**20)
        return path, ":1: not a trace event: a line of over 64 MiB"
    if kind == "newer version":
        path.write_text('{"format":"spaceactors-trace","version":9,"columns":[]}\n')
        return path, ":1: not a trace header: format version 9 is newer than this spaceactors"
    path = tmp_path / "t.sqlite"
    path.write_bytes(b"SQLite format 3\x00" + os.urandom(200))
    return path, " is not a trace database"


KINDS = ["missing", "directory", "sqlite directory", "bad json", "binary", "huge line",
         "newer version", "sqlite garbage"]  # fmt: skip


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("tool", ["summary", "show", "diff A", "diff B"])
def test_a_file_that_is_not_a_trace_is_one_line_and_exit_2(
    tmp_path: Path, crew: dict[str, tuple[Path, str]], kind: str, tool: str
) -> None:
    path, says = _hostile(tmp_path, kind)
    good = crew["a"][0]
    argv = {"summary": ["summary", path], "show": ["show", path, "--kind", "send"],
            "diff A": ["diff", path, good], "diff B": ["diff", good, path]}[tool]  # fmt: skip
    line = refused("trace", *argv)
    assert line.count("\n") == 1
    assert "Traceback" not in line
    assert line.startswith("spaceactors: error: ")
    assert f"{path}{says}" in line
    assert len(line) < 300 + len(str(path))


@pytest.mark.parametrize(
    ("argv", "says"),
    [
        (["show", "t.jsonl", "--kind", "explode"], "argument --kind: invalid choice: 'explode'"),
        (["show", "t.jsonl", "--from", "nan"], "must be a finite time, got 'nan'"),
        (["show", "t.jsonl", "--to", "soon"], "not a time in seconds: 'soon'"),
        (["show", "t.jsonl", "--from", "5", "--to", "3"], "--from 5 is after --to 3"),
        (["summary", "t.jsonl", "--top", "-1"], "must be a whole number from 0 to 1,000,000"),
        (["diff", "t.jsonl"], "the following arguments are required: B"),
        (["diff", "a", "b", "--context", "x"], "not a whole number: 'x'"),
        ([], "the following arguments are required: TOOL"),
    ],
)
def test_bad_options_are_one_line_and_exit_2(
    argv: list[str], says: str, capsys: pytest.CaptureFixture[str]
) -> None:
    line = refused("trace", *argv) + capsys.readouterr().err
    assert line.count("\n") == 1
    assert says in line


def test_the_console_command_exits_0_for_identical_and_1_for_different_traces(
    crew: dict[str, tuple[Path, str]],
) -> None:
    codes = []
    for other in ("again", "b"):
        done = subprocess.run(
            [sys.executable, "-m", "spaceactors", "trace", "diff", crew["a"][0], crew[other][0]],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.stderr == ""
        codes.append(done.returncode)
    assert codes == [0, 1]


def _options(tool: str) -> set[str]:
    import argparse

    from spaceactors.cli import command

    def sub(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
        (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        chosen: argparse.ArgumentParser = commands.choices[name]
        return chosen

    parser = sub(sub(command._parser(), "trace"), tool)
    return {
        option
        for action in parser._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


@pytest.mark.parametrize("tool", ["summary", "show", "diff"])
def test_the_command_page_documents_every_option_of_each_trace_tool(tool: str) -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    documented = set(re.findall(rf"^\| `{tool} (--[\w-]+)", page, re.M))
    assert sorted(_options(tool) ^ documented) == [], f"cli.md and trace {tool} differ"
    assert f"spaceactors trace {tool}" in page
