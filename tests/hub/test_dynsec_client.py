"""hub.dynsec without a plugin in the way: validation, error mapping, timeouts, a broker without the plugin."""

from __future__ import annotations

import pytest
from services import MosquittoServer, SecureMosquittoServer

from cityhub.mqtt import BrokerAddress
from hub.dynsec import (
    AlreadyExists,
    CommandFailed,
    DynSecAccess,
    DynSecClient,
    DynSecTimeout,
    DynSecUnavailable,
    NotFound,
)
from hub.dynsec.acl import device_acls, hub_acls, provisioning_acls, validate_name, validate_password
from hub.dynsec.errors import command_failed

GOOD_PASSWORD = "correct-horse-battery-staple"
BAD_IDS = ["a+b", "a#", "+", "#", "a/b", "", "a b", "a\x00b", "a\nb", "dev\x7f", "é", "-lead", "x" * 65]


@pytest.mark.parametrize(
    ("error", "kind"),
    [
        ("Client not found", NotFound),
        ("Role not found", NotFound),
        ("Role does not exist", NotFound),
        ("ACL not found", NotFound),
        ("Client already exists", AlreadyExists),
        ("Role already exists", AlreadyExists),
        ("ACL with this topic already exists", AlreadyExists),
        ("Invalid/missing username", CommandFailed),
    ],
)
def test_plugin_errors_map_to_typed_exceptions(error: str, kind: type[CommandFailed]) -> None:
    exc = command_failed("createClient", error)
    assert type(exc) is kind
    assert (exc.command, exc.error) == ("createClient", error)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_ids_with_wildcards_or_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid device"):
        device_acls("cityhub", [("site-1", bad)])
    with pytest.raises(ValueError, match="invalid site"):
        device_acls("cityhub", [(bad, "dev-1")])
    with pytest.raises(ValueError, match="invalid site"):
        provisioning_acls("cityhub", bad, "key1")


@pytest.mark.parametrize("bad", ["a+b", "a#b", "a/b", "", "a b", "a\x00b", "a\tb", "+", "#", "$CONTROL"])
def test_usernames_with_wildcards_or_control_characters_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid username"):
        validate_name(bad)


@pytest.mark.parametrize("bad", ["short", "has space in it here", "tab\tinside-the-password", "ü" * 20, "x" * 257])
def test_weak_or_unprintable_passwords_are_refused_without_echoing_them(bad: str) -> None:
    with pytest.raises(ValueError, match="invalid password") as info:
        validate_password(bad)
    assert bad not in str(info.value)


def test_acl_patterns() -> None:
    assert [(str(a.acltype), a.topic) for a in device_acls("city/x", [("s1", "d1"), ("s2", "d2"), ("s1", "d1")])] == [
        ("publishClientSend", "city/x/v1/s1/d1/+"),
        ("publishClientSend", "city/x/v1/s2/d2/+"),
    ]
    assert [(str(a.acltype), a.topic) for a in provisioning_acls("cityhub", "s1", "k1")] == [
        ("publishClientSend", "cityhub/v1/_reg/s1/k1/+/request"),
        ("subscribePattern", "cityhub/v1/_reg/s1/k1/+/response"),
        ("publishClientReceive", "cityhub/v1/_reg/s1/k1/+/response"),
    ]
    assert {a.topic for a in hub_acls("cityhub")} == {
        "cityhub/v1/#",
        "$share/+/cityhub/v1/#",
        "cityhub/v1/_hub/#",
        "cityhub/v1/_reg/+/+/+/response",
    }
    with pytest.raises(ValueError, match="at least one"):
        device_acls("cityhub", [])
    with pytest.raises(ValueError, match="invalid topic root"):
        hub_acls("city/#")


def test_client_needs_admin_credentials() -> None:
    with pytest.raises(ValueError, match="username and a password"):
        DynSecClient(BrokerAddress.from_url("mqtt://127.0.0.1:1883"))


async def test_wrong_admin_password_is_unavailable(secure_mosquitto: SecureMosquittoServer) -> None:
    address = BrokerAddress(host=secure_mosquitto.host, port=secure_mosquitto.port, username="admin", password="nope")
    with pytest.raises(DynSecUnavailable, match="login failed"):
        async with DynSecClient(address, timeout_s=5.0):
            pass


async def test_broker_without_the_plugin_times_out(mosquitto: MosquittoServer) -> None:
    # The shared test broker has no plugin: nobody answers on the control topic.
    address = BrokerAddress(host=mosquitto.host, port=mosquitto.port, username="admin", password="whatever")
    async with DynSecClient(address, timeout_s=5.0) as client:
        with pytest.raises(DynSecTimeout, match=r"within 0.5 s \(listClients\)"):
            await client.command("listClients", timeout_s=0.5)


async def test_invalid_input_never_reaches_the_broker(dynsec_access: DynSecAccess) -> None:
    before = await dynsec_access.list_clients()
    with pytest.raises(ValueError, match="invalid device"):
        await dynsec_access.grant("dev:s1:ok", GOOD_PASSWORD, [("s1", "ok"), ("s1", "a/#")])
    with pytest.raises(ValueError, match="invalid username"):
        await dynsec_access.grant("dev:s1:+", GOOD_PASSWORD, [("s1", "ok")])
    with pytest.raises(ValueError, match="invalid provisioning key"):
        await dynsec_access.ensure_provisioning_key("s1", "k/#", GOOD_PASSWORD)
    with pytest.raises(ValueError, match="invalid provisioning secret"):
        await dynsec_access.ensure_provisioning_key("s1", "k1", "short")
    with pytest.raises(ValueError, match="invalid username"):
        await dynsec_access.revoke("dev:#")
    assert await dynsec_access.list_clients() == before


async def test_commands_raise_typed_errors_and_helpers_are_idempotent(dynsec_access: DynSecAccess) -> None:
    client = dynsec_access.client
    with pytest.raises(NotFound, match="Client not found"):
        await client.get_client("dev:nowhere:nobody")
    acls = device_acls("cityhub", [("errs", "d1")])
    assert await client.ensure_role("role:test-errs", acls) is True
    assert await client.ensure_role("role:test-errs", acls) is False
    with pytest.raises(AlreadyExists, match="Role already exists"):
        await client.create_role("role:test-errs", acls)
    wider = device_acls("cityhub", [("errs", "d1"), ("errs", "d2")])
    assert await client.ensure_role("role:test-errs", wider) is True
    assert set((await client.get_role("role:test-errs")).acls) == set(wider)
    assert await client.delete_role_if_present("role:test-errs") is True
    assert await client.delete_role_if_present("role:test-errs") is False
    await dynsec_access.revoke("dev:nowhere:nobody")  # revoking nothing is not an error
    await dynsec_access.delete("dev:nowhere:nobody")
    with pytest.raises(NotFound):
        await dynsec_access.enable("dev:nowhere:nobody")


async def test_several_commands_in_one_document(dynsec_access: DynSecAccess) -> None:
    answers = await dynsec_access.client.execute(
        [{"command": "getClient", "username": "admin"}, {"command": "getClient", "username": "dev:none:none"}]
    )
    assert answers[0]["data"]["client"]["username"] == "admin"
    assert answers[1]["error"] == "Client not found"
