"""``/metrics``: the engine's counters in Prometheus' text format, labelled by actor kind.

A custom prometheus-client collector reads a `Snapshot` taken at scrape time: nothing is
counted for Prometheus on the hot path (the runtime's own integer counters are the source), and
no label is ever an actor instance (10,000 ships are one ``kind="Ship"``).
"""

from __future__ import annotations

import math
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import Collector

from spaceactors.lifecycle import Tally
from spaceactors.observe.model import Snapshot
from spaceactors.observe.tree import KindCounts

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

SIM_COUNTERS = {
    "ship_updates": "Ship position updates the world made.",
    "dockings": "Ships that docked at a station.",
    "trades": "Trades made at station markets.",
    "rescues": "Ships in distress that a rescuer reached.",
    "distress_calls": "Distress calls made.",
    "ticks": "World ticks.",
}


class SnapshotCollector(Collector):
    """The metrics of one `Snapshot` (a fresh collector per scrape)."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.snapshot = snapshot

    def collect(self) -> Iterator[Metric]:
        snap = self.snapshot
        live, retired = snap.kinds, snap.retired
        gone = KindCounts(0, 0, 0, 0, 0)
        none = Tally()
        by_kind = {  # kind -> [actors, handled, restarts, crashes, depth]; counters never fall
            kind: [
                counts.actors,
                counts.handled + tally.handled,
                counts.restarts + tally.restarts,
                counts.crashes + tally.crashes,
                counts.mailbox_depth,
            ]
            for kind in sorted(live.keys() | retired.keys())
            for counts, tally in [(live.get(kind, gone), retired.get(kind, none))]
        }

        def family(
            kind: type[CounterMetricFamily | GaugeMetricFamily], name: str, doc: str, index: int
        ) -> Metric:
            metric = kind(name, doc, labels=["kind"])
            for actor_kind, counts in by_kind.items():
                metric.add_metric([actor_kind], counts[index])
            return metric

        yield family(GaugeMetricFamily, "spaceactors_actors", "Actors in the tree, by kind.", 0)
        yield family(
            CounterMetricFamily,
            "spaceactors_messages_handled",
            "Messages actors handled to the end, by kind.",
            1,
        )
        yield family(
            CounterMetricFamily, "spaceactors_restarts", "Restarts by supervisors, by kind.", 2
        )
        yield family(
            CounterMetricFamily,
            "spaceactors_crashes",
            "Incarnations that ended with an error (failed restarts included), by kind.",
            3,
        )
        yield family(
            GaugeMetricFamily,
            "spaceactors_mailbox_depth",
            "Messages waiting in mailboxes now, summed by kind.",
            4,
        )
        letters = CounterMetricFamily(
            "spaceactors_dead_letters", "Dead letters recorded, by reason.", labels=["reason"]
        )
        for reason, n in sorted(snap.dead_letters_by_reason.items()):
            letters.add_metric([reason], n)
        yield letters
        for key, doc in (
            ("sent", "Reliable messages sent."),
            ("acknowledged", "Reliable messages acknowledged."),
            ("retries", "Reliable retransmissions."),
            ("failures", "Reliable messages that failed after their last retry."),
            ("duplicates_suppressed", "Reliable copies handled once only."),
        ):
            yield CounterMetricFamily(f"spaceactors_reliable_{key}", doc, value=snap.reliable[key])
        yield GaugeMetricFamily(
            "spaceactors_reliable_pending",
            "Reliable messages awaiting acknowledgement.",
            value=snap.reliable["pending"],
        )
        delivered = CounterMetricFamily(
            "spaceactors_router_deliveries",
            "Deliveries through the router, by message type.",
            labels=["message_type"],
        )
        for message_type, n in sorted(snap.delivered_by_type.items()):
            delivered.add_metric([message_type], n)
        yield delivered
        for key, doc in (
            ("failed_deliveries", "Router sends that raised (unknown or stopped target...)."),
            ("dropped", "Deliveries dropped under the drop_newest policy."),
            ("publishes_without_subscribers", "Publishes that reached nobody."),
        ):
            yield CounterMetricFamily(f"spaceactors_router_{key}", doc, value=snap.router[key])
        yield GaugeMetricFamily(
            "spaceactors_clock_paused", "1 while the run's clock is paused.", value=snap.paused
        )
        if snap.speed is not None:
            yield GaugeMetricFamily(
                "spaceactors_speed_factor",
                "Simulated seconds per real second (wall clock runs only).",
                value=snap.speed,
            )
        yield GaugeMetricFamily(
            "spaceactors_sim_time_seconds",
            "Simulated time since the run (or the system) started.",
            value=snap.sim_time,
        )
        yield from _sim(snap)


def _sim(snap: Snapshot) -> Iterator[Metric]:
    if snap.sim is None:
        return
    for key, doc in SIM_COUNTERS.items():
        value = snap.sim.get(key)
        if value is not None and math.isfinite(value):
            yield CounterMetricFamily(f"spaceactors_sim_{key}", doc, value=value)


def exposition(snapshot: Snapshot) -> bytes:
    """The Prometheus text of `snapshot`."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(SnapshotCollector(snapshot))
    return generate_latest(registry)
