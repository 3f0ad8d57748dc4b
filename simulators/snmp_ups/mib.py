"""The simulated UPS's MIB: values by NUT metric, stored as the vendor encodes them, served to pysnmp.

``UpsMib`` holds every OID of one profile (``drivers/snmp_ups/profiles``) as the card would: runtime in
minutes for UPS-MIB, TimeTicks for APC, tenths where the MIB says so, enumerations and alarm table rows
for ``ups.status``. It is also the command responder's MIB instrumentation (``read_variables`` and
``read_next_variables``, what ``pysnmp.entity.rfc3413.cmdrsp`` calls), so GET, GETNEXT and GETBULK
all read the same sorted table.
"""

from __future__ import annotations

import bisect
import time
from collections.abc import Iterable
from typing import Any

from pysnmp.proto import rfc1902, rfc1905

from drivers.snmp_ups.profile import MibProfile, Oid, PointSpec, SmiType, StatusSpec
from drivers.snmp_ups.status import format_status, parse_status
from simulators.errors import PointValueError, UnknownPointError
from simulators.points import Value

SYS_DESCR = (1, 3, 6, 1, 2, 1, 1, 1, 0)  # SNMPv2-MIB (RFC 3418)
SYS_OBJECT_ID = (1, 3, 6, 1, 2, 1, 1, 2, 0)
SYS_UPTIME = (1, 3, 6, 1, 2, 1, 1, 3, 0)
SYS_NAME = (1, 3, 6, 1, 2, 1, 1, 5, 0)
STATUS_METRIC = "ups.status"
ALARM_METRIC = "ups.alarm"
UNKNOWN = "unknown"  # the value that makes a point report its sentinel ("the card does not know")

#: What a freshly started simulated UPS reports: on line, charged, a third loaded.
DEFAULTS: dict[str, Value] = {
    "battery.charge": 100,
    "battery.runtime": 3600,
    "battery.voltage": 54.6,
    "ups.temperature": 25,
    "input.voltage": 230,
    "input.frequency": 50.0,
    "output.voltage": 230,
    "ups.load": 35,
}

_SMI_CLASSES: dict[SmiType, Any] = {
    SmiType.INTEGER: rfc1902.Integer32,
    SmiType.GAUGE: rfc1902.Gauge32,
    SmiType.COUNTER: rfc1902.Counter32,
    SmiType.TIMETICKS: rfc1902.TimeTicks,
    SmiType.STRING: rfc1902.OctetString,
    SmiType.OID: rfc1902.ObjectIdentifier,
}


def encode_point(point: PointSpec, value: Value) -> int | str | None:
    """A metric value as the card stores it (None: the point's 'unknown' sentinel, or no object at all)."""
    if point.type in (SmiType.STRING, SmiType.OID):
        return str(value)
    if value == UNKNOWN:
        return min(point.sentinels) if point.sentinels else None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PointValueError(f"{point.metric}: expected a number or {UNKNOWN!r}, not {value!r}")
    raw = round(value / point.scale)
    low, high = point.type.bounds
    if not low <= raw <= high or raw in point.sentinels:
        raise PointValueError(f"{point.metric}: {value} is out of range or a sentinel of {point.type.value}")
    return raw


def encode_status(spec: StatusSpec, tokens: frozenset[str]) -> int:
    """The value of one status OID that says most of ``tokens`` (its normal value when none applies)."""
    best, best_len = spec.normal, 0
    for code, state in spec.states:
        if state and set(state) <= tokens and len(state) > best_len:
            best, best_len = code, len(state)
    return best


