"""The alert lifecycle over the API, with the real store, rules and notifier on a simulated clock:
acknowledge, escalate when nobody does, silence, maintenance window, resolve (by the rules or by hand),
rules validated and reloaded; notifications land in a local SMTP server and a local webhook receiver."""

from __future__ import annotations

import asyncio
import contextlib
import email
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from prometheus_client import CollectorRegistry
from services import free_port
from testkit import acknowledged

from cityhub.contract import DeviceEvent, EventMessage
from cityhub.contract.alerts import AlertMessage
from cityhub.http import create_app
from hub.alerts.config import AlertsConfig
from hub.alerts.service import AlertService
from hub.api import HubApi, build_api
from hub.api.roles import PERMISSIONS, Permission, Role
from hub.api.routers import alerts
from hub.api.settings import ADP_KINDS
from hub.notify import NotifyConfig, verify_signature

from .conftest import Account

SECRET = "webhook-secret-0123456789"
START_MS = 1_700_000_000_000
UPS_RULE = """\
rules:
  - id: ups.on-battery
    summary: "{site}: UPS {device} is on battery"
    severity: major
    team: it
    runbook: docs/runbooks/ups.md#on-battery
    select: {kind: ups}
    when:
      event: {type: ups.on_battery}
"""


class SimClock:
    def __init__(self) -> None:
        self.ms = START_MS

    def __call__(self) -> int:
        return self.ms


