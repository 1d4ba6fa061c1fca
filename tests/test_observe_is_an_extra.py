"""The observation server is an extra: the core imports none of it, works without it, and
asking for it without its libraries says how to install them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import trio
import trio.testing

import spaceactors as sa

CORE_ONLY = """
import sys, trio, spaceactors as sa
from spaceactors import sim
async def main():
    async with sa.open_system() as system:
        await system.spawn(sa.Actor)
sa.run(main)
loaded = [m for m in sys.modules if m.split('.')[0] in
          ('starlette', 'hypercorn', 'prometheus_client', 'anyio')
          or m.startswith('spaceactors.observe')]
print(loaded)
"""


def test_the_core_imports_nothing_of_the_observation_server() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CORE_ONLY], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("missing", ["spaceactors.observe", "hypercorn", "starlette"])
async def test_observe_without_the_extra_says_how_to_install_it(
    virtual_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch, missing: str
) -> None:
    monkeypatch.setitem(sys.modules, missing, None)  # as if not installed
    with pytest.raises(ImportError, match=r"pip install 'spaceactors\[observe\]'"):
        async with sa.open_system(observe=True):
            pytest.fail("the block ran")


@pytest.mark.parametrize("observe", [1, 8765, 1.5, ["127.0.0.1:0"], b"127.0.0.1:0"])
async def test_observe_takes_an_address_true_or_none(
    virtual_clock: trio.testing.MockClock, observe: object
) -> None:
    with pytest.raises(sa.InvalidSpec, match="observe must be"):
        async with sa.open_system(observe=observe):  # type: ignore[arg-type]
            pytest.fail("the block ran")


async def test_lifecycle_events_are_built_only_for_listeners(
    virtual_clock: trio.testing.MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    built: list[object] = []
    real = sa.LifecycleEvent

    def counting(*args: object, **kwargs: object) -> object:
        built.append(args)
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr("spaceactors.lifecycle.LifecycleEvent", counting)

    class Boom(sa.Actor):
        async def handle(self, message: object) -> object:
            raise ValueError("no")

    async with sa.open_system() as system:
        others = list(system.dead_letters.listeners)
        ref = await system.spawn(Boom)
        await ref.send("x")
        await trio.sleep(1)
        assert built == []  # nobody listens: nothing built
        seen: list[sa.LifecycleEvent] = []
        stop = system.lifecycle.listen(seen.append)
        await ref.send("x")
        await trio.sleep(1)
        stop()
        await ref.send("x")
        await trio.sleep(1)
    assert [e.kind for e in seen] == ["dead_letter", "restart"]
    assert len(built) == 2
    assert system.dead_letters.listeners == others  # the forwarder left with the last listener


@pytest.mark.parametrize("missing", ["hypercorn", "prometheus_client"])
def test_the_command_refuses_observe_without_the_extra_before_running(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], missing: str
) -> None:
    from spaceactors.cli.command import main

    monkeypatch.setitem(sys.modules, missing, None)
    code = main(["run", "trade-route", "--observe", "127.0.0.1:0", "--duration", "5"])
    assert code == 2
    out, err = capsys.readouterr()
    assert out == ""
    (line,) = err.splitlines()
    assert f"{missing} is not installed" in line
    assert "pip install 'spaceactors[observe]'" in line
