"""The driver against the simulator over real UDP: readings of every profile, SNMP versions and
credentials, profile selection by sysObjectID, missing values, status events, faults and isolation."""

from __future__ import annotations

import asyncio
import logging
import time

import pytest
import snmpkit
from pydantic import SecretStr
from snmpkit import V3_USER, AgentFactory, make_device, values

from cityhub.contract import Quality
from drivers.base import WatchedDevice
from drivers.snmp_ups import MalformedResponse, SnmpClient, SnmpTimeout
from drivers.snmp_ups.config import UsmCredentials

SET = {
    "battery.charge": 87,
    "battery.runtime": 1260,  # 21 min: representable in minutes, seconds and TimeTicks
    "battery.voltage": 54,
    "ups.temperature": 31,
    "input.voltage": 229,
    "input.frequency": 49.9,
    "output.voltage": 231,
    "ups.load": 42,
}
# What each card says for "OB DISCHRG": the tokens its MIB can express.
ON_BATTERY = {"ups-rfc1628": "OB", "ups-apc": "OB", "ups-eaton-xups": "OB DISCHRG", "ups-mge": "OB"}


@pytest.mark.parametrize("profile", snmpkit.PROFILES)
async def test_every_profile_reads_normalized_values(
    start_agent: AgentFactory, client: SnmpClient, profile: str
) -> None:
    agent = await start_agent(profile)
    for metric, value in SET.items():
        agent.set(metric, value)
    agent.set("ups.status", "OB DISCHRG")
    ups = make_device(agent, client)
    result = await ups.poll()
    assert result.ok, result.readings
    got = values(result)
    assert {m: got[m] for m in SET} == SET
    assert got["ups.status"] == ON_BATTERY[profile]
    units = {r.metric: r.unit for r in result.readings}
    assert units["battery.runtime"] == "s"
    assert units["ups.temperature"] == "Cel"
    assert units["input.frequency"] == "Hz"
    assert [(e.type, e.active) for e in result.events] == [("ups.on_battery", True)]
    assert isinstance(ups, WatchedDevice)


@pytest.mark.parametrize("profile", snmpkit.PROFILES)
async def test_profile_and_identity_come_from_the_card(
    start_agent: AgentFactory, client: SnmpClient, profile: str
) -> None:
    agent = await start_agent(profile, serial="AS1234")
    ups = make_device(agent, client)
    assert ups.describe().profile is None  # not known before the first poll
    await ups.poll()
    description = ups.describe()
    assert description.kind == "ups"
    assert description.profile == profile
    assert {m.metric for m in description.metrics} >= {*SET, "ups.status"}
    assert "ups.on_battery" in description.events
    assert description.model == f"SIM {profile}"
    if "serial" in dict(agent.profile.ident):  # UPS-MIB and XUPS-MIB have no serial number object
        assert description.serial == "AS1234"


async def test_unknown_enterprise_falls_back_to_the_standard_mib(start_agent: AgentFactory, client: SnmpClient) -> None:
    agent = await start_agent("ups-rfc1628", sys_object_id=(1, 3, 6, 1, 4, 1, 99999, 1))
    ups = make_device(agent, client)
    assert (await ups.poll()).ok
    assert ups.describe().profile == "ups-rfc1628"


async def test_a_named_profile_skips_detection(start_agent: AgentFactory, client: SnmpClient) -> None:
    agent = await start_agent("ups-apc", sys_object_id=(1, 3, 6, 1, 4, 1, 99999, 1))
    ups = make_device(agent, client, profile="ups-apc")
    assert ups.describe().profile == "ups-apc"
    assert (await ups.poll()).ok


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_missing_objects_and_sentinels_are_bad_readings(
    start_agent: AgentFactory, client: SnmpClient, version: str
) -> None:
    agent = await start_agent("ups-rfc1628")
    profile = agent.profile
    agent.mib.set_raw(profile.point("ups.temperature").oid, None)  # noSuchObject (v1: noSuchName)
    agent.mib.set_raw(profile.point("battery.runtime").oid, 65535)  # "unknown" on many cards
    agent.set("battery.voltage", "unknown")  # the simulator's sentinel: -1
    ups = make_device(agent, client, version=version)
    result = await ups.poll()
    quality = {r.metric: r.quality for r in result.readings}
    assert not result.ok
    assert not ups.down
    for metric in ("ups.temperature", "battery.runtime", "battery.voltage"):
        assert quality[metric] is Quality.BAD
        assert values(result)[metric] is None
    assert quality["battery.charge"] is Quality.GOOD
    assert values(result)["battery.charge"] == 100
    assert values(result)["ups.status"] == "OL"


async def test_a_missing_status_object_makes_the_status_uncertain(
    start_agent: AgentFactory, client: SnmpClient
) -> None:
    agent = await start_agent("ups-apc")
    agent.mib.set_raw(agent.profile.status[2].oid, None)  # upsAdvBatteryReplaceIndicator
    result = await make_device(agent, client).poll()
    status = next(r for r in result.readings if r.metric == "ups.status")
    assert (status.value, status.quality) == ("OL", Quality.UNCERTAIN)


V3_COMBOS = [
    ("md5", None),
    ("sha", "des"),
    ("sha224", "3des"),
    ("sha256", "aes"),
    ("sha384", "aes192"),
    ("sha512", "aes256"),
    ("sha", "aes256c"),
    (None, None),
]


