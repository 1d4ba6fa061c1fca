"""A supervised service that fails before it has started: `StartFailed`, as an actor's
`on_start` (OTP: ``start_child`` answers ``{error, Reason}``), never "stopped while starting"."""

from __future__ import annotations

import pytest
import trio
import trio.testing

import spaceactors as sa


async def _broken(task_status: trio.TaskStatus[None]) -> None:
    raise OSError("port 7 refused")


async def test_a_service_that_raises_before_it_started_fails_to_start_saying_why(
    virtual_clock: trio.testing.MockClock,
) -> None:
    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("svc")
        with pytest.raises(sa.StartFailed, match=r"service 'broken' failed to start: .*port 7"):
            await sup.start_child(sa.ServiceSpec("broken", _broken))
        assert sup.which_children() == []  # nothing kept
        with pytest.raises(sa.StartFailed, match="port 7"):
            await system.spawn_supervisor("static", children=[sa.ServiceSpec("b", _broken)])


async def test_a_restart_whose_start_fails_counts_against_the_intensity(
    virtual_clock: trio.testing.MockClock,
) -> None:
    starts = 0

    async def flaky(task_status: trio.TaskStatus[None]) -> None:
        nonlocal starts
        starts += 1
        if starts > 1:
            raise OSError("gone")  # every restart fails before it starts
        task_status.started()
        await trio.sleep(1)
        raise RuntimeError("crash")

    async with sa.open_system() as system:
        sup = await system.spawn_supervisor("svc", max_restarts=2, within=60)
        await sup.start_child(sa.ServiceSpec("flaky", flaky))
        await trio.sleep(5)
        assert 2 <= starts <= 4  # bounded by the intensity, not a spin
        assert not any(row.running for row in sup.which_children())
