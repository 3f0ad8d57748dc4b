"""WS-Discovery: a unicast Probe to the simulator's responder on loopback, the parsing, the CLI helpers."""

from __future__ import annotations

import argparse

import pytest

from drivers.onvif import add_discover_arguments, discover, format_table, run_discover
from drivers.onvif.discovery import parse_probe_matches, probe_message
from simulators.onvif import CameraFleet, CameraSpec, FaultMode
from simulators.onvif.discovery import probe_matches


async def test_unicast_probe_finds_every_camera() -> None:
    specs = [
        CameraSpec(name="bastion-gate", location="bastion"),
        CameraSpec(name="palace-court", profile="camera-videosource"),
    ]
    async with CameraFleet(specs) as fleet:
        assert fleet.discovery is not None
        found = await discover(0.3, address=("127.0.0.1", fleet.discovery.port))
        ports = sorted(c.port for c in fleet.cameras)
    assert sorted(c.port for c in found) == ports
    by_name = {c.name: c for c in found}
    gate = by_name["bastion-gate"]
    assert (gate.host, gate.hardware, gate.location) == ("127.0.0.1", "SimCam_2", "bastion")
    assert gate.xaddrs == (f"http://127.0.0.1:{gate.port}/onvif/device_service",)
    assert gate.endpoint.startswith("urn:uuid:")
    assert "dn:NetworkVideoTransmitter" in gate.types
    assert by_name["palace-court"].hardware == "SimCam_1"
    table = format_table(found)
    assert table.splitlines()[0].split() == ["NAME", "ADDRESS", "HARDWARE", "LOCATION", "DEVICE", "SERVICE"]
    assert "bastion-gate" in table
    assert f"127.0.0.1:{gate.port}" in table


async def test_a_camera_that_is_offline_does_not_answer() -> None:
    async with CameraFleet.numbered(2) as fleet:
        assert fleet.discovery is not None
        fleet.cameras[0].set_fault(FaultMode.OFFLINE)
        await fleet.cameras[0].settled()
        found = await discover(0.3, address=("127.0.0.1", fleet.discovery.port))
    assert [c.name for c in found] == ["cam-2"]


async def test_run_discover_prints_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_discover_arguments(parser)
    async with CameraFleet.numbered(1) as fleet:
        assert fleet.discovery is not None
        args = parser.parse_args(["--timeout", "0.3", "--address", f"127.0.0.1:{fleet.discovery.port}"])
        assert await run_discover(args) == 0
    assert "cam-1" in capsys.readouterr().out


async def test_run_discover_says_when_nobody_answers(closed_port: int, capsys: pytest.CaptureFixture[str]) -> None:
    args = argparse.Namespace(timeout=0.2, address=("127.0.0.1", closed_port))
    assert await run_discover(args) == 1
    assert "no ONVIF camera answered" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["nohost", "host:", ":80", "host:99999", "host:port"])
def test_address_option_wants_host_and_port(bad: str) -> None:
    parser = argparse.ArgumentParser()
    add_discover_arguments(parser)
    with pytest.raises(SystemExit):
        parser.parse_args(["--address", bad])


async def test_answers_to_other_probes_and_garbage_are_ignored() -> None:
    async with CameraFleet.numbered(1, discovery_port=None) as fleet:
        answer = probe_matches(fleet.cameras[0], "uuid:other-probe")
    assert parse_probe_matches(answer, "uuid:mine") == []
    assert [c.name for c in parse_probe_matches(answer, "uuid:other-probe")] == ["cam-1"]
    assert parse_probe_matches(b"<not-xml", None) == []
    assert parse_probe_matches(probe_message("uuid:x"), None) == []  # a Probe is no ProbeMatches
