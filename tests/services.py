"""Real, private Mosquitto and InfluxDB 1.x server processes for tests.

Every server runs in its own working directory (config, data and logs live there), listens on
127.0.0.1 only, and is started in its own session (``start_new_session=True``) so that a Ctrl-C
aimed at the test runner does not reach it. Every started process is registered in a module
registry; :meth:`close` (and, as a last resort, an ``atexit`` hook) stops it, so no orphaned or
zombie process survives a test run.

Binaries are looked up in ``$CITYHUB_MOSQUITTO`` / ``$CITYHUB_INFLUXD`` first, then on ``PATH``,
then in the Debian locations ``/usr/sbin/mosquitto`` and ``/usr/bin/influxd``.
"""

from __future__ import annotations

import atexit
import base64
import contextlib
import hashlib
import http.client
import json
import os
import random
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.parse
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

__all__ = [
    "InfluxDBServer",
    "MosquittoServer",
    "MqttPeer",
    "SecureMosquittoServer",
    "dynsec_config",
    "find_dynsec_plugin",
    "find_influxd",
    "find_mosquitto",
    "free_port",
    "stop_all",
]

LOCALHOST = "127.0.0.1"

_port_lock = threading.Lock()
_handed_out_ports: set[int] = set()
_port_picker = random.Random()


def _ephemeral_low() -> int:
    """The start of the kernel's range for the source ports of outgoing connections (Linux's default if unreadable)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text(encoding="ascii").split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _udp_port_in_use(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return True
    return False


def free_port() -> int:
    """Return a port on 127.0.0.1 that is free right now, for TCP and for UDP.

    The port is drawn below the kernel's ephemeral range on purpose. A port from ``bind(0)`` is an
    ephemeral one: between this call and the server's ``listen``, any outgoing connection of the
    test (the hub's MQTT client, an agent's retry) may get it as its source port, and the server
    then fails with EADDRINUSE (CI saw exactly that). Ports outside the range are never handed out
    by the kernel on its own. Ports are not handed out twice by the same process, so two
    consecutive calls (e.g. the HTTP and the RPC port of one InfluxDB) never collide.
    """
    low = _ephemeral_low()
    # With an unusual range that starts low, there is no room below it: fall back to the whole range.
    first, last = (10000, low - 1) if low > 11000 else (1024, 65535)
    with _port_lock:
        for _ in range(1000):
            port = _port_picker.randint(first, last)
            if port not in _handed_out_ports and not _port_in_use(port) and not _udp_port_in_use(port):
                _handed_out_ports.add(port)
                return port
    raise RuntimeError(f"could not find a free port on {LOCALHOST} in {first}-{last}")


def _port_in_use(port: int) -> bool:
    """True if something is listening on (or otherwise holds) 127.0.0.1:port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR, as the servers themselves use: TIME_WAIT leftovers do not count as "in use".
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return True
    return False


def _find_binary(env_var: str, name: str, fallback: str) -> str | None:
    override = os.environ.get(env_var)
    if override:
        return override if os.access(override, os.X_OK) else None
    found = shutil.which(name)
    if found:
        return found
    return fallback if os.access(fallback, os.X_OK) else None


def find_mosquitto() -> str | None:
    """Path of the mosquitto binary, or None if it is not installed."""
    return _find_binary("CITYHUB_MOSQUITTO", "mosquitto", "/usr/sbin/mosquitto")


def find_influxd() -> str | None:
    """Path of the influxd (1.x) binary, or None if it is not installed."""
    return _find_binary("CITYHUB_INFLUXD", "influxd", "/usr/bin/influxd")


def _tail(path: Path, n: int) -> list[str]:
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data.decode("utf-8", errors="replace").splitlines()[-n:] if n > 0 else []


# --------------------------------------------------------------------------------------------------
# Process registry: every running server is in here until it has been stopped and reaped.

_registry_lock = threading.RLock()  # re-entrant: stop_all() may run in a signal handler
_registry: set[_ServerProcess] = set()


