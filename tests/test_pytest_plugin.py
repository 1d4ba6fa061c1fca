"""The pytest plugin shipped with the package, as a user's own project meets it.

Each test writes a small user project and runs pytest on it in a subprocess (so a Hypothesis
profile it loads never leaks into this run): without ``trio_mode`` an async test fails with the
line to add; with it the ``virtual_clock`` fixture runs tests in virtual time; the
``spaceactors-faults`` profile loads; and the first fault test of docs/testing.md passes as
written, then fails as the page shows once its bug is planted.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from test_docs import DOCS, fenced_blocks

pytest_plugins = ["pytester"]


def run(pytester: pytest.Pytester, *args: str) -> pytest.RunResult:
    # A fixed Hypothesis seed: a test that must find a planted bug finds it on every run.
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--hypothesis-seed=0", *args, timeout=600
    )


def async_test_file(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        test_user="""
        import trio
        import trio.testing


        async def test_an_hour_passes(virtual_clock: trio.testing.MockClock) -> None:
            start = trio.current_time()
            await trio.sleep(3600)
            assert trio.current_time() - start == 3600
        """
    )


@pytest.mark.parametrize(
    ("config_file", "section"),
    [("pyproject.toml", "[tool.pytest.ini_options]"), ("pytest.ini", "[pytest]")],
)
def test_an_async_test_without_trio_mode_fails_saying_the_line_to_add(
    pytester: pytest.Pytester, config_file: str, section: str
) -> None:
    addopts = '"-ra"' if config_file.endswith(".toml") else "-ra"
    pytester.path.joinpath(config_file).write_text(f"{section}\naddopts = {addopts}\n")
    async_test_file(pytester)
    result = run(pytester)
    result.assert_outcomes(errors=1)  # at setup, before any fixture runs
    result.stdout.fnmatch_lines(
        [
            "test_user.py::test_an_hour_passes is an async test but pytest-trio was not told to "
            f"run it: add `trio_mode = true` under {section} in {config_file}, or mark the test "
            "@pytest.mark.trio"
        ]
    )
    assert "not natively supported" not in result.stdout.str()


def test_a_hypothesis_async_test_without_trio_mode_fails_the_same_way(
    pytester: pytest.Pytester,
) -> None:
    pytester.path.joinpath("pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    pytester.makepyfile(
        test_user="""
        from hypothesis import given, strategies as st


        @given(st.integers())
        async def test_numbers(n: int) -> None:
            assert n == n
        """
    )
    result = run(pytester)
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*test_numbers is an async test*add `trio_mode = true`*"])


def test_without_pytest_trio_the_failure_says_to_install_it(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("pyproject.toml").write_text("[tool.pytest.ini_options]\n")
    async_test_file(pytester)
    result = run(pytester, "-p", "no:trio")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*pytest-trio*is not installed: install it (pip install*"])


def test_with_trio_mode_virtual_clock_and_autojump_clock_run_in_virtual_time(
    pytester: pytest.Pytester,
) -> None:
    pytester.path.joinpath("pyproject.toml").write_text(
        "[tool.pytest.ini_options]\ntrio_mode = true\n"
    )
    async_test_file(pytester)
    pytester.makepyfile(
        test_pytest_trio_names="""
        import trio
        import trio.testing


        async def test_a_day_passes(autojump_clock: trio.testing.MockClock) -> None:
            await trio.sleep(86400)


        def test_a_plain_test_is_left_alone() -> None:
            assert True
        """
    )
    result = run(pytester, "--durations=0", "-vv")
    result.assert_outcomes(passed=3)
    # Virtual time: an hour and a day of sleeping take no measurable real time.
    durations = re.findall(r"^(\d+\.\d+)s call\s", result.stdout.str(), re.M)
    assert all(float(seconds) < 5 for seconds in durations)


def test_the_virtual_time_rule_fails_an_async_test_that_takes_no_clock(
    pytester: pytest.Pytester,
) -> None:
    pytester.path.joinpath("pyproject.toml").write_text(
        "[tool.pytest.ini_options]\ntrio_mode = true\nspaceactors_virtual_time = true\n"
    )
    async_test_file(pytester)
    pytester.makepyfile(
        test_real_clock="""
        import trio


        async def test_on_the_real_clock() -> None:
            await trio.sleep(0)
        """
    )
    result = run(pytester)
    result.assert_outcomes(passed=1, errors=1)
    result.stdout.fnmatch_lines(
        ["*test_on_the_real_clock would run on the real clock*take the `virtual_clock` fixture*"]
    )


PROFILE_CHECK = """
from hypothesis import HealthCheck, settings

