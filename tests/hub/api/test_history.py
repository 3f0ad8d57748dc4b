"""``GET .../history`` and ``GET .../values`` over real parts, no mocks.

History: known readings go through the hub's own mapping (hub.ingest.telemetry_points) into a real embedded
SQLite store and, as line protocol (hub.storage.lineprotocol) through the hub's writer, into the real InfluxDB
fixture; both backends must answer every query with the same buckets, computed by hand below. Last values: a
real hub ingests telemetry published to the real Mosquitto fixture through the contract.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hubtools import hub_flow, hub_settings, metric_value, running_hub, wait_for
from services import InfluxDBServer, MosquittoServer
from testkit import unique

from cityhub.contract import MessageKind, Quality, Reading, TelemetryMessage, Topics
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions
from hub.api import ApiSettings, HubApi
from hub.api.roles import Role
from hub.ingest import telemetry_points
from hub.lastvalues import LastValues
from hub.storage.history import HistoryReader, SqliteHistory, influx_history
from hub.storage.influx import InfluxV1Writer
from hub.storage.lineprotocol import Point, encode_points
from hub.storage.sqlite_store import SqliteStore
from tests.hub.api.conftest import DEVICES, Account, Clock, Device, Devices, open_api

T0 = 1_767_225_600_000  # 2026-01-01T00:00:00Z
S = 1000
SITE, DEVICE, KIND = "demo-server-room", "ups-1", "ups"  # conftest's UPS: in the IT team's scope
HISTORY = f"/api/v1/devices/{SITE}/{DEVICE}/history"
#: Known devices whose ids differ from ups-1's only where a regex or a case-blind match would not see it:
#: an answer for them holding any of ups-1's readings would be foreign data.
LOOKALIKES = [
    Device(site=SITE, device="ups.1", kind=KIND),  # '.' in a regex matches ups-1's '-'
    Device(site=SITE, device="UPS-1", kind=KIND),
    Device(site="demo.server.room", device=DEVICE, kind=KIND),
]


def readings(site: str, device: str, *values: tuple[int, float | None, str]) -> TelemetryMessage:
    """battery.charge readings (seconds after T0, value or None for a bad reading, unit) of one device."""
    chosen = [
        Reading(
            metric="battery.charge",
            value=v,
            unit=unit,
            ts=T0 + s * S,
            quality=Quality.GOOD if v is not None else Quality.BAD,
        )
        for s, v, unit in values
    ]
    return TelemetryMessage(site=site, device=device, kind=KIND, boot=1, seq=1, readings=chosen)


def other_point(point: str, value: float, at_s: int) -> TelemetryMessage:
    reading = Reading(metric=point, value=value, unit="s", ts=T0 + at_s * S)
    return TelemetryMessage(site=SITE, device=DEVICE, kind=KIND, boot=1, seq=2, readings=[reading])


MESSAGES = [
    readings(
        SITE,
        DEVICE,
        (0, 10.0, "%"),  # minute 0
        (20, 20.0, "%"),
        (40, 33.0, "%"),
        (60, None, "%"),  # minute 1: a bad reading only, no value
        (120, 4.5, "%"),  # minute 2
        (150, 5.5, "pct"),  # another unit, so another series of the same point
        (179, 8.0, "%"),
        (180, 100.0, "%"),  # at the end of the 3 minutes: excluded
    ),
    other_point("battery.runtime", 1800.0, 10),  # the same device, another point of the same family
    other_point("battery.charge_level", 77.0, 10),  # a point whose name starts with battery.charge
    readings(SITE, "ups-2", (5, 1000.0, "%")),  # another device of the same site
    readings("demo-palace", DEVICE, (30, 5000.0, "%")),  # a device of the same id at another site
]
POINTS: list[Point] = [point for message in MESSAGES for point in telemetry_points(message)]


def bucket(at_s: int, mean: float, low: float, high: float, count: int) -> dict[str, Any]:
    return {"ts_ms": T0 + at_s * S, "mean": mean, "min": low, "max": high, "count": count}


# -- the two backends ------------------------------------------------------------------------------------------


@pytest.fixture
async def sqlite_history(tmp_path: Path) -> AsyncIterator[HistoryReader]:
    store = SqliteStore(tmp_path / "timeseries.sqlite")
    await store.open()
    await store.write(POINTS)
    try:
        yield SqliteHistory(store)
    finally:
        await store.aclose()


@pytest.fixture
async def influx_reader(influxdb: InfluxDBServer) -> HistoryReader:
    db = unique("api_history_")
    writer = InfluxV1Writer(influxdb.url, database=db, timeout_s=10)  # the hub's writer: CREATE DATABASE, /write
    try:
        await writer.prepare()
        await writer.write_lines(encode_points(POINTS))
    finally:
        await writer.aclose()
    return influx_history(influxdb.url, database=db, timeout_s=10)  # HubApi.aclose closes it


@pytest.fixture(params=["sqlite", "influxdb"])
def history(request: pytest.FixtureRequest) -> HistoryReader:
    reader: HistoryReader = request.getfixturevalue("sqlite_history" if request.param == "sqlite" else "influx_reader")
    return reader


@pytest.fixture
async def api(tmp_path: Path, clock: Clock, settings: ApiSettings, history: HistoryReader) -> AsyncIterator[HubApi]:
    """conftest's API (its users, clock, devices and the `client` and `accounts` fixtures), with this history."""
    devices = Devices([*DEVICES, *LOOKALIKES])
    async with open_api(tmp_path, clock, settings, devices=devices, values=LastValues(), history=history) as api:
        yield api


