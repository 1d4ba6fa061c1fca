"""The dashboard in a real browser: headless Chromium shows a running system and steers it.

Every wait is bounded (browser.TIMEOUT_MS, or a few seconds of real time for the server's
answers): these tests run a real browser against a real server, so they take real time.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser import TIMEOUT_MS, chromium, get_json
from observed_run import RETIRE_AT, observed_command, observed_run

pytest_plugins = ["pytester"]

PAGE = Path(__file__).resolve().parent.parent / "spaceactors/observe/static/dashboard.html"
HOSTILE = [
    "<script>window.__pwned = 1</script>",
    '<img src=x onerror="window.__pwned = 1">',
    "<svg onload=\"window.__pwned = 1\"></svg>",
    "\"'><b>bold</b>&amp;",
]


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as browser:
        yield browser


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1400, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    try:
        yield page
    finally:
        context.close()


def sim_time(url: str) -> float:
    return float(get_json(url + "status")["sim_time"])


def wait_until(predicate: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"not true within {seconds} s"
        time.sleep(0.05)


def test_the_page_never_parses_data_as_html_nor_fetches_from_elsewhere() -> None:
    text = PAGE.read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in text
    assert "https://" not in text
    assert text.count("http://") == 1  # the SVG namespace, nothing fetched
    assert "http://www.w3.org/2000/svg" in text


def test_tree_shows_the_running_actors_with_state_mailbox_and_counts(page: Any) -> None:
    with observed_run(["ship:1", "ship:2"]) as url:
        page.goto(url)
        ship = page.locator('#tree tr[data-path="user/fleet/ship:1"]')
        ship.locator(".state", has_text="running").wait_for()
        cells = ship.locator("td")
        assert cells.nth(0).inner_text() == "ship:1"
        assert cells.nth(1).inner_text() == "Ship"
        assert cells.nth(3).inner_text().endswith("/64")
        for path in ("services/router", "user/fleet/ship:2", "user/fleet/station:ceres"):
            assert page.locator(f'#tree tr[data-path="{path}"]').count() == 1
        page.wait_for_function(
            """() => Number(document.querySelector(
                '#tree tr[data-path="user/fleet/ship:1"]').children[4].textContent) > 0"""
        )

        def indent(path: str) -> float:
            selector = f'#tree tr[data-path="{path}"] td.name'
            return float(page.eval_on_selector(selector, "e => parseFloat(e.style.paddingLeft)"))

        assert indent("user") < indent("user/fleet") < indent("user/fleet/ship:1")
        assert float(get_json(url + "status")["sim_time"]) > 0


def test_a_crashing_actor_shows_its_restart_count_and_cause(page: Any) -> None:
    with observed_run(["ship:1"], reason="fuel < 0") as url:
        page.goto(url)
        station = 'tr[data-path="user/fleet/station:ceres"]'
        page.wait_for_function(
            f"""() => {{
                const row = document.querySelector('#tree {station}');
                return row && Number(row.children[6].textContent) >= 2;
            }}"""
        )
        top = page.locator(f"#top-restarters {station}")
        top.wait_for()
        for where in (top, page.locator(f"#tree {station} td.cause")):
            cause = where.inner_text()
            assert "ValueError" in cause
            assert "fuel < 0" in cause
        assert page.locator("#top-restarters tr").first.get_attribute("data-path") == (
            "user/fleet/station:ceres"
        )
        page.locator("#events li.kind-restart").first.wait_for()
        latest = page.locator("#events li.kind-restart").first.inner_text()
        assert "station:ceres" in latest
        assert "fuel < 0" in latest


def test_pause_stops_the_simulation_resume_restarts_it_step_advances_it(page: Any) -> None:
    with observed_run(["ship:1"]) as url:
        page.goto(url)
        page.locator("#run-state", has_text="running").wait_for()
        wait_until(lambda: sim_time(url) > 5)
        page.click("#pause")
        page.locator("#run-state", has_text="paused").wait_for()
        paused_at = sim_time(url)
        for _ in range(4):
            time.sleep(0.3)
            assert sim_time(url) == paused_at
        shown = page.locator("#sim-time").inner_text()
        time.sleep(1.2)  # more than one poll of the page
        assert page.locator("#sim-time").inner_text() == shown

        page.fill("#step-seconds", "3")
        page.click("#step")
        wait_until(lambda: sim_time(url) >= paused_at + 3)
        stepped = sim_time(url)
        time.sleep(0.5)
        assert sim_time(url) == stepped < paused_at + 5

        page.click("#resume")
        page.locator("#run-state", has_text="running").wait_for()
        wait_until(lambda: sim_time(url) > stepped + 5)


@pytest.mark.parametrize("name", HOSTILE)
def test_hostile_actor_names_and_causes_show_as_text(page: Any, name: str) -> None:
    station = f"{name} station"
    with observed_run([name], station=station, reason=name) as url:
        page.goto(url)
        page.wait_for_function(
            """(name) => [...document.querySelectorAll('#tree tr')].some(
                (row) => row.dataset.path === 'user/fleet/' + name
                         && row.querySelector('td.name').textContent === name)""",
            arg=name,
        )
        for where in ("#events", "#top-restarters"):
            page.wait_for_function(
                "([where, text]) => document.querySelector(where).textContent.includes(text)",
                arg=[where, f"user/fleet/{station}"],
            )
        tag = re.search(r"<\w+", name)
        assert tag is not None
        for where in ("#tree", "#top-restarters", "#events"):
            assert tag.group() in page.locator(where).inner_text()  # the cause, as text
        assert page.evaluate("() => window.__pwned") is None
        injected = "main b, main img, main svg:not(#rate-plot), main script"
        assert page.locator(injected).count() == 0


def test_a_token_in_the_address_is_sent_to_status_events_and_control(page: Any) -> None:
    with observed_run(["ship:1"], token="s3cret") as url:
        page.goto(url + "?token=s3cret")
        page.locator("#events-state", has_text="live").wait_for()
        page.click("#pause")
        page.locator("#run-state", has_text="paused").wait_for()
        assert page.locator("#message").inner_text() == ""

        page.goto(url)  # no token: control is refused, and the page says why
        page.locator("#run-state", has_text="paused").wait_for()
        page.click("#resume")
        page.locator("#message", has_text="token").wait_for()
        assert get_json(url + "status")["paused"] is True


def test_a_spaceactors_run_on_the_wall_clock_shows_live_and_takes_a_new_speed(page: Any) -> None:
    with observed_command("trade-route", "--clock", "wall", "--speed", "20") as url:
        page.goto(url)
        page.locator("#clock", has_text="wall").wait_for()
        page.locator("#speed", has_text="20x").wait_for()
        assert page.locator("#step-controls").is_hidden()
        page.locator("#sim-counts", has_text="ship updates").wait_for()
        page.fill("#speed-factor", "5")
        page.click("#set-speed")
        page.locator("#speed", has_text="5x").wait_for()
        assert get_json(url + "status")["speed"] == 5.0

        page.click("#pause")
        page.locator("#run-state", has_text="paused").wait_for()
        paused_at = sim_time(url)
        time.sleep(0.6)
        assert sim_time(url) == paused_at
        page.fill("#speed-factor", "-1")  # refused: the page says why, the run is unchanged
        page.click("#set-speed")
        page.locator("#message", has_text="speed").wait_for()
        page.click("#resume")
        wait_until(lambda: sim_time(url) > paused_at + 1)


def test_the_dashboard_goes_on_showing_the_run_after_an_actor_stops(page: Any) -> None:
    with observed_run(["ship:1"], retire="ship:short") as url:
        page.goto(url)
        page.locator('#tree tr[data-path="user/fleet/ship:short"]').wait_for()
        wait_until(lambda: sim_time(url) > RETIRE_AT + 10, seconds=60)  # ship:short stopped
        page.locator('#tree tr[data-path="user/fleet/ship:short"]').wait_for(state="detached")
        shown = page.locator("#sim-time").inner_text()
        page.wait_for_function(
            "(shown) => document.querySelector('#sim-time').textContent !== shown", arg=shown
        )
        assert page.locator("#message").inner_text() == ""
        assert get_json(url + "status")["totals"]["actors"] >= 2


@pytest.mark.parametrize(("ci", "outcome"), [("true", "failed"), ("", "skipped")])
def test_without_chromium_the_browser_tests_skip_locally_and_fail_on_ci(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str, outcome: str
) -> None:
    monkeypatch.setenv("CI", ci)
    pytester.makepyfile(browser=(Path(__file__).parent / "browser.py").read_text("utf-8"))
    pytester.makepyfile(
        test_needs_a_browser="""
        from pathlib import Path

        import browser


        def test_needs_a_browser(monkeypatch):
            monkeypatch.setattr(browser, "CHROMIUM", Path("/nonexistent/chromium"))
            with browser.chromium():
                pass
        """
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rsf")
    result.assert_outcomes(**{outcome: 1})
    result.stdout.fnmatch_lines(["*Chromium is not installed at /nonexistent/chromium*"])


def test_restarted_most_finds_an_actor_beyond_the_first_rows_of_the_tree(page: Any) -> None:
    """600 ships start before the crashing station: the tree shows the first 500 actors, and
    'Restarted most' still lists the station (it reads its own ?sort=restarts)."""
    with observed_run([f"ship:{i}" for i in range(600)]) as url:
        page.goto(url)
        station = 'tr[data-path="user/fleet/station:ceres"]'
        page.locator(f"#top-restarters {station}").wait_for()
        assert page.locator(f"#tree {station}").count() == 0  # beyond the tree's first rows


def test_a_name_with_bidirectional_controls_cannot_pass_for_another(page: Any) -> None:
    name = "\u202eevil"  # renders as "live" unless its control is shown
    with observed_run([name]) as url:
        page.goto(url)
        page.wait_for_function(
            """() => [...document.querySelectorAll('#tree td.name')].some(
                (cell) => cell.textContent === '\\\\u202eevil')"""
        )
