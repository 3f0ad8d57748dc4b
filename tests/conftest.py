"""Shared pytest fixtures: private, real Mosquitto and InfluxDB servers (see tests/services.py).

* ``mosquitto`` / ``influxdb`` (session scope): one server each for the whole run. Do not stop,
  restart or kill them in a test, and use unique topics / database names per test.
* ``fresh_mosquitto`` / ``fresh_influxdb`` (function scope): a server of your own, for fault tests
  that stop, kill or restart it.
* ``secure_mosquitto`` (session) / ``fresh_secure_mosquitto`` (function): a broker with the dynamic
  security plugin and no anonymous access (``SecureMosquittoServer``: ``admin_url``,
  ``admin_username``, ``admin_password``); only its admin exists at first. Use unique usernames.
* ``dynsec_access`` (function): a connected ``hub.dynsec.DynSecAccess`` (topic root ``cityhub``) on
  ``secure_mosquitto``, with ``setup_defaults()`` done.

Tests that use any of these fixtures are marked ``services`` automatically, tests that use a
``fresh_*`` fixture also ``fault``. A missing binary (or dynamic security plugin) is a test *failure*, never a skip.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest
from services import (
    InfluxDBServer,
    MosquittoServer,
    SecureMosquittoServer,
    find_dynsec_plugin,
    find_influxd,
    find_mosquitto,
)

from cityhub.mqtt import BrokerAddress
from hub.dynsec import DynSecAccess, DynSecClient

_INSTALL_HINT = (
    "Run the test suite through scripts/test.sh, or install the servers it needs: "
    "`apt-get install mosquitto influxdb` (InfluxDB 1.x)."
)

_SERVICE_FIXTURES = frozenset(
    {
        "mosquitto",
        "influxdb",
        "fresh_mosquitto",
        "fresh_influxdb",
        "secure_mosquitto",
        "fresh_secure_mosquitto",
        "dynsec_access",
    }
)
_FAULT_FIXTURES = frozenset({"fresh_mosquitto", "fresh_influxdb", "fresh_secure_mosquitto"})


def _require(find: Callable[[], str | None], what: str, where: str) -> None:
    if find() is None:
        pytest.fail(f"{what} binary not found (looked at {where}). {_INSTALL_HINT}", pytrace=False)


def _mosquitto_in(workdir: Path) -> Iterator[MosquittoServer]:
    _require(find_mosquitto, "mosquitto", "$CITYHUB_MOSQUITTO, PATH, /usr/sbin/mosquitto")
    server = MosquittoServer(workdir)
    try:
        server.start()
        yield server
    finally:
        server.close()


def _secure_mosquitto_in(workdir: Path) -> Iterator[SecureMosquittoServer]:
    _require(find_mosquitto, "mosquitto", "$CITYHUB_MOSQUITTO, PATH, /usr/sbin/mosquitto")
    _require(
        find_dynsec_plugin,
        "mosquitto dynamic security plugin",
        "$CITYHUB_MOSQUITTO_DYNSEC, /usr/lib/<arch>/mosquitto_dynamic_security.so, dpkg -L mosquitto",
    )
    server = SecureMosquittoServer(workdir)
    try:
        server.start()
        yield server
    finally:
        server.close()


def _influxdb_in(workdir: Path) -> Iterator[InfluxDBServer]:
    _require(find_influxd, "influxd (InfluxDB 1.x)", "$CITYHUB_INFLUXD, PATH, /usr/bin/influxd")
    server = InfluxDBServer(workdir)
    try:
        server.start()
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MosquittoServer]:
    """A Mosquitto broker shared by the whole session."""
    yield from _mosquitto_in(tmp_path_factory.mktemp("mosquitto"))


@pytest.fixture(scope="session")
def influxdb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDBServer]:
    """An InfluxDB 1.x server shared by the whole session."""
    yield from _influxdb_in(tmp_path_factory.mktemp("influxdb"))


@pytest.fixture
def fresh_mosquitto(tmp_path: Path) -> Iterator[MosquittoServer]:
    """A Mosquitto broker of this test's own; it may stop, kill or restart it."""
    yield from _mosquitto_in(tmp_path / "mosquitto")


@pytest.fixture
def fresh_influxdb(tmp_path: Path) -> Iterator[InfluxDBServer]:
    """An InfluxDB server of this test's own; it may stop, kill or restart it."""
    yield from _influxdb_in(tmp_path / "influxdb")


@pytest.fixture(scope="session")
def secure_mosquitto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SecureMosquittoServer]:
    """A Mosquitto broker with dynamic security, shared by the whole session."""
    yield from _secure_mosquitto_in(tmp_path_factory.mktemp("secure-mosquitto"))


@pytest.fixture
def fresh_secure_mosquitto(tmp_path: Path) -> Iterator[SecureMosquittoServer]:
    """A Mosquitto broker with dynamic security of this test's own; it may stop or restart it."""
    yield from _secure_mosquitto_in(tmp_path / "secure-mosquitto")


@pytest.fixture
async def dynsec_access(secure_mosquitto: SecureMosquittoServer) -> AsyncIterator[DynSecAccess]:
    """The hub's access control on ``secure_mosquitto`` (root ``cityhub``), defaults set up."""
    async with DynSecClient(BrokerAddress.from_url(secure_mosquitto.admin_url), timeout_s=10.0) as client:
        access = DynSecAccess(client, root="cityhub")
        await access.setup_defaults()
        yield access


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & _SERVICE_FIXTURES:
            item.add_marker(pytest.mark.services)
        if used & _FAULT_FIXTURES:
            item.add_marker(pytest.mark.fault)