@pytest.fixture
def it(accounts: dict[Role, Account]) -> dict[str, str]:
    """The IT operator's headers: ups-1 is in their team's scope."""
    return accounts[Role.IT_OPERATOR].headers


async def get_history(client: httpx.AsyncClient, headers: dict[str, str], **params: str) -> httpx.Response:
    params = {"point": "battery.charge", "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:03:00Z", **params}
    return await client.get(HISTORY, params=params, headers=headers)


# -- (a) buckets by hand ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("params", "step_ms", "expected"),
    [
        pytest.param(
            {"step": "60s"},
            60 * S,
            [
                bucket(0, 21.0, 10.0, 33.0, 3),  # [0 s, 60 s): (10 + 20 + 33) / 3 = 63 / 3 = 21
                # [60 s, 120 s): only the bad reading, no value: left out
                bucket(120, 6.0, 4.5, 8.0, 3),  # [120 s, 180 s): (4.5 + 5.5 + 8) / 3 = 18 / 3 = 6, both units
                # 100 at 180 s is at `to`, excluded; ups-2, demo-palace/ups-1, battery.runtime never count
            ],
            id="by-minute",
        ),
        pytest.param(
            {"from": "2026-01-01T00:00:30Z", "to": "2026-01-01T00:02:50Z", "step": "1m"},
            60 * S,
            [
                bucket(30, 33.0, 33.0, 33.0, 1),  # [30 s, 90 s): 33 alone (the bad one at 60 s has no value)
                bucket(90, 4.5, 4.5, 4.5, 1),  # [90 s, 150 s): 4.5 at 120 s; 150 s starts the next bucket
                bucket(150, 5.5, 5.5, 5.5, 1),  # [150 s, 170 s), shorter: 5.5; 8 at 179 s is past `to`
            ],
            id="aligned-on-from-last-bucket-shorter",
        ),
        pytest.param(
            {"step": "3m"},
            180 * S,
            [bucket(0, 13.5, 4.5, 33.0, 6)],  # (10 + 20 + 33 + 4.5 + 5.5 + 8) / 6 = 81 / 6 = 13.5
            id="one-bucket",
        ),
        pytest.param(
            {"from": "2026-01-01T01:00:00+01:00", "to": "2026-01-01T00:01:00", "step": "20s"},
            20 * S,
            [
                bucket(0, 10.0, 10.0, 10.0, 1),  # +01:00 is T0; no offset is UTC; [0 s, 20 s): 10
                bucket(20, 20.0, 20.0, 20.0, 1),  # [20 s, 40 s): 20
                bucket(40, 33.0, 33.0, 33.0, 1),  # [40 s, 60 s): 33
            ],
            id="offsets-and-utc",
        ),
        pytest.param(
            {},  # no step: 180 s / 1 s = 180 buckets, within 300
            1 * S,
            [
                bucket(0, 10.0, 10.0, 10.0, 1),
                bucket(20, 20.0, 20.0, 20.0, 1),
                bucket(40, 33.0, 33.0, 33.0, 1),
                bucket(120, 4.5, 4.5, 4.5, 1),
                bucket(150, 5.5, 5.5, 5.5, 1),
                bucket(179, 8.0, 8.0, 8.0, 1),
            ],
            id="default-step",
        ),
    ],
)
async def test_buckets_match_the_hand_computed_ones_on_both_backends(
    client: httpx.AsyncClient, it: dict[str, str], params: dict[str, str], step_ms: int, expected: list[Any]
) -> None:
    response = await get_history(client, it, **params)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["points"] == expected
    assert (body["site"], body["device"], body["point"], body["step_ms"]) == (SITE, DEVICE, "battery.charge", step_ms)