class UpsMib:
    """One simulated UPS's OIDs, kept sorted for GETNEXT."""

    def __init__(self, profile: MibProfile, *, sys_object_id: Oid | None = None, serial: str = "SIM-0001") -> None:
        self.profile = profile
        self.started = time.monotonic()
        self._values: dict[Oid, Any] = {}
        self._order: list[Oid] = []
        self.status: frozenset[str] = frozenset({"OL"})
        self.extra_alarms: frozenset[str] = frozenset()
        self.metrics: dict[str, Value] = {}
        self._fill_system(sys_object_id or profile.sys_object_id, serial)
        for metric, value in DEFAULTS.items():
            if any(p.metric == metric for p in profile.points):
                self.set(metric, value)
        self.set(STATUS_METRIC, "OL CHRG" if self._knows("CHRG") else "OL")

    def _knows(self, token: str) -> bool:
        return any(token in state for spec in self.profile.status for _, state in spec.states)

    def _fill_system(self, sys_object_id: Oid, serial: str) -> None:
        self.set_raw(SYS_DESCR, f"cityhub simulated UPS ({self.profile.name})", SmiType.STRING)
        self.set_raw(SYS_OBJECT_ID, sys_object_id, SmiType.OID)
        self.set_raw(SYS_NAME, serial, SmiType.STRING)
        ident = {"maker": self.profile.maker or "cityhub", "model": f"SIM {self.profile.name}", "firmware": "1.0.0"}
        for key, oid in self.profile.ident:
            self.set_raw(oid, serial if key == "serial" else ident[key], SmiType.STRING)

    def set_raw(self, oid: Oid, value: int | str | Oid | None, type_: SmiType = SmiType.INTEGER) -> None:
        """Store a raw value (None removes the OID: the agent then answers noSuchObject)."""
        if value is None:
            if self._values.pop(oid, None) is not None:
                self._order.remove(oid)
            return
        if oid not in self._values:
            bisect.insort(self._order, oid)
        self._values[oid] = _SMI_CLASSES[type_](value)

    def set(self, metric: str, value: Value) -> frozenset[str] | None:
        """Report ``value`` for ``metric`` from now on; for ups.status returns the previous tokens."""
        if metric == STATUS_METRIC:
            return self._set_status(value)
        if metric == ALARM_METRIC and self.profile.alarms is not None:
            names = frozenset(str(value).split())
            known = {a.name for a in self.profile.alarms.known}
            if unknown := sorted(names - known):
                raise PointValueError(f"{ALARM_METRIC}: unknown alarms {unknown}; known: {' '.join(sorted(known))}")
            self.extra_alarms = names
            self._fill_alarms()
            self.metrics[metric] = value
            return None
        try:
            point = self.profile.point(metric)
        except KeyError:
            raise UnknownPointError(f"profile {self.profile.name} has no metric {metric!r}") from None
        self.set_raw(point.oid, encode_point(point, value), point.type)
        self.metrics[metric] = value
        return None

    def _set_status(self, value: Value) -> frozenset[str]:
        try:
            tokens = parse_status(str(value))
        except ValueError as exc:
            raise PointValueError(f"{STATUS_METRIC}: {exc}") from None
        previous, self.status = self.status, tokens
        for spec in self.profile.status:
            self.set_raw(spec.oid, encode_status(spec, tokens))
        self._fill_alarms()
        self.metrics[STATUS_METRIC] = format_status(tokens)
        return previous

    def active_alarms(self) -> list[Oid]:
        """The alarm OIDs in the table now: those the status implies, then the extra ones."""
        table = self.profile.alarms
        if table is None:
            return []
        firsts: dict[str, Oid] = {}  # the first alarm the profile lists for each token (LB: low, not depleted, battery)
        for alarm in table.known:
            if alarm.status is not None:
                firsts.setdefault(alarm.status, alarm.oid)
        implied = [oid for token, oid in firsts.items() if token in self.status]
        extra = [a.oid for a in table.known if a.name in self.extra_alarms and a.oid not in implied]
        return implied + extra

    def _fill_alarms(self) -> None:
        table = self.profile.alarms
        if table is None:
            return
        id_column = (*table.descr_column[:-1], 1)  # upsAlarmId / xupsAlarmID: the entry's first column
        for oid in [o for o in self._order if o[: len(id_column)] in (id_column, table.descr_column)]:
            self.set_raw(oid, None)
        active = self.active_alarms()
        for row, alarm in enumerate(active, start=1):
            self.set_raw((*id_column, row), row)
            self.set_raw((*table.descr_column, row), alarm, SmiType.OID)
        self.set_raw(table.count_oid, len(active), SmiType.GAUGE)

    def alarm_row(self, alarm: Oid) -> int:
        """The table row of an active alarm (0 when it is not in the table)."""
        active = self.active_alarms()
        return active.index(alarm) + 1 if alarm in active else 0

    def uptime(self) -> Any:
        """sysUpTime now, in TimeTicks."""
        return rfc1902.TimeTicks(int((time.monotonic() - self.started) * 100))

    def _get(self, oid: Oid) -> Any:
        if oid == SYS_UPTIME:
            return self.uptime()
        return self._values.get(oid, rfc1905.noSuchObject)

    def _next(self, oid: Oid) -> tuple[Oid, Any]:
        keys = sorted([*self._order, SYS_UPTIME]) if SYS_UPTIME not in self._values else self._order
        index = bisect.bisect_right(keys, oid)
        if index >= len(keys):
            return oid, rfc1905.endOfMibView
        found = keys[index]
        return found, self._get(found)

    # -- pysnmp's MIB instrumentation interface (called by the command responders) ------------------

    def read_variables(self, *var_binds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """GET: each OID's value, or noSuchObject."""
        return [(name, self._get(tuple(name))) for name, _ in var_binds]

    def read_next_variables(self, *var_binds: Any, **context: Any) -> list[tuple[Any, Any]]:
        """GETNEXT and GETBULK: the next OID in order, or endOfMibView."""
        answers = []
        for name, _ in var_binds:
            found, value = self._next(tuple(name))
            answers.append((rfc1902.ObjectName(found), value))
        return answers

    def metric_names(self) -> Iterable[str]:
        """Every metric the simulated UPS takes."""
        yield from (p.metric for p in self.profile.points)
        yield STATUS_METRIC
        if self.profile.alarms is not None:
            yield ALARM_METRIC
