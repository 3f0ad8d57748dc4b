"""Modbus device profiles: what a model of device exposes, as data (EdgeX's device profile idea).

A profile is a YAML file (``drivers/modbus/profiles/*.yaml``) validated on load; it names, for each
point, where it lives (register table and address), how it is encoded (data type, byte and word order,
scale and offset) and what it means (contract metric name, unit, telemetry or state). The same profile
drives the driver and the simulator, so the two cannot disagree silently. Which device is where, and
how often it is polled, belongs to the agent's inventory, not here.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Literal, Self

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from cityhub.contract.payloads import RESERVED_FAMILIES
from cityhub.yamlfile import describe_errors, load_yaml, read_text

PROFILE_DIR = Path(__file__).parent / "profiles"


class RegisterTable(StrEnum):
    """The four Modbus data tables (Modbus application protocol 1.1b3, section 4.3)."""

    COIL = "coil"
    DISCRETE_INPUT = "discrete_input"
    INPUT = "input"
    HOLDING = "holding"

    @property
    def is_bits(self) -> bool:
        """Coils and discrete inputs hold single bits; the other two hold 16-bit registers."""
        return self in (RegisterTable.COIL, RegisterTable.DISCRETE_INPUT)


class DataType(StrEnum):
    """How a point's value is encoded in its registers."""

    BOOL = "bool"  # a coil or discrete input
    BIT = "bit"  # one bit of a 16-bit register
    INT16 = "int16"
    UINT16 = "uint16"
    INT32 = "int32"
    UINT32 = "uint32"
    INT64 = "int64"
    UINT64 = "uint64"
    FLOAT32 = "float32"
    FLOAT64 = "float64"
    STRING = "string"


#: Registers each fixed-size type occupies (a string's length is given per point).
REGISTER_COUNT: dict[DataType, int] = {
    DataType.BOOL: 1,
    DataType.BIT: 1,
    DataType.INT16: 1,
    DataType.UINT16: 1,
    DataType.INT32: 2,
    DataType.UINT32: 2,
    DataType.INT64: 4,
    DataType.UINT64: 4,
    DataType.FLOAT32: 2,
    DataType.FLOAT64: 4,
}

Order = Literal["big", "little"]


class Role(StrEnum):
    """Telemetry is published every poll; a state raises a contract event when its value changes."""

    TELEMETRY = "telemetry"
    STATE = "state"


@dataclass(frozen=True, slots=True, kw_only=True)
class PointSpec:
    """One point of a profile."""

    metric: str
    table: RegisterTable
    address: int
    type: DataType
    count: int  # registers (or bits) it occupies
    bit: int | None = None
    byte_order: Order = "big"
    word_order: Order = "big"
    scale: float = 1.0
    offset: float = 0.0
    unit: str | None = None
    role: Role = Role.TELEMETRY
    event: str | None = None  # event type raised on change (role state)
    states: tuple[tuple[int, str], ...] = ()  # value -> label, for enumerated states

    @property
    def end(self) -> int:
        """The address after the point's last register."""
        return self.address + self.count


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceProfile:
    """A model of device: its points and the limits of its Modbus implementation."""

    name: str
    kind: str
    maker: str | None
    model: str | None
    description: str | None
    max_registers_per_request: int
    max_bits_per_request: int
    max_gap: int
    points: tuple[PointSpec, ...]

    def point(self, metric: str) -> PointSpec:
        """The point named ``metric``."""
        for point in self.points:
            if point.metric == metric:
                return point
        raise KeyError(f"profile {self.name!r} has no point {metric!r}")


class ProfileError(ValueError):
    """A profile file that cannot be used; the message names the file, the point and the field."""


# -- the YAML schema (pydantic, at the file boundary) --------------------------------------------------

_Metric = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,63}(\.[a-z0-9_]{1,64}){0,7}$")]