async def test_a_point_without_readings_in_the_range_has_no_buckets(
    client: httpx.AsyncClient, it: dict[str, str]
) -> None:
    response = await get_history(client, it, **{"from": "2026-01-02T00:00:00Z", "to": "2026-01-03T00:00:00Z"})
    assert response.status_code == 200, response.text
    assert response.json()["points"] == []


# -- (b) refusals ----------------------------------------------------------------------------------------------


def assert_refused(response: httpx.Response, status: int, code: str, says: str) -> None:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert says in body["error"]["message"], body


@pytest.mark.parametrize(
    ("params", "code", "says"),
    [
        # 1 day by the second: 86 400 buckets
        ({"to": "2026-01-02T00:00:00Z", "step": "1s"}, "invalid_range", "86400 buckets asked, at most 1440"),
        # 1440 buckets of 1 min is a day exactly: one second more is 1441
        ({"to": "2026-01-02T00:00:01Z", "step": "1m"}, "invalid_range", "1441 buckets asked, at most 1440"),
        ({"from": "2026-01-01T00:03:00Z", "to": "2026-01-01T00:00:00Z"}, "invalid_range", "to must be after from"),
        ({"to": "2026-01-01T00:00:00Z"}, "invalid_range", "to must be after from"),  # from == to
        ({"from": "1969-12-31T23:59:59Z"}, "invalid_range", "between 1970-01-01 and 2100-01-01"),
        ({"to": "2100-01-01T00:00:00Z"}, "invalid_range", "between 1970-01-01 and 2100-01-01"),
        ({"from": "yesterday"}, "invalid_request", "query.from"),
        ({"step": "500ms"}, "invalid_range", "step must be at least 1 s"),
        ({"step": "0s"}, "invalid_range", "step must be at least 1 s"),
        ({"step": "fast"}, "invalid_request", "step: 'fast' is not a duration"),
        ({"step": "-1m"}, "invalid_request", "step: '-1m' is not a duration"),
        ({"step": "1w"}, "invalid_request", "step: '1w' is not a duration"),
        ({"step": "60" * 9}, "invalid_request", "query.step"),  # longer than 16 characters
        ({"point": "Battery.charge"}, "invalid_request", "query.point"),
        ({"point": "battery..charge"}, "invalid_request", "query.point"),
        ({"point": "battery.charge."}, "invalid_request", "query.point"),
        ({"point": ".charge"}, "invalid_request", "query.point"),
        ({"point": "battery charge"}, "invalid_request", "query.point"),
        ({"point": ""}, "invalid_request", "query.point"),
        ({"point": "a." + "b" * 65}, "invalid_request", "query.point"),  # a level longer than 64
    ],
)
async def test_impossible_requests_answer_422_with_the_reason(
    client: httpx.AsyncClient, it: dict[str, str], params: dict[str, str], code: str, says: str
) -> None:
    assert_refused(await get_history(client, it, **params), 422, code, says)


async def test_a_missing_point_is_422(client: httpx.AsyncClient, it: dict[str, str]) -> None:
    assert_refused(await client.get(HISTORY, headers=it), 422, "invalid_request", "query.point: Field required")


# A step past the range is one bucket; one too long for the stores' numbers (99 999 999 999 999 d is
# 8.64e21 ms: no SQLite integer, no InfluxDB duration) too, since plan() clamps it to the range.
@pytest.mark.parametrize("step", ["99999999999999d", "300000000d", "36500d"])
async def test_a_step_longer_than_the_range_is_one_bucket(
    client: httpx.AsyncClient, it: dict[str, str], step: str
) -> None:
    response = await get_history(client, it, step=step)
    assert response.status_code == 200, response.text
    assert response.json()["points"] == [bucket(0, 13.5, 4.5, 33.0, 6)]  # as "one-bucket" above: 81 / 6


