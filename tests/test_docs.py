"""The examples on the documentation site run as written.

Every ```python block of a page in docs/ (not ```text, ```pycon or ```sh) runs as-is, in order,
in one fresh module per page. A block followed directly by a ```text title="Output" block must
print exactly that text, so the outputs shown on the site are real and stay real.
"""

from __future__ import annotations

import contextlib
import enum
import io
import itertools
import re
import sys
import types
from pathlib import Path
from typing import NamedTuple

import pytest

from spaceactors import messages

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = [*sorted(DOCS.glob("*.md")), DOCS.parent / "README.md"]
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>.*)$")
OUTPUT_INFO = 'text title="Output"'


class Block(NamedTuple):
    info: str  # what follows the opening ```, e.g. 'python' or 'text title="Output"'
    first_line: int  # 1-based line number of the block's first line of code
    code: str

    @property
    def language(self) -> str:
        return self.info.partition(" ")[0]


def fenced_blocks(text: str) -> list[Block]:
    """The fenced code blocks of a Markdown page, in order."""
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        opening = FENCE.match(lines[index])
        index += 1
        if opening is None:
            continue
        indent, body, first_line = opening["indent"], [], index + 1
        while index < len(lines) and lines[index].strip() != "```":
            body.append(lines[index].removeprefix(indent))
            index += 1
        if index == len(lines):
            raise AssertionError(f"unclosed code fence at line {first_line - 1}")
        index += 1
        blocks.append(Block(opening["info"].strip(), first_line, "".join(f"{b}\n" for b in body)))
    return blocks


def test_fence_parser_reads_language_line_and_code() -> None:
    page = '# Title\n\n```python\nx = 1\n```\n\n```text title="Output"\n1\n```\n'
    assert fenced_blocks(page) == [Block("python", 4, "x = 1\n"), Block(OUTPUT_INFO, 8, "1\n")]


@pytest.mark.parametrize("page", PAGES, ids=lambda page: page.name)
def test_page_examples_run_and_print_their_shown_output(
    page: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    module.__file__ = str(page)
    monkeypatch.setitem(sys.modules, module.__name__, module)  # so classes defined there resolve
    blocks = fenced_blocks(page.read_text(encoding="utf-8"))
    for block, after in itertools.pairwise([*blocks, None]):
        if block is None or block.language != "python":
            continue
        # Pad with blank lines so tracebacks point at the right line of the .md file.
        code = compile("\n" * (block.first_line - 1) + block.code, str(page), "exec")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(code, module.__dict__)
        if after is not None and after.info == OUTPUT_INFO:
            shown_at = f"{page.name}:{after.first_line}"
            assert printed.getvalue() == after.code, f"output differs from {shown_at}"


def test_protocol_page_names_every_protocol_class_and_enum() -> None:
    page = (DOCS / "protocol.md").read_text(encoding="utf-8")
    enums = [v for v in vars(messages).values() if isinstance(v, type) and issubclass(v, enum.Enum)]
    names = [cls.__name__ for cls in [*messages.PROTOCOL_TYPES, *enums]]
    assert [name for name in names if f"`{name}`" not in page] == [], "missing from protocol.md"