@pytest.mark.parametrize(("auth", "priv"), V3_COMBOS)
async def test_snmpv3_security_levels(
    start_agent: AgentFactory, client: SnmpClient, auth: str | None, priv: str | None
) -> None:
    keys: dict[str, object] = {}
    if auth:
        keys |= {"auth_protocol": auth, "auth_key": SecretStr(f"auth-{auth}-key")}
    if priv:
        keys |= {"priv_protocol": priv, "priv_key": SecretStr(f"priv-{priv}-key")}
    user = UsmCredentials.model_validate({"user": f"u-{auth}-{priv}", **keys})
    agent = await start_agent("ups-eaton-xups", users=(user,))
    ups = make_device(agent, client, version="3", user=user.user, **keys)
    result = await ups.poll()
    assert result.ok
    assert values(result)["battery.charge"] == 100


async def test_snmpv1(start_agent: AgentFactory, client: SnmpClient) -> None:
    agent = await start_agent("ups-mge")
    assert (await make_device(agent, client, version="1").poll()).ok


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({"community": "wrong"}, "no answer"),
        (
            {"version": "3", "user": "ops", "auth_protocol": "sha256", "auth_key": "not-the-key"}
            | {"priv_protocol": "aes", "priv_key": "privpass-aes"},
            "Wrong SNMP PDU digest",
        ),
        ({"version": "3", "user": "eve", "auth_protocol": "sha256", "auth_key": "authpass-256"}, "Unknown USM user"),
        (
            {"version": "3", "user": "ops", "auth_protocol": "sha256", "auth_key": "authpass-256"}
            | {"priv_protocol": "aes", "priv_key": "not-the-key"},
            "credentials refused",
        ),
    ],
)
async def test_wrong_credentials_mean_down_logged_once(
    start_agent: AgentFactory,
    client: SnmpClient,
    caplog: pytest.LogCaptureFixture,
    fields: dict[str, str],
    reason: str,
) -> None:
    agent = await start_agent("ups-rfc1628", users=(V3_USER,))
    ups = make_device(agent, client, timeout_s=0.2, **fields)
    with caplog.at_level(logging.WARNING, logger="drivers.snmp_ups"):
        for _ in range(3):
            result = await ups.poll()
            assert not result.ok
            assert all(r.quality is Quality.BAD for r in result.readings)
    assert ups.down
    assert reason in (ups.down_reason or "")
    assert len([r for r in caplog.records if "is down" in r.message]) == 1


async def test_status_changes_raise_events_once(start_agent: AgentFactory, client: SnmpClient) -> None:
    agent = await start_agent("ups-rfc1628")
    ups = make_device(agent, client)
    assert (await ups.poll()).events == []  # on line at start: nothing to report
    seen = []
    for status in ("OB", "OB", "OB LB", "OL", "OL BYPASS", "OL"):
        agent.set("ups.status", status)
        seen.append([(e.type, e.active) for e in (await ups.poll()).events])
    assert seen == [
        [("ups.on_battery", True)],
        [],
        [("ups.low_battery", True)],
        [("ups.on_battery", False), ("ups.low_battery", False)],
        [("ups.on_bypass", True)],
        [("ups.on_bypass", False)],
    ]


@pytest.mark.parametrize("version", ["1", "2c"])
async def test_alarm_table_is_walked(start_agent: AgentFactory, client: SnmpClient, version: str) -> None:
    agent = await start_agent("ups-rfc1628")
    ups = make_device(agent, client, version=version)
    await ups.poll()
    agent.set("ups.alarm", "fan_failure")
    agent.set("ups.status", "OB")
    result = await ups.poll()
    assert values(result)["ups.alarm"] == "on_battery fan_failure"
    assert values(result)["ups.alarm_count"] == 2
    assert {(e.type, e.active) for e in result.events} == {("ups.on_battery", True), ("ups.alarm.fan_failure", True)}
    agent.set("ups.alarm", "")
    result = await ups.poll()
    assert [(e.type, e.active) for e in result.events] == [("ups.alarm.fan_failure", False)]


async def test_a_silent_card_does_not_delay_another(start_agent: AgentFactory, client: SnmpClient) -> None:
    hung, healthy = await start_agent("ups-apc"), await start_agent("ups-mge")
    hung.set_fault("silent")
    slow_ups = make_device(hung, client, timeout_s=1.5)
    fast_ups = make_device(healthy, client)
    await fast_ups.poll()  # identified once, so the timed poll is a plain poll
    started = time.monotonic()
    hung_poll = asyncio.create_task(slow_ups.poll())
    result = await fast_ups.poll()
    elapsed = time.monotonic() - started
    assert result.ok
    assert elapsed < 0.5, elapsed
    assert not (await hung_poll).ok
    assert slow_ups.down


async def test_garbage_answers_are_a_typed_error(start_agent: AgentFactory, client: SnmpClient) -> None:
    agent = await start_agent("ups-rfc1628")
    ups = make_device(agent, client)
    target = await client.target(ups.config)
    agent.set_fault("garbage")
    with pytest.raises(MalformedResponse, match="not SNMP"):
        await client.get(target, [(1, 3, 6, 1, 2, 1, 1, 2, 0)])
    assert not (await ups.poll()).ok
    assert "not SNMP" in (ups.down_reason or "")


async def test_a_slow_card_times_out_then_comes_back(
    start_agent: AgentFactory, client: SnmpClient, caplog: pytest.LogCaptureFixture
) -> None:
    agent = await start_agent("ups-apc", slow_delay_s=1.0)
    ups = make_device(agent, client, timeout_s=0.3)
    await ups.poll()
    agent.set_fault("slow")
    with pytest.raises(SnmpTimeout):
        await client.get(await client.target(ups.config), [(1, 3, 6, 1, 2, 1, 1, 2, 0)])
    with caplog.at_level(logging.INFO, logger="drivers.snmp_ups"):
        assert not (await ups.poll()).ok
        agent.clear_fault()
        assert (await ups.poll()).ok
    assert not ups.down
    assert len([r for r in caplog.records if "is back" in r.message]) == 1
