"""The documentation site is whole: every page is reachable, every public name is documented.

- every page in docs/ is in the mkdocs.yml nav, and listed by docs/index.md and README.md;
- every public name (`spaceactors.__all__`, `spaceactors.sim.__all__`,
  `spaceactors.testing.__all__`) has an entry (a ``::: name`` directive) in the API reference
  pages in docs/api/, and a docstring as mkdocstrings reads it (with griffe, from the source);
- pyproject.toml names no placeholder address.
"""

from __future__ import annotations

import re
import tomllib
import types
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import griffe
import pytest
import yaml

import spaceactors
import spaceactors.checkpoint
import spaceactors.sim
import spaceactors.testing
import spaceactors.transport

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
API = DOCS / "api"
PAGES = sorted(page.relative_to(DOCS).as_posix() for page in DOCS.rglob("*.md"))
PACKAGES = [
    spaceactors,
    spaceactors.checkpoint,
    spaceactors.sim,
    spaceactors.testing,
    spaceactors.transport,
]
DIRECTIVE = re.compile(r"^::: *(?P<identifier>[\w.]+) *$", re.M)
LINK = re.compile(r"\]\((?P<target>[^)#\s]+)(?:#[^)]*)?\)")


def nav_pages(entries: list[Any]) -> Iterator[str]:
    for entry in entries:
        if isinstance(entry, str):
            yield entry
        elif isinstance(entry, dict):
            for value in entry.values():
                yield from nav_pages([value] if isinstance(value, str) else value)


def mkdocs_nav() -> list[str]:
    config = yaml.safe_load((ROOT / "mkdocs.yml").read_text(encoding="utf-8"))
    return list(nav_pages(config["nav"]))


def links(page: Path) -> set[str]:
    """The local pages a Markdown page links to, relative to the docs folder."""
    found = set()
    for match in LINK.finditer(page.read_text(encoding="utf-8")):
        target = match["target"]
        if urllib.parse.urlparse(target).scheme:
            continue
        resolved = (page.parent / target).resolve()
        if resolved.is_relative_to(DOCS):
            found.add(resolved.relative_to(DOCS).as_posix())
    return found


def test_every_page_is_in_the_nav_and_every_nav_entry_is_a_page() -> None:
    nav = mkdocs_nav()
    assert sorted(set(nav)) == PAGES
    assert len(nav) == len(set(nav)), "a page is in the nav twice"


@pytest.mark.parametrize("listing", [DOCS / "index.md", ROOT / "README.md"], ids=lambda p: p.name)
def test_the_home_page_and_the_readme_list_every_guide_and_the_api_reference(
    listing: Path,
) -> None:
    guides = [page for page in PAGES if "/" not in page and page != "index.md"]
    wanted = {*guides, "api/index.md"}
    assert sorted(wanted - links(listing)) == [], f"not listed in {listing.name}"


def test_the_api_reference_index_lists_every_api_page() -> None:
    api_pages = {page for page in PAGES if page.startswith("api/") and page != "api/index.md"}
    assert sorted(api_pages - links(API / "index.md")) == []


def test_every_link_of_the_readme_reaches_a_file() -> None:
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    targets = [m["target"] for m in LINK.finditer(text)]
    targets = [target for target in targets if not urllib.parse.urlparse(target).scheme]
    assert targets, "the README links the docs"
    assert [t for t in targets if not (ROOT / t).exists()] == []


def api_directives() -> list[str]:
    return [
        match["identifier"]
        for page in sorted(API.glob("*.md"))
        for match in DIRECTIVE.finditer(page.read_text(encoding="utf-8"))
    ]


def public_names() -> list[tuple[types.ModuleType, str]]:
    return [(package, name) for package in PACKAGES for name in package.__all__]


def identifiers_for(package: types.ModuleType, name: str) -> set[str]:
    """The directives that document a public name: by its public path, or by its defining
    module's path where a submodule of the same name hides it (``spaceactors.sim.scenario``)."""
    value = getattr(package, name)
    found = {f"{package.__name__}.{name}"}
    module = getattr(value, "__module__", None)
    if module is not None and module.startswith(package.__name__):
        found.add(f"{module}.{name}")
    return found


def test_every_public_name_has_an_entry_in_the_api_reference() -> None:
    directives = set(api_directives())
    missing = [
        f"{package.__name__}.{name}"
        for package, name in public_names()
        if not identifiers_for(package, name) & directives
    ]
    assert missing == [], "add a `::: name` line to a page in docs/api/"


def test_every_api_entry_is_a_public_name_and_is_there_once() -> None:
    directives = api_directives()
    public = {i for package, name in public_names() for i in identifiers_for(package, name)}
    assert [d for d in directives if d not in public] == []
    assert len(directives) == len(set(directives))


@pytest.fixture(scope="module")
def loaded() -> dict[str, griffe.Object | griffe.Alias]:
    """The packages as mkdocstrings sees them: read from source by griffe."""
    return {
        package.__name__: griffe.load(package.__name__, search_paths=[str(ROOT)])
        for package in PACKAGES
    }


def test_every_public_name_has_a_docstring(loaded: dict[str, Any]) -> None:
    directives = set(api_directives())
    undocumented = []
    for package, name in public_names():
        (identifier,) = identifiers_for(package, name) & directives
        module, _, member = identifier.rpartition(".")
        owner = loaded[package.__name__]
        for part in module.removeprefix(package.__name__).split(".")[1:]:
            owner = owner[part]
        found = owner[member]
        target = found.final_target if found.is_alias else found
        if target.docstring is None or not target.docstring.value.strip():
            undocumented.append(identifier)
    assert undocumented == [], "write a docstring (an attribute's goes on the line after it)"


PLACEHOLDER_HOSTS = re.compile(r"(^|\.)(invalid|example|test|localhost|example\.(com|net|org))$")


def test_the_project_urls_are_real_addresses() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    for label, url in project.get("urls", {}).items():
        host = urllib.parse.urlparse(url).hostname or ""
        assert host, f"{label} = {url} has no host"
        assert not PLACEHOLDER_HOSTS.search(host), f"{label} = {url} is a placeholder"


DOCS_PATH = re.compile(r"`(?P<path>docs/[\w./-]+\.md)`")


def test_every_docs_path_the_notebooks_and_readme_name_exists() -> None:
    texts = [(ROOT / "README.md").read_text(encoding="utf-8")]
    texts += [path.read_text(encoding="utf-8") for path in sorted(ROOT.glob("notebooks/*.ipynb"))]
    named = {match["path"] for text in texts for match in DOCS_PATH.finditer(text)}
    assert named, "the notebooks point at their reference pages"
    assert sorted(path for path in named if not (ROOT / path).is_file()) == []