# -- (c) hostile names -----------------------------------------------------------------------------------------

HOSTILE = [
    "ups-1' OR 1=1 --",
    "ups-1' OR '1'='1",
    'ups-1" OR "1"="1',
    "ups-1\\",
    "ups-1\\'",
    "ups-1\n",
    "ups-1\nSELECT * FROM battery",
    "ups-1\r",
    "ups-.*",
    "/.*/",
    "ups-1|ups-2",
    "ups-[0-9]",
    "ups-1;DROP MEASUREMENT battery",
    "ups-1 ",
    "",
]


def path_part(text: str) -> str:
    return quote(text, safe="")


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_device_ids_are_refused(client: httpx.AsyncClient, it: dict[str, str], hostile: str) -> None:
    response = await client.get(
        f"/api/v1/devices/{SITE}/{path_part(hostile)}/history", params={"point": "battery.charge"}, headers=it
    )
    # The id pattern refuses the id (422); an id holding '/' or nothing does not even reach the route (404).
    status = 404 if "/" in hostile or not hostile else 422
    assert_refused(response, status, "invalid_request" if status == 422 else "not_found", "")


@pytest.mark.parametrize("hostile", [h.replace("ups-1", SITE) for h in HOSTILE if h])
async def test_hostile_site_ids_are_refused(client: httpx.AsyncClient, it: dict[str, str], hostile: str) -> None:
    for route in ("history", "values"):
        response = await client.get(
            f"/api/v1/devices/{path_part(hostile)}/{DEVICE}/{route}", params={"point": "battery.charge"}, headers=it
        )
        status = 404 if "/" in hostile else 422
        assert_refused(response, status, "invalid_request" if status == 422 else "not_found", "")


@pytest.mark.parametrize("hostile", [h.replace("ups-1", "battery.charge") for h in HOSTILE])
async def test_hostile_point_names_are_refused(client: httpx.AsyncClient, it: dict[str, str], hostile: str) -> None:
    assert_refused(await get_history(client, it, point=hostile), 422, "invalid_request", "query.point")


@pytest.mark.parametrize(
    ("site", "device", "point"),
    [
        (SITE, "ups.1", "battery.charge"),
        (SITE, "UPS-1", "battery.charge"),
        ("demo.server.room", DEVICE, "battery.charge"),
        (SITE, DEVICE, "battery.charg"),  # a prefix of the point: equality, not LIKE or a regex
        (SITE, DEVICE, "battery"),  # the family alone
        (SITE, DEVICE, "battery.charge_level.x"),
    ],
)
async def test_valid_lookalike_names_reach_the_store_and_find_no_foreign_data(
    client: httpx.AsyncClient, it: dict[str, str], site: str, device: str, point: str
) -> None:
    response = await client.get(
        f"/api/v1/devices/{site}/{device}/history",
        params={"point": point, "from": "2026-01-01T00:00:00Z", "to": "2026-01-01T00:03:00Z", "step": "1m"},
        headers=it,
    )
    assert response.status_code == 200, response.text
    assert response.json()["points"] == []


async def test_the_data_survives_every_hostile_request(client: httpx.AsyncClient, it: dict[str, str]) -> None:
    for hostile in HOSTILE:
        await client.get(f"/api/v1/devices/{SITE}/{path_part(hostile)}/history", params={"point": "battery.charge"})
        await get_history(client, it, point=hostile.replace("ups-1", "battery.charge"))
    response = await get_history(client, it, step="3m")
    assert response.json()["points"] == [bucket(0, 13.5, 4.5, 33.0, 6)]  # as in test "one-bucket" above


@pytest.mark.parametrize("role", [Role.POLICE_OPERATOR, Role.ADP_OPERATOR])
async def test_history_of_another_teams_device_is_404(
    client: httpx.AsyncClient, accounts: dict[Role, Account], role: Role
) -> None:
    assert_refused(await get_history(client, accounts[role].headers), 404, "not_found", "no such device")


# -- (d) last values from a running hub ------------------------------------------------------------------------

ADMIN_PASSWORD = "History-Values-Pass-2026"
PAULA = ("paula", "Cameras-Only-Pass-4821", "police_operator", "police")
ION = ("ion", "Server-Racks-Pass-7315", "it_operator", "it")


