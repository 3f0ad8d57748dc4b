"""Per-device sequence tracking: drop replayed duplicates early, count gaps.

Exactly-once storage does not rest on this: the hub writes idempotently (a reading's series and source
timestamp are its key), so a duplicate that slips through overwrites itself. This window saves the
write, and the gap counter tells operators that a device lost messages.

The window is an anti-replay bitmap as in IPsec (RFC 4303, section 3.4.3): the highest sequence seen
in the device's current boot and a bitmap of the ``window`` sequences below it. A sequence below the
window cannot be classified and is accepted (its write is idempotent anyway), so that a message is
never dropped by mistake, for instance one redelivered to this hub by a stopped peer in a shared
subscription.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


class Verdict(Enum):
    """What to do with a message, by its sequence number."""

    NEW = "new"
    DUPLICATE = "duplicate"


@dataclass(slots=True)
class _DeviceWindow:
    boot: int
    highest: int
    seen: int  # bit i set: sequence (highest - i) was seen


@dataclass(frozen=True, slots=True)
class Observation:
    """The verdict on one message and how many sequence numbers were skipped before it."""

    verdict: Verdict
    gap: int = 0


class SequenceTracker:
    """Anti-replay windows for every device."""

    def __init__(self, window: int) -> None:
        self._window = window
        self._mask = (1 << window) - 1 if window else 0
        self._devices: dict[tuple[str, str], _DeviceWindow] = {}

    def observe(self, site: str, device: str, boot: int, seq: int) -> Observation:
        """Classify one message and record it as seen."""
        if not self._window:
            return Observation(Verdict.NEW)
        key = (site, device)
        state = self._devices.get(key)
        if state is None or boot > state.boot:
            self._devices[key] = _DeviceWindow(boot=boot, highest=seq, seen=1)
            return Observation(Verdict.NEW)
        if boot < state.boot:
            return Observation(Verdict.NEW)  # replay of an earlier boot: cannot classify, write it
        if seq > state.highest:
            shift = seq - state.highest
            gap = shift - 1
            state.seen = ((state.seen << shift) | 1) & self._mask if shift < self._window else 1
            state.highest = seq
            return Observation(Verdict.NEW, gap=gap)
        offset = state.highest - seq
        if offset >= self._window:
            return Observation(Verdict.NEW)
        bit = 1 << offset
        if state.seen & bit:
            return Observation(Verdict.DUPLICATE)
        state.seen |= bit
        return Observation(Verdict.NEW)
