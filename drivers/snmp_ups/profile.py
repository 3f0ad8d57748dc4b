"""MIB profiles: what a family of UPS network cards exposes over SNMP, as data (EdgeX's device profile idea).

A profile is a YAML file (``drivers/snmp_ups/profiles/*.yaml``) validated on load. It names the
sysObjectID prefixes it matches, and for each normalized metric (NUT's variable names, ``battery.charge``)
the OID that holds it, its SMI type, its scale (minutes, TimeTicks, tenths) and the sentinel values that
mean "unknown"; the status OIDs and the NUT ``ups.status`` tokens each of their values means; the alarm
table; and the traps the card sends. The driver and the simulator read the same files, so they cannot
disagree silently. Which UPS is where belongs to the agent's inventory, not here.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from functools import cache
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from cityhub.contract.payloads import RESERVED_FAMILIES
from cityhub.yamlfile import describe_errors, load_yaml, read_text
from drivers.snmp_ups.errors import MibProfileError

PROFILE_DIR = Path(__file__).parent / "profiles"
#: The profile used when no other profile's sysObjectID prefix matches (UPS-MIB is the common ground).
FALLBACK_PROFILE = "ups-rfc1628"

#: A numeric OID as a tuple of arcs.
Oid = tuple[int, ...]

#: NUT's ups.status tokens, in the order NUT prints them (docs/new-drivers.txt, "Status data").
STATUS_TOKENS = (
    "OL", "OB", "LB", "HB", "RB", "CHRG", "DISCHRG", "BYPASS", "CAL", "OFF", "OVER", "TRIM", "BOOST", "FSD",
)  # fmt: skip


class SmiType(StrEnum):
    """The SMIv2 types a profile's OIDs hold (RFC 2578 section 7.1)."""

    INTEGER = "integer"  # Integer32 / INTEGER
    GAUGE = "gauge"  # Gauge32
    COUNTER = "counter"  # Counter32
    TIMETICKS = "timeticks"  # hundredths of a second
    STRING = "string"  # OCTET STRING / DisplayString
    OID = "oid"  # OBJECT IDENTIFIER

    @property
    def bounds(self) -> tuple[int, int]:
        """The raw values the type can carry."""
        if self is SmiType.INTEGER:
            return (-(2**31), 2**31 - 1)
        return (0, 2**32 - 1)


def parse_oid(text: str) -> Oid:
    """``"1.3.6.1.2.1.33"`` (a leading dot allowed) as a tuple of arcs; raises ValueError."""
    arcs = text.strip().lstrip(".").split(".")
    if len(arcs) < 2 or not all(arc.isdigit() for arc in arcs):
        raise ValueError(f"not a numeric OID: {text!r}")
    return tuple(int(arc) for arc in arcs)


def format_oid(oid: Oid) -> str:
    """The dotted form of an OID."""
    return ".".join(map(str, oid))


@dataclass(frozen=True, slots=True, kw_only=True)
class PointSpec:
    """One normalized metric and where it lives."""

    metric: str
    oid: Oid
    type: SmiType
    scale: float = 1.0
    unit: str | None = None
    sentinels: frozenset[int] = frozenset()
    description: str | None = None

    @property
    def value_type(self) -> Literal["int", "float", "string"]:
        """The contract type of its readings."""
        if self.type in (SmiType.STRING, SmiType.OID):
            return "string"
        return "int" if float(self.scale).is_integer() else "float"


@dataclass(frozen=True, slots=True, kw_only=True)
class StatusSpec:
    """An OID whose enumerated value contributes NUT tokens to ``ups.status``."""

    name: str
    oid: Oid
    states: tuple[tuple[int, tuple[str, ...]], ...]  # value -> tokens
    normal: int  # the value that means "nothing to report" (what a simulator shows by default)
    description: str | None = None

    def tokens(self, value: int) -> tuple[str, ...] | None:
        """The tokens a value means (None: a value the MIB does not define)."""
        for code, tokens in self.states:
            if code == value:
                return tokens
        return None


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmSpec:
    """A well-known alarm: its OID (the value of an alarm table's description column) and meaning."""

    oid: Oid
    name: str
    status: str | None = None  # the ups.status token it means, if any


