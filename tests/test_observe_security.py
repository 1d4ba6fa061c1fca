"""The observation server's security: loopback by default, a token required beyond it, and
/control and /events refused (401) without the token when one is set."""

from __future__ import annotations

import io
import json

import pytest
import trio
import trio.testing

import spaceactors as sa
from spaceactors.cli.command import main
from spaceactors.observe import TOKEN_VARIABLE, is_loopback
from tests.observe_client import fetch

TOKEN = "s3cret-token"
GUARDED = [
    ("POST", "/control/pause"),
    ("POST", "/control/resume"),
    ("POST", "/control/step?seconds=1"),
    ("POST", "/control/speed?factor=2"),
    ("GET", "/events"),
]


@pytest.fixture(autouse=True)
def _no_token_in_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(TOKEN_VARIABLE, raising=False)


@pytest.mark.parametrize("address", ["0.0.0.0:0", "[::]:0", "192.0.2.1:0", "example.com:0"])
async def test_a_server_beyond_loopback_refuses_to_start_without_a_token(
    virtual_clock: trio.testing.MockClock, address: str
) -> None:
    with pytest.raises(sa.InvalidSpec, match="without a token"):
        async with sa.open_system(observe=address):
            pytest.fail("the block ran")


@pytest.mark.parametrize("host", ["127.0.0.1", "127.8.9.1", "::1", "localhost"])
def test_loopback_addresses_need_no_token(host: str) -> None:
    assert is_loopback(host)


@pytest.mark.parametrize(
    "address", ["8765", "127.0.0.1", "127.0.0.1:", ":80", "127.0.0.1:65536", "h:-1", "h:8x"]
)
async def test_a_malformed_address_is_refused(
    virtual_clock: trio.testing.MockClock, address: str
) -> None:
    with pytest.raises(sa.InvalidSpec, match="HOST:PORT"):
        async with sa.open_system(observe=address):
            pytest.fail("the block ran")


@pytest.mark.parametrize(("method", "path"), GUARDED)
async def test_guarded_endpoints_answer_401_without_the_token(
    virtual_clock: trio.testing.MockClock, method: str, path: str
) -> None:
    async with sa.open_system(observe="127.0.0.1:0", observe_token=TOKEN) as system:
        url = f"{system.observe_url}{path}"
        missing = await fetch(url, method)
        wrong = await fetch(url, method, {"Authorization": "Bearer nope"})
        status, _, _ = await fetch(f"{system.observe_url}/status")
    assert missing[0] == wrong[0] == 401
    assert "token" in json.loads(missing[2])["error"]
    assert status == 200  # reading the status needs no token


@pytest.mark.parametrize(("method", "path"), [g for g in GUARDED if g[1] != "/events"])
async def test_the_token_opens_control_as_a_bearer_header_or_a_query(
    virtual_clock: trio.testing.MockClock, method: str, path: str
) -> None:
    async with sa.open_system(observe="127.0.0.1:0", observe_token=TOKEN) as system:
        url = f"{system.observe_url}{path}"
        header = await fetch(url, method, {"Authorization": f"Bearer {TOKEN}"})
        joiner = "&" if "?" in path else "?"
        query = await fetch(f"{url}{joiner}token={TOKEN}", method)
    # speed needs a wall clock: refused for what it asks (400), not for who asks (401)
    wanted = 400 if "speed" in path else 200
    assert header[0] == query[0] == wanted


async def test_the_token_may_come_from_the_environment(
    virtual_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(TOKEN_VARIABLE, TOKEN)
    async with sa.open_system(observe="0.0.0.0:0") as system:  # allowed: there is a token
        port = system.observe_url.rsplit(":", 1)[1]  # type: ignore[union-attr]
        url = f"http://127.0.0.1:{port}/control/pause"
        refused = await fetch(url, "POST")
        allowed = await fetch(url, "POST", {"Authorization": f"Bearer {TOKEN}"})
    assert (refused[0], allowed[0]) == (401, 200)


def test_the_command_refuses_a_public_address_without_a_token() -> None:
    err = io.StringIO()
    code = main(["run", "trade-route", "--observe", "0.0.0.0:8765"], io.StringIO(), err)
    assert code == 2
    assert "without a token" in err.getvalue()
    assert err.getvalue().count("\n") == 1


def test_the_command_refuses_a_token_without_observe() -> None:
    err = io.StringIO()
    code = main(["run", "trade-route", "--observe-token", TOKEN], io.StringIO(), err)
    assert code == 2
    assert "--observe-token needs --observe" in err.getvalue()
