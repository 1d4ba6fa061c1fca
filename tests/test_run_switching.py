"""``spaceactors run --observe`` switches threads every millisecond while the run goes (the
server answers from a thread of its own), and puts back the interval it found."""

from __future__ import annotations

import io
import logging
import sys

import pytest

from spaceactors.cli import main
from spaceactors.cli.switching import SWITCH_INTERVAL, quick_switching


def test_the_block_switches_quickly_only_when_observing() -> None:
    found = sys.getswitchinterval()
    with quick_switching(observing=False):
        assert sys.getswitchinterval() == found
    with quick_switching(observing=True):
        assert sys.getswitchinterval() == pytest.approx(SWITCH_INTERVAL)
    assert sys.getswitchinterval() == found


def test_the_interval_found_is_put_back_when_the_block_raises() -> None:
    found = sys.getswitchinterval()
    with pytest.raises(RuntimeError), quick_switching(observing=True):
        raise RuntimeError("the run failed")
    assert sys.getswitchinterval() == found


@pytest.mark.parametrize(("observe", "said"), [(["--observe", "127.0.0.1:0"], True), ([], False)])
def test_the_command_switches_quickly_while_it_observes(
    observe: list[str], said: bool, caplog: pytest.LogCaptureFixture
) -> None:
    found = sys.getswitchinterval()
    out, err = io.StringIO(), io.StringIO()
    argv = ["run", "trade-route", "--duration", "30", "--progress", "never", *observe]
    with caplog.at_level(logging.DEBUG, logger="spaceactors.cli"):
        code = main(argv, out, err)
    assert code in (0, 1), err.getvalue()
    assert ("threads switch every 0.001 s" in caplog.text) is said
    assert sys.getswitchinterval() == found
