"""The command sessions shown in the docs print what the command really prints.

A ```console block of README.md or of a page in docs/ shows ``$ spaceactors ...`` lines, each
followed by what it prints (stdout, then stderr). Each command runs here, in a fresh folder
holding the files the page's comments describe (`FILES`), and must print exactly that.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from test_docs import PAGES, fenced_blocks

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