from spaceactors.testing.profiles import FAULT_PROFILE


def test_the_profile_is_loaded() -> None:
    assert FAULT_PROFILE == "spaceactors-faults"
    active = settings.default
    assert active.deadline is None
    assert active.max_examples == 50
    assert active.print_blob is True
    assert {HealthCheck.function_scoped_fixture, HealthCheck.too_slow} <= set(
        active.suppress_health_check
    )
"""


def test_the_fault_profile_loads_by_name_from_the_command_line(pytester: pytest.Pytester) -> None:
    pytester.path.joinpath("pyproject.toml").write_text(
        "[tool.pytest.ini_options]\ntrio_mode = true\n"
    )
    pytester.makepyfile(test_profile=PROFILE_CHECK)
    result = run(pytester, "--hypothesis-profile=spaceactors-faults")
    result.assert_outcomes(passed=1)


def test_the_fault_profile_lets_examples_share_the_virtual_clock(
    pytester: pytest.Pytester,
) -> None:
    pytester.path.joinpath("pyproject.toml").write_text(
        "[tool.pytest.ini_options]\ntrio_mode = true\n"
    )
    pytester.makepyfile(
        test_shared_clock="""
        import trio
        import trio.testing
        from hypothesis import given, strategies as st


        @given(seconds=st.integers(0, 10**6))
        async def test_sleeps(seconds: int, virtual_clock: trio.testing.MockClock) -> None:
            await trio.sleep(seconds)
        """
    )
    # Without the profile Hypothesis refuses a function-scoped fixture; with it, it is fine.
    run(pytester).assert_outcomes(failed=1)
    run(pytester, "--hypothesis-profile=spaceactors-faults").assert_outcomes(passed=1)


def first_fault_test() -> tuple[str, str, str, str]:
    """(pytest config, test file, shown failure, shown replay) of "Your first fault test in
    five minutes"."""
    page = (DOCS / "testing.md").read_text(encoding="utf-8")
    section = page.split("## Your first fault test in five minutes", 1)[1].split("\n## ", 1)[0]
    blocks = fenced_blocks(section)
    (config,) = [b.code for b in blocks if b.language == "toml"]
    (test,) = [b.code for b in blocks if b.language == "python"]
    (failure, replayed) = [b.code for b in blocks if b.language == "text"]
    return config, test, failure, replayed


def test_the_first_fault_test_of_the_docs_passes_as_written(pytester: pytest.Pytester) -> None:
    config, test, _, _ = first_fault_test()
    pytester.path.joinpath("pyproject.toml").write_text(config)
    pytester.path.joinpath("test_ledger.py").write_text(test)
    run(pytester, "test_ledger.py").assert_outcomes(passed=1)


def test_the_first_fault_test_fails_as_the_docs_show_once_broken(
    pytester: pytest.Pytester,
) -> None:
    config, test, failure, replayed = first_fault_test()
    assert "system.reliable.send(" in test
    pytester.path.joinpath("pyproject.toml").write_text(config)
    pytester.path.joinpath("test_ledger.py").write_text(
        test.replace("system.reliable.send(", "system.send(")
    )
    result = run(pytester, "test_ledger.py")
    result.assert_outcomes(failed=1)
    # Each line the page shows is printed, in order (`...` stands for what varies or was cut).
    result.stdout.re_match_lines(shown_lines(failure))
    last = [line for line in result.outlines if "reproduce with: " in line][-1]
    command = last.split("reproduce with: ", 1)[1].split()
    assert command[:2] == ["spaceactors", "replay"]
    replay = subprocess.run(
        [sys.executable, "-m", "spaceactors", *command[1:]],
        cwd=pytester.path,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert replay.returncode == 1, replay.stdout + replay.stderr
    pytest.LineMatcher(replay.stdout.splitlines()).re_match_lines(shown_lines(replayed))


def shown_lines(block: str) -> list[str]:
    """Patterns for the lines a docs block shows, `...` standing for what varies."""
    shown = [line.strip() for line in block.splitlines() if line.strip() not in ("", "...")]
    return [
        ".*" + ".*".join(re.escape(part) for part in line.split("...")) + ".*" for line in shown
    ]
