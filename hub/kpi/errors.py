"""Errors of the KPI reports.

    KpiError                 a report that cannot be made; the message says why, for people
    ├── PeriodError          the period asked for is not valid (bad date, end before start, too long)
    └── SourceError          a source could not be read (InfluxDB down or refusing, an unreadable file)

The command and the API show the message as it is: it names the date, the file or the server.
"""

from __future__ import annotations


class KpiError(Exception):
    """A report that cannot be made."""


class PeriodError(KpiError, ValueError):
    """The period asked for is not valid."""


class SourceError(KpiError):
    """A source of the figures could not be read."""
