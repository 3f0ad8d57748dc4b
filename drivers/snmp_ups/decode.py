"""From the raw values of one poll to contract readings: scale, sentinels, status tokens, alarms.

A value the card does not have (noSuchObject) or marks unknown (a sentinel such as -1 or 65535 in an
integer that cannot be negative or that large) becomes a reading of quality ``bad`` with no value,
never a number a dashboard would plot as a real runtime of 65535 minutes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import cache

from cityhub.contract import MetricSpec, Quality, Reading
from drivers.snmp_ups.client import SnmpValue
from drivers.snmp_ups.profile import AlarmSpec, MibProfile, Oid, PointSpec, SmiType, format_oid
from drivers.snmp_ups.status import format_status

STATUS_METRIC = "ups.status"
ALARM_METRIC = "ups.alarm"
ALARM_COUNT_METRIC = "ups.alarm_count"


def decode_point(point: PointSpec, raw: SnmpValue) -> int | float | str | None:
    """A point's normalized value (None: missing or a sentinel)."""
    if raw is None:
        return None
    if point.type in (SmiType.STRING, SmiType.OID):
        return format_oid(raw) if isinstance(raw, tuple) else str(raw)
    if not isinstance(raw, int) or raw in point.sentinels:
        return None
    if float(point.scale).is_integer():
        return raw * int(point.scale)
    # round() drops binary noise (230.10000000000002) without hiding a real tenth or hundredth
    return round(raw * point.scale, 6)


@cache  # the agent compares a device's description after every poll: build it once per profile
def metric_specs(profile: MibProfile) -> tuple[MetricSpec, ...]:
    """Every metric a UPS of this profile reports, for its birth message."""
    specs = [
        MetricSpec(metric=p.metric, type=p.value_type, unit=p.unit, description=p.description) for p in profile.points
    ]
    specs.append(MetricSpec(metric=STATUS_METRIC, type="string", description="NUT status tokens, e.g. OB DISCHRG LB"))
    if profile.alarms is not None:
        specs.append(MetricSpec(metric=ALARM_METRIC, type="string", description="active alarms, space-separated"))
        specs.append(MetricSpec(metric=ALARM_COUNT_METRIC, type="int", description="alarms present"))
    return tuple(specs)


def poll_oids(profile: MibProfile) -> list[Oid]:
    """What one poll GETs: points, statuses, the alarm count (in this order)."""
    oids = [p.oid for p in profile.points] + [s.oid for s in profile.status]
    if profile.alarms is not None:
        oids.append(profile.alarms.count_oid)
    return list(dict.fromkeys(oids))


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """The UPS state one poll saw."""

    tokens: frozenset[str]
    quality: Quality
    alarms: tuple[str, ...] = ()  # names (or dotted OIDs of alarms the profile does not know)
    other_alarms: frozenset[str] = frozenset()  # names of known alarms without a status token


def status_of(profile: MibProfile, values: Mapping[Oid, SnmpValue], alarm_oids: list[Oid]) -> Status:
    """Tokens from the status OIDs and the alarm table; quality uncertain when some status OID is missing."""
    tokens: set[str] = set()
    missing = 0
    for spec in profile.status:
        raw = values.get(spec.oid)
        found = spec.tokens(raw) if isinstance(raw, int) else None
        if found is None:
            missing += 1
        else:
            tokens.update(found)
    names: list[str] = []
    others: set[str] = set()
    for oid in alarm_oids:
        alarm: AlarmSpec | None = profile.alarms.alarm(oid) if profile.alarms else None
        names.append(alarm.name if alarm else format_oid(oid))
        if alarm is not None and alarm.status is not None:
            tokens.add(alarm.status)
        elif alarm is not None:
            others.add(alarm.name)
    if "OB" in tokens:
        tokens.discard("OL")  # an alarm saying "on battery" outranks a stale output source
    if missing == len(profile.status) and not alarm_oids and profile.status:
        quality = Quality.BAD
    else:
        quality = Quality.UNCERTAIN if missing else Quality.GOOD
    return Status(tokens=frozenset(tokens), quality=quality, alarms=tuple(names), other_alarms=frozenset(others))


def readings_of(
    profile: MibProfile, values: Mapping[Oid, SnmpValue], status: Status, ts_ms: int, alarms_read: bool
) -> list[Reading]:
    """The readings of one poll."""
    readings = []
    for point in profile.points:
        value = decode_point(point, values.get(point.oid))
        quality = Quality.GOOD if value is not None else Quality.BAD
        readings.append(Reading(metric=point.metric, value=value, unit=point.unit, ts=ts_ms, quality=quality))
    value = format_status(status.tokens) if status.quality is not Quality.BAD else None
    readings.append(Reading(metric=STATUS_METRIC, value=value, ts=ts_ms, quality=status.quality))
    if profile.alarms is not None:
        count = values.get(profile.alarms.count_oid)
        good = isinstance(count, int) and count >= 0
        readings.append(
            Reading(
                metric=ALARM_COUNT_METRIC,
                value=count if good else None,
                ts=ts_ms,
                quality=Quality.GOOD if good else Quality.BAD,
            )
        )
        readings.append(
            Reading(
                metric=ALARM_METRIC,
                value=" ".join(status.alarms) if alarms_read else None,
                ts=ts_ms,
                quality=Quality.GOOD if alarms_read else Quality.BAD,
            )
        )
    return readings


def bad_readings(profile: MibProfile | None, ts_ms: int) -> list[Reading]:
    """Every metric with quality bad (the device did not answer)."""
    if profile is None:
        return [Reading(metric=STATUS_METRIC, ts=ts_ms, quality=Quality.BAD)]
    return [Reading(metric=m.metric, unit=m.unit, ts=ts_ms, quality=Quality.BAD) for m in metric_specs(profile)]
