"""The engines of `benchmarks.peers` that are not Trio-based: pykka and thespian.

Both are plain synchronous code (no ``trio.run``). Each loader imports its package when called
and raises `ImportError` when it is not installed.
"""

from __future__ import annotations

import importlib.metadata
import threading
from typing import Any

from benchmarks.counting import Read
from benchmarks.peers_trio import Engine, Sample, Stopwatch

PYKKA_SPAWN = 1_000
"""pykka's ThreadingActor is one OS thread per actor: its spawn runs at most this many."""

PYKKA_ASK = 5_000
"""A pykka ask is a round trip between two threads: its ask runs at most this many."""


def pykka() -> Engine:
    """pykka's ThreadingActor: ``ref.tell`` and ``ref.ask``; each actor is a thread."""
    import pykka

    class Counter(pykka.ThreadingActor):
        def __init__(self) -> None:
            super().__init__()
            self.count = 0

        def on_receive(self, message: object) -> object:
            if type(message) is Read:
                return self.count
            self.count += 1
            return None

    class Echo(pykka.ThreadingActor):
        def on_receive(self, message: object) -> object:
            return message

    class Idle(pykka.ThreadingActor):
        def __init__(self, ready: threading.Semaphore) -> None:
            super().__init__()
            self.ready = ready

        def on_start(self) -> None:
            self.ready.release()

    def tell(n: int) -> Sample:
        ref = Counter.start()
        try:
            send = ref.tell
            watch = Stopwatch()
            for i in range(n):
                send(i)
            count = ref.ask(Read(), block=True)
            wall, cpu = watch.read()
        finally:
            ref.stop()
        return Sample(wall, cpu, count)

    def ask(n: int) -> Sample:
        ref = Echo.start()
        try:
            call = ref.ask
            count = 0
            watch = Stopwatch()
            for i in range(n):
                count += call(i) == i
            wall, cpu = watch.read()
        finally:
            ref.stop()
        return Sample(wall, cpu, count)

    def spawn(n: int) -> Sample:
        ready = threading.Semaphore(0)
        try:
            watch = Stopwatch()
            refs = [Idle.start(ready) for _ in range(n)]
            for _ in refs:  # every actor ran on_start in its own thread
                ready.acquire()
            wall, cpu = watch.read()
            count = sum(ref.is_alive() for ref in refs)
        finally:
            stopping = Stopwatch()
            pykka.ActorRegistry.stop_all()
        teardown_wall, teardown_cpu = stopping.read()
        return Sample(wall, cpu, count, teardown_wall, teardown_cpu)

    return Engine(
        "pykka",
        importlib.metadata.version("pykka"),
        tell=tell,
        ask=ask,
        spawn=spawn,
        limits={"ask": PYKKA_ASK, "spawn": PYKKA_SPAWN},
        note="ThreadingActor: one thread per actor",
    )


THESPIAN_BASE = "simpleSystemBase"
"""thespian's in-process base: every actor runs in the caller's thread, a send is handled
before ``tell`` or ``ask`` returns. Its other bases put actors in processes or threads
behind sockets, and are a different (much slower) thing to measure."""


def thespian() -> Engine:
    """thespian's ``ActorSystem(simpleSystemBase)``: ``tell``, ``ask``, ``createActor``."""
    from thespian.actors import Actor, ActorExitRequest, ActorSystem

    class Counter(Actor):  # type: ignore[misc]
        count = 0

        def receiveMessage(self, message: object, sender: Any) -> None:
            if type(message) is Read:
                self.send(sender, self.count)
            elif type(message) is int:
                self.count += 1

    class Echo(Actor):  # type: ignore[misc]
        def receiveMessage(self, message: object, sender: Any) -> None:
            if type(message) is int:
                self.send(sender, message)

    class Idle(Actor):  # type: ignore[misc]
        def receiveMessage(self, message: object, sender: Any) -> None:
            pass

    def open_system() -> Any:
        return ActorSystem(THESPIAN_BASE, transientUnique=True)

    def tell(n: int) -> Sample:
        system = open_system()
        try:
            address = system.createActor(Counter)
            send = system.tell
            watch = Stopwatch()
            for i in range(n):
                send(address, i)
            count: int = system.ask(address, Read(), 10)
            wall, cpu = watch.read()
        finally:
            system.shutdown()
        return Sample(wall, cpu, count)

    def ask(n: int) -> Sample:
        system = open_system()
        try:
            address = system.createActor(Echo)
            call = system.ask
            count = 0
            watch = Stopwatch()
            for i in range(n):
                count += call(address, i, 10) == i
            wall, cpu = watch.read()
        finally:
            system.shutdown()
        return Sample(wall, cpu, count)

    def spawn(n: int) -> Sample:
        system = open_system()
        try:
            watch = Stopwatch()
            addresses = [system.createActor(Idle) for _ in range(n)]
            wall, cpu = watch.read()
            count = len({address.addressDetails for address in addresses})  # distinct
            stopping = Stopwatch()
            for address in addresses:  # shutdown alone would drop them without a stop
                system.tell(address, ActorExitRequest())
        finally:
            system.shutdown()
        teardown_wall, teardown_cpu = stopping.read()
        return Sample(wall, cpu, count, teardown_wall, teardown_cpu)

    return Engine(
        "thespian",
        importlib.metadata.version("thespian"),
        tell=tell,
        ask=ask,
        spawn=spawn,
        limits={},
        note=f"{THESPIAN_BASE}: every actor in the caller's thread",
    )