class Inbox:
    """What the outside world received: e-mails, webhook calls, MQTT publications."""

    def __init__(self) -> None:
        self.mails: list[email.message.Message] = []
        self.hooks: list[dict[str, Any]] = []
        self.mqtt: list[tuple[str, dict[str, Any]]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append(email.message_from_bytes(envelope.content))
        return "250 OK"

    async def hook(self, request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        assert verify_signature(
            SECRET.encode(), h["X-Cityhub-Timestamp"], body, h["X-Cityhub-Signature"], now_s=time.time()
        )
        self.hooks.append(json.loads(body))
        return web.Response(status=204)

    def publish(self, topic: str, payload: bytes) -> asyncio.Future[None]:
        self.mqtt.append((topic, json.loads(payload)))
        return acknowledged()

    def events(self) -> list[str]:
        return [hook["event"] for hook in self.hooks]


@contextlib.asynccontextmanager
async def outside_world() -> AsyncIterator[tuple[Inbox, str, str]]:
    inbox = Inbox()
    smtp = Controller(inbox, hostname="127.0.0.1", port=free_port())
    smtp.start()
    app = web.Application()
    app.router.add_post("/hook", inbox.hook)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    mail_url = f"mailto://127.0.0.1:{smtp.port}?from=hub@example.org&to=it-duty@example.org&mode=insecure"
    try:
        yield inbox, mail_url, f"http://127.0.0.1:{port}/hook"
    finally:
        await runner.cleanup()
        smtp.stop()


@pytest.fixture
def app(api: HubApi) -> Any:
    application = create_app(CollectorRegistry(), lambda: {"status": "ok"}, title="cityhub hub (test)")
    return build_api(application, api, routers=[alerts.router])


@pytest.fixture
async def world(tmp_path: Path, app: Any, request: pytest.FixtureRequest) -> AsyncIterator[dict[str, Any]]:
    alerts_extra: dict[str, Any] = getattr(request, "param", {})
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(UPS_RULE)
    clock = SimClock()
    async with outside_world() as (inbox, mail_url, hook_url):
        notifications = NotifyConfig.model_validate(
            {
                "channels": {
                    "it-mail": {"type": "apprise", "urls": [mail_url]},
                    "ops-hook": {"type": "webhook", "url": hook_url, "secret": SECRET},
                },
                "routes": {"it": ["it-mail", "ops-hook"], "police": ["ops-hook"]},
                "retry": {"attempts": 2, "initial_s": 0.01},
            }
        )
        config = AlertsConfig.model_validate(
            {"rules": [rules_file], "tick_s": 0.02, "escalation": [{"after": "15m", "teams": ["police"]}]}
            | alerts_extra
        )
        async with running_service(app, config, notifications, tmp_path, inbox, clock) as service:
            yield {"service": service, "inbox": inbox, "clock": clock, "rules_file": rules_file}


@contextlib.asynccontextmanager
async def running_service(
    app: Any, config: AlertsConfig, notifications: NotifyConfig, data_dir: Path, inbox: Inbox, clock: Any = None
) -> AsyncIterator[AlertService]:
    """An AlertService serving the API's alert routes, running (rules, clock, notifier) for the block."""
    service = AlertService(
        config, notifications, data_dir=data_dir, topic_root="ch", hub_id="hub-t", publish=inbox.publish,
        registry=CollectorRegistry(), **({"clock_ms": clock} if clock else {}),
    )  # fmt: skip
    await service.open()
    app.state.cityhub_alerts = service
    stop = asyncio.Event()
    task = asyncio.create_task(service.run(stop))
    try:
        yield service
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await service.aclose()


def on_battery(active: bool, at_ms: int, device: str = "ups-1", seq: int = 1) -> EventMessage:
    return EventMessage(
        site="demo-server-room", device=device, kind="ups", boot=1, seq=seq,
        events=[DeviceEvent(type="ups.on_battery", ts=at_ms, active=active)],
    )  # fmt: skip


async def until(predicate: Any) -> None:
    async with asyncio.timeout(10):
        while not predicate():  # noqa: ASYNC110 (polls what other tasks and servers do)
            await asyncio.sleep(0.02)


async def open_alert(client: httpx.AsyncClient, who: Account) -> dict[str, Any]:
    response = await client.get("/api/v1/alerts", params={"state": "firing"}, headers=who.headers)
    assert response.status_code == 200, response.text
    [alert] = response.json()["items"]
    return dict(alert)


async def test_fire_escalate_acknowledge_resolve_with_history_and_notifications(
    world: dict[str, Any], client: httpx.AsyncClient, accounts: dict[Role, Account]
) -> None:
    service, inbox, clock = world["service"], world["inbox"], world["clock"]
    ion, paula = accounts[Role.IT_OPERATOR], accounts[Role.POLICE_OPERATOR]
    service.observe(on_battery(True, clock.ms))
    await until(lambda: inbox.mails and inbox.hooks)
    alert = await open_alert(client, ion)
    assert (alert["rule"], alert["state"], alert["team"]) == ("ups.on-battery", "firing", "it")
    assert "demo-server-room: UPS ups-1 is on battery" in inbox.mails[0]["Subject"]
    assert [topic for topic, _ in inbox.mqtt] == ["ch/v1/_hub/alerts/it"]
    AlertMessage.model_validate(inbox.mqtt[0][1])

    # The same condition again (a redelivery): no second alert, nobody told twice.
    service.observe(on_battery(True, clock.ms + 1, seq=2))
    # Nobody acknowledges for 15 minutes: the police team (second contact) is told as well.
    clock.ms += 15 * 60_000
    await until(lambda: "escalated" in inbox.events())
    assert ("ch/v1/_hub/alerts/police", "escalated") in [(t, m["event"]) for t, m in inbox.mqtt]
    assert inbox.events() == ["firing", "escalated"]

    # The police operator cannot see an IT alert; the IT operator acknowledges it.
    assert (await client.get(f"/api/v1/alerts/{alert['id']}", headers=paula.headers)).status_code == 404
    ack = await client.post(f"/api/v1/alerts/{alert['id']}/ack", json={"comment": "on my way"}, headers=ion.headers)
    assert ack.status_code == 200, ack.text
    assert (ack.json()["state"], ack.json()["acked_by"]) == ("acknowledged", "ion")
    again = await client.post(f"/api/v1/alerts/{alert['id']}/ack", json={}, headers=ion.headers)
    assert again.status_code == 409
    await until(lambda: inbox.events()[-1:] == ["acknowledged"])
    clock.ms += 60 * 60_000  # acknowledged: no further escalation
    await asyncio.sleep(0.2)

    # Mains back: the rules resolve it.
    service.observe(on_battery(False, clock.ms, seq=3))
    await until(lambda: inbox.events()[-1:] == ["resolved"])
    detail = (await client.get(f"/api/v1/alerts/{alert['id']}", headers=ion.headers)).json()
    assert detail["state"] == "resolved"
    assert detail["resolved_by"] == "rules"
    assert [h["event"] for h in detail["history"]] == ["firing", "escalated", "acknowledged", "resolved"]
    assert detail["history"][2]["actor"] == "ion"
    assert inbox.events() == ["firing", "escalated", "acknowledged", "resolved"]
    await until(lambda: len(inbox.mails) == 4)


async def test_resolve_by_hand_and_comment(
    world: dict[str, Any], client: httpx.AsyncClient, accounts: dict[Role, Account]
) -> None:
    service, inbox, clock = world["service"], world["inbox"], world["clock"]
    ion = accounts[Role.IT_OPERATOR]
    service.observe(on_battery(True, clock.ms))
    await until(lambda: inbox.hooks)
    alert = await open_alert(client, ion)
    noted = await client.post(
        f"/api/v1/alerts/{alert['id']}/comment", json={"text": "generator test"}, headers=ion.headers
    )
    assert noted.status_code == 200
    done = await client.post(f"/api/v1/alerts/{alert['id']}/resolve", json={"comment": "planned"}, headers=ion.headers)
    assert (done.status_code, done.json()["state"], done.json()["resolved_by"]) == (200, "resolved", "ion")
    await until(lambda: inbox.events()[-1:] == ["resolved"])
    history = (await client.get(f"/api/v1/alerts/{alert['id']}", headers=ion.headers)).json()["history"]
    assert [h["event"] for h in history] == ["firing", "commented", "resolved"]
    # Scope and roles: a viewer reads but cannot act.
    vera = accounts[Role.VIEWER]
    assert (await client.post(f"/api/v1/alerts/{alert['id']}/ack", json={}, headers=vera.headers)).status_code == 403


async def test_a_silence_mutes_notifications_but_keeps_the_alert(
    world: dict[str, Any], client: httpx.AsyncClient, accounts: dict[Role, Account]
) -> None:
    service, inbox, clock = world["service"], world["inbox"], world["clock"]
    ion = accounts[Role.IT_OPERATOR]
    body = {"matchers": {"site": "demo-server-room", "kind": "ups"}, "duration": "2h", "comment": "battery swap"}
    created = await client.post("/api/v1/silences", json=body, headers=ion.headers)
    assert created.status_code == 201, created.text
    service.observe(on_battery(True, clock.ms))
    await until(lambda: service.manager.open_alerts)
    await asyncio.sleep(0.3)
    assert inbox.hooks == []
    assert inbox.mails == []
    alert = await open_alert(client, ion)
    assert alert["muted_by"] == f"silence:{created.json()['id']}"
    listed = (await client.get("/api/v1/silences", headers=ion.headers)).json()
    assert [(s["author"], s["comment"]) for s in listed["items"]] == [("ion", "battery swap")]
    bad = {"matchers": {"colour": "red"}, "duration": "1h", "comment": "x"}
    assert (await client.post("/api/v1/silences", json=bad, headers=ion.headers)).status_code == 422
    ended = await client.delete(f"/api/v1/silences/{created.json()['id']}", headers=ion.headers)
    assert ended.status_code == 200


async def test_silences_page_newest_first_and_tell_those_in_force_from_those_over(
    world: dict[str, Any], client: httpx.AsyncClient, accounts: dict[Role, Account]
) -> None:
    service, inbox, clock = world["service"], world["inbox"], world["clock"]
    ion = accounts[Role.IT_OPERATOR]
    ids = []
    for minutes, comment in ((1, "short"), (60, "long"), (120, "longest")):
        body = {"matchers": {"site": "demo-server-room", "kind": "ups"}, "duration": f"{minutes}m", "comment": comment}
        created = await client.post("/api/v1/silences", json=body, headers=ion.headers)
        assert created.status_code == 201, created.text
        ids.append(created.json()["id"])
        clock.ms += 1  # distinct creation instants: newest first is then well defined
    clock.ms += 5 * 60_000  # the 1-minute silence is over, the others are not

    async def listing(**params: object) -> dict[str, Any]:
        answer = await client.get("/api/v1/silences", params=params, headers=ion.headers)
        assert answer.status_code == 200, answer.text
        return answer.json()  # type: ignore[no-any-return]

    first, rest = await listing(limit=2), await listing(limit=2, offset=2)
    assert ([s["id"] for s in first["items"] + rest["items"]], first["next_offset"], rest["next_offset"]) == (
        ids[::-1], 2, None,
    )  # fmt: skip
    assert [s["comment"] for s in (await listing(ended="true"))["items"]] == ["short"]
    assert [s["comment"] for s in (await listing(ended="false"))["items"]] == ["longest", "long"]
    # Ending one by hand moves it to those over, and its alerts notify again.
    assert (await client.delete(f"/api/v1/silences/{ids[1]}", headers=ion.headers)).status_code == 200
    assert [s["comment"] for s in (await listing(ended="false"))["items"]] == ["longest"]
    assert (await client.delete(f"/api/v1/silences/{ids[2]}", headers=ion.headers)).status_code == 200
    service.observe(on_battery(True, clock.ms))
    await until(lambda: inbox.hooks)
    alert = await open_alert(client, ion)
    assert alert["muted_by"] is None
    assert (await client.get("/api/v1/silences", params={"ended": "maybe"}, headers=ion.headers)).status_code == 422


@pytest.mark.parametrize(
    "world",
    [{"maintenance": [{"name": "ups-service", "days": ["mon", "tue", "wed", "thu", "fri", "sat", "sun"],
                       "start": "00:00", "duration": "24h", "timezone": "Europe/Bucharest",
                       "match": {"kind": "ups"}}]}],
    indirect=True,
)  # fmt: skip
async def test_a_maintenance_window_mutes_notifications(
    world: dict[str, Any], client: httpx.AsyncClient, accounts: dict[Role, Account]
) -> None:
    service, inbox, clock = world["service"], world["inbox"], world["clock"]
    service.observe(on_battery(True, clock.ms))
    await until(lambda: service.manager.open_alerts)
    await asyncio.sleep(0.3)
    assert inbox.hooks == []
    alert = await open_alert(client, accounts[Role.IT_OPERATOR])
    assert alert["muted_by"] == "maintenance:ups-service"


async def test_rules_validate_and_a_bad_reload_keeps_the_rules_in_force(
    world: dict[str, Any], client: httpx.AsyncClient, accounts: dict[Role, Account]
) -> None:
    service, inbox, clock = world["service"], world["inbox"], world["clock"]
    ion, paula = accounts[Role.IT_OPERATOR], accounts[Role.POLICE_OPERATOR]
    broken = UPS_RULE.replace("team: it", "team: firemen").replace("severity: major", "severity: urgent")
    checked = await client.post("/api/v1/rules/validate", json={"text": broken}, headers=ion.headers)
    assert checked.json()["valid"] is False
    assert checked.json()["errors"][0].startswith("request:4: rule 'ups.on-battery': severity:")
    assert checked.json()["errors"][1].startswith("request:5: rule 'ups.on-battery': team: unknown team 'firemen'")
    assert (
        await client.post("/api/v1/rules/validate", json={"text": UPS_RULE}, headers=paula.headers)
    ).status_code == 403

    world["rules_file"].write_text(broken)
    refused = await client.post("/api/v1/rules/reload", headers=ion.headers)
    assert refused.status_code == 422
    assert f"{world['rules_file']}:5: rule 'ups.on-battery': team" in refused.text
    in_force = (await client.get("/api/v1/rules", headers=ion.headers)).json()
    assert ([r["id"] for r in in_force["items"]], in_force["next_offset"]) == (["ups.on-battery"], None)
    for filters, expected in (({"team": "it"}, ["ups.on-battery"]), ({"team": "police"}, []),
                              ({"severity": "major"}, ["ups.on-battery"]), ({"severity": "info"}, [])):  # fmt: skip
        chosen = (await client.get("/api/v1/rules", params=filters, headers=ion.headers)).json()
        assert [r["id"] for r in chosen["items"]] == expected, filters
    service.observe(on_battery(True, clock.ms))  # the rules in force still work
    await until(lambda: inbox.hooks)

    world["rules_file"].write_text(UPS_RULE.replace("ups.on-battery", "ups.mains-lost"))
    reloaded = await client.post("/api/v1/rules/reload", headers=ion.headers)
    assert reloaded.json() == {"rules": 1}
    await until(lambda: inbox.events() == ["firing", "resolved", "firing"])  # the old rule's alert resolves
    assert [m["rule"] for m in inbox.hooks] == ["ups.on-battery", "ups.on-battery", "ups.mains-lost"]


async def test_a_notification_that_fails_is_written_into_the_alert_history(
    tmp_path: Path, app: Any, client: httpx.AsyncClient, accounts: dict[Role, Account]
) -> None:
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(UPS_RULE)
    dead = {"type": "webhook", "url": f"http://127.0.0.1:{free_port()}/", "secret": SECRET}
    notifications = NotifyConfig.model_validate(
        {"channels": {"dead": dead}, "routes": {"it": ["dead"]}, "retry": {"attempts": 2, "initial_s": 0.01}}
    )
    config = AlertsConfig(rules=[rules_file], tick_s=0.02)
    async with running_service(app, config, notifications, tmp_path, Inbox()) as service:
        service.observe(on_battery(True, int(time.time() * 1000)))
        ion = accounts[Role.IT_OPERATOR]

        async def failure_noted() -> list[dict[str, Any]]:
            alert = await open_alert(client, ion)
            history = (await client.get(f"/api/v1/alerts/{alert['id']}", headers=ion.headers)).json()["history"]
            return [h for h in history if h["event"] == "notification_failed"]

        async with asyncio.timeout(10):
            while not (noted := await failure_noted()):  # noqa: ASYNC110 (polls the API)
                await asyncio.sleep(0.05)
        assert noted[0]["detail"]["channel"] == "dead"
        assert "ConnectError" in noted[0]["detail"]["error"]


#: Every alert, silence and rule route, with the permission it needs ({id}: an open IT alert).
ALERT_ROUTES = [
    ("GET", "/api/v1/alerts", Permission.ALERTS_READ, None),
    ("GET", "/api/v1/alerts/{id}", Permission.ALERTS_READ, None),
    ("POST", "/api/v1/alerts/{id}/comment", Permission.ALERTS_ACK, {"text": "looking"}),
    ("POST", "/api/v1/alerts/{id}/ack", Permission.ALERTS_ACK, {}),
    ("POST", "/api/v1/alerts/{id}/resolve", Permission.ALERTS_ACK, {}),
    ("GET", "/api/v1/silences", Permission.ALERTS_READ, None),
    ("POST", "/api/v1/silences", Permission.ALERTS_ACK, {"duration": "1m", "comment": "works"}),
    ("GET", "/api/v1/rules", Permission.RULES_READ, None),
    ("POST", "/api/v1/rules/validate", Permission.RULES_WRITE, {"text": UPS_RULE}),
    ("POST", "/api/v1/rules/reload", Permission.RULES_WRITE, None),
]
#: A kind of each role's team: a scoped operator may silence only their own kinds.
OWN_KIND = {Role.ADMIN: "ups", Role.IT_OPERATOR: "ups", Role.POLICE_OPERATOR: "camera", Role.ADP_OPERATOR: ADP_KINDS[0],
            Role.VIEWER: "ups"}  # fmt: skip


@pytest.mark.parametrize("role", list(Role))
async def test_every_alert_route_by_every_role(
    world: dict[str, Any], client: httpx.AsyncClient, accounts: dict[Role, Account], role: Role
) -> None:
    """401 without a token, 403 without the permission; with it, past both (a scoped caller may get 404)."""
    world["service"].observe(on_battery(True, world["clock"].ms))
    await until(lambda: world["service"].manager.open_alerts)
    alert_id = world["service"].manager.open_alerts[0].id
    who = accounts[role]
    for method, route, permission, body in ALERT_ROUTES:
        url = route.replace("{id}", alert_id)
        if route == "/api/v1/silences" and body is not None:
            body = {**body, "matchers": {"site": "demo-server-room", "kind": OWN_KIND[role]}}
        anonymous = await client.request(method, url, json=body)
        assert anonymous.status_code == 401, f"{method} {route} without a token"
        answer = await client.request(method, url, json=body, headers=who.headers)
        if permission in PERMISSIONS[role]:
            assert answer.status_code not in (401, 403), f"{role} {method} {route}: {answer.text}"
            assert answer.status_code < 500, f"{role} {method} {route}: {answer.text}"
        else:
            assert answer.status_code == 403, f"{role} {method} {route}: {answer.status_code}"
            assert answer.json()["error"]["code"] == "forbidden"


def test_every_alert_route_is_in_that_list(app: Any) -> None:
    prefixes = ("/api/v1/alerts", "/api/v1/silences", "/api/v1/rules")
    paths = app.openapi()["paths"]
    declared = {(m.upper(), path) for path, ops in paths.items() if path.startswith(prefixes) for m in ops}
    declared -= {("GET", "/api/v1/alerts/stream")}  # the console's stream: tests/hub/console/test_stream.py
    listed = {(m, r.replace("{id}", "{alert_id}")) for m, r, _, _ in ALERT_ROUTES}
    assert declared - {("DELETE", "/api/v1/silences/{silence_id}")} == listed
