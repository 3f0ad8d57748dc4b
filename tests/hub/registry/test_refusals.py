"""Bad input on the registration path: refused with a reason, counted, logged once, nothing stored.

Refused requests never reach the broker or the response topic, so the broker and publish hooks here
fail the test if they are ever called; the registry file is real SQLite.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from cityhub.contract.registration import RegistrationState, RegistrationTopics
from hub.registry.registrar import Registrar, RegistrationPolicy
from hub.registry.store import RegistryStore

TOPICS = RegistrationTopics("cityhub")
SITE, KEY = "cjt-server-room", "k1"
PASSWORD = "s3cret-device-password-0123456789"


class NoBroker:
    async def grant(self, username: str, password: str, devices: Sequence[tuple[str, str]]) -> None:
        raise AssertionError("a refused request reached the broker")

    async def revoke(self, username: str) -> None:
        raise AssertionError("a refused request reached the broker")


async def no_publish(topic: str, payload: bytes, retain: bool) -> None:
    raise AssertionError("a refused request was answered")


async def audit(
    actor: str, action: str, target: str, outcome: str, detail: dict[str, object], source: str | None
) -> None:
    raise AssertionError("a refused request reached the audit log")


@pytest.fixture
async def registrar(tmp_path: Path) -> AsyncIterator[tuple[Registrar, Counter[str]]]:
    store = RegistryStore(tmp_path / "registry.sqlite")
    await store.open()
    refused: Counter[str] = Counter()
    registrar = Registrar(
        store,
        TOPICS,
        NoBroker(),
        no_publish,
        audit,
        RegistrationPolicy(requests_per_minute=6, burst=3),
        on_refused=lambda reason: refused.update([reason]),
    )
    await registrar.open()
    try:
        yield registrar, refused
    finally:
        await store.aclose()


def request(**changes: Any) -> dict[str, Any]:
    body = {
        "device": "ups-01",
        "site": SITE,
        "kind": "ups",
        "password": PASSWORD,
        "nonce": "n0nce-0123456789abcdef",
        "ts": int(time.time() * 1000),
    }
    body.update(changes)
    return body


@pytest.mark.parametrize(
    ("topic", "payload", "reason"),
    [
        ("cityhub/v1/_reg/cjt-server-room/k1/ups-01/reply", request(), "bad_topic"),
        ("cityhub/v1/_reg/cjt-server-room/k+/ups-01/request", request(), "bad_topic"),
        ("cityhub/v1/_reg/cjt-server-room/k1/ups\x0001/request", request(), "bad_topic"),
        (TOPICS.request(SITE, KEY, "ups-01"), b"{not json", "schema"),
        (TOPICS.request(SITE, KEY, "ups-01"), b"\xff\xfe", "schema"),
        (TOPICS.request(SITE, KEY, "ups-01"), request(password="short"), "schema"),
        (TOPICS.request(SITE, KEY, "ups-01"), request(device="ups/#"), "schema"),
        (TOPICS.request(SITE, KEY, "ups-01"), request(extra=1), "schema"),
        (TOPICS.request(SITE, KEY, "ups-01"), request(ts="now"), "schema"),
        (TOPICS.request(SITE, KEY, "ups-01"), request(device="ups-02"), "identity_mismatch"),
        (TOPICS.request(SITE, KEY, "ups-01"), request(site="other-site"), "identity_mismatch"),
        (TOPICS.request(SITE, KEY, "ups-01"), request(ts=int(time.time() * 1000) - 3_600_000), "stale"),
        (TOPICS.request(SITE, KEY, "ups-01"), b"{" + b" " * 70_000 + b"}", "too_large"),
        (
            TOPICS.request(SITE, KEY, "ups-01"),
            request(gateway_for=[{"site": SITE, "device": "ups-01"}]),
            "schema",
        ),
    ],
)
async def test_bad_requests_are_refused_with_a_reason(
    registrar: tuple[Registrar, Counter[str]], topic: str, payload: dict[str, Any] | bytes, reason: str
) -> None:
    reg, refused = registrar
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    assert await reg.handle(topic, body) is None
    assert refused == Counter({reason: 1})
    assert await reg.store.entries() == []
    assert not reg.allows(SITE, "ups-01")


async def test_a_replayed_request_is_refused(tmp_path: Path) -> None:
    store = RegistryStore(tmp_path / "registry.sqlite")
    await store.open()
    published: list[tuple[str, bytes, bool]] = []
    refused: Counter[str] = Counter()

    async def publish(topic: str, payload: bytes, retain: bool) -> None:
        published.append((topic, payload, retain))

    async def record(
        actor: str, action: str, target: str, outcome: str, detail: dict[str, object], source: str | None
    ) -> None:
        pass

    reg = Registrar(store, TOPICS, NoBroker(), publish, record, on_refused=lambda reason: refused.update([reason]))
    body = json.dumps(request()).encode()
    try:
        assert await reg.handle(TOPICS.request(SITE, KEY, "ups-01"), body) is RegistrationState.PENDING
        assert await reg.handle(TOPICS.request(SITE, KEY, "ups-01"), body) is None
        assert refused == Counter({"replayed": 1})
        assert len(published) == 1  # the pending answer to the first, nothing to the replay
        response = json.loads(published[0][1])
        assert response["state"] == "pending"
        assert "password" not in published[0][1].decode()
        assert published[0][2] is True  # retained
    finally:
        await store.aclose()


async def test_a_flood_from_one_key_is_rate_limited(registrar: tuple[Registrar, Counter[str]]) -> None:
    reg, refused = registrar
    for index in range(10):
        await reg.handle(TOPICS.request(SITE, KEY, f"dev-{index}"), b"{not json")
    assert refused == Counter({"schema": 3, "rate_limited": 7})  # burst of 3, then nothing more this minute
    await reg.handle(TOPICS.request(SITE, "k2", "dev-x"), b"{not json")
    assert refused["schema"] == 4  # another key is not held back by the flood
