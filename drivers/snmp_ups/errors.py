"""Errors of the SNMP UPS driver; pysnmp's error indications are mapped to these once, in ``client.py``.

    SnmpDriverError
    ├── SnmpTimeout          no answer within timeout x (retries + 1): host down, wrong port, or a wrong
    │                        community (v1/v2c agents drop those silently, RFC 3584 section 5.2.1):
    │                        retry later, with backoff
    ├── SnmpAuthError        the agent refused our v3 credentials (usmStatsUnknownUserNames,
    │                        usmStatsWrongDigests, usmStatsDecryptionErrors... RFC 3414 section 3.2):
    │                        a configuration problem, retried with backoff but logged as such
    ├── MalformedResponse    the agent answered with datagrams that are not SNMP, or with an error
    │                        status for the whole request (genErr, tooBig)
    └── SnmpConfigError      a device or listener configuration pysnmp cannot use (ValueError too)
    MibProfileError          a MIB profile file that cannot be used (a ValueError; not a device problem)

A ``noSuchObject`` / ``noSuchInstance`` (SNMPv2, RFC 3416 section 4.2.1) or a ``noSuchName`` (SNMPv1)
for one OID is not an error: the client reports that OID as missing and the device turns the point it
feeds into a reading of quality ``bad``.
"""

from __future__ import annotations


class SnmpDriverError(Exception):
    """Base of the driver's errors about a device."""


class SnmpTimeout(SnmpDriverError):
    """No answer in time (or a wrong community, which agents never answer)."""


class SnmpAuthError(SnmpDriverError):
    """The agent refused the SNMPv3 credentials."""


class MalformedResponse(SnmpDriverError):
    """An answer that is not usable SNMP."""


class SnmpConfigError(SnmpDriverError, ValueError):
    """A configuration the SNMP engine cannot use (e.g. a privacy protocol without its cipher)."""


class MibProfileError(ValueError):
    """A MIB profile that cannot be loaded; the message names the file, the point and the field."""