def _register(server: _ServerProcess) -> None:
    with _registry_lock:
        _registry.add(server)


def _unregister(server: _ServerProcess) -> None:
    with _registry_lock:
        _registry.discard(server)


def stop_all() -> None:
    """Kill every server process this module started and that is still registered."""
    with _registry_lock:
        servers = list(_registry)
    for server in servers:
        with contextlib.suppress(Exception):
            server.kill()


atexit.register(stop_all)

_sigterm_hook_installed = False


def _on_sigterm(signum: int, frame: object) -> None:
    # The servers run in their own sessions and would survive the runner: kill them first, then
    # die of SIGTERM as the default disposition would have.
    stop_all()
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)


def _install_sigterm_hook() -> None:
    """Kill our servers if the test runner gets SIGTERM (which skips atexit) and had no handler."""
    global _sigterm_hook_installed
    if _sigterm_hook_installed or threading.current_thread() is not threading.main_thread():
        return
    _sigterm_hook_installed = True
    if signal.getsignal(signal.SIGTERM) is signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _on_sigterm)


class _ServerProcess:
    """Common process management: spawn, wait until ready, stop/kill/restart, logs, registry."""

    name = "server"
    #: Files (relative to the working directory) whose tails :meth:`log_tail` shows.
    log_files: tuple[str, ...] = ()
    #: File (relative to the working directory) that receives the process' stdout and stderr.
    output_file = "output.log"

    def __init__(self, workdir: Path, *, start_timeout: float, stop_timeout: float) -> None:
        self.workdir = Path(workdir).resolve()
        if "\n" in str(self.workdir):
            raise ValueError(f"working directory must not contain a newline: {self.workdir!r}")
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.host = LOCALHOST
        self.start_timeout = start_timeout
        self.stop_timeout = stop_timeout
        self._proc: subprocess.Popen[bytes] | None = None
        self._ever_started = False

    # -- hooks for subclasses ---------------------------------------------------------------------

    def _binary(self) -> str:
        raise NotImplementedError

    def _command(self, binary: str) -> list[str]:
        raise NotImplementedError

    def _write_config(self) -> None:
        raise NotImplementedError

    def _ports(self) -> Sequence[int]:
        raise NotImplementedError

    def _repick_ports(self) -> bool:
        """Choose new ports if they were picked automatically; return False if they were not."""
        raise NotImplementedError

    def _is_ready(self) -> bool:
        raise NotImplementedError

    def _env(self) -> dict[str, str]:
        return dict(os.environ)

    # -- public API ---------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        """True while the server process is alive (a dead process is reaped on the way)."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """PID of the current process, or None if never started / stopped."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> None:
        """Spawn the server and wait until it serves; raise RuntimeError (with the log tail) if not."""
        if self.running:
            raise RuntimeError(f"{self.name} is already running (pid {self.pid})")
        self._reap()
        binary = self._binary()
        busy = [p for p in self._ports() if _port_in_use(p)]
        if busy and not self._ever_started and self._repick_ports():
            busy = [p for p in self._ports() if _port_in_use(p)]
        if busy:
            raise RuntimeError(f"{self.name}: port(s) {busy} on {self.host} already in use")
        self._write_config()
        output = self.workdir / self.output_file
        with output.open("ab") as out:
            out.write(f"---- {time.strftime('%Y-%m-%dT%H:%M:%S')} starting {self.name}\n".encode())
            out.flush()
            self._proc = subprocess.Popen(
                self._command(binary),
                cwd=self.workdir,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
                start_new_session=True,
            )
        _register(self)
        _install_sigterm_hook()
        self._ever_started = True
        deadline = time.monotonic() + self.start_timeout
        while True:
            rc = self._proc.poll()
            if rc is not None:
                self._reap()
                raise RuntimeError(f"{self.name} exited with status {rc} during startup\n{self.log_tail()}")
            if self._is_ready():
                # Make sure it is *our* process that answered, not a squatter on the port.
                if self._proc.poll() is None:
                    return
                continue
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"{self.name} was not ready within {self.start_timeout:g} s\n{self.log_tail()}")
            time.sleep(0.05)

    def stop(self) -> None:
        """Terminate gracefully (SIGTERM, lets the server save its state); SIGKILL after the timeout."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=self.stop_timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(proc)
        self._reap()

    def kill(self) -> None:
        """SIGKILL the server (simulates a crash: only what is already on disk survives)."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            self._kill_group(proc)
        self._reap()

    def restart(self) -> None:
        """Graceful stop, then start again on the same port(s) with the same data directory."""
        self.stop()
        self.start()

    def close(self) -> None:
        """Stop the server if it is running (idempotent)."""
        try:
            self.stop()
        finally:
            self._reap()

    def log_tail(self, n: int = 40) -> str:
        """The last ``n`` lines of each of the server's log files, with headers."""
        parts: list[str] = []
        for name in (*self.log_files, self.output_file):
            lines = _tail(self.workdir / name, n)
            if lines:
                parts.append(f"==> {self.workdir / name} <==")
                parts.extend(lines)
        return "\n".join(parts) if parts else f"(no {self.name} log output in {self.workdir})"

    def __enter__(self) -> Self:
        if not self.running:
            self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = f"pid {self.pid}" if self.running else "stopped"
        return f"<{type(self).__name__} {self.host}:{self._ports()} {state} in {self.workdir}>"

    # -- internals ----------------------------------------------------------------------------------

    def _kill_group(self, proc: subprocess.Popen[bytes]) -> None:
        # The server is a session (and process group) leader: kill the whole group.
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        proc.wait()

    def _reap(self) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            return  # still running: stays registered
        proc.wait()
        self._proc = None
        _unregister(self)


