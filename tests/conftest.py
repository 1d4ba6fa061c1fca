"""Suite-wide rules: every async test runs in virtual time."""

from __future__ import annotations

import inspect

import pytest

VIRTUAL_CLOCKS = {"autojump_clock", "mock_clock"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Refuse async tests that would run on the real clock.

    pytest-trio hands ``trio.run`` only a clock the test takes as an *argument*
    (``usefixtures`` is not enough), so each async test must name one.
    """
    for item in items:
        function = getattr(item, "function", None)
        inner = getattr(getattr(function, "hypothesis", None), "inner_test", function)
        if inspect.iscoroutinefunction(inner) and not VIRTUAL_CLOCKS & set(
            getattr(item, "fixturenames", ())
        ):
            raise pytest.UsageError(
                f"{item.nodeid}: async tests run in virtual time; "
                "take the `autojump_clock` fixture as an argument"
            )
