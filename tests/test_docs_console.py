"""The command as the docs show it: sessions print what it prints, lines parse, options exist.

A ```console block of README.md or of a page in docs/ shows ``$ spaceactors ...`` lines, each
followed by what it prints (stdout, then stderr). Each command runs here, in a fresh folder
holding the files the page's comments describe (`FILES`), and must print exactly that. Every
``spaceactors ...`` line of a ```sh block parses as the command reads its arguments, and the
options tables of cli.md list exactly the options of ``spaceactors run`` and ``top``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from test_docs import DOCS, PAGES, fenced_blocks

from spaceactors.cli import command as cli

# The files a console example names, as its comment on the page describes them.
FILES = {
    "ore_run.py": (
        "from spaceactors import sim\n"
        "\n"
        "\n"
        "@sim.scenario(duration=60.0\n"
        "async def ore_run(world: sim.World) -> None:\n"
        '    """Line 4 misses its closing parenthesis."""\n'
    ),
    "exits.py": "import sys\nsys.exit(0)\n",
    "fleets.py": (
        "from spaceactors import sim\n"
        "\n"
        "\n"
        "@sim.scenario(duration=60.0)\n"
        "async def convoy(world: sim.World) -> None:\n"
        '    """A convoy."""\n'
        "\n"
        "\n"
        "@sim.scenario(duration=60.0)\n"
        "async def patrol(world: sim.World) -> None:\n"
        '    """A patrol."""\n'
    ),
}


def sessions() -> list[tuple[str, str, str]]:
    """(where, command, shown output) for each command of each console block."""
    found = []
    for page in PAGES:
        for block in fenced_blocks(page.read_text(encoding="utf-8")):
            if block.language != "console":
                continue
            lines = block.code.splitlines(keepends=True)
            starts = [i for i, line in enumerate(lines) if line.startswith("$ ")]
            assert starts[:1] == [0], f"{page.name}:{block.first_line} starts with no $ line"
            for start, end in zip(starts, [*starts[1:], len(lines)], strict=True):
                where = f"{page.name}:{block.first_line + start}"
                found.append((where, lines[start][2:], "".join(lines[start + 1 : end])))
    return found


SESSIONS = sessions()


def test_the_docs_show_command_sessions() -> None:
    assert len(SESSIONS) >= 3


@pytest.mark.parametrize(("where", "command", "shown"), SESSIONS, ids=[s[0] for s in SESSIONS])
def test_a_shown_command_prints_what_the_page_shows(
    where: str, command: str, shown: str, tmp_path: Path
) -> None:
    words = shlex.split(command, comments=True)
    assert words[0] == "spaceactors", f"{where}: only the spaceactors command is run here"
    for name, text in FILES.items():
        (tmp_path / name).write_text(text, encoding="utf-8")
    done = subprocess.run(
        [sys.executable, "-m", "spaceactors", *words[1:]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.stdout + done.stderr == shown, f"{where}: the command printed something else"


def parser() -> argparse.ArgumentParser:
    return cli._parser()


def shown_command_lines() -> list[tuple[str, list[str]]]:
    """(where, words) of every ``spaceactors ...`` line of a ```sh block."""
    found = []
    for page in PAGES:
        for block in fenced_blocks(page.read_text(encoding="utf-8")):
            if block.language != "sh":
                continue
            for offset, line in enumerate(block.code.splitlines()):
                words = shlex.split(line, comments=True)
                if words[:1] == ["spaceactors"]:
                    found.append((f"{page.name}:{block.first_line + offset}", words))
    return found


def test_every_command_line_shown_parses_as_the_command_reads_it() -> None:
    lines = shown_command_lines()
    assert len(lines) >= 5
    wrong = []
    for where, words in lines:
        refused = io.StringIO()
        try:
            with contextlib.redirect_stderr(refused):
                parser().parse_args(words[1:])
        except SystemExit:
            wrong.append(f"{where}: {shlex.join(words)}: {refused.getvalue().strip()}")
    assert wrong == [], "\n".join(wrong)


TABLED = ("run", "top", "resume", "node")
"""The commands whose options cli.md lists in tables of ``--option`` rows (with the command's
own options, those before the command: ``--log-json``)."""


def tabled_options() -> set[str]:
    top = parser()
    (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    actions = [a for a in top._actions if a.dest not in ("help", "version")]
    actions += [a for name in TABLED for a in commands.choices[name]._actions]
    return {
        option
        for action in actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }


def test_the_command_page_documents_every_option_of_run_and_top() -> None:
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    documented = set(re.findall(r"^\| `(--[\w-]+)", page, re.M))
    assert sorted(tabled_options() - documented) == [], "an option is missing from cli.md"
    assert sorted(documented - tabled_options()) == [], "cli.md documents an option none has"


@pytest.mark.parametrize("command", TABLED)
def test_each_command_s_own_section_lists_its_own_options(command: str) -> None:
    """Each command's table lists that command's options (one shared with another command is
    listed in both: a reader of ``resume`` does not look in ``run``'s table)."""
    page = (DOCS / "cli.md").read_text(encoding="utf-8")
    sections = re.split(r"^## ", page, flags=re.M)
    (section,) = [s for s in sections if s.startswith(f"`spaceactors {command} ")]
    listed = set(re.findall(r"^\| `(--[\w-]+)", section, re.M))
    top = parser()
    (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
    own = {
        option
        for action in commands.choices[command]._actions
        for option in action.option_strings
        if option.startswith("--") and option != "--help"
    }
    assert sorted(own - listed) == [], f"spaceactors {command}: options missing from its table"
