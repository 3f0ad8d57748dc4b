"""Signed webhooks: each alert transition POSTed as JSON, with an HMAC-SHA256 signature receivers check.

Headers (the scheme of Stripe's and GitHub's webhooks, so receivers know it):
- ``X-Cityhub-Delivery``: an id, the same on every retry of one delivery (receivers deduplicate on it);
- ``X-Cityhub-Timestamp``: Unix seconds of this attempt (receivers refuse old ones: no replay);
- ``X-Cityhub-Signature``: ``sha256=`` + hex HMAC-SHA256 of ``"{timestamp}." + body`` with the shared secret.
"""

from __future__ import annotations

import hashlib
import hmac
import time

import httpx

from hub.notify.config import WebhookChannel


class DeliveryFailed(Exception):
    """A delivery attempt failed; ``retry`` says whether another attempt can help."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


def sign(secret: bytes, timestamp: str, body: bytes) -> str:
    """The signature header's value."""
    return "sha256=" + hmac.new(secret, timestamp.encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def verify_signature(
    secret: bytes, timestamp: str, body: bytes, signature: str, *, now_s: float, tolerance_s: float = 300.0
) -> bool:
    """For receivers: the body is the hub's and was signed within ``tolerance_s`` of ``now_s``."""
    try:
        age = abs(now_s - int(timestamp))
    except ValueError:
        return False
    return age <= tolerance_s and hmac.compare_digest(sign(secret, timestamp, body), signature)


async def post_webhook(client: httpx.AsyncClient, channel: WebhookChannel, body: bytes, delivery: str) -> None:
    """One attempt; raises DeliveryFailed (retry for 408, 429, 5xx and network errors)."""
    timestamp = str(int(time.time()))
    headers = {
        "Content-Type": "application/json",
        "User-Agent": "cityhub-hub",
        "X-Cityhub-Delivery": delivery,
        "X-Cityhub-Timestamp": timestamp,
        "X-Cityhub-Signature": sign(channel.secret.get_secret_value().encode(), timestamp, body),
    }
    try:
        response = await client.post(channel.url, content=body, headers=headers, timeout=channel.timeout_s)
    except httpx.HTTPError as exc:
        raise DeliveryFailed(f"{type(exc).__name__}: {exc}", retry=True) from None
    if response.is_success:
        return
    status = response.status_code
    raise DeliveryFailed(f"HTTP {status}", retry=status in (408, 429) or status >= 500)
