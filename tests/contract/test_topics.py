"""The topic namespace: building, parsing, and refusing what is not a device topic."""

from __future__ import annotations

import pytest

from cityhub.contract import MessageKind, TopicError, Topics


def test_device_topic_round_trips() -> None:
    topics = Topics("city/timis")
    topic = topics.device("cjt-server-room", "ups-01", MessageKind.TELEMETRY)
    assert topic == "city/timis/v1/cjt-server-room/ups-01/telemetry"
    parsed = topics.parse(topic)
    assert (parsed.site, parsed.device, parsed.kind) == ("cjt-server-room", "ups-01", MessageKind.TELEMETRY)


@pytest.mark.parametrize(
    ("topic", "fragment"),
    [
        ("cityhub/v1/site/+/telemetry", "wildcard"),
        ("cityhub/v1/site/dev/#", "wildcard"),
        ("cityhub/v1/si\x01te/dev/telemetry", "control character"),
        ("cityhub/v1/site/dev\x7f/telemetry", "control character"),
        ("other/v1/site/dev/telemetry", "outside"),
        ("cityhub/v2/site/dev/telemetry", "outside"),
        ("cityhub/v1/site/dev/telemetry/extra", "must be"),
        ("cityhub/v1/site/telemetry", "must be"),
        ("cityhub/v1/_hub/dev/telemetry", "site id"),
        ("cityhub/v1/site/dev ice/telemetry", "device id"),
        ("cityhub/v1/site/dev/commands", "unknown message kind"),
    ],
)
def test_parse_refuses_non_device_topics(topic: str, fragment: str) -> None:
    with pytest.raises(TopicError) as caught:
        Topics().parse(topic)
    assert caught.value.reason == "bad_topic"
    assert fragment in caught.value.detail


@pytest.mark.parametrize("root", ["", "a/+", "a/#", "/lead", "a//b", "a/b/c/d/e", "_x"])
def test_invalid_roots_are_refused(root: str) -> None:
    with pytest.raises(ValueError, match="invalid topic root"):
        Topics(root)


def test_subscriptions_plain_and_shared() -> None:
    topics = Topics()
    assert topics.subscription(MessageKind.EVENT) == "cityhub/v1/+/+/event"
    assert topics.subscription(MessageKind.EVENT, "hubs") == "$share/hubs/cityhub/v1/+/+/event"


def test_dead_letter_topic_cannot_match_a_device_subscription() -> None:
    topics = Topics()
    with pytest.raises(TopicError):
        topics.parse(topics.dead_letter("schema"))
