"""A virtual serial cable made of pseudo-terminals, to run Modbus RTU without hardware.

``os.openpty()`` gives a pair: a master end (a file descriptor only) and a slave end with a path
(``/dev/pts/N``, from ``os.ttyname``). pymodbus opens serial ports through pyserial, which needs a
path, for the server as for the client, so one pair is not enough: the master has no path to open.
``PtyLink`` therefore opens two pairs, puts both slave ends in raw mode (``tty.setraw``: no echo, no
line editing, every byte passed as is), and copies bytes between the two masters, as ``socat -d -d
pty,raw,echo=0 pty,raw,echo=0`` does. The simulator serves RTU on ``server_path``, the client opens
``client_path``::

    async with PtyLink() as link, ModbusSimulator(devices, RtuEndpoint(path=link.server_path)):
        client = AsyncModbusSerialClient(link.client_path, ...)

The link keeps its own descriptors of both slave ends open, so either side may close and reopen its
port without the other seeing a hang-up. Linux and other POSIX systems only.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import tty
from types import TracebackType
from typing import Self

log = logging.getLogger(__name__)

_CHUNK = 4096


class _Pipe:
    """Copies bytes from one master to the other; non-blocking, buffering what cannot be written yet."""

    def __init__(self, loop: asyncio.AbstractEventLoop, source: int, sink: int) -> None:
        self.loop = loop
        self.source = source
        self.sink = sink
        self.pending = b""
        self.copied = 0

    def start(self) -> None:
        self.loop.add_reader(self.source, self._readable)

    def stop(self) -> None:
        self.loop.remove_reader(self.source)
        self.loop.remove_writer(self.sink)

    def _readable(self) -> None:
        error: OSError | None = None
        try:
            data = os.read(self.source, _CHUNK)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            data, error = b"", exc
        if not data:
            # EIO (or end of file): the slave side is gone for good. The link holds its own descriptor of
            # each slave, so this only happens after close(); stop reading rather than spin.
            log.warning("pty link: reading fd %d failed (%s); the link stops", self.source, error or "end of file")
            self.loop.remove_reader(self.source)
            return
        self.pending += data
        self._writable()

    def _writable(self) -> None:
        try:
            written = os.write(self.sink, self.pending) if self.pending else 0
        except (BlockingIOError, InterruptedError):
            written = 0
        self.copied += written
        self.pending = self.pending[written:]
        if self.pending:
            self.loop.add_writer(self.sink, self._writable)
        else:
            self.loop.remove_writer(self.sink)


class PtyLink:
    """Two pseudo-terminals joined back to back: a null-modem cable between two serial port paths."""

    def __init__(self) -> None:
        self._fds: list[int] = []
        self._pipes: list[_Pipe] = []
        self.server_path = ""
        self.client_path = ""

    def open(self) -> None:
        """Create the pair of pseudo-terminals and start copying between them (needs a running loop)."""
        loop = asyncio.get_running_loop()
        try:
            master_a, slave_a = os.openpty()
            self._fds += [master_a, slave_a]
            master_b, slave_b = os.openpty()
            self._fds += [master_b, slave_b]
            for slave in (slave_a, slave_b):
                tty.setraw(slave)
            for master in (master_a, master_b):
                os.set_blocking(master, False)
            self.server_path, self.client_path = os.ttyname(slave_a), os.ttyname(slave_b)
        except OSError:
            self.close()
            raise
        self._pipes = [_Pipe(loop, master_a, master_b), _Pipe(loop, master_b, master_a)]
        for pipe in self._pipes:
            pipe.start()
        log.debug("pty link %s <-> %s", self.server_path, self.client_path)

    def close(self) -> None:
        """Stop copying and close every descriptor."""
        for pipe in self._pipes:
            pipe.stop()
        self._pipes = []
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds = []

    @property
    def bytes_copied(self) -> int:
        """Bytes carried so far, both directions."""
        return sum(pipe.copied for pipe in self._pipes)

    async def __aenter__(self) -> Self:
        self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