class _PointModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    metric: _Metric
    table: RegisterTable
    address: int = Field(ge=0, le=65_535)
    type: DataType
    bit: int | None = Field(default=None, ge=0, le=15)
    length: int | None = Field(default=None, ge=1, le=125, description="registers of a string")
    byte_order: Order | None = None
    word_order: Order | None = None
    scale: float = Field(default=1.0, allow_inf_nan=False)
    offset: float = Field(default=0.0, allow_inf_nan=False)
    unit: Annotated[str, Field(max_length=32)] | None = None
    role: Role = Role.TELEMETRY
    event: _Metric | None = None
    states: dict[int, Annotated[str, Field(min_length=1, max_length=64)]] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        problems = []
        if self.table.is_bits and self.type is not DataType.BOOL:
            problems.append(f"a {self.table.value} holds single bits: type must be bool, not {self.type.value}")
        if not self.table.is_bits and self.type is DataType.BOOL:
            problems.append(f"type bool needs a coil or discrete_input, not {self.table.value} (use type bit)")
        if (self.type is DataType.BIT) != (self.bit is not None):
            problems.append("bit (0-15) is required for type bit and only for it")
        if (self.type is DataType.STRING) != (self.length is not None):
            problems.append("length (registers) is required for type string and only for it")
        if self.type in (DataType.STRING, DataType.BOOL, DataType.BIT) and (self.scale, self.offset) != (1.0, 0.0):
            problems.append(f"scale and offset make no sense for type {self.type.value}")
        if self.role is Role.STATE and self.event is None:
            problems.append("a point with role state needs the event type it raises")
        if self.metric.partition(".")[0] in RESERVED_FAMILIES:
            problems.append(f"metric family {self.metric.partition('.')[0]!r} is reserved for the hub")
        if self.scale == 0:
            problems.append("scale must not be 0")
        if not problems and self.end > 65_536:
            problems.append(f"registers {self.address}-{self.end - 1} run past address 65535")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @property
    def count(self) -> int:
        if self.type is DataType.STRING:
            return self.length or 1  # a string without length is refused by _consistent
        return REGISTER_COUNT[self.type]

    @property
    def end(self) -> int:
        return self.address + self.count


class _ProfileModel(BaseModel):
    model_config = ConfigDict(extra="forbid")

    profile: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
    kind: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,31}$")]
    maker: str | None = None
    model: str | None = None
    description: str | None = None
    byte_order: Order = "big"
    word_order: Order = "big"
    # Modbus allows 125 registers and 2000 bits per read (spec 6.3, 6.4); many devices allow fewer.
    max_registers_per_request: int = Field(default=125, ge=1, le=125)
    max_bits_per_request: int = Field(default=2000, ge=1, le=2000)
    max_gap: int = Field(default=0, ge=0, le=100, description="unused registers a merged read may span")
    points: list[_PointModel] = Field(min_length=1)

    @model_validator(mode="after")
    def _no_overlaps_or_duplicates(self) -> Self:
        seen: set[str] = set()
        for point in self.points:
            if point.metric in seen:
                raise ValueError(f"metric {point.metric!r} appears twice")
            seen.add(point.metric)
        words = sorted((p.table.value, p.address, p.end, p.metric) for p in self.points if p.type is not DataType.BIT)
        for (table_a, _, end_a, name_a), (table_b, start_b, _, name_b) in itertools.pairwise(words):
            if table_a == table_b and start_b < end_a:
                raise ValueError(f"points {name_a!r} and {name_b!r} overlap in the {table_a} table")
        bits = [(p.table.value, p.address, p.bit) for p in self.points if p.type is DataType.BIT]
        for table, address, bit in sorted({b for b in bits if bits.count(b) > 1}):
            raise ValueError(f"two points use bit {bit} of {table} register {address}")
        too_long = [p.metric for p in self.points if p.count > self.max_registers_per_request]
        if too_long:
            raise ValueError(f"points longer than max_registers_per_request: {', '.join(too_long)}")
        return self

    def to_profile(self) -> DeviceProfile:
        points = tuple(
            PointSpec(
                metric=p.metric,
                table=p.table,
                address=p.address,
                type=p.type,
                count=p.count,
                bit=p.bit,
                byte_order=p.byte_order or self.byte_order,
                word_order=p.word_order or self.word_order,
                scale=p.scale,
                offset=p.offset,
                unit=p.unit,
                role=p.role,
                event=p.event,
                states=tuple(sorted(p.states.items())),
            )
            for p in self.points
        )
        return DeviceProfile(
            name=self.profile,
            kind=self.kind,
            maker=self.maker,
            model=self.model,
            description=self.description,
            max_registers_per_request=self.max_registers_per_request,
            max_bits_per_request=self.max_bits_per_request,
            max_gap=self.max_gap,
            points=points,
        )


def parse_profile(path: Path, text: str) -> DeviceProfile:
    """Validate a profile's YAML text; ``path`` names it in errors."""
    try:
        data = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ProfileError(f"{path}: not valid YAML: {exc}") from None
    try:
        return _ProfileModel.model_validate(data).to_profile()
    except ValidationError as exc:
        raise ProfileError(describe_errors(path, data, exc, {"points": ("point", "metric")})) from None


def load_profile(name_or_path: str | Path) -> DeviceProfile:
    """Load a shipped profile by name (``climate-controller``) or any profile file by path."""
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml"):
        path = PROFILE_DIR / f"{name_or_path}.yaml"
    shipped = sorted(p.stem for p in PROFILE_DIR.glob("*.yaml"))
    return parse_profile(path, read_text(path, ProfileError, what="profile", shipped=shipped))