async def log_in(http: httpx.AsyncClient, username: str, password: str) -> dict[str, str]:
    login = await http.post("/api/v1/auth/token", data={"username": username, "password": password})
    assert login.status_code == 200, login.text
    return {"Authorization": f"Bearer {login.json()['access_token']}"}


async def test_a_running_hub_serves_the_latest_value_of_each_point(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    root, site, device = unique("values"), "cjt-server-room", "ups-01"
    settings = hub_settings(
        tmp_path, mosquitto.url, client_id=unique("hub-"), mqtt={"topic_root": root},
        api={"bootstrap_admin_password": ADMIN_PASSWORD},
    )  # fmt: skip
    now = int(time.time() * 1000)
    first = [
        Reading(metric="battery.charge", value=97.5, unit="%", ts=now - 3000),
        Reading(metric="battery.runtime", value=1800, unit="s", ts=now - 3000),
        Reading(metric="ups.status", value="OL CHRG", ts=now - 3000),
    ]
    second = [
        Reading(metric="battery.charge", value=96.0, unit="%", ts=now - 2000),
        Reading(metric="ups.on_line", value=True, ts=now - 2000),
        Reading(metric="input.voltage", quality=Quality.BAD, ts=now - 2000),
    ]
    # Buffered by the device and sent last: older than what the hub holds for battery.charge, newer for runtime.
    replayed = [
        Reading(metric="battery.charge", value=50.0, unit="%", ts=now - 60_000),
        Reading(metric="battery.runtime", value=1500, unit="s", ts=now - 1000),
    ]
    messages = [
        TelemetryMessage(site=site, device=device, kind="ups", boot=1, seq=1, readings=first),
        TelemetryMessage(site=site, device=device, kind="ups", boot=1, seq=2, readings=second),
        TelemetryMessage(site=site, device=device, kind="ups", boot=1, seq=3, historical=True, readings=replayed),
    ]
    topic = Topics(root).device(site, device, MessageKind.TELEMETRY)
    async with running_hub(settings) as hub:
        options = SessionOptions(client_id=unique("dev-"))
        async with MqttSession(BrokerAddress.from_url(mosquitto.url), options) as session:
            for message in messages:
                await session.publish(topic, message.model_dump_json(exclude_none=True).encode())

        async def ingested() -> bool:
            return metric_value(hub, "cityhub_hub_historical_messages_total") == 1 and hub.http is not None

        await wait_for(ingested, 15, f"the three messages ingested\n{hub_flow(hub, mosquitto)}")
        assert hub.http is not None
        assert hub.http.bound_port is not None
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{hub.http.bound_port}", timeout=10) as http:
            admin = await log_in(http, "admin", ADMIN_PASSWORD)
            for username, password, role, team in (PAULA, ION):
                created = await http.post(
                    "/api/v1/users",
                    json={"username": username, "password": password, "role": role, "team": team},
                    headers=admin,
                )
                assert created.status_code == 201, created.text
            ion, paula = await log_in(http, *ION[:2]), await log_in(http, *PAULA[:2])
            path = f"/api/v1/devices/{site}/{device}/values"
            mine, theirs = await http.get(path, headers=ion), await http.get(path, headers=paula)
            unknown = await http.get(f"/api/v1/devices/{site}/ups-02/values", headers=ion)

    assert mine.status_code == 200, mine.text
    assert mine.json() == {
        "site": site,
        "device": device,
        "kind": "ups",
        "values": [  # by point name; the value each point had last, whatever order the messages came in
            {"point": "battery.charge", "value": 96.0, "unit": "%", "quality": "good", "ts_ms": now - 2000},
            {"point": "battery.runtime", "value": 1500.0, "unit": "s", "quality": "good", "ts_ms": now - 1000},
            {"point": "input.voltage", "value": None, "unit": None, "quality": "bad", "ts_ms": now - 2000},
            {"point": "ups.on_line", "value": True, "unit": None, "quality": "good", "ts_ms": now - 2000},
            {"point": "ups.status", "value": "OL CHRG", "unit": None, "quality": "good", "ts_ms": now - 3000},
        ],
    }
    # The police see cameras only: for them this UPS does not exist, exactly like one that does not.
    assert_refused(theirs, 404, "not_found", "no such device")
    assert_refused(unknown, 404, "not_found", "no such device")
