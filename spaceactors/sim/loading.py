"""Finding scenarios: the shipped ones by name, and those a Python file defines."""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import pkgutil
import sys
import types
from pathlib import Path

from spaceactors.checks import short_repr
from spaceactors.sim.arguments import ScenarioError
from spaceactors.sim.scenario import Scenario, ScenarioBroken, ScenarioNotFound, _line_in


def shipped() -> list[Scenario]:
    """The scenarios in `spaceactors.scenarios`, by name."""
    import spaceactors.scenarios as package

    found: dict[str, Scenario] = {}
    for module in pkgutil.iter_modules(package.__path__):
        loaded = importlib.import_module(f"{package.__name__}.{module.name}")
        for value in vars(loaded).values():
            if isinstance(value, Scenario):
                found[value.name] = value
    return [found[name] for name in sorted(found)]


def load(name_or_path: str) -> Scenario:
    """A shipped scenario by name, or the scenario a Python file defines.

    A file that defines several needs the name of one after a colon: ``fleet.py:convoy``.
    Scenarios a file imports count only when it defines none of its own. A file is run once
    per process for as long as it is unchanged (as ``import`` does): loading it again gives the
    same scenarios, whose classes a checkpoint names by a module name made from the file's
    path and source (`module_name_of`); once edited, it is run again.

    Raises:
        ScenarioNotFound: no such name or file, a file that is not ``.py``, a file that
            defines no scenario, or several and none (or an unknown one) was named.
        ScenarioBroken: the file does not load (a syntax error, an exception, ``sys.exit``);
            the message has the line and the error. A ``KeyboardInterrupt`` propagates.
        ScenarioError: `name_or_path` is not a str.
    """
    if not isinstance(name_or_path, str):
        raise ScenarioError(
            f"load(name_or_path) must be a scenario name or a file path (a str), "
            f"got {short_repr(name_or_path)}"
        )
    path, chosen = Path(name_or_path), None
    head, colon, tail = name_or_path.rpartition(":")
    if colon and head.endswith(".py") and tail and not path.exists():
        path, chosen = Path(head), tail
    if path.suffix == ".py":
        return _pick(path, _from_file(path), chosen)
    for known in shipped():
        if known.name == name_or_path:
            return known
    if path.is_dir():
        raise ScenarioNotFound(f"no scenario file at {path} (it is a directory)")
    if path.exists():
        raise ScenarioNotFound(f"{path} is not a scenario file (a Python file ending in .py)")
    names = ", ".join(s.name for s in shipped())
    raise ScenarioNotFound(f"no scenario named {name_or_path!r} (shipped: {names})")


def module_name_of(path: Path, source: bytes) -> str:
    """The module name the scenario file at `path` holding `source` is loaded under: the same
    for the same file (its absolute path as given, symlinks kept) and the same source in every
    process. A checkpoint names the file's classes by it, and a resume in another process
    loads the file again."""
    digest = hashlib.sha256(str(path.absolute()).encode("utf-8", "surrogateescape"))
    digest.update(b"\0" + hashlib.sha256(source).digest())
    return f"spaceactors_scenario_{digest.hexdigest()[:16]}"


def _from_file(path: Path) -> list[Scenario]:
    """The scenarios the file at `path` defines (else those it imports)."""
    if path.is_dir():
        raise ScenarioNotFound(f"no scenario file at {path} (it is a directory)")
    if not path.is_file():
        raise ScenarioNotFound(f"no scenario file at {path}")
    try:
        source = path.read_bytes()
    except OSError as exc:
        raise ScenarioBroken(f"cannot read {path}: {exc.strerror or exc}") from None
    module_name = module_name_of(path, source)
    loaded = sys.modules.get(module_name)
    if loaded is not None:  # this file, unchanged, loaded before: as ``import`` does, that one
        return _scenarios_of(path, loaded, module_name)  # (its classes keep their names)
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ScenarioNotFound(f"{path} is not a scenario file (a Python file ending in .py)")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # its classes are found by name (checkpoints)
    try:
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(module_name, None)
            raise
    except SyntaxError as exc:
        raise ScenarioBroken(f"{_at(path, exc.lineno)}: syntax error: {exc.msg}") from None
    except OSError as exc:
        raise ScenarioBroken(f"cannot read {path}: {exc.strerror or exc}") from None
    except SystemExit as exc:
        raise ScenarioBroken(
            f"{_at(path, _line_in(exc, str(path)))}: the file called "
            f"sys.exit({short_repr(exc.code)}) while loading (a scenario file must not exit)"
        ) from None
    except KeyboardInterrupt:
        raise
    except BaseException as exc:
        line = _line_in(exc, str(path))
        raise ScenarioBroken(f"{_at(path, line)}: {type(exc).__name__}: {exc}") from None
    return _scenarios_of(path, module, module_name)


def _scenarios_of(path: Path, module: types.ModuleType, module_name: str) -> list[Scenario]:
    scenarios = [value for value in vars(module).values() if isinstance(value, Scenario)]
    own = [found for found in scenarios if found.build.__module__ == module_name]
    if not (own or scenarios):
        raise ScenarioNotFound(f"{path} defines no @sim.scenario function")
    return own or scenarios  # its own, before any it imported to build on


def _pick(path: Path, found: list[Scenario], name: str | None) -> Scenario:
    """The one scenario of a file, or the one `name` chooses among several."""
    names = ", ".join(sorted(s.name for s in found))
    if name is not None:
        for candidate in found:
            if candidate.name == name:
                return candidate
        raise ScenarioNotFound(f"{path} defines no scenario named {name!r} (it has: {names})")
    if len(found) > 1:
        raise ScenarioNotFound(
            f"{path} defines {len(found)} scenarios ({names}): "
            f"name one, as in {path}:{sorted(s.name for s in found)[0]}"
        )
    return found[0]


def _at(path: Path, line: int | None) -> str:
    return f"{path}:{line}" if line else str(path)
