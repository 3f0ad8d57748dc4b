"""SOAP 1.2 envelopes and faults as an ONVIF camera writes them, and the parsing of requests.

ONVIF services are SOAP 1.2 over HTTP (ONVIF Core spec, section 5.1); faults carry an ONVIF subcode
from the ``ter`` namespace (section 5.11.2), and a sender fault goes with HTTP 400, a receiver fault
with HTTP 500 (section 5.11.2.1; SOAP 1.2 part 2, section 7.5.1).
"""

from __future__ import annotations

from dataclasses import dataclass
from xml.sax.saxutils import escape, quoteattr

from lxml import etree

from drivers.onvif.topics import NS

SOAP_CONTENT_TYPE = "application/soap+xml; charset=utf-8"

_NSDECL = " ".join(f'xmlns:{prefix}="{uri}"' for prefix, uri in NS.items())

# No entities, no network, no huge trees: the request comes from the network (S320-style XML attacks).
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, huge_tree=False, remove_blank_text=True)


class SoapFault(Exception):
    """A fault the camera answers with."""

    def __init__(self, code: str, subcode: str, reason: str, *, status: int | None = None) -> None:
        super().__init__(reason)
        self.code = code  # env:Sender or env:Receiver
        self.subcode = subcode  # e.g. ter:NotAuthorized
        self.reason = reason
        self.status = status if status is not None else (400 if code == "env:Sender" else 500)


def not_authorized() -> SoapFault:
    """The fault for missing or wrong credentials (ONVIF Core spec, section 5.11.2.1)."""
    return SoapFault("env:Sender", "ter:NotAuthorized", "Sender not Authorized")


def action_not_supported(operation: str) -> SoapFault:
    """The fault for an operation the camera does not implement."""
    return SoapFault("env:Receiver", "ter:ActionNotSupported", f"Optional Action Not Implemented: {operation}")


@dataclass(frozen=True, slots=True, kw_only=True)
class SoapRequest:
    """One parsed request: the operation, its body element, the SOAP header."""

    operation: str
    namespace: str
    body: etree._Element
    header: etree._Element | None

    def text(self, *path: str) -> str | None:
        """The text of the first element at ``path`` (local names) under the operation, or None."""
        node: etree._Element | None = self.body
        for name in path:
            node = _child(node, name) if node is not None else None
        return node.text.strip() if node is not None and node.text else None


def _child(node: etree._Element, local: str) -> etree._Element | None:
    for child in node:
        if isinstance(child.tag, str) and etree.QName(child).localname == local:
            return child
    return None


def parse_request(data: bytes) -> SoapRequest:
    """Parse a SOAP request; raises SoapFault (ter:WellFormed, env:VersionMismatch) when it is none."""
    try:
        root = etree.fromstring(data, _PARSER)
    except etree.XMLSyntaxError as exc:
        raise SoapFault("env:Sender", "ter:WellFormed", f"Well-formed Error: {exc}") from None
    if etree.QName(root).localname != "Envelope":
        raise SoapFault("env:Sender", "ter:WellFormed", "not a SOAP envelope")
    if etree.QName(root).namespace != NS["env"]:
        raise SoapFault("env:VersionMismatch", "ter:WrongSoapVersion", "SOAP 1.2 required")
    body = _child(root, "Body")
    operation = next((child for child in body if isinstance(child.tag, str)), None) if body is not None else None
    if operation is None:
        raise SoapFault("env:Sender", "ter:MissingAttr", "empty SOAP body")
    qname = etree.QName(operation)
    return SoapRequest(
        operation=qname.localname, namespace=qname.namespace or "", body=operation, header=_child(root, "Header")
    )


def envelope(body: str, *, header: str = "") -> bytes:
    """A response envelope declaring every ONVIF prefix, with ``body`` inside."""
    head = f"<env:Header>{header}</env:Header>" if header else ""
    prolog = '<?xml version="1.0" encoding="UTF-8"?>\n'
    return f"{prolog}<env:Envelope {_NSDECL}>{head}<env:Body>{body}</env:Body></env:Envelope>".encode()


def fault_envelope(fault: SoapFault) -> bytes:
    """The SOAP 1.2 fault envelope for ``fault``."""
    subcode = f"<env:Subcode><env:Value>{fault.subcode}</env:Value></env:Subcode>" if fault.subcode else ""
    return envelope(
        f"<env:Fault><env:Code><env:Value>{fault.code}</env:Value>{subcode}</env:Code>"
        f'<env:Reason><env:Text xml:lang="en">{escape(fault.reason)}</env:Text></env:Reason></env:Fault>'
    )


def element(tag: str, text: object, **attrs: object) -> str:
    """``<tag attr="...">text</tag>`` with the text and attributes escaped."""
    attributes = "".join(f" {name}={quoteattr(str(value))}" for name, value in attrs.items())
    value = str(text).lower() if isinstance(text, bool) else str(text)
    return f"<{tag}{attributes}>{escape(value)}</{tag}>"
