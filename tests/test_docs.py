"""The examples on the documentation site run as written, and show what they really print.

Every ```python block of README.md and of a page in docs/ runs as-is. A block runs on its own, in a
fresh module, as a reader who copies it alone would run it, unless it is titled "Continues the
code above": such a block runs after the blocks before it, in their module, and its page says so
at the top. A block followed directly by a ```text title="Output" block must print exactly that
text. A comment may not claim what a line prints or returns (`print(x)  # 42`): that is what an
Output block is for, and only an Output block is checked.
"""

from __future__ import annotations

import ast
import builtins
import contextlib
import enum
import io
import itertools
import json
import re
import symtable
import sys
import tokenize
import types
from pathlib import Path
from typing import NamedTuple

import pytest

from spaceactors import messages

DOCS = Path(__file__).resolve().parent.parent / "docs"
PAGES = [*sorted(DOCS.rglob("*.md")), DOCS.parent / "README.md"]
NOTEBOOKS = sorted((DOCS.parent / "notebooks").glob("*.ipynb"))
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>.*)$")
OUTPUT_INFO = 'text title="Output"'
CONTINUED_INFO = 'python title="Continues the code above"'
# Said at the top of every page that has a block titled CONTINUED_INFO.
CONTINUED_NOTE = 'Blocks titled "Continues the code above"'


class Block(NamedTuple):
    info: str  # what follows the opening ```, e.g. 'python' or 'text title="Output"'
    first_line: int  # 1-based line number of the block's first line of code
    code: str

    @property
    def language(self) -> str:
        return self.info.partition(" ")[0]

    @property
    def continues(self) -> bool:
        return self.info == CONTINUED_INFO


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


