"""Errors of the hub.

    HubError
    ├── ConfigError            a configuration file or variable is invalid (message names the file and field)
    └── StoreError             the time-series store could not take a write
        ├── StoreUnavailable   retry later: network down, timeout, 5xx, 429, auth or database missing;
        │                      the batch is spooled on disk and retried in order
        └── StoreRejected      the store refuses the data itself (HTTP 400, 413, 422): retrying cannot
                               help; the points are counted and dropped, never retried forever

Library exceptions (httpx, influxdb-client, sqlite3) are mapped to these once, in the module that calls
the library.
"""

from __future__ import annotations


class HubError(Exception):
    """Base of every error the hub raises on purpose."""


class ConfigError(HubError):
    """Invalid configuration; the message says which file and which field."""


class StoreError(HubError):
    """The time-series store could not take a write."""


class StoreUnavailable(StoreError):
    """The store cannot be reached or cannot write now; the same write may succeed later."""


class StoreRejected(StoreError):
    """The store refused the data itself; the same write will always fail."""
