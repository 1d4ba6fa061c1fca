"""The observation server's HTTP API (a Starlette app): ``/status``, ``/metrics``, ``/events``,
``/control/*`` and the dashboard at ``/`` (docs/observing.md, "HTTP API").

Every handler runs in the server's own Trio run. Reads (``/status``, ``/metrics``) are made
there too, while the run goes on (`model.take`: C-level copies, never waiting for the system's
longest step); what changes the system (``/control``) is done in the system's thread
(`Observer.in_system`), between two of its steps.
"""

from __future__ import annotations

import hmac
import json
import math
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import trio
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from spaceactors.clocks import RunControl
from spaceactors.observe import metrics, model
from spaceactors.observe.rates import Rates
from spaceactors.observe.server import SYSTEM_TIMEOUT, Observer, SystemGone
from spaceactors.observe.tree import Walks

DASHBOARD = Path(__file__).parent / "static" / "dashboard.html"
KEEPALIVE = 15.0
"""Real seconds between two keep-alive comments on an idle ``/events`` stream."""
STEP_WAIT = 2.0
"""Real seconds ``/control/step`` waits for the step to end before it answers."""


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def make_app(observer: Observer) -> Starlette:
    """The app serving `observer`'s system."""
    rates = Rates()
    walks = Walks()

    def authorized(request: Request) -> bool:
        token = observer.token
        if token is None:
            return True
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer":  # the scheme is case-insensitive (RFC 7235)
            given = given.strip()
        else:
            given = request.query_params.get("token", "")
        return hmac.compare_digest(given.encode(), token.encode())

    def refused() -> JSONResponse:
        return JSONResponse(
            {"error": "this needs the server's token: Authorization: Bearer TOKEN (or ?token=)"},
            status_code=401,
            headers={"WWW-Authenticate": "Bearer"},
        )

    async def snapshot() -> model.Snapshot:
        system, control = observer.system, observer.control
        assert system is not None
        assert control is not None
        if observer.closing:
            raise SystemGone("the system is closing")
        # Read in the server's own thread, while the run goes on: waiting for the system's
        # thread would wait for its longest step (a 10,000-ship world tick), and answers must
        # come within 100 ms. Each count read is exact; the document is not one instant.
        return model.take(system, control, walks)

    async def status(request: Request) -> Response:
        params = request.query_params
        try:
            limit = _integer(params.get("limit"), "limit", model.DEFAULT_LIMIT, model.MAX_LIMIT)
        except ValueError as exc:
            return _error(400, str(exc))
        sort = params.get("sort")
        if sort is not None and sort not in model.SORTS:
            return _error(400, f"sort must be one of {', '.join(model.SORTS)}, got {sort!r}")
        try:
            snap = await snapshot()
        except SystemGone as exc:
            return _error(503, str(exc))
        return JSONResponse(
            model.status(snap, limit=limit, sort=sort, rates=rates.update(snap.now, snap.tree))
        )

    async def metrics_page(request: Request) -> Response:
        try:
            snap = await snapshot()
        except SystemGone as exc:
            return _error(503, str(exc))
        return Response(metrics.exposition(snap), media_type=metrics.CONTENT_TYPE)

    async def events(request: Request) -> Response:
        if not authorized(request):
            return refused()
        last = request.headers.get("last-event-id", "")
        seen = int(last) if last.isdigit() else observer.event_count
        return StreamingResponse(
            _stream(observer, seen),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    def control(action: Callable[[Request], Callable[[], object]]) -> Any:
        async def endpoint(request: Request) -> Response:
            if not authorized(request):
                return refused()
            origin = request.headers.get("origin")
            if origin is not None and urlsplit(origin).netloc != request.headers.get("host"):
                # A page of another site posting here (a plain cross-site form or fetch):
                # browsers send its Origin; only the dashboard's own page may steer the run.
                return _error(403, f"a page of {origin} may not steer this run")
            try:
                change = action(request)
                await observer.in_system(change)
            except ValueError as exc:
                return _error(400, str(exc))
            except RuntimeError as exc:
                return _error(409, str(exc))
            except SystemGone as exc:
                return _error(503, str(exc))
            if request.url.path.endswith("/step"):
                await _wait_for_pause(observer)
            try:
                return JSONResponse(await observer.in_system(lambda: _clock(observer)))
            except SystemGone as exc:
                return _error(503, str(exc))

        return endpoint

    def run_control() -> RunControl:
        assert observer.control is not None
        return observer.control

    def pause(request: Request) -> Callable[[], object]:
        return lambda: run_control().pause()

    def resume(request: Request) -> Callable[[], object]:
        return lambda: run_control().resume()

    def step(request: Request) -> Callable[[], object]:
        seconds = _number(request.query_params.get("seconds"), "seconds")
        return lambda: run_control().step(seconds)

    def speed(request: Request) -> Callable[[], object]:
        factor = _number(request.query_params.get("factor"), "factor")
        return lambda: run_control().set_speed(factor)

    async def dashboard(request: Request) -> Response:
        return FileResponse(DASHBOARD, media_type="text/html; charset=utf-8")

    return Starlette(
        middleware=[Middleware(TrustedHostMiddleware, allowed_hosts=observer.hosts)],
        routes=[
            Route("/", dashboard),
            Route("/status", status),
            Route("/metrics", metrics_page),
            Route("/events", events),
            Route("/control/pause", control(pause), methods=["POST"]),
            Route("/control/resume", control(resume), methods=["POST"]),
            Route("/control/step", control(step), methods=["POST"]),
            Route("/control/speed", control(speed), methods=["POST"]),
        ],
    )


def _clock(observer: Observer) -> dict[str, Any]:
    """What a control request answers (in the system's thread)."""
    system, control = observer.system, observer.control
    assert system is not None
    assert control is not None
    sim_time = model.sim_time(system, control.now())
    return {
        "paused": control.paused,
        "sim_time": sim_time if math.isfinite(sim_time) else None,
        "speed": control.speed,
    }


async def _wait_for_pause(observer: Observer) -> None:
    """Wait (a little) for a step to end, so the answer shows where it stopped."""
    control = observer.control
    assert control is not None
    with trio.move_on_after(STEP_WAIT):
        while not await observer.in_system(lambda: control.paused):  # noqa: ASYNC110
            await trio.sleep(0.005)  # polled: the step ends in the system's thread


async def _stream(observer: Observer, seen: int) -> AsyncIterator[str]:
    """The ``/events`` stream: events after number `seen`, until the server stops."""
    yield ": spaceactors lifecycle events\n\n"
    while not observer.closing:
        for number, event in observer.events_after(seen):
            seen = number
            data = json.dumps(event.to_json(), allow_nan=False, default=str)
            yield f"id: {number}\nevent: {event.kind}\ndata: {data}\n\n"
        with trio.move_on_after(KEEPALIVE) as idle:
            await observer.wait_for_events(seen)
        if idle.cancelled_caught:
            yield ": keep-alive\n\n"


def _number(text: str | None, name: str) -> float:
    if text is None:
        raise ValueError(f"{name} is missing: give ?{name}=NUMBER")
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{name} must be a number, got {text[:40]!r}") from None
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number, got {text[:40]!r}")
    return value


def _integer(text: str | None, name: str, default: int, high: int) -> int:
    if text is None:
        return default
    if not text.isdigit() or int(text) > high:
        raise ValueError(f"{name} must be an integer from 0 to {high}, got {text[:40]!r}")
    return int(text)


__all__ = ["SYSTEM_TIMEOUT", "make_app"]
