"""Net-SNMP's snmpget, snmpwalk and snmpbulkwalk (clients that share no code with pysnmp) read the
simulator: the wire encoding is what each vendor's MIB says (minutes, TimeTicks, tenths, enumerations),
over v1, v2c and v3. A missing tool fails the tests: run scripts/test.sh, which installs Debian's snmp."""

from __future__ import annotations

import pytest
import snmpkit
from pydantic import SecretStr
from snmpkit import AgentFactory, net_snmp, run_tool

from drivers.snmp_ups.config import UsmCredentials
from drivers.snmp_ups.profile import format_oid, load_mib_profile

QUICK = ["-Oqnt", "-t", "2", "-r", "0"]  # numeric OIDs, values without types, TimeTicks as a number


def parse(output: str) -> dict[str, str]:
    """``.1.3.6... value`` lines as OID -> value."""
    lines = (line.split(" ", 1) for line in output.strip().splitlines() if line.startswith("."))
    # the last line of a walk at the end of the MIB is the request with endOfMibView: not a value
    return {oid.lstrip("."): value.strip('"') for oid, value in lines if not value.startswith("No more variables")}


# metric, value set, and the raw value each card puts on the wire
ENCODINGS = [
    ("ups-rfc1628", "battery.runtime", 1260, "21"),  # upsEstimatedMinutesRemaining: minutes
    ("ups-rfc1628", "battery.voltage", 54.6, "546"),  # 0.1 V
    ("ups-rfc1628", "input.frequency", 49.9, "499"),
    ("ups-apc", "battery.runtime", 1260, "126000"),  # TimeTicks
    ("ups-apc", "input.voltage", 229.1, "2291"),  # upsHighPrec*: tenths
    ("ups-apc", "ups.temperature", 31.5, "315"),
    ("ups-eaton-xups", "battery.runtime", 1260, "1260"),  # seconds
    ("ups-eaton-xups", "input.frequency", 50.1, "501"),
    ("ups-mge", "battery.runtime", 1260, "1260"),
    ("ups-mge", "output.voltage", 229.9, "2299"),
]


@pytest.mark.parametrize(("profile", "metric", "value", "raw"), ENCODINGS)
async def test_snmpget_sees_the_vendor_encoding(
    start_agent: AgentFactory, profile: str, metric: str, value: float, raw: str
) -> None:
    agent = await start_agent(profile)
    agent.set(metric, value)
    oid = format_oid(agent.profile.point(metric).oid)
    code, out, err = await run_tool(net_snmp("snmpget"), "-v2c", "-c", "public", *QUICK, f"127.0.0.1:{agent.port}", oid)
    assert code == 0, err
    assert parse(out) == {oid: raw}


@pytest.mark.parametrize(
    ("profile", "status", "expected"),
    [
        ("ups-rfc1628", "OB LB", {"1.3.6.1.2.1.33.1.4.1.0": "5", "1.3.6.1.2.1.33.1.2.1.0": "3"}),
        ("ups-apc", "OL TRIM RB", {"1.3.6.1.4.1.318.1.1.1.4.1.1.0": "12", "1.3.6.1.4.1.318.1.1.1.2.2.4.0": "2"}),
        ("ups-eaton-xups", "OB DISCHRG", {"1.3.6.1.4.1.534.1.4.5.0": "5", "1.3.6.1.4.1.534.1.2.5.0": "2"}),
        ("ups-mge", "OB LB", {"1.3.6.1.4.1.705.1.7.3.0": "1", "1.3.6.1.4.1.705.1.5.14.0": "1"}),
    ],
)
async def test_status_is_served_as_the_vendor_enumerations(
    start_agent: AgentFactory, profile: str, status: str, expected: dict[str, str]
) -> None:
    agent = await start_agent(profile)
    agent.set("ups.status", status)
    code, out, err = await run_tool(
        net_snmp("snmpget"), "-v1", "-c", "public", *QUICK, f"127.0.0.1:{agent.port}", *expected
    )
    assert code == 0, err
    assert parse(out) == expected


