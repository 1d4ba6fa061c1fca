"""The checkpoint-values benchmark does the work it times: it saves every ship and station of a
large-fleet run, and restores each to equal attributes. Timings are never asserted."""

from __future__ import annotations

from benchmarks import checkpoint_values
from spaceactors.scenarios import large_fleet


def test_the_benchmark_saves_and_restores_every_ship_and_station() -> None:
    got = checkpoint_values.measure(60, repeat=1)
    assert got.ships == 60
    assert got.actors == 60 + large_fleet.STATIONS
    assert got.restored_equal == got.actors
    assert got.encoded_bytes > 100 * got.actors  # each holds a real record, not an empty shell
    assert got.save_ships.cpu > 0
    assert got.restore_all.cpu > 0
