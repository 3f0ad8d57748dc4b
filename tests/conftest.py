"""Shared pytest fixtures: private, real Mosquitto and InfluxDB servers (see tests/services.py).

* ``mosquitto`` / ``influxdb`` (session scope): one server each for the whole run. Do not stop,
  restart or kill them in a test, and use unique topics / database names per test.
* ``fresh_mosquitto`` / ``fresh_influxdb`` (function scope): a server of your own, for fault tests
  that stop, kill or restart it.

Tests that use any of these fixtures are marked ``services`` automatically, tests that use a
``fresh_*`` fixture also ``fault``. A missing binary is a test *failure*, never a skip.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from services import InfluxDBServer, MosquittoServer, find_influxd, find_mosquitto

_INSTALL_HINT = (
    "Run the test suite through scripts/test.sh, or install the servers it needs: "
    "`apt-get install mosquitto influxdb` (InfluxDB 1.x)."
)

_SERVICE_FIXTURES = frozenset({"mosquitto", "influxdb", "fresh_mosquitto", "fresh_influxdb"})
_FAULT_FIXTURES = frozenset({"fresh_mosquitto", "fresh_influxdb"})


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        used = set(getattr(item, "fixturenames", ()))
        if used & _SERVICE_FIXTURES:
            item.add_marker(pytest.mark.services)
        if used & _FAULT_FIXTURES:
            item.add_marker(pytest.mark.fault)
