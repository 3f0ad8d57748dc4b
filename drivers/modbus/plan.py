"""Merge a profile's points into as few read requests as the device allows.

Points of one table are sorted by address and merged while the merged read stays within the device's
maximum (registers or bits per request) and skips at most ``max_gap`` unused addresses. Bit points of
one register share its read.
"""

from __future__ import annotations

from dataclasses import dataclass

from drivers.modbus.profile import DeviceProfile, PointSpec, RegisterTable


@dataclass(frozen=True, slots=True, kw_only=True)
class ReadRequest:
    """One Modbus read: a table, a start address, a count, and the points it serves."""

    table: RegisterTable
    address: int
    count: int
    points: tuple[PointSpec, ...]

    def __str__(self) -> str:
        return f"read {self.table.value} {self.address}+{self.count}"


def plan_reads(profile: DeviceProfile) -> list[ReadRequest]:
    """The read requests that cover every point of ``profile``."""
    requests: list[ReadRequest] = []
    for table in RegisterTable:
        points = sorted((p for p in profile.points if p.table is table), key=lambda p: (p.address, p.end))
        limit = profile.max_bits_per_request if table.is_bits else profile.max_registers_per_request
        group: list[PointSpec] = []
        start = end = 0
        for point in points:
            if group and point.address - end <= profile.max_gap and max(end, point.end) - start <= limit:
                group.append(point)
                end = max(end, point.end)
                continue
            if group:
                requests.append(ReadRequest(table=table, address=start, count=end - start, points=tuple(group)))
            group, start, end = [point], point.address, point.end
        if group:
            requests.append(ReadRequest(table=table, address=start, count=end - start, points=tuple(group)))
    return requests
