"""A Modbus TCP or RTU server that simulates devices described by the driver's profiles.

One server hosts one or more units (a TCP device or gateway, or an RS-485 line with several devices),
each with its own profile::

    sim = ModbusSimulator({1: load_profile("climate-controller"), 2: load_profile("energy-meter")})
    async with sim:                                   # TCP on 127.0.0.1, a free port
        sim.set(1, "climate.supply_air_temperature", 18.5)
        sim.set(1, "climate.alarm.high_temperature", True)   # other bits of register 20 stay as they are
        ...connect a client to 127.0.0.1:sim.port...
        sim.set_fault(2, FaultMode.SILENT)            # unit 2 stops answering (timeout tests)
        sim.set_fault(2, FaultMode.EXCEPTION, code=4) # unit 2 answers exception 4 to everything
        sim.clear_fault(2)

Built on pymodbus's current server API (3.10+): a ``SimDevice`` per unit, whose ``SimData`` blocks cover
exactly the addresses the profile maps, so pymodbus answers any other register with exception 02 ILLEGAL
DATA ADDRESS. The values themselves live in a ``DeviceMemory`` per unit (see ``store.py``); the
``SimDevice`` action copies them into pymodbus's block on each request and takes client writes back.

Three pymodbus hooks, each for one reason:

* ``custom_pdu``: pymodbus checks coils and discrete inputs per 16-bit word, not per bit, so the read
  and write requests are subclassed to check the exact range against the profile first (all eight
  standard read/write function codes, for one rule everywhere) and to answer unknown units quickly.
* ``action``: the per-request callback that keeps pymodbus's block and ``DeviceMemory`` in step.
* ``trace_packet``: faults rewrite the outgoing frame (see ``faults.py``); an RTU frame for a unit the
  line does not host is dropped, as on a real line where nobody answers.
"""

from __future__ import annotations

import asyncio
import logging
import termios
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import Literal, Self

from pymodbus.constants import ExcCodes
from pymodbus.datastore import ModbusServerContext
from pymodbus.framer import FramerType
from pymodbus.pdu import ExceptionResponse, ModbusPDU
from pymodbus.pdu.bit_message import (
    ReadCoilsRequest,
    ReadDiscreteInputsRequest,
    WriteMultipleCoilsRequest,
    WriteSingleCoilRequest,
)
from pymodbus.pdu.register_message import (
    ReadHoldingRegistersRequest,
    ReadInputRegistersRequest,
    WriteMultipleRegistersRequest,
    WriteSingleRegisterRequest,
)
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType as SimType
from pymodbus.simulator import SimData, SimDevice

from drivers.modbus.codec import Value
from drivers.modbus.profile import DeviceProfile, RegisterTable
from simulators.modbus.errors import SimConfigError, TransportError, UnknownPointError
from simulators.modbus.faults import NO_FAULT, ExceptionCode, Fault, FaultMode, Framing, apply_fault, unit_of
from simulators.modbus.store import DeviceMemory

log = logging.getLogger(__name__)

#: The table each function code works on (Modbus application protocol 1.1b3, section 6).
FUNCTION_TABLES: dict[int, RegisterTable] = {
    1: RegisterTable.COIL,
    5: RegisterTable.COIL,
    15: RegisterTable.COIL,
    2: RegisterTable.DISCRETE_INPUT,
    4: RegisterTable.INPUT,
    3: RegisterTable.HOLDING,
    6: RegisterTable.HOLDING,
    16: RegisterTable.HOLDING,
    22: RegisterTable.HOLDING,
    23: RegisterTable.HOLDING,
}

#: The request classes checked against the profile, and whether they write.
_CHECKED_REQUESTS: tuple[tuple[type[ModbusPDU], bool], ...] = (
    (ReadCoilsRequest, False),
    (ReadDiscreteInputsRequest, False),
    (ReadHoldingRegistersRequest, False),
    (ReadInputRegistersRequest, False),
    (WriteSingleCoilRequest, True),
    (WriteMultipleCoilsRequest, True),
    (WriteSingleRegisterRequest, True),
    (WriteMultipleRegistersRequest, True),
)

# pymodbus's SimDevice tuple order: coils, discrete inputs, holding registers, input registers.
_SIM_TABLES = (RegisterTable.COIL, RegisterTable.DISCRETE_INPUT, RegisterTable.HOLDING, RegisterTable.INPUT)

Checker = Callable[[int, RegisterTable, int, int], ExcCodes | None]
SimAction = Callable[[int, int, int, int, list[int], list[int] | list[bool] | None], Awaitable[ExcCodes | None]]


