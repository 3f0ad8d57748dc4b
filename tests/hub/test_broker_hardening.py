"""The shipped production broker configuration and scripts/broker-bootstrap.sh work together.

The bootstrap script prepares a temporary deployment; Mosquitto then runs the *shipped*
deploy/mosquitto/mosquitto.conf with only its container paths, ports and plugin path replaced (each
replacement must apply exactly as often as expected, so the test notices when the file changes shape).
"""

from __future__ import annotations

import os
import re
import socket
import ssl
import stat
import subprocess
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest
from services import MosquittoServer, MqttPeer, find_dynsec_plugin, find_mosquitto, free_port

from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions
from hub.dynsec import DynSecAccess, DynSecClient

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "deploy" / "mosquitto" / "mosquitto.conf"
BOOTSTRAP = REPO / "scripts" / "broker-bootstrap.sh"
ADMIN_PASSWORD = "hardening-test-admin-password"
BAD_LOGIN = {0x86, 0x87}


def run_bootstrap(target: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(BOOTSTRAP), str(target), *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def adapt(text: str, deployment: Path, tls_port: int, plain_port: int) -> str:
    """The shipped configuration with temporary paths and ports, everything else unchanged."""
    plugin = find_dynsec_plugin()
    assert plugin is not None, "Mosquitto's dynamic security plugin is not installed"
    replacements = [
        (r"^listener 8883$", f"listener {tls_port} 127.0.0.1", 1),
        (r"^listener 1883 127\.0\.0\.1$", f"listener {plain_port} 127.0.0.1", 1),
        (r"^plugin /usr/lib/mosquitto_dynamic_security\.so$", f"plugin {plugin}", 1),
        (r"/mosquitto/config/certs/", f"{deployment}/certs/", 3),
        (r"/mosquitto/data/", f"{deployment}/data/", 2),
        (r"^log_dest stdout$", f"log_dest file {deployment}/mosquitto.log", 1),
    ]
    for pattern, new, count in replacements:
        text, made = re.subn(pattern, new, text, flags=re.MULTILINE)
        assert made == count, f"{pattern!r} matched {made} times in {SHIPPED}, expected {count}"
    if os.geteuid() == 0:
        text += "user root\n"  # see MosquittoServer.config_text
    return text


class ShippedMosquitto(MosquittoServer):
    """Mosquitto running the adapted production configuration; ``port`` is the loopback listener."""

    log_files = ("mosquitto.log",)

    def __init__(self, workdir: Path, deployment: Path) -> None:
        super().__init__(workdir)
        self.tls_port = free_port()
        self.deployment = deployment

    def config_text(self) -> str:
        return adapt(SHIPPED.read_text(encoding="utf-8"), self.deployment, self.tls_port, self.port)

    def _ports(self) -> Sequence[int]:
        return (self.port, self.tls_port)


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    target = tmp_path / "deploy"
    env = {**os.environ, "CITYHUB_BROKER_ADMIN_PASSWORD": ADMIN_PASSWORD, "CITYHUB_BROKER_ADMIN_USER": "ops-admin"}
    done = run_bootstrap(target, env, "localhost")
    assert done.returncode == 0, done.stderr
    assert ADMIN_PASSWORD not in done.stdout
    return target


@pytest.fixture
def shipped(tmp_path: Path, deployment: Path) -> Iterator[ShippedMosquitto]:
    if find_mosquitto() is None or find_dynsec_plugin() is None:
        pytest.fail("mosquitto and its dynamic security plugin are needed (apt-get install mosquitto)")
    server = ShippedMosquitto(tmp_path / "broker", deployment)
    try:
        server.start()
        yield server
    finally:
        server.close()


def test_bootstrap_writes_private_files_with_private_modes(deployment: Path) -> None:
    modes = {p.relative_to(deployment).as_posix(): stat.S_IMODE(p.stat().st_mode) for p in deployment.rglob("*")}
    assert modes == {
        "certs": 0o755,
        "certs/ca.crt": 0o644,
        "certs/ca.key": 0o600,
        "certs/server.crt": 0o644,
        "certs/server.key": 0o600,
        "data": 0o700,
        "data/dynamic-security.json": 0o600,
    }
    context = ssl.create_default_context(cafile=str(deployment / "certs" / "ca.crt"))
    assert context.cert_store_stats()["x509_ca"] == 1


def test_bootstrap_generates_a_password_once_and_never_overwrites(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CITYHUB_BROKER_")}
    first = run_bootstrap(tmp_path / "d", env, "broker.example.org")
    assert first.returncode == 0, first.stderr
    (line,) = [x for x in first.stdout.splitlines() if "admin password (shown once)" in x]
    assert len(line.rsplit(" ", 1)[1]) >= 32
    again = run_bootstrap(tmp_path / "d", env, "broker.example.org")
    assert again.returncode != 0
    assert "refusing to overwrite" in again.stderr
    short = run_bootstrap(tmp_path / "e", {**env, "CITYHUB_BROKER_ADMIN_PASSWORD": "short"})
    assert short.returncode != 0
    assert "at least 16 characters" in short.stderr


def test_shipped_config_serves_tls_to_logins_only(shipped: ShippedMosquitto, deployment: Path) -> None:
    ca = deployment / "certs" / "ca.crt"

    def tls_peer(username: str | None, password: str | None) -> MqttPeer:
        return MqttPeer("localhost", shipped.tls_port, username=username, password=password, ca_file=ca)

    admin = tls_peer("ops-admin", ADMIN_PASSWORD)
    try:
        assert admin.connect() == 0
        assert admin.subscribe("$CONTROL/dynamic-security/v1/response") == 1
    finally:
        admin.close()
    for username, password in ((None, None), ("ops-admin", "wrong-password-for-admin")):
        peer = tls_peer(username, password)
        try:
            assert peer.connect() in BAD_LOGIN
        finally:
            peer.close()


def test_tls_listener_refuses_an_unknown_ca(shipped: ShippedMosquitto, tmp_path: Path) -> None:
    other = tmp_path / "other"
    done = run_bootstrap(other, {**os.environ, "CITYHUB_BROKER_ADMIN_PASSWORD": ADMIN_PASSWORD}, "localhost")
    assert done.returncode == 0, done.stderr
    context = ssl.create_default_context(cafile=str(other / "certs" / "ca.crt"))
    with (
        socket.create_connection(("127.0.0.1", shipped.tls_port), timeout=5) as raw,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        context.wrap_socket(raw, server_hostname="localhost")


async def test_hub_sets_up_the_shipped_broker_over_the_loopback_listener(shipped: ShippedMosquitto) -> None:
    address = BrokerAddress(host="127.0.0.1", port=shipped.port, username="ops-admin", password=ADMIN_PASSWORD)
    async with DynSecClient(address, timeout_s=10.0) as client:
        access = DynSecAccess(client)
        await access.setup_defaults()
        await access.grant("dev:s1:d1", "device-password-0123456789", [("s1", "d1")])
        assert "dev:s1:d1" in await access.list_clients()
    anonymous = MqttPeer("127.0.0.1", shipped.port)
    try:
        assert anonymous.connect() in BAD_LOGIN
    finally:
        anonymous.close()


async def test_our_mqtt_session_connects_over_tls_with_the_deployments_ca(
    shipped: ShippedMosquitto, deployment: Path
) -> None:
    """What the hub and agents use: ``mqtts://user:pass@host:8883?cafile=...`` (docs/broker.md)."""
    ca = deployment / "certs" / "ca.crt"
    url = f"mqtts://ops-admin:{ADMIN_PASSWORD}@localhost:{shipped.tls_port}?cafile={ca}"
    session = MqttSession(BrokerAddress.from_url(url), SessionOptions(client_id="tls-check", connect_timeout_s=5))
    await session.connect()
    try:
        assert session.connected
    finally:
        await session.disconnect()
    # Without the cafile the system's CAs refuse the certificate: test_tls_listener_refuses_an_unknown_ca
    # shows it with ssl itself (paho, retrying in its thread, would leak the failed sockets here).