@pytest.mark.parametrize(
    ("auth", "priv", "net_snmp_auth", "net_snmp_priv"),
    [
        ("md5", "des", "MD5", "DES"),
        ("sha", "aes", "SHA", "AES"),
        ("sha256", "aes192", "SHA-256", "AES-192"),
        ("sha512", "aes256", "SHA-512", "AES-256"),
    ],
)
async def test_snmpget_v3(
    start_agent: AgentFactory, auth: str, priv: str, net_snmp_auth: str, net_snmp_priv: str
) -> None:
    user = UsmCredentials(
        user="ops",
        auth_protocol=auth,
        auth_key=SecretStr("auth-pass"),
        priv_protocol=priv,
        priv_key=SecretStr("priv-pass"),
    )  # type: ignore[arg-type]
    agent = await start_agent("ups-apc", users=(user,))
    v3 = ["-v3", "-u", "ops", "-l", "authPriv", "-a", net_snmp_auth, "-A", "auth-pass", "-x", net_snmp_priv]
    code, out, err = await run_tool(
        net_snmp("snmpget"), *v3, "-X", "priv-pass", *QUICK, f"127.0.0.1:{agent.port}", "1.3.6.1.2.1.1.2.0"
    )
    assert code == 0, err
    assert parse(out) == {"1.3.6.1.2.1.1.2.0": ".1.3.6.1.4.1.318.1.3.27"}
    code, _, err = await run_tool(
        net_snmp("snmpget"), *v3, "-X", "wrong-pass", *QUICK, f"127.0.0.1:{agent.port}", "1.3.6.1.2.1.1.2.0"
    )
    assert code != 0


@pytest.mark.parametrize("tool", ["snmpwalk", "snmpbulkwalk"])
async def test_walking_the_alarm_table(start_agent: AgentFactory, tool: str) -> None:
    agent = await start_agent("ups-rfc1628")
    agent.set("ups.status", "OB LB")
    agent.set("ups.alarm", "fan_failure")
    code, out, err = await run_tool(
        net_snmp(tool), "-v2c", "-c", "public", *QUICK, f"127.0.0.1:{agent.port}", "1.3.6.1.2.1.33.1.6"
    )
    assert code == 0, err
    assert parse(out) == {
        "1.3.6.1.2.1.33.1.6.1.0": "3",  # upsAlarmsPresent
        "1.3.6.1.2.1.33.1.6.2.1.1.1": "1",  # upsAlarmId
        "1.3.6.1.2.1.33.1.6.2.1.1.2": "2",
        "1.3.6.1.2.1.33.1.6.2.1.1.3": "3",
        "1.3.6.1.2.1.33.1.6.2.1.2.1": ".1.3.6.1.2.1.33.1.6.3.2",  # upsAlarmOnBattery
        "1.3.6.1.2.1.33.1.6.2.1.2.2": ".1.3.6.1.2.1.33.1.6.3.3",  # upsAlarmLowBattery
        "1.3.6.1.2.1.33.1.6.2.1.2.3": ".1.3.6.1.2.1.33.1.6.3.16",  # upsAlarmFanFailure
    }


@pytest.mark.parametrize("profile", snmpkit.PROFILES)
async def test_a_full_walk_serves_every_profile_oid(start_agent: AgentFactory, profile: str) -> None:
    agent = await start_agent(profile)
    code, out, err = await run_tool(
        net_snmp("snmpbulkwalk"), "-v2c", "-c", "public", *QUICK, f"127.0.0.1:{agent.port}", ".1"
    )
    assert code == 0, err
    served = parse(out)
    mib = load_mib_profile(profile)
    for oid in [p.oid for p in mib.points] + [s.oid for s in mib.status] + [oid for _, oid in mib.ident]:
        assert format_oid(oid) in served, oid
    assert served["1.3.6.1.2.1.1.2.0"] == "." + format_oid(mib.sys_object_id)


async def test_v1_unknown_oid_and_wrong_community(start_agent: AgentFactory) -> None:
    agent = await start_agent("ups-mge", communities=("secret",))
    snmpget = net_snmp("snmpget")
    code, _, err = await run_tool(
        snmpget, "-v1", "-c", "secret", *QUICK, f"127.0.0.1:{agent.port}", "1.3.6.1.4.1.705.9.9"
    )
    assert code != 0
    assert "noSuchName" in err
    code, _, err = await run_tool(
        snmpget, "-v2c", "-c", "public", "-t", "0.3", "-r", "0", f"127.0.0.1:{agent.port}", "1.3.6.1.2.1.1.2.0"
    )
    assert code != 0
    assert "Timeout" in err


async def test_garbage_fault_is_not_snmp(start_agent: AgentFactory) -> None:
    agent = await start_agent("ups-apc")
    agent.set_fault("garbage")
    code, out, _err = await run_tool(
        net_snmp("snmpget"),
        "-v2c",
        "-c",
        "public",
        "-t",
        "0.3",
        "-r",
        "0",
        f"127.0.0.1:{agent.port}",
        "1.3.6.1.2.1.1.2.0",
    )
    assert code != 0
    assert out == ""