def fresh_module(page: Path, monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    module = types.ModuleType(f"docs_{page.stem.replace('-', '_')}")
    module.__file__ = str(page)
    monkeypatch.setitem(sys.modules, module.__name__, module)  # so classes defined there resolve
    return module


def page_id(page: Path) -> str:
    return page.relative_to(DOCS.parent).as_posix()


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_page_examples_run_and_print_their_shown_output(
    page: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module: types.ModuleType | None = None
    blocks = fenced_blocks(page.read_text(encoding="utf-8"))
    for block, after in itertools.pairwise([*blocks, None]):
        if block is None or block.language != "python":
            continue
        where = f"{page.name}:{block.first_line}"
        if not block.continues:
            module = fresh_module(page, monkeypatch)  # a whole block runs alone
        assert module is not None, f"{where} continues no code above it"
        # Pad with blank lines so tracebacks point at the right line of the .md file.
        code = compile("\n" * (block.first_line - 1) + block.code, str(page), "exec")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            exec(code, module.__dict__)
        if after is not None and after.info == OUTPUT_INFO:
            shown_at = f"{page.name}:{after.first_line}"
            assert printed.getvalue() == after.code, f"output differs from {shown_at}"


def undefined_names(code: str) -> set[str]:
    """The global names a piece of code uses but neither defines, imports nor gets from builtins."""
    defined: set[str] = set()
    used: set[str] = set()

    def visit(table: symtable.SymbolTable, top: bool) -> None:
        for symbol in table.get_symbols():
            if top or symbol.is_global():
                if symbol.is_assigned() or symbol.is_imported() or symbol.is_namespace():
                    defined.add(symbol.get_name())
                if symbol.is_referenced():
                    used.add(symbol.get_name())
        for child in table.get_children():
            visit(child, top=False)

    visit(symtable.symtable(code, "<block>", "exec"), top=True)
    return used - defined - set(dir(builtins))


@pytest.mark.parametrize(
    ("code", "names"),
    [
        ("import trio\nx = trio.current_time()\n", set()),
        ("x = sa.Vec3()\n", {"sa"}),
        ("def f():\n    return Ship\n", {"Ship"}),
        ("class A:\n    x = int\n    def f(self):\n        return helper(self.x)\n", {"helper"}),
        ("def f():\n    global N\n    N = 1\nprint(N)\n", set()),
        ("try:\n    pass\nexcept sa.DecodeError as error:\n    print(error)\n", {"sa"}),
    ],
)
def test_undefined_names_are_what_a_block_takes_from_elsewhere(code: str, names: set[str]) -> None:
    assert undefined_names(code) == names


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_each_block_is_whole_or_titled_as_a_continuation(page: Path) -> None:
    """A block copied alone runs (no NameError), or its title says that it continues."""
    wrong = []
    for block in fenced_blocks(page.read_text(encoding="utf-8")):
        if block.language != "python":
            continue
        missing = undefined_names(block.code)
        where = f"{page.name}:{block.first_line}"
        if missing and not block.continues:
            wrong.append(
                f"{where} uses {sorted(missing)} from elsewhere: import or define them, "
                f"or title it ```{CONTINUED_INFO}"
            )
        if block.continues and not missing:
            wrong.append(f"{where} is whole: it needs no title saying that it continues")
    assert wrong == [], "\n".join(wrong)


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_a_page_with_continued_blocks_says_so_at_the_top(page: Path) -> None:
    text = page.read_text(encoding="utf-8")
    blocks = fenced_blocks(text)
    if any(block.continues for block in blocks):
        first_code = text.splitlines()[blocks[0].first_line - 2]
        assert CONTINUED_NOTE in text.partition(first_code)[0], f"{page.name} does not say so"


@pytest.mark.parametrize("page", PAGES, ids=page_id)
def test_every_output_block_shows_the_output_of_the_block_before_it(page: Path) -> None:
    blocks = fenced_blocks(page.read_text(encoding="utf-8"))
    for before, block in itertools.pairwise([None, *blocks]):
        if block is not None and block.info == OUTPUT_INFO:
            language = "" if before is None else before.language
            assert language == "python", (
                f"{page.name}:{block.first_line}: an Output block must follow the python block "
                "whose output it shows, or nothing checks it"
            )


CLAIM = re.compile(r"^#\s*(->|=>|→|prints?\b|returns?\b|outputs?\b|gives\b|is now\b)", re.I)


def output_claims(code: str) -> list[tuple[int, str]]:
    """(line, comment) for each comment that claims what a line prints or returns."""
    claims = []
    readline = io.StringIO(code).readline
    code_on_line: dict[int, str] = {}
    for token in tokenize.generate_tokens(readline):
        row = token.start[0]
        if token.type == tokenize.COMMENT:
            code_before = code_on_line.get(row, "")
            if not code_before.strip():
                continue  # a comment on its own line explains; it does not claim a value
            text = token.string[1:].strip()
            if "print(" in code_before or CLAIM.match(token.string) or is_literal(text):
                claims.append((row, token.string))
        elif token.type not in (tokenize.NL, tokenize.NEWLINE, tokenize.INDENT, tokenize.DEDENT):
            code_on_line[row] = code_on_line.get(row, "") + token.string
    return claims


def is_literal(text: str) -> bool:
    try:
        ast.literal_eval(text)
    except (SyntaxError, ValueError, TypeError, MemoryError, RecursionError):
        return False
    return True


@pytest.mark.parametrize(
    ("code", "claimed"),
    [
        ("print(error)  # malformed json\n", True),
        ("x = f()  # 42\n", True),
        ("x = f()  # -> 'ok'\n", True),
        ("bucket.try_take()  # True\n", True),
        ("x = f()  # returns the hash\n", True),
        ("x = f()  # or 'json'\n", False),
        ("await ref.send('b')  # the mailbox is full now\n", False),
        ("# prints the summary\nprint(summary)\n", False),
        ("s = '# 42'\n", False),
    ],
)
def test_output_claims_are_found(code: str, claimed: bool) -> None:
    assert bool(output_claims(code)) is claimed


def python_sources() -> list[tuple[str, str]]:
    """(where, code) of every python block of the docs and every code cell of the notebooks."""
    sources = []
    for page in PAGES:
        for block in fenced_blocks(page.read_text(encoding="utf-8")):
            if block.language == "python":
                sources.append((f"{page_id(page)}:{block.first_line}", block.code))
    for path in NOTEBOOKS:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        for number, cell in enumerate(cells, 1):
            if cell["cell_type"] == "code":
                sources.append((f"{path.name} cell {number}", "".join(cell["source"]) + "\n"))
    return sources


def test_no_comment_claims_an_output_that_nothing_checks() -> None:
    claims = [
        f"{where} (+{line - 1}): {comment}"
        for where, code in python_sources()
        for line, comment in output_claims(code)
    ]
    assert claims == [], "show printed values in an Output block instead:\n" + "\n".join(claims)


def test_protocol_page_names_every_protocol_class_and_enum() -> None:
    page = (DOCS / "protocol.md").read_text(encoding="utf-8")
    enums = [v for v in vars(messages).values() if isinstance(v, type) and issubclass(v, enum.Enum)]
    names = [cls.__name__ for cls in [*messages.PROTOCOL_TYPES, *enums]]
    assert [name for name in names if f"`{name}`" not in page] == [], "missing from protocol.md"