@dataclass(frozen=True, slots=True, kw_only=True)
class TcpEndpoint:
    """Modbus TCP on ``host``:``port``; port 0 picks a free port (read it from ``ModbusSimulator.port``)."""

    host: str = "127.0.0.1"
    port: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class RtuEndpoint:
    """Modbus RTU on a serial port (a real one, or one end of ``pty.PtyLink``)."""

    path: str
    baudrate: int = 19200
    parity: Literal["N", "E", "O"] = "E"  # 8E1 is the Modbus RTU default (serial line 1.02, 2.5.1)
    stopbits: int = 1


Endpoint = TcpEndpoint | RtuEndpoint


def _checked_requests(check: Checker) -> list[type[ModbusPDU]]:
    """Subclasses of the standard read/write requests that ask ``check`` before touching the datastore."""
    classes: list[type[ModbusPDU]] = []
    for base, writes in _CHECKED_REQUESTS:

        async def datastore_update(
            self: ModbusPDU,
            context: ModbusServerContext,
            device_id: int,
            base: type[ModbusPDU] = base,
            writes: bool = writes,
        ) -> ModbusPDU:
            count = max(len(self.bits), len(self.registers), 1) if writes else self.count
            code = check(device_id, FUNCTION_TABLES[self.function_code], self.address, count)
            if code is not None:
                return ExceptionResponse(self.function_code, code)
            return await base.datastore_update(self, context, device_id)

        classes.append(type(f"Checked{base.__name__}", (base,), {"datastore_update": datastore_update}))
    return classes


def _sim_blocks(memory: DeviceMemory, table: RegisterTable) -> list[SimData]:
    """pymodbus blocks covering exactly the addresses the device answers in ``table``."""
    if table.is_bits:
        blocks = [
            SimData(start, count=end - start, values=False, datatype=SimType.BITS) for start, end in memory.spans[table]
        ]
        # pymodbus needs at least one block per table; the checked requests refuse these addresses anyway.
        return blocks or [SimData(0, count=1, values=False, datatype=SimType.BITS)]
    blocks = [
        SimData(start, count=end - start, values=0, datatype=SimType.REGISTERS) for start, end in memory.spans[table]
    ]
    return blocks or [SimData(0, count=1, datatype=SimType.INVALID)]


