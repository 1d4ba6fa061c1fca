"""The pytest plugin that ships with spaceactors (entry point ``pytest11``, name ``spaceactors``).

Installed with the package, it is active in every pytest run of the environment:

- the ``virtual_clock`` fixture: a `trio.testing.MockClock` with ``autojump_threshold=0``; an
  async test that takes it runs in virtual time (pytest-trio hands the run a clock only when the
  test takes it as an argument);
- a clear failure when an async test would not run: without ``trio_mode = true`` in the pytest
  config (or a ``@pytest.mark.trio``), the test fails with one sentence saying what to add,
  instead of pytest's "async def functions are not natively supported";
- the Hypothesis settings profile ``"spaceactors-faults"`` (`spaceactors.testing.FAULT_SETTINGS`),
  registered before Hypothesis reads ``--hypothesis-profile``;
- opt-in, the ini option ``spaceactors_virtual_time = true``: then an async test that takes no
  clock fails, saying to take ``virtual_clock``.

It lives outside the package, like Hypothesis' own plugin, so that loading it imports nothing
of the engine (nor Trio, nor Hypothesis) before coverage tools start: each hook imports what it
needs when it runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    import trio.testing

VIRTUAL_TIME_OPTION = "spaceactors_virtual_time"
# Markers under which another plugin (pytest-asyncio, anyio) runs an async test.
OTHER_RUNNERS = ("asyncio", "anyio")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        VIRTUAL_TIME_OPTION,
        "spaceactors: fail every async test that takes no trio clock fixture (virtual_clock)",
        type="bool",
        default=False,
    )


@pytest.hookimpl(tryfirst=True)
def pytest_configure(config: pytest.Config) -> None:
    """Register the fault-test profile before Hypothesis loads the one the run names."""
    try:
        import hypothesis  # noqa: F401
    except ImportError:  # the profile is a Hypothesis feature: nothing to register
        return
    import spaceactors.testing.profiles  # noqa: F401  (registers "spaceactors-faults")


@pytest.fixture
def virtual_clock() -> trio.testing.MockClock:
    """A `trio.testing.MockClock` that jumps to the next deadline when every task waits.

    Take it as an argument of an async test: the test then runs in virtual time, so an hour of
    retries and timeouts takes as long as its work. (pytest-trio's ``autojump_clock`` is the
    same clock under pytest-trio's name.)
    """
    import trio.testing

    return trio.testing.MockClock(autojump_threshold=0)


def _test_function(item: pytest.Item) -> Callable[..., Any] | None:
    """The function a test item runs: the inner test of a Hypothesis test, else its own."""
    function = getattr(item, "obj", None)
    if not callable(function):
        return None
    inner = getattr(getattr(function, "hypothesis", None), "inner_test", function)
    return inner if callable(inner) else None


def _is_async(function: Callable[..., Any] | None) -> bool:
    return inspect.iscoroutinefunction(function) or inspect.isasyncgenfunction(function)


def _missing_trio_mode(item: pytest.Item) -> str:
    where = item.config.inipath.name if item.config.inipath is not None else "pyproject.toml"
    section = "[tool.pytest.ini_options]" if where == "pyproject.toml" else "[pytest]"
    if not item.config.pluginmanager.hasplugin("trio"):
        return (
            f"{item.nodeid} is an async test but pytest-trio, which runs async tests, is not "
            f"installed: install it (pip install pytest-trio) and add `trio_mode = true` under "
            f"{section} in {where}"
        )
    return (
        f"{item.nodeid} is an async test but pytest-trio was not told to run it: add "
        f"`trio_mode = true` under {section} in {where}, or mark the test @pytest.mark.trio"
    )


@pytest.hookimpl(tryfirst=True, specname="pytest_runtest_setup")
def pytest_runtest_setup_refuses_async_tests_nothing_runs(item: pytest.Item) -> None:
    """Fail an async test nothing will run, before its fixtures, with what to add."""
    if not _is_async(_test_function(item)):
        return
    if any(item.get_closest_marker(name) for name in ("trio", *OTHER_RUNNERS)):
        return
    pytest.fail(_missing_trio_mode(item), pytrace=False)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item) -> Generator[None, None, None]:
    """With ``spaceactors_virtual_time = true``, fail an async test that takes no clock.

    Checked once the fixtures are set up: pytest-trio gives ``trio.run`` a clock only when the
    test takes it as an argument, so a clock among the test's own arguments is what counts.
    """
    yield
    if not item.config.getini(VIRTUAL_TIME_OPTION):
        return
    function = _test_function(item)
    if function is None or not _is_async(function):
        return
    import trio

    arguments = getattr(item, "funcargs", {})
    taken = [arguments.get(name) for name in inspect.signature(function).parameters]
    if not any(isinstance(value, trio.abc.Clock) for value in taken):
        pytest.fail(
            f"{item.nodeid} would run on the real clock: async tests here run in virtual time "
            f"({VIRTUAL_TIME_OPTION} = true); take the `virtual_clock` fixture as an argument",
            pytrace=False,
        )


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_call(item: pytest.Item) -> Generator[None, None, None]:
    """Record the examples of a Hypothesis test (sync, or async under pytest-trio) so that a
    failing one that opened an actor system is saved as a case file
    (`spaceactors.testing.properties`). Wrapped before pytest-trio wraps it, so the recording
    runs inside the test's own Trio run."""
    function = getattr(item, "obj", None)
    handle = getattr(function, "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    if (
        handle is not None
        and callable(inner)
        and not getattr(inner, "_trio_test_runner_wrapped", False)
    ):
        runs = not _is_async(inner) or item.get_closest_marker("trio") is not None
        if runs:
            try:
                from spaceactors.testing.properties import INNER_TESTS, record
            except ImportError:  # Hypothesis without the engine's test extra: nothing to record
                pass
            else:
                owner = getattr(function, "__func__", function)
                if callable(owner):
                    INNER_TESTS.setdefault(owner, inner)
                handle.inner_test = record(inner, _fixtures(item), _log_reset(item))
    yield


def _fixtures(item: pytest.Item) -> set[str]:
    """The test's arguments that pytest fixtures give (parametrize's values are not)."""
    parametrized = getattr(getattr(item, "callspec", None), "params", {})
    return set(getattr(item, "fixturenames", ())) - set(parametrized)


def _log_reset(item: pytest.Item) -> Callable[[], None] | None:
    """Clears the log pytest captures for the test's report (not ``caplog``'s records)."""
    plugin = item.config.pluginmanager.get_plugin("logging-plugin")
    handler = getattr(plugin, "report_handler", None)
    reset = getattr(handler, "reset", None)
    return reset if callable(reset) else None


@pytest.hookimpl(hookwrapper=True, trylast=True, specname="pytest_runtest_call")
def pytest_runtest_call_reports_the_failure_itself(
    item: pytest.Item,
) -> Generator[None, None, None]:
    """Once pytest-trio has put its runner in place of a Hypothesis test's inner function: give
    the runner the test's name, which Hypothesis prints (``Failing test case: test_x(...)``),
    and raise a failure that saved a case as itself, not inside pytest-trio's one-exception
    group, so that the report reads as docs/testing.md shows (what broke first, the replay
    line last)."""
    handle = getattr(getattr(item, "obj", None), "hypothesis", None)
    inner = getattr(handle, "inner_test", None)
    function = getattr(item, "function", None)
    if (
        handle is not None
        and callable(inner)
        and callable(function)
        and getattr(inner, "_trio_test_runner_wrapped", False)
        and not getattr(inner, "__spaceactors_unwraps__", False)
    ):
        runner = inner

        @functools.wraps(runner)
        def unwrapped(*args: Any, **kwargs: Any) -> Any:
            __tracebackhide__ = True
            try:
                return runner(*args, **kwargs)
            except BaseExceptionGroup as group:
                leaf: BaseException = group
                while isinstance(leaf, BaseExceptionGroup) and len(leaf.exceptions) == 1:
                    leaf = leaf.exceptions[0]
                if getattr(leaf, "__spaceactors_reproduce__", None) is None:
                    raise
                raise leaf from None

        for name in ("__name__", "__qualname__"):
            setattr(unwrapped, name, getattr(function, name))
        unwrapped.__spaceactors_unwraps__ = True  # type: ignore[attr-defined]
        handle.inner_test = unwrapped
    yield
