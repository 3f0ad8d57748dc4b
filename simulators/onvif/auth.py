"""The simulated camera's two ways of checking credentials: WS-Security UsernameToken and HTTP digest.

ONVIF Core spec, section 5.9.4: a device accepts WS-Security UsernameToken (with PasswordDigest) on
SOAP and HTTP digest (RFC 7616) on SOAP and on other HTTP resources such as the snapshot URI.

* UsernameToken profile 1.0, section 3.1: ``PasswordDigest = Base64(SHA-1(nonce + created + password))``
  with the nonce Base64-decoded first; the receiver rejects a ``Created`` outside its freshness window
  and a nonce it has already seen in that window (replay).
* RFC 7616 digest with MD5 and ``qop=auth``: ``response = MD5(HA1:nonce:nc:cnonce:qop:HA2)``,
  ``HA1 = MD5(user:realm:password)``, ``HA2 = MD5(method:uri)``.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Callable

from lxml import etree

from drivers.onvif.topics import NS

#: How far a token's Created may be from the camera's clock. The profile leaves it to the receiver;
#: real cameras use a few seconds to a few minutes.
FRESHNESS_S = 60.0
REALM = "cityhub-sim"
_DIGEST_TYPE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest"


def _find(node: etree._Element, ns: str, local: str) -> etree._Element | None:
    return node.find(f".//{{{NS[ns]}}}{local}")


def password_digest(nonce: bytes, created: str, password: str) -> str:
    """Base64(SHA-1(nonce + created + password)), UsernameToken profile 1.0 section 3.1."""
    # SHA-1 is what the profile prescribes; it is not our choice of hash.
    return base64.b64encode(hashlib.sha1(nonce + created.encode() + password.encode()).digest()).decode()  # noqa: S324


class WsseChecker:
    """Checks UsernameTokens against one user, the camera's clock and the nonces seen recently."""

    def __init__(self, username: str, password: str, clock: Callable[[], dt.datetime]) -> None:
        self.username = username
        self.password = password
        self._clock = clock
        self._seen: dict[bytes, dt.datetime] = {}

    def check(self, header: etree._Element | None) -> bool | None:
        """True/False when the header carries a token that is right/wrong, None when it carries none."""
        token = _find(header, "wsse", "UsernameToken") if header is not None else None
        if token is None:
            return None
        user = _find(token, "wsse", "Username")
        password = _find(token, "wsse", "Password")
        if user is None or password is None or user.text != self.username:
            return False
        if password.get("Type", "").endswith("#PasswordText"):
            return hmac.compare_digest(password.text or "", self.password)
        return self._check_digest(token, password.text or "")

    def _check_digest(self, token: etree._Element, given: str) -> bool:
        nonce_node = _find(token, "wsse", "Nonce")
        created_node = _find(token, "wsu", "Created")
        if nonce_node is None or created_node is None or not nonce_node.text or not created_node.text:
            return False
        try:
            nonce = base64.b64decode(nonce_node.text, validate=True)
            created = dt.datetime.fromisoformat(created_node.text.strip())
        except (binascii.Error, ValueError):
            return False
        if created.tzinfo is None:
            created = created.replace(tzinfo=dt.UTC)
        now = self._clock()
        if abs((now - created).total_seconds()) > FRESHNESS_S or nonce in self._seen:
            return False
        expected = password_digest(nonce, created_node.text.strip(), self.password)
        if not hmac.compare_digest(expected, given):
            return False
        self._seen = {n: t for n, t in self._seen.items() if (now - t).total_seconds() <= FRESHNESS_S}
        self._seen[nonce] = now
        return True


def _md5(text: str) -> str:
    return hashlib.md5(text.encode(), usedforsecurity=False).hexdigest()


def parse_digest_header(value: str) -> dict[str, str]:
    """The fields of an ``Authorization: Digest ...`` header (RFC 7616 section 3.4)."""
    scheme, _, rest = value.partition(" ")
    if scheme.lower() != "digest":
        return {}
    fields: dict[str, str] = {}
    for part in _split_commas(rest):
        key, _, raw = part.strip().partition("=")
        fields[key.strip().lower()] = raw.strip().strip('"')
    return fields


def _split_commas(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    quoted = False
    for char in text:
        if char == '"':
            quoted = not quoted
        if char == "," and not quoted:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return [p for p in parts if p.strip()]


class DigestChecker:
    """HTTP digest (MD5, qop=auth) for one user, with the nonces this camera issued."""

    def __init__(self, username: str, password: str) -> None:
        self.username = username
        self.password = password
        self._nonces: set[str] = set()

    def challenge(self) -> str:
        """A ``WWW-Authenticate`` value with a fresh nonce."""
        nonce = secrets.token_hex(16)
        self._nonces.add(nonce)
        if len(self._nonces) > 1024:  # bounded: old nonces are simply forgotten (the client re-challenges)
            self._nonces.pop()
        return f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", algorithm=MD5'

    def check(self, header: str | None, method: str) -> bool | None:
        """True/False when the header is a right/wrong digest answer, None when there is none."""
        fields = parse_digest_header(header or "")
        if not fields:
            return None
        if fields.get("username") != self.username or fields.get("nonce") not in self._nonces:
            return False
        ha1 = _md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = _md5(f"{method}:{fields.get('uri', '')}")
        if fields.get("qop"):
            expected = _md5(f"{ha1}:{fields['nonce']}:{fields.get('nc', '')}:{fields.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = _md5(f"{ha1}:{fields['nonce']}:{ha2}")
        return hmac.compare_digest(expected, fields.get("response", ""))