@dataclass(frozen=True, slots=True, kw_only=True)
class AlarmTable:
    """The card's alarm table: a count, and a column of alarm OIDs walked with GETBULK."""

    count_oid: Oid
    descr_column: Oid
    known: tuple[AlarmSpec, ...]

    def alarm(self, oid: Oid) -> AlarmSpec | None:
        """The well-known alarm with this OID, if any."""
        return next((a for a in self.known if a.oid == oid), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class TrapSpec:
    """A notification the card sends, and what it changes."""

    oid: Oid
    name: str
    set: tuple[str, ...] = ()  # ups.status tokens it turns on
    clear: tuple[str, ...] = ()  # tokens it turns off
    event: str | None = None  # an event of its own (e.g. ups.test_completed)
    alarm: Literal["added", "removed"] | None = None  # carries an alarm table entry (RFC 1628 upsTraps)


@dataclass(frozen=True, slots=True, kw_only=True)
class MibProfile:
    """A family of UPS cards: how to find it, and its points, statuses, alarms and traps."""

    name: str
    maker: str | None
    description: str | None
    sys_object_ids: tuple[Oid, ...]
    sys_object_id: Oid  # what the simulator reports
    max_oids_per_request: int
    ident: tuple[tuple[str, Oid], ...]  # model, serial, firmware, maker -> OID
    points: tuple[PointSpec, ...]
    status: tuple[StatusSpec, ...]
    alarms: AlarmTable | None
    traps: tuple[TrapSpec, ...]

    def point(self, metric: str) -> PointSpec:
        """The point named ``metric``."""
        for point in self.points:
            if point.metric == metric:
                return point
        raise KeyError(f"profile {self.name!r} has no point {metric!r}")

    def trap(self, oid: Oid) -> TrapSpec | None:
        """The trap with this snmpTrapOID, if the profile knows it."""
        return next((t for t in self.traps if t.oid == oid), None)

    def match_length(self, sys_object_id: Oid) -> int:
        """How many arcs of ``sys_object_id`` the profile's longest matching prefix covers (0: none)."""
        return max((len(p) for p in self.sys_object_ids if sys_object_id[: len(p)] == p), default=0)


# -- the YAML schema (pydantic, at the file boundary) --------------------------------------------------

_Metric = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}(\.[a-z0-9_]{1,64}){0,7}$")]
_Name = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}$")]
_OidText = Annotated[str, Field(pattern=r"^\.?\d+(\.\d+)+$")]


def _tokens(text: str) -> tuple[str, ...]:
    tokens = tuple(text.split())
    unknown = [t for t in tokens if t not in STATUS_TOKENS]
    if unknown:
        raise ValueError(f"unknown ups.status tokens {unknown}; known: {' '.join(STATUS_TOKENS)}")
    return tokens


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _PointModel(_Model):
    metric: _Metric
    oid: _OidText
    type: SmiType
    scale: float = Field(default=1.0, allow_inf_nan=False)
    unit: Annotated[str, Field(max_length=32)] | None = None
    sentinels: list[int] = Field(default_factory=list)
    description: str | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.scale == 0:
            raise ValueError("scale must not be 0")
        if self.type in (SmiType.STRING, SmiType.OID) and (self.scale != 1 or self.sentinels):
            raise ValueError(f"scale and sentinels make no sense for type {self.type.value}")
        if self.metric.partition(".")[0] in RESERVED_FAMILIES:
            raise ValueError(f"metric family {self.metric.partition('.')[0]!r} is reserved for the hub")
        return self


class _StatusModel(_Model):
    name: _Name
    oid: _OidText
    states: dict[int, str] = Field(min_length=1)
    normal: int | None = Field(default=None, description="default: the first value without tokens")
    description: str | None = None

    @field_validator("states")
    @classmethod
    def _known_tokens(cls, states: dict[int, str]) -> dict[int, str]:
        for text in states.values():
            _tokens(text)
        return states

    @model_validator(mode="after")
    def _normal_is_a_state(self) -> Self:
        if self.normal is not None and self.normal not in self.states:
            raise ValueError(f"normal {self.normal} is not one of the states")
        return self

    @property
    def normal_code(self) -> int:
        if self.normal is not None:
            return self.normal
        return next((code for code, text in self.states.items() if not text.split()), next(iter(self.states)))


class _AlarmModel(_Model):
    name: _Name
    status: str | None = None

    @field_validator("status")
    @classmethod
    def _one_token(cls, status: str | None) -> str | None:
        if status is not None and len(_tokens(status)) != 1:
            raise ValueError("an alarm means at most one ups.status token")
        return status


class _AlarmTableModel(_Model):
    count: _OidText
    descr_column: _OidText
    known: dict[_OidText, _AlarmModel] = Field(default_factory=dict)


class _TrapModel(_Model):
    oid: _OidText
    name: _Name
    set: str = ""
    clear: str = ""
    event: _Metric | None = None
    alarm: Literal["added", "removed"] | None = None

    @field_validator("set", "clear")
    @classmethod
    def _known_tokens(cls, text: str) -> str:
        _tokens(text)
        return text