class ModbusSimulator:
    """Simulated Modbus devices (unit id -> profile) behind one TCP endpoint or RTU line."""

    def __init__(self, devices: Mapping[int, DeviceProfile], endpoint: Endpoint | None = None) -> None:
        if not devices:
            raise SimConfigError("a simulator needs at least one device")
        bad = [unit for unit in devices if not 1 <= unit <= 247]
        if bad:
            raise SimConfigError(f"unit ids must be 1-247 (0 is broadcast), got {bad}")
        self.endpoint: Endpoint = endpoint or TcpEndpoint()
        self.framing = Framing.RTU if isinstance(self.endpoint, RtuEndpoint) else Framing.TCP
        self.memories: dict[int, DeviceMemory] = {unit: DeviceMemory(profile) for unit, profile in devices.items()}
        self._faults: dict[int, Fault] = {}
        self._server: ModbusTcpServer | ModbusSerialServer | None = None
        self._port: int | None = None

    # -- values ----------------------------------------------------------------------------------

    def memory(self, unit: int) -> DeviceMemory:
        """The memory of ``unit``."""
        try:
            return self.memories[unit]
        except KeyError:
            raise UnknownPointError(f"no unit {unit} here; units: {sorted(self.memories)}") from None

    def set(self, unit: int, metric: str, value: Value) -> None:
        """Set a point's value (raises PointValueError when the point cannot hold it)."""
        self.memory(unit).set(metric, value)

    def get(self, unit: int, metric: str) -> Value:
        """A point's current value, as the driver would decode it."""
        return self.memory(unit).get(metric)

    # -- faults ----------------------------------------------------------------------------------

    def set_fault(self, unit: int, mode: FaultMode, *, code: int = ExceptionCode.SERVER_DEVICE_BUSY) -> None:
        """Make ``unit`` misbehave on every request until ``clear_fault`` (see ``faults.py``)."""
        self.memory(unit)
        self._faults[unit] = Fault(mode=mode, code=code)
        log.info("unit %d: fault %s", unit, mode.value if mode is not FaultMode.EXCEPTION else f"exception {code}")

    def clear_fault(self, unit: int) -> None:
        """Make ``unit`` answer normally again."""
        if self._faults.pop(unit, None) is not None:
            log.info("unit %d: fault cleared", unit)

    def fault(self, unit: int) -> Fault:
        """The current fault of ``unit``."""
        return self._faults.get(unit, NO_FAULT)

    # -- the server ------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The TCP port the server listens on (the bound one when asked for port 0)."""
        if self._port is None:
            raise RuntimeError("the simulator is not listening on TCP (start it first)")
        return self._port

    def describe(self) -> str:
        """Where the simulator listens, for logs: ``tcp://127.0.0.1:5020`` or ``rtu:/dev/pts/4``."""
        if isinstance(self.endpoint, RtuEndpoint):
            return f"rtu:{self.endpoint.path}@{self.endpoint.baudrate}"
        return f"tcp://{self.endpoint.host}:{self._port if self._port is not None else self.endpoint.port}"

    async def start(self, timeout_s: float = 10.0) -> None:
        """Listen; raises TransportError when the port cannot be opened."""
        if self._server is not None:
            raise RuntimeError("the simulator is already running")
        devices = [self._sim_device(unit, memory) for unit, memory in sorted(self.memories.items())]
        server = self._make_server(devices)
        try:
            await asyncio.wait_for(server.serve_forever(background=True), timeout_s)
        except (RuntimeError, OSError, TimeoutError, termios.error) as exc:
            # termios.error is not an OSError: pyserial raises it when the port refuses a setting
            # (Linux pseudo-terminals refuse parity E and O: use parity N on a PtyLink).
            server.close()
            raise TransportError(f"{self.describe()}: cannot listen: {exc!r}") from exc
        self._server = server
        if isinstance(self.endpoint, TcpEndpoint):
            sockets: Sequence[object] = getattr(server.transport, "sockets", ())
            self._port = int(sockets[0].getsockname()[1]) if sockets else self.endpoint.port  # type: ignore[attr-defined]
        units = ", ".join(f"{unit}={m.profile.name}" for unit, m in sorted(self.memories.items()))
        log.info("modbus simulator on %s: units %s", self.describe(), units)

    async def stop(self) -> None:
        """Stop listening and drop the connections."""
        server, self._server = self._server, None
        if server is not None:
            await server.shutdown()  # type: ignore[no-untyped-call]
            self._port = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def _make_server(self, devices: list[SimDevice]) -> ModbusTcpServer | ModbusSerialServer:
        custom = _checked_requests(self._check)
        if isinstance(self.endpoint, TcpEndpoint):
            return ModbusTcpServer(
                devices, address=(self.endpoint.host, self.endpoint.port), trace_packet=self._trace, custom_pdu=custom
            )
        return ModbusSerialServer(
            devices,
            framer=FramerType.RTU,
            port=self.endpoint.path,
            baudrate=self.endpoint.baudrate,
            parity=self.endpoint.parity,
            stopbits=self.endpoint.stopbits,
            trace_packet=self._trace,
            custom_pdu=custom,
        )

    def _sim_device(self, unit: int, memory: DeviceMemory) -> SimDevice:
        blocks = tuple(_sim_blocks(memory, table) for table in _SIM_TABLES)
        return SimDevice(unit, simdata=blocks, use_bit_addressing=True, action=self._action(memory))  # type: ignore[arg-type]

    def _check(self, unit: int, table: RegisterTable, address: int, count: int) -> ExcCodes | None:
        memory = self.memories.get(unit)
        if memory is None:
            return ExcCodes.GATEWAY_NO_RESPONSE
        return None if memory.covers(table, address, count) else ExcCodes.ILLEGAL_ADDRESS

    @staticmethod
    def _action(memory: DeviceMemory) -> SimAction:
        async def action(
            function_code: int,
            start_address: int,
            address: int,
            count: int,
            registers: list[int],
            set_values: list[int] | list[bool] | None,
        ) -> ExcCodes | None:
            table = FUNCTION_TABLES.get(function_code)
            if table is None:
                return ExcCodes.ILLEGAL_FUNCTION
            if set_values is not None:
                memory.write(table, address, [int(value) for value in set_values])
            if table.is_bits:
                # Bits are packed 16 to a register, bit 0 first; start_address and count are in registers.
                first = address // 16
                for index in range(first, first + count):
                    bits = memory.read(table, index * 16, 16)
                    registers[index - start_address] = sum(bit << n for n, bit in enumerate(bits))
            else:
                registers[address - start_address : address - start_address + count] = memory.read(
                    table, address, count
                )
            return None

        return action

    def _trace(self, sending: bool, frame: bytes) -> bytes:
        if not sending:
            return frame
        unit = unit_of(frame, self.framing)
        if unit is None:
            return frame
        if unit not in self.memories:
            # Nobody answers for an absent unit on a serial line; a TCP gateway answers exception 0x0B.
            if self.framing is Framing.RTU:
                return b""
            return apply_fault(frame, self.framing, Fault(mode=FaultMode.EXCEPTION, code=ExcCodes.GATEWAY_NO_RESPONSE))
        return apply_fault(frame, self.framing, self._faults.get(unit, NO_FAULT))
