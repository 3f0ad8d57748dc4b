"""Errors of the ONVIF driver; the libraries' exceptions are mapped to these here, once (``map_error``).

    OnvifError
    ├── CameraUnreachable   no TCP connection, or it dropped mid-request: retry later
    │   └── CameraTimeout   connected (or not) but no answer within the timeout: a hung camera
    ├── AuthFailed          credentials refused: SOAP fault ter:NotAuthorized (WS-Security) or HTTP 401 (digest)
    ├── NotOnvif            an answer that is not ONVIF: an HTML page, invalid XML, a non-SOAP HTTP status,
    │                       a SOAP answer that does not fit the ONVIF WSDL
    └── SoapFault           a SOAP fault other than NotAuthorized, with its code and subcodes
                            (ONVIF Core spec, section 5.11.2), e.g. env:Sender / ter:InvalidArgVal

The camera's health (``camera.health``) is read off these: unreachable, auth_failed, not_onvif.
"""

from __future__ import annotations

import asyncio

import aiohttp
import httpx
import zeep.exceptions
from lxml import etree

from drivers.onvif._onvif import ONVIFAuthError, ONVIFError, ONVIFTimeoutError


class OnvifError(Exception):
    """Base of the driver's errors."""


class CameraUnreachable(OnvifError):
    """No connection, or the connection dropped."""


class CameraTimeout(CameraUnreachable):
    """No answer within the timeout."""


class AuthFailed(OnvifError):
    """The camera refused the credentials."""


class NotOnvif(OnvifError):
    """The answer is not ONVIF (not SOAP, not XML, not what the WSDL says)."""


class SoapFault(OnvifError):
    """A SOAP fault other than NotAuthorized."""

    def __init__(self, message: str, *, code: str | None, subcodes: tuple[str, ...]) -> None:
        self.code = code
        self.subcodes = subcodes
        detail = "/".join(s for s in (code, *subcodes) if s)
        super().__init__(f"{message} ({detail})" if detail else message)


#: Every exception ``map_error`` knows; anything else is a programming error and propagates.
MAPPED_ERRORS: tuple[type[BaseException], ...] = (
    TimeoutError,
    asyncio.TimeoutError,
    OSError,
    aiohttp.ClientError,
    httpx.HTTPError,
    zeep.exceptions.Error,
    etree.XMLSyntaxError,
    ONVIFError,
)


#: Prefixes for fault codes, as the ONVIF Core spec writes them (``ter:NotAuthorized``).
_PREFIXES = {
    "http://www.w3.org/2003/05/soap-envelope": "env",
    "http://www.onvif.org/ver10/error": "ter",
    "http://docs.oasis-open.org/wsn/b-2": "wsnt",
    "http://docs.oasis-open.org/wsrf/rw-2": "wsrf-rw",
}


def _qname(code: object) -> str:
    text = str(getattr(code, "text", code))
    namespace, brace, local = text.lstrip("{").partition("}")
    if not brace:
        return text
    return f"{_PREFIXES[namespace]}:{local}" if namespace in _PREFIXES else text


def _subcodes(fault: zeep.exceptions.Fault) -> tuple[str, ...]:
    subcodes = fault.subcodes or []
    if not isinstance(subcodes, list):
        subcodes = [subcodes]
    return tuple(_qname(code) for code in subcodes)


def _from_fault(fault: zeep.exceptions.Fault, what: str) -> OnvifError:
    subcodes = _subcodes(fault)
    if fault.code is None and not subcodes:
        # zeep's verdict on well-formed XML without a SOAP Fault in it, e.g. a web UI's XHTML page.
        return NotOnvif(f"{what}: not a SOAP answer (XML without a SOAP body or fault)")
    # ONVIF Core spec 5.11.2.1: ter:NotAuthorized; some cameras only say so in the reason text.
    if any("NotAuthorized" in code for code in subcodes) or "not authorized" in (fault.message or "").lower():
        return AuthFailed(f"{what}: not authorized ({fault.message})")
    code = _qname(fault.code) if fault.code is not None else None
    return SoapFault(f"{what}: SOAP fault: {fault.message}", code=code, subcodes=subcodes)


def _from_transport(exc: zeep.exceptions.TransportError, what: str) -> OnvifError:
    if exc.status_code == 401:
        return AuthFailed(f"{what}: HTTP 401")
    return NotOnvif(f"{what}: not a SOAP answer (HTTP {exc.status_code})")


def map_error(exc: BaseException, what: str) -> OnvifError:
    """The driver's error for a library exception raised while doing ``what``; re-raises unknown ones."""
    if isinstance(exc, OnvifError):
        return exc
    if isinstance(exc, ONVIFError) and not isinstance(exc, ONVIFTimeoutError | ONVIFAuthError):
        # onvif-zeep-async wraps the real cause (safe_func: ``raise ONVIFError(err) from err``).
        cause = exc.__cause__
        if cause is not None and isinstance(cause, MAPPED_ERRORS):
            return map_error(cause, what)
        return NotOnvif(f"{what}: {exc}")
    return _map_leaf(exc, what)


def _map_leaf(exc: BaseException, what: str) -> OnvifError:
    if isinstance(exc, TimeoutError | asyncio.TimeoutError | ONVIFTimeoutError | httpx.TimeoutException):
        return CameraTimeout(f"{what}: no answer in time")
    if isinstance(exc, ONVIFAuthError):
        return AuthFailed(f"{what}: {exc}")
    if isinstance(exc, zeep.exceptions.Fault):
        return _from_fault(exc, what)
    if isinstance(exc, zeep.exceptions.TransportError):
        return _from_transport(exc, what)
    if isinstance(exc, zeep.exceptions.Error | etree.XMLSyntaxError | aiohttp.ClientResponseError):
        return NotOnvif(f"{what}: not an ONVIF answer: {exc}")
    if isinstance(exc, httpx.HTTPStatusError):
        return NotOnvif(f"{what}: HTTP {exc.response.status_code}")
    if isinstance(exc, OSError | aiohttp.ClientError | httpx.HTTPError):
        return CameraUnreachable(f"{what}: {type(exc).__name__}: {exc}".rstrip(": "))
    raise exc
