"""The anti-replay window: duplicates dropped, gaps counted, nothing dropped that was not seen."""

from __future__ import annotations

import pytest

from hub.sequence import SequenceTracker, Verdict


def verdicts(tracker: SequenceTracker, stream: list[tuple[int, int]]) -> list[tuple[str, int]]:
    return [(o.verdict.value, o.gap) for o in (tracker.observe("s", "d", boot, seq) for boot, seq in stream)]


def test_in_order_stream_is_new_without_gaps() -> None:
    assert verdicts(SequenceTracker(64), [(1, n) for n in range(1, 6)]) == [("new", 0)] * 5


def test_replay_after_reconnect_is_dropped() -> None:
    tracker = SequenceTracker(64)
    verdicts(tracker, [(1, n) for n in range(1, 11)])
    assert verdicts(tracker, [(1, 8), (1, 9), (1, 10), (1, 11)]) == [
        ("duplicate", 0),
        ("duplicate", 0),
        ("duplicate", 0),
        ("new", 0),
    ]


def test_gap_is_counted_and_a_late_arrival_still_stored() -> None:
    tracker = SequenceTracker(64)
    assert verdicts(tracker, [(1, 1), (1, 5), (1, 3), (1, 3)]) == [("new", 0), ("new", 3), ("new", 0), ("duplicate", 0)]


def test_new_boot_resets_and_an_older_boot_is_never_dropped() -> None:
    tracker = SequenceTracker(64)
    verdicts(tracker, [(1, 1), (1, 2)])
    assert verdicts(tracker, [(2, 1), (1, 2), (1, 2)]) == [("new", 0), ("new", 0), ("new", 0)]


def test_below_the_window_is_accepted_because_it_cannot_be_classified() -> None:
    tracker = SequenceTracker(8)
    verdicts(tracker, [(1, 1), (1, 100)])
    assert tracker.observe("s", "d", 1, 1).verdict is Verdict.NEW


def test_devices_are_independent() -> None:
    tracker = SequenceTracker(8)
    tracker.observe("s", "a", 1, 1)
    assert tracker.observe("s", "b", 1, 1).verdict is Verdict.NEW
    assert tracker.observe("other-site", "a", 1, 1).verdict is Verdict.NEW


@pytest.mark.parametrize("window", [0])
def test_window_zero_disables_dropping(window: int) -> None:
    tracker = SequenceTracker(window)
    assert verdicts(tracker, [(1, 1), (1, 1)]) == [("new", 0), ("new", 0)]
