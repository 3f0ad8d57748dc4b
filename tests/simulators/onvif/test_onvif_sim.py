"""The camera simulator over raw HTTP: SOAP, both kinds of credentials, faults, subscriptions, snapshots."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import os
import time
from collections.abc import AsyncIterator, Callable

import httpx
import pytest
from lxml import etree

from drivers.onvif.topics import NS
from simulators.onvif import FaultMode, SimulatedCamera
from simulators.onvif.auth import password_digest
from simulators.onvif.state import parse_duration

PASSWORD = "cityhub-sim"


def soap(body: str, header: str = "") -> bytes:
    """A SOAP 1.2 request."""
    return (
        f'<s:Envelope xmlns:s="{NS["env"]}" xmlns:tds="{NS["tds"]}" xmlns:tev="{NS["tev"]}" xmlns:wsnt="{NS["wsnt"]}" '
        f'xmlns:trt="{NS["trt"]}"><s:Header>{header}</s:Header><s:Body>{body}</s:Body></s:Envelope>'
    ).encode()


def username_token(password: str, *, created: dt.datetime | None = None, nonce: bytes | None = None) -> str:
    """A WS-Security UsernameToken with PasswordDigest (UsernameToken profile 1.0, section 3.1)."""
    nonce = nonce or os.urandom(16)
    stamp = (created or dt.datetime.now(dt.UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    return (
        f'<wsse:Security xmlns:wsse="{NS["wsse"]}" xmlns:wsu="{NS["wsu"]}"><wsse:UsernameToken>'
        "<wsse:Username>admin</wsse:Username>"
        '<wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0'
        f'#PasswordDigest">{password_digest(nonce, stamp, password)}</wsse:Password>'
        f"<wsse:Nonce>{base64.b64encode(nonce).decode()}</wsse:Nonce><wsu:Created>{stamp}</wsu:Created>"
        "</wsse:UsernameToken></wsse:Security>"
    )


def fault_subcode(response: httpx.Response) -> str | None:
    root = etree.fromstring(response.content)
    return root.findtext(".//{*}Subcode/{*}Value")


@pytest.fixture
async def http(sim: SimulatedCamera) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"http://{sim.host}:{sim.port}", timeout=2) as client:
        yield client


DEVICE = "/onvif/device_service"
INFO = "<tds:GetDeviceInformation/>"


async def test_clock_needs_no_credentials(http: httpx.AsyncClient) -> None:
    response = await http.post(DEVICE, content=soap("<tds:GetSystemDateAndTime/>"))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/soap+xml")
    assert etree.fromstring(response.content).findtext(".//{*}UTCDateTime/{*}Date/{*}Year") == str(
        dt.datetime.now(dt.UTC).year
    )


async def test_without_credentials_the_camera_challenges_for_digest(http: httpx.AsyncClient) -> None:
    response = await http.post(DEVICE, content=soap(INFO))
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith('Digest realm="cityhub-sim", qop="auth"')


@pytest.mark.parametrize(("password", "status"), [(PASSWORD, 200), ("wrong", 401)])
async def test_http_digest_on_soap(http: httpx.AsyncClient, password: str, status: int) -> None:
    response = await http.post(DEVICE, content=soap(INFO), auth=httpx.DigestAuth("admin", password))
    assert response.status_code == status
    if status == 200:
        assert etree.fromstring(response.content).findtext(".//{*}Manufacturer") == "Cityhub"


@pytest.mark.parametrize(
    ("case", "status"),
    [("right", 200), ("wrong password", 400), ("created 5 min ago", 400), ("created in an hour", 400)],
)
async def test_ws_security_username_token(http: httpx.AsyncClient, case: str, status: int) -> None:
    created = {"created 5 min ago": -300, "created in an hour": 3600}.get(case)
    token = username_token(
        "wrong" if case == "wrong password" else PASSWORD,
        created=None if created is None else dt.datetime.now(dt.UTC) + dt.timedelta(seconds=created),
    )
    response = await http.post(DEVICE, content=soap(INFO, token))
    assert response.status_code == status
    if status == 400:
        assert fault_subcode(response) == "ter:NotAuthorized"


async def test_ws_security_refuses_a_replayed_nonce(http: httpx.AsyncClient) -> None:
    token = username_token(PASSWORD, nonce=b"0123456789abcdef")
    assert (await http.post(DEVICE, content=soap(INFO, token))).status_code == 200
    assert (await http.post(DEVICE, content=soap(INFO, token))).status_code == 400


async def test_ws_security_follows_the_skewed_camera_clock(sim: SimulatedCamera, http: httpx.AsyncClient) -> None:
    sim.set_fault(FaultMode.CLOCK_SKEW, 600)
    ours = username_token(PASSWORD)
    theirs = username_token(PASSWORD, created=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=600))
    assert (await http.post(DEVICE, content=soap(INFO, ours))).status_code == 400
    assert (await http.post(DEVICE, content=soap(INFO, theirs))).status_code == 200


def signed(operation: str) -> Callable[[], bytes]:
    """A request with a UsernameToken made when the test runs: one made at collection would be stale by then."""
    return lambda: soap(operation, username_token(PASSWORD))


@pytest.mark.parametrize(
    ("body", "status", "subcode"),
    [
        (b"<not-xml", 400, "ter:WellFormed"),
        (b"<html/>", 400, "ter:WellFormed"),
        (
            b'<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body/></s:Envelope>',
            500,
            "ter:WrongSoapVersion",
        ),
        (soap(""), 400, "ter:MissingAttr"),
        (signed("<tds:Reboot/>"), 500, "ter:ActionNotSupported"),
        (
            signed("<trt:GetStreamUri><trt:ProfileToken>nope</trt:ProfileToken></trt:GetStreamUri>"),
            400,
            "ter:InvalidArgVal",
        ),
    ],
)
async def test_bad_requests_get_soap_faults(
    http: httpx.AsyncClient, body: bytes | Callable[[], bytes], status: int, subcode: str
) -> None:
    response = await http.post("/onvif/media_service", content=body if isinstance(body, bytes) else body())
    assert (response.status_code, fault_subcode(response)) == (status, subcode)


async def test_not_onvif_fault_answers_html(sim: SimulatedCamera, http: httpx.AsyncClient) -> None:
    sim.set_fault(FaultMode.NOT_ONVIF)
    response = await http.post(DEVICE, content=soap("<tds:GetSystemDateAndTime/>"))
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("text/html")


async def test_snapshot_changes_unless_frozen(sim: SimulatedCamera, http: httpx.AsyncClient) -> None:
    auth = httpx.DigestAuth("admin", PASSWORD)
    assert (await http.get("/onvif/snapshot.jpg")).status_code == 401
    first, second = [(await http.get("/onvif/snapshot.jpg", auth=auth)).content for _ in range(2)]
    assert first != second
    assert first[:2] == second[:2] == b"\xff\xd8"
    assert first.endswith(b"\xff\xd9")
    sim.set_fault(FaultMode.FROZEN)
    third, fourth = [(await http.get("/onvif/snapshot.jpg", auth=auth)).content for _ in range(2)]
    assert third == fourth == second


async def test_offline_refuses_and_comes_back(sim: SimulatedCamera, http: httpx.AsyncClient) -> None:
    sim.set_fault(FaultMode.OFFLINE)
    await sim.settled()
    with pytest.raises(httpx.ConnectError):
        await http.post(DEVICE, content=soap("<tds:GetSystemDateAndTime/>"))
    sim.clear_fault()
    await sim.settled()
    assert (await http.post(DEVICE, content=soap("<tds:GetSystemDateAndTime/>"))).status_code == 200


async def test_hang_holds_requests_until_cleared(sim: SimulatedCamera, http: httpx.AsyncClient) -> None:
    sim.set_fault(FaultMode.HANG)
    with pytest.raises(httpx.ReadTimeout):
        await http.post(DEVICE, content=soap("<tds:GetSystemDateAndTime/>"), timeout=0.3)
    sim.clear_fault()
    assert (await http.post(DEVICE, content=soap("<tds:GetSystemDateAndTime/>"))).status_code == 200


async def test_reboot_forgets_subscriptions_and_comes_back(sim: SimulatedCamera) -> None:
    sim.state.subscribe(sim.state.now() + dt.timedelta(seconds=60))
    booted = sim.state.boot_time
    started = time.monotonic()
    sim.set_fault(FaultMode.REBOOT, 1)
    await sim.settled()
    assert 1.0 <= time.monotonic() - started < 2
    assert sim.state.subscriptions == {}
    assert sim.state.boot_time > booted
    assert sim.fault is FaultMode.NONE


async def subscribe(http: httpx.AsyncClient, termination: str) -> str:
    token = username_token(PASSWORD)
    term = f"<tev:InitialTerminationTime>{termination}</tev:InitialTerminationTime>"
    body = f"<tev:CreatePullPointSubscription>{term}</tev:CreatePullPointSubscription>"
    response = await http.post("/onvif/events_service", content=soap(body, token))
    address = etree.fromstring(response.content).findtext(".//{*}SubscriptionReference/{*}Address")
    assert address is not None
    return address.split(str(http.base_url).rstrip("/"))[1]


def pull(timeout: str = "PT1S") -> bytes:
    return soap(
        f"<tev:PullMessages><tev:Timeout>{timeout}</tev:Timeout><tev:MessageLimit>10</tev:MessageLimit></tev:PullMessages>",
        username_token(PASSWORD),
    )


async def test_pull_messages_long_polls_until_a_change(sim: SimulatedCamera, http: httpx.AsyncClient) -> None:
    path = await subscribe(http, "PT10S")
    initial = etree.fromstring((await http.post(path, content=pull("PT0S"))).content)
    assert len(initial.findall(".//{*}NotificationMessage")) == 5
    asyncio.get_running_loop().call_later(0.2, sim.set, "camera.tamper", True)
    started = time.monotonic()
    changed = etree.fromstring((await http.post(path, content=pull("PT5S"))).content)
    assert 0.15 < time.monotonic() - started < 1
    [item] = changed.findall(".//{*}Data/{*}SimpleItem")
    assert (item.get("Name"), item.get("Value")) == ("IsTamper", "true")


async def test_subscription_expires_by_its_termination_time(http: httpx.AsyncClient) -> None:
    path = await subscribe(http, "PT1S")
    await asyncio.sleep(1.2)
    response = await http.post(path, content=pull("PT0S"))
    assert (response.status_code, fault_subcode(response)) == (400, "wsrf-rw:ResourceUnknownFault")


async def test_renew_and_unsubscribe(sim: SimulatedCamera, http: httpx.AsyncClient) -> None:
    path = await subscribe(http, "PT1S")
    renew = soap(
        "<wsnt:Renew><wsnt:TerminationTime>PT30S</wsnt:TerminationTime></wsnt:Renew>", username_token(PASSWORD)
    )
    assert (await http.post(path, content=renew)).status_code == 200
    await asyncio.sleep(1.1)
    assert len(sim.state.live()) == 1  # renewed past its first termination time
    unsubscribe = soap("<wsnt:Unsubscribe/>", username_token(PASSWORD))
    assert (await http.post(path, content=unsubscribe)).status_code == 200
    assert sim.state.live() == {}


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("PT60S", 60.0), ("PT1M30S", 90.0), ("P1DT1H", 90000.0), ("PT0.5S", 0.5), ("PT", None), ("60", None)],
)
def test_durations(text: str, seconds: float | None) -> None:
    assert parse_duration(text) == seconds