class MosquittoServer(_ServerProcess):
    """A private Mosquitto 2.x broker with anonymous access and on-disk persistence.

    Queues for offline persistent sessions are unlimited (``max_queued_messages 0``) and the
    in-memory database is saved every second (``autosave_interval 1``) and on SIGTERM.
    """

    name = "mosquitto"
    log_files = ("mosquitto.log",)
    output_file = "mosquitto.out"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_config: Sequence[str] | None = None,
        *,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(workdir, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self._auto_port = port is None
        self.port = free_port() if port is None else port
        self.extra_config = list(extra_config or [])
        for line in self.extra_config:
            if "\n" in line or "\r" in line:
                raise ValueError(f"extra config lines must be single lines: {line!r}")
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.db_path = self.workdir / "mosquitto.db"

    @property
    def url(self) -> str:
        return f"mqtt://{self.host}:{self.port}"

    def config_text(self) -> str:
        lines = [
            "# generated by tests/services.py",
            f"listener {self.port} {self.host}",
            *self._access_lines(),
            "persistence true",
            f"persistence_location {self.workdir}/",
            "persistence_file mosquitto.db",
            # Save the in-memory database every second (it is also saved on SIGTERM).
            "autosave_interval 1",
            # 0 = no limit: offline persistent sessions keep every QoS 1/2 message.
            "max_queued_messages 0",
            "max_queued_bytes 0",
            # 0 = no limit on in-flight outgoing QoS 1/2 messages.
            "max_inflight_messages 0",
            "persistent_client_expiration 1d",
            # As deploy/mosquitto/mosquitto.conf: no Nagle delay on alarms and alert notifications.
            "set_tcp_nodelay true",
            f"log_dest file {self.log_path}",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "log_timestamp true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if os.geteuid() == 0:
            # As root, mosquitto otherwise drops to the "mosquitto" user and then cannot write its
            # log and database into our (private, root-owned) working directory.
            lines.append("user root")
        lines.extend(self.extra_config)
        return "\n".join(lines) + "\n"

    def _access_lines(self) -> list[str]:
        """Who may connect and do what (anyone, anything); SecureMosquittoServer replaces this."""
        return ["allow_anonymous true"]

    def _binary(self) -> str:
        binary = find_mosquitto()
        if binary is None:
            raise RuntimeError(
                "mosquitto binary not found (set $CITYHUB_MOSQUITTO, or install the 'mosquitto' package)"
            )
        return binary

    def _command(self, binary: str) -> list[str]:
        return [binary, "-c", str(self.config_path)]

    def _write_config(self) -> None:
        self.config_path.write_text(self.config_text(), encoding="utf-8")

    def _ports(self) -> Sequence[int]:
        return (self.port,)

    def _repick_ports(self) -> bool:
        if not self._auto_port:
            return False
        self.port = free_port()
        return True

    def _is_ready(self) -> bool:
        try:
            with socket.create_connection((self.host, self.port), timeout=0.5):
                return True
        except OSError:
            return False


_DYNSEC_PLUGIN = "mosquitto_dynamic_security.so"
_DYNSEC_PLACES = ("/usr/lib/x86_64-linux-gnu", "/usr/lib/aarch64-linux-gnu", "/usr/lib", "/usr/local/lib")


def find_dynsec_plugin() -> str | None:
    """Path of Mosquitto's dynamic security plugin, or None if it is not installed.

    ``$CITYHUB_MOSQUITTO_DYNSEC`` first, then the Debian/Ubuntu multiarch and plain library
    directories, then whatever ``dpkg -L mosquitto`` lists.
    """
    override = os.environ.get("CITYHUB_MOSQUITTO_DYNSEC")
    if override:
        return override if os.path.isfile(override) else None
    for place in _DYNSEC_PLACES:
        candidate = Path(place) / _DYNSEC_PLUGIN
        if candidate.is_file():
            return str(candidate)
    try:
        listed = subprocess.run(
            ["dpkg", "-L", "mosquitto"], capture_output=True, text=True, timeout=10, check=False
        ).stdout.splitlines()
    except (OSError, subprocess.TimeoutExpired):
        return None
    return next((line for line in listed if line.endswith("/" + _DYNSEC_PLUGIN) and os.path.isfile(line)), None)


def _dynsec_client(username: str, password: str, rolename: str, iterations: int) -> dict[str, Any]:
    # The plugin's password format (plugins/dynamic-security/auth.c): PBKDF2-HMAC-SHA512 over a
    # 12-byte random salt, both base64; the same as `mosquitto_ctrl dynsec init` writes.
    salt = secrets.token_bytes(12)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode(), salt, iterations)
    return {
        "username": username,
        "textName": "Dynsec admin user",
        "password": base64.b64encode(digest).decode(),
        "salt": base64.b64encode(salt).decode(),
        "iterations": iterations,
        "roles": [{"rolename": rolename}],
    }


def dynsec_config(admin_username: str, admin_password: str, *, iterations: int = 101) -> dict[str, Any]:
    """The dynamic-security.json `mosquitto_ctrl dynsec init FILE USER PASSWORD` writes (mosquitto 2.0)."""
    acls = [
        ("publishClientSend", "$CONTROL/dynamic-security/#"),
        ("publishClientReceive", "$CONTROL/dynamic-security/#"),
        ("subscribePattern", "$CONTROL/dynamic-security/#"),
        ("publishClientReceive", "$SYS/#"),
        ("subscribePattern", "$SYS/#"),
        ("publishClientReceive", "#"),
        ("subscribePattern", "#"),
        ("unsubscribePattern", "#"),
    ]
    return {
        "clients": [_dynsec_client(admin_username, admin_password, "admin", iterations)],
        "roles": [{"rolename": "admin", "acls": [{"acltype": t, "topic": f, "allow": True} for t, f in acls]}],
        "defaultACLAccess": {
            "publishClientSend": False,
            "publishClientReceive": True,
            "subscribe": False,
            "unsubscribe": True,
        },
    }


class SecureMosquittoServer(MosquittoServer):
    """A private Mosquitto with the dynamic security plugin and no anonymous access.

    Only the admin exists at first (``admin_username`` / ``admin_password``, with the role
    ``mosquitto_ctrl dynsec init`` gives it); ``dynamic-security.json`` in the working directory keeps
    every change over restarts. ``per_listener_settings false``: the plugin applies to every listener.
    """

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        extra_config: Sequence[str] | None = None,
        *,
        admin_username: str = "admin",
        admin_password: str | None = None,
        start_timeout: float = 10.0,
        stop_timeout: float = 10.0,
    ) -> None:
        super().__init__(workdir, port, extra_config, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self.admin_username = admin_username
        self.admin_password = admin_password or secrets.token_urlsafe(24)
        self.dynsec_path = self.workdir / "dynamic-security.json"

    @property
    def admin_url(self) -> str:
        """``mqtt://admin:password@host:port``, for ``BrokerAddress.from_url``."""
        user = urllib.parse.quote(self.admin_username, safe="")
        password = urllib.parse.quote(self.admin_password, safe="")
        return f"mqtt://{user}:{password}@{self.host}:{self.port}"

    def _access_lines(self) -> list[str]:
        plugin = find_dynsec_plugin()
        if plugin is None:
            raise RuntimeError(
                f"Mosquitto's dynamic security plugin ({_DYNSEC_PLUGIN}) not found "
                "(set $CITYHUB_MOSQUITTO_DYNSEC, or install mosquitto >= 2.0)"
            )
        return [
            "per_listener_settings false",
            "allow_anonymous false",
            f"plugin {plugin}",
            f"plugin_opt_config_file {self.dynsec_path}",
        ]

    def _write_config(self) -> None:
        if not self.dynsec_path.exists():
            text = json.dumps(dynsec_config(self.admin_username, self.admin_password), indent=1)
            self.dynsec_path.write_text(text, encoding="utf-8")
            self.dynsec_path.chmod(0o600)
        super()._write_config()


class MqttPeer:
    """A blocking MQTT 5 test client (paho, own network thread) that records what happens to it.

    Unlike a production client it never raises for a refusal: ``connect``, ``subscribe`` and
    ``publish`` return the broker's reason codes, so a test can assert that access was refused.
    """

    def __init__(
        self,
        host: str,
        port: int,
        *,
        username: str | None = None,
        password: str | None = None,
        client_id: str = "",
        will: tuple[str, bytes] | None = None,
        ca_file: Path | None = None,
    ) -> None:
        self.host, self.port = host, port
        self.client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2, client_id=client_id, protocol=paho.MQTTv5
        )
        if username is not None:
            self.client.username_pw_set(username, password)
        if will is not None:
            self.client.will_set(will[0], will[1], qos=1, retain=False)
        if ca_file is not None:
            self.client.tls_set(ca_certs=str(ca_file))
        self.messages: list[tuple[str, bytes]] = []
        self.connack: int | None = None
        self.disconnect_reason: int | None = None
        self._changed = threading.Condition()
        self._acks: dict[int, list[int]] = {}
        self.client.on_connect = self._on_connect
        self.client.on_disconnect = self._on_disconnect
        self.client.on_message = self._on_message
        self.client.on_subscribe = self._on_subscribe
        self.client.on_publish = self._on_publish

    # -- paho callbacks (network thread) --------------------------------------------------------------

    def _record(self, update: Any) -> None:
        with self._changed:
            update()
            self._changed.notify_all()

    def _on_connect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._record(lambda: setattr(self, "connack", int(reason.value)))

    def _on_disconnect(self, _c: Any, _u: Any, _flags: Any, reason: Any, _props: Any) -> None:
        self._record(lambda: setattr(self, "disconnect_reason", int(reason.value)))

    def _on_message(self, _c: Any, _u: Any, message: Any) -> None:
        self._record(lambda: self.messages.append((message.topic, bytes(message.payload))))

    def _on_subscribe(self, _c: Any, _u: Any, mid: int, reasons: list[Any], _props: Any) -> None:
        self._record(lambda: self._acks.__setitem__(mid, [int(r.value) for r in reasons]))

    def _on_publish(self, _c: Any, _u: Any, mid: int, reason: Any, _props: Any) -> None:
        self._record(lambda: self._acks.__setitem__(mid, [int(reason.value)]))

    # -- actions --------------------------------------------------------------------------------------

    def wait(self, condition: Any, timeout: float = 5.0) -> bool:
        """Wait until ``condition()`` is true; False after ``timeout`` seconds."""
        with self._changed:
            return bool(self._changed.wait_for(condition, timeout))

    def connect(self, timeout: float = 5.0) -> int | None:
        """Connect; the CONNACK reason code (0 = accepted), or None if the broker did not answer."""
        self.connack = self.disconnect_reason = None
        self.client.connect(self.host, self.port, keepalive=10)
        self.client.loop_start()
        self.wait(lambda: self.connack is not None, timeout)
        return self.connack

    def _acked(self, mid: int, timeout: float) -> list[int] | None:
        self.wait(lambda: mid in self._acks, timeout)
        with self._changed:
            return self._acks.pop(mid, None)

    def subscribe(self, topic_filter: str, qos: int = 1, timeout: float = 5.0) -> int | None:
        """Subscribe; the SUBACK reason code (the granted QoS, or >= 0x80 when refused)."""
        _, mid = self.client.subscribe(topic_filter, qos=qos)
        codes = self._acked(mid, timeout) if mid is not None else None
        return codes[0] if codes else None

    def publish(
        self, topic: str, payload: bytes, qos: int = 1, retain: bool = False, timeout: float = 5.0
    ) -> int | None:
        """Publish; the PUBACK reason code at QoS 1 (0x87 when the broker refuses), or None."""
        info = self.client.publish(topic, payload, qos=qos, retain=retain)
        codes = self._acked(info.mid, timeout)
        return codes[0] if codes else None

    def received(self, topic_filter: str = "#") -> list[tuple[str, bytes]]:
        """Messages received so far on topics matching ``topic_filter``."""
        with self._changed:
            return [(t, p) for t, p in self.messages if paho.topic_matches_sub(topic_filter, t)]

    def close(self) -> None:
        """Disconnect cleanly and stop the network thread."""
        self.client.disconnect()
        self.client.loop_stop()

    def drop(self) -> None:
        """Stop without DISCONNECT: the broker sees a lost connection (and publishes the will)."""
        self.client.loop_stop()
        sock = self.client.socket()
        if sock is not None:
            sock.close()