class _ProfileModel(_Model):
    profile: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    maker: str | None = None
    description: str | None = None
    sys_object_ids: list[_OidText] = Field(default_factory=list)
    sys_object_id: _OidText | None = None
    # SNMP has no fixed limit on varbinds per PDU, cards do (and a UDP datagram does): 24 is safe.
    max_oids_per_request: int = Field(default=24, ge=1, le=128)
    ident: dict[Literal["model", "serial", "firmware", "maker"], _OidText] = Field(default_factory=dict)
    points: list[_PointModel] = Field(min_length=1)
    status: list[_StatusModel] = Field(default_factory=list)
    alarms: _AlarmTableModel | None = None
    traps: list[_TrapModel] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique(self) -> Self:
        metrics = [p.metric for p in self.points]
        if dupes := sorted({m for m in metrics if metrics.count(m) > 1}):
            raise ValueError(f"metrics appear twice: {', '.join(dupes)}")
        if {"ups.status", "ups.alarm", "ups.alarm_count"} & set(metrics):
            raise ValueError("ups.status, ups.alarm and ups.alarm_count come from status and alarms, not points")
        if not self.sys_object_ids and self.sys_object_id is None:
            raise ValueError("give sys_object_ids (the prefixes it matches) or sys_object_id (what it reports)")
        return self

    def to_profile(self) -> MibProfile:
        ids = tuple(parse_oid(p) for p in self.sys_object_ids)
        return MibProfile(
            name=self.profile,
            maker=self.maker,
            description=self.description,
            sys_object_ids=ids,
            sys_object_id=parse_oid(self.sys_object_id) if self.sys_object_id else ids[0],
            max_oids_per_request=self.max_oids_per_request,
            ident=tuple((key, parse_oid(oid)) for key, oid in self.ident.items()),
            points=tuple(
                PointSpec(
                    metric=p.metric,
                    oid=parse_oid(p.oid),
                    type=p.type,
                    scale=p.scale,
                    unit=p.unit,
                    sentinels=frozenset(p.sentinels),
                    description=p.description,
                )
                for p in self.points
            ),
            status=tuple(
                StatusSpec(
                    name=s.name,
                    oid=parse_oid(s.oid),
                    states=tuple((code, _tokens(text)) for code, text in s.states.items()),
                    normal=s.normal_code,
                    description=s.description,
                )
                for s in self.status
            ),
            alarms=self._alarm_table(),
            traps=tuple(
                TrapSpec(
                    oid=parse_oid(t.oid),
                    name=t.name,
                    set=_tokens(t.set),
                    clear=_tokens(t.clear),
                    event=t.event,
                    alarm=t.alarm,
                )
                for t in self.traps
            ),
        )

    def _alarm_table(self) -> AlarmTable | None:
        if self.alarms is None:
            return None
        return AlarmTable(
            count_oid=parse_oid(self.alarms.count),
            descr_column=parse_oid(self.alarms.descr_column),
            known=tuple(
                AlarmSpec(oid=parse_oid(oid), name=a.name, status=a.status) for oid, a in self.alarms.known.items()
            ),
        )


def parse_mib_profile(path: Path, text: str) -> MibProfile:
    """Validate a profile's YAML text; ``path`` names it in errors."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise MibProfileError(f"{path}: not valid YAML: {exc}") from None
    try:
        return _ProfileModel.model_validate(data).to_profile()
    except ValidationError as exc:
        named = {"points": ("points", "metric"), "status": ("status", "name"), "traps": ("traps", "name")}
        raise MibProfileError(describe_errors(path, data, exc, named)) from None


def shipped_profiles() -> list[str]:
    """The names of the profiles shipped in ``drivers/snmp_ups/profiles``."""
    return sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))


@cache
def _load_shipped(name: str) -> MibProfile:
    return _load_path(PROFILE_DIR / f"{name}.yaml")


def _load_path(path: Path) -> MibProfile:
    return parse_mib_profile(path, read_text(path, MibProfileError, what="profile", shipped=shipped_profiles()))


def load_mib_profile(name_or_path: str | Path) -> MibProfile:
    """A shipped profile by name (``ups-apc``) or any profile file by path (``.yaml``/``.yml``)."""
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml"):
        return _load_path(path)
    name = str(name_or_path)
    if name not in shipped_profiles():
        raise MibProfileError(f"no MIB profile named {name!r}; shipped profiles: {', '.join(shipped_profiles())}")
    return _load_shipped(name)


def select_profile(sys_object_id: Oid | None, profiles: list[MibProfile] | None = None) -> MibProfile:
    """The profile whose sysObjectID prefix matches longest; the standard UPS-MIB profile when none does."""
    candidates = profiles if profiles is not None else [load_mib_profile(n) for n in shipped_profiles()]
    if sys_object_id is not None:
        best = max(candidates, key=lambda p: p.match_length(sys_object_id), default=None)
        if best is not None and best.match_length(sys_object_id) > 0:
            return best
    return next((p for p in candidates if p.name == FALLBACK_PROFILE), None) or load_mib_profile(FALLBACK_PROFILE)
