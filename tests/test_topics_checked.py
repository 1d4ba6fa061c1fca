"""`check_topic` remembers the topics it found valid: what it remembers never lets an invalid
topic through, a pattern stays a pattern, and the memory is bounded."""

from __future__ import annotations

import pytest

import spaceactors as sa
from spaceactors import topics
from spaceactors.topics import check_topic


def test_a_valid_topic_is_valid_again_and_an_invalid_one_refused_each_time() -> None:
    assert check_topic("market.belt.ceres", pattern=False) == "market.belt.ceres"
    assert check_topic("market.belt.ceres", pattern=False) == "market.belt.ceres"
    for _ in range(2):
        with pytest.raises(sa.InvalidTopic, match="parts must be non-empty"):
            check_topic("market..ceres", pattern=False)


def test_a_pattern_remembered_is_still_no_topic() -> None:
    assert check_topic("market.*", pattern=True) == "market.*"
    with pytest.raises(sa.InvalidTopic, match="a wildcard may only end a subscription"):
        check_topic("market.*", pattern=False)


def test_what_is_not_a_string_is_refused_though_its_text_was_valid() -> None:
    check_topic("7", pattern=False)
    with pytest.raises(sa.InvalidTopic):
        check_topic(7, pattern=False)


def test_the_memory_is_bounded() -> None:
    for index in range(topics._CHECKED + 10):
        check_topic(f"ship.{index}", pattern=False)
    assert len(topics._checked) <= topics._CHECKED