def _toml_str(value: str | Path) -> str:
    # JSON string escapes are valid TOML basic-string escapes.
    return json.dumps(str(value))


class InfluxDBServer(_ServerProcess):
    """A private InfluxDB 1.x server (HTTP API, no auth, no background noise)."""

    name = "influxd"
    log_files = ()
    output_file = "influxd.log"

    def __init__(
        self,
        workdir: Path,
        port: int | None = None,
        *,
        start_timeout: float = 30.0,
        stop_timeout: float = 15.0,
    ) -> None:
        super().__init__(workdir, start_timeout=start_timeout, stop_timeout=stop_timeout)
        self._auto_port = port is None
        self.port = free_port() if port is None else port
        self.rpc_port = free_port()
        self.config_path = self.workdir / "influxdb.conf"
        self.log_path = self.workdir / self.output_file
        self.meta_dir = self.workdir / "meta"
        self.data_dir = self.workdir / "data"
        self.wal_dir = self.workdir / "wal"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def config_text(self) -> str:
        s = _toml_str
        return f"""\
# generated by tests/services.py (InfluxDB 1.6 format)
reporting-enabled = false
bind-address = {s(f"{self.host}:{self.rpc_port}")}

[meta]
  dir = {s(self.meta_dir)}
  retention-autocreate = true
  logging-enabled = false

[data]
  dir = {s(self.data_dir)}
  wal-dir = {s(self.wal_dir)}
  wal-fsync-delay = "0s"
  query-log-enabled = false

[coordinator]
  log-queries-after = "0s"

[retention]
  enabled = true
  check-interval = "30m0s"

[shard-precreation]
  enabled = true

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[http]
  enabled = true
  bind-address = {s(f"{self.host}:{self.port}")}
  auth-enabled = false
  log-enabled = false
  suppress-write-log = true
  write-tracing = false
  pprof-enabled = false
  https-enabled = false
  unix-socket-enabled = false

[ifql]
  enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[continuous_queries]
  enabled = false
  log-enabled = false

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
"""

    # -- HTTP helpers -----------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str] | None = None,
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 10.0,
    ) -> tuple[int, bytes]:
        """Plain HTTP request to the server (no proxies); returns (status, body)."""
        target = path + ("?" + urllib.parse.urlencode(params) if params else "")
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, target, body=body, headers=dict(headers or {}))
            response = conn.getresponse()
            return response.status, response.read()
        finally:
            conn.close()

    def query(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run a read query (GET /query, ``epoch=ms``); return the decoded JSON.

        Raises RuntimeError on an HTTP error or an ``"error"`` in the response or any statement.
        """
        params = {"q": q, "epoch": "ms"}
        if db is not None:
            params["db"] = db
        status, body = self.request("GET", "/query", params)
        return self._decode(status, body, q)

    def execute(self, q: str, db: str | None = None) -> dict[str, Any]:
        """Run a statement that modifies state (POST /query, e.g. CREATE/DROP); return the JSON."""
        form: dict[str, str] = {"q": q}
        if db is not None:
            form["db"] = db
        status, body = self.request(
            "POST",
            "/query",
            {"epoch": "ms"},
            body=urllib.parse.urlencode(form).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        return self._decode(status, body, q)

    def create_database(self, name: str) -> None:
        self.execute(f"CREATE DATABASE {_quote_ident(name)}")

    def drop_database(self, name: str) -> None:
        self.execute(f"DROP DATABASE {_quote_ident(name)}")

    def write(self, db: str, lines: str | Iterable[str], precision: str = "ms") -> None:
        """Write line protocol (POST /write); raise RuntimeError unless InfluxDB answers 204."""
        payload = lines if isinstance(lines, str) else "\n".join(lines)
        status, body = self.request("POST", "/write", {"db": db, "precision": precision}, body=payload.encode())
        if status != 204:
            raise RuntimeError(f"InfluxDB write failed: HTTP {status}: {body.decode(errors='replace')}")

    def _decode(self, status: int, body: bytes, q: str) -> dict[str, Any]:
        text = body.decode("utf-8", errors="replace")
        if status != 200:
            raise RuntimeError(f"InfluxDB query {q!r} failed: HTTP {status}: {text}")
        decoded = json.loads(text)
        if not isinstance(decoded, dict):
            raise RuntimeError(f"InfluxDB query {q!r}: unexpected response {text}")
        result: dict[str, Any] = decoded
        errors = [result["error"]] if "error" in result else []
        errors += [r["error"] for r in result.get("results", []) if isinstance(r, dict) and "error" in r]
        if errors:
            raise RuntimeError(f"InfluxDB query {q!r} failed: {'; '.join(map(str, errors))}")
        return result

    # -- process hooks ------------------------------------------------------------------------------

    def _binary(self) -> str:
        binary = find_influxd()
        if binary is None:
            raise RuntimeError("influxd binary not found (set $CITYHUB_INFLUXD, or install the 'influxdb' package)")
        return binary

    def _command(self, binary: str) -> list[str]:
        return [binary, "run", "-config", str(self.config_path)]

    def _env(self) -> dict[str, str]:
        # INFLUXDB_* variables override the config file; keep the environment from interfering.
        return {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}

    def _write_config(self) -> None:
        self.config_path.write_text(self.config_text(), encoding="utf-8")

    def _ports(self) -> Sequence[int]:
        return (self.port, self.rpc_port)

    def _repick_ports(self) -> bool:
        if _port_in_use(self.rpc_port):
            self.rpc_port = free_port()
        if _port_in_use(self.port):
            if not self._auto_port:
                return False
            self.port = free_port()
        return True

    def _is_ready(self) -> bool:
        try:
            status, _ = self.request("GET", "/ping", timeout=1.0)
        except (OSError, http.client.HTTPException):
            return False
        return status == 204


def _quote_ident(name: str) -> str:
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'
