"""One Modbus connection (a TCP device or gateway, or an RS-485 line) shared by the devices on it.

Modbus RTU is half duplex with a single master: only one request may be on the wire at a time, and the
line must stay silent for 3.5 character times between frames (Modbus over serial line 1.02, section
2.5.1.1). A TCP gateway in front of an RS-485 line has the same constraint behind it. So every device on
a line goes through ``ModbusLine.read``, which serializes requests (a FIFO lock: no device can starve
another) and keeps the inter-frame gap. Each request has its own timeout, and pymodbus's retries are off:
retrying is the device poller's decision (with backoff), so one dead device costs one timeout per
backoff period, not the line's whole schedule.
"""

from __future__ import annotations

import asyncio
import logging
import termios
from dataclasses import dataclass
from typing import Literal

from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException
from pymodbus.framer import FramerType

from drivers.modbus.errors import EXCEPTION_NAMES, BadAnswer, DeviceException, DeviceUnreachable
from drivers.modbus.plan import ReadRequest
from drivers.modbus.profile import RegisterTable

log = logging.getLogger(__name__)

#: Exception codes with which a TCP gateway says the device behind it did not answer (spec section 7):
#: the device is unreachable, exactly as if it had been asked directly and stayed silent.
GATEWAY_NO_ANSWER = frozenset({10, 11})


@dataclass(frozen=True, slots=True, kw_only=True)
class LineSettings:
    """How to reach a line: Modbus TCP (host, port) or RTU (serial device and its parameters)."""

    name: str
    transport: Literal["tcp", "rtu"]
    host: str | None = None
    port: int = 502
    device: str | None = None  # serial port path, e.g. /dev/ttyUSB0
    baudrate: int = 9600
    parity: Literal["N", "E", "O"] = "E"
    stopbits: int = 1
    timeout_s: float = 1.0
    #: Silence between two requests; None: 3.5 character times for RTU (at least 1.75 ms), 0 for TCP.
    gap_s: float | None = None

    @property
    def request_gap_s(self) -> float:
        """The silence kept after each request."""
        if self.gap_s is not None:
            return self.gap_s
        if self.transport == "tcp":
            return 0.0
        # 11 bits per character (start, 8 data, parity or 2nd stop, stop); fixed 1.75 ms above 19200 baud.
        return max(3.5 * 11 / self.baudrate, 0.00175)

    def describe(self) -> str:
        """Where the line is, for logs."""
        return f"tcp://{self.host}:{self.port}" if self.transport == "tcp" else f"rtu:{self.device}@{self.baudrate}"


class ModbusLine:
    """A shared Modbus connection with serialized, gap-separated, time-limited requests."""

    def __init__(self, settings: LineSettings) -> None:
        self.settings = settings
        self._lock = asyncio.Lock()
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient
        if settings.transport == "tcp":
            if not settings.host:
                raise ValueError(f"line {settings.name}: tcp needs a host")
            # reconnect_delay=0: pymodbus does not reconnect by itself; read() connects when needed.
            self._client = AsyncModbusTcpClient(
                settings.host, port=settings.port, timeout=settings.timeout_s, retries=0, reconnect_delay=0
            )
        else:
            if not settings.device:
                raise ValueError(f"line {settings.name}: rtu needs a serial device")
            self._client = AsyncModbusSerialClient(
                settings.device,
                framer=FramerType.RTU,
                baudrate=settings.baudrate,
                parity=settings.parity,
                stopbits=settings.stopbits,
                timeout=settings.timeout_s,
                retries=0,
                reconnect_delay=0,
            )
        self.requests = 0
        self.failures = 0
        self._calls = {
            RegisterTable.COIL: self._client.read_coils,
            RegisterTable.DISCRETE_INPUT: self._client.read_discrete_inputs,
            RegisterTable.INPUT: self._client.read_input_registers,
            RegisterTable.HOLDING: self._client.read_holding_registers,
        }

    async def _ensure_connected(self) -> None:
        if self._client.connected:
            return
        try:
            connected = await asyncio.wait_for(self._client.connect(), self.settings.timeout_s + 1)
        except (TimeoutError, OSError, ModbusException, termios.error) as exc:
            # termios.error: a serial port that refuses a setting (pyserial lets it through unmapped).
            raise DeviceUnreachable(f"{self.settings.describe()}: cannot connect: {exc!r}") from exc
        if not connected:
            raise DeviceUnreachable(f"{self.settings.describe()}: cannot connect")

    async def read(self, unit: int, request: ReadRequest) -> list[int]:
        """Registers (or bits as 0/1) of ``request`` from device ``unit``; typed errors on failure."""
        async with self._lock:
            self.requests += 1
            try:
                await self._ensure_connected()
                return await self._read(unit, request)
            except BaseException:
                self.failures += 1
                raise
            finally:
                # The silence is kept after every request, answered or not, before the next one starts.
                if self.settings.request_gap_s:
                    await asyncio.sleep(self.settings.request_gap_s)

    async def _read(self, unit: int, request: ReadRequest) -> list[int]:
        try:
            # pymodbus times the request out itself; this bound is a backstop. asyncio.timeout, unlike
            # wait_for on Python 3.11, costs no extra task per request (bench/modbus_poll.py).
            async with asyncio.timeout(self.settings.timeout_s + 0.5):
                response = await self._calls[request.table](request.address, count=request.count, device_id=unit)
        except TimeoutError as exc:
            raise DeviceUnreachable(f"unit {unit} {request}: no answer within {self.settings.timeout_s} s") from exc
        except ModbusException as exc:
            # pymodbus raises ModbusIOException for a missing answer and ConnectionException for a lost
            # link; both mean the device cannot be read now.
            raise DeviceUnreachable(f"unit {unit} {request}: {exc}") from exc
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            what = f"unit {unit} {request}"
            if code in GATEWAY_NO_ANSWER:
                raise DeviceUnreachable(f"{what}: the gateway answered exception {code} ({EXCEPTION_NAMES[code]})")
            raise DeviceException(code, what)
        values = [int(bit) for bit in response.bits] if request.table.is_bits else list(response.registers)
        if len(values) < request.count:
            raise BadAnswer(f"unit {unit} {request}: answered {len(values)} values")
        return values[: request.count]  # bits come padded to a multiple of 8

    async def aclose(self) -> None:
        """Close the connection."""
        self._client.close()
