"""``cityhub report``: the KPI tables of a period (docs/reports.md) written as CSV or Parquet files.

It reads the data directory and the time-series store of the hub that ``--config`` describes, read-only,
so it runs beside a live hub. Exit status: 0 written, 1 a source could not be read, 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``cityhub report``."""
    parser.add_argument("--config", type=Path, help="the hub's YAML file (CITYHUB_* variables override it)")
    parser.add_argument("--from", dest="start", metavar="DATE", help="start: 2026-01-01 or 2026-01-01T08:00+02:00")
    parser.add_argument("--to", dest="end", metavar="DATE", help="end, excluded (default: now)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the files (created)")
    parser.add_argument("--format", choices=("csv", "parquet"), default="csv", help="Parquet needs pyarrow")
    parser.add_argument(
        "--timezone", default="Europe/Bucharest", help="of dates without an offset, and of the dates shown"
    )


def run(args: argparse.Namespace) -> int:
    """``cityhub report``."""
    # Imported here: `cityhub` builds every subcommand's parser at each start, and these are heavy.
    from hub.config import load_hub_settings
    from hub.errors import ConfigError
    from hub.kpi import KpiError, PeriodError, SourceError, parse_period, source_for
    from hub.kpi.period import iso

    now_ms = int(time.time() * 1000)
    try:
        settings = load_hub_settings(args.config)
        period = parse_period(args.start, args.end, now_ms=now_ms, timezone=args.timezone)
    except ConfigError as exc:
        print(f"cityhub report: invalid configuration:\n{exc}", file=sys.stderr)
        return 2
    except PeriodError as exc:
        print(f"cityhub report: {exc}", file=sys.stderr)
        return 2
    from hub.kpi.report import build_report, check_format

    try:
        check_format(args.format)  # before any reading: a missing pyarrow is known at once
        data = asyncio.run(source_for(settings).load(period))
    except KpiError as exc:
        print(f"cityhub report: {exc}", file=sys.stderr)
        return 1 if isinstance(exc, SourceError) else 2
    report = build_report(data, period, now_ms=now_ms, timezone=args.timezone)
    try:
        paths = report.write(args.out, args.format)
    except OSError as exc:
        print(f"cityhub report: cannot write into {args.out}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    _print_summary(report.summary(), iso(period.start_ms, args.timezone), iso(period.end_ms, args.timezone))
    print(f"wrote {', '.join(str(p) for p in paths)}", file=sys.stderr)
    return 0


def _print_summary(summary: dict[str, Any], start: str, end: str) -> None:
    def show(value: object, unit: str = "") -> str:
        return "no data" if value is None else f"{value}{unit}"

    availability = summary["availability"]
    percent = None if availability is None else f"{availability * 100:.2f}"
    print(f"KPI report {start} to {end}")
    print(f"  devices managed   {summary['devices_managed']} ({summary['devices_online']} online at the end)")
    print(f"  availability      {show(percent, ' %')} ({summary['devices_without_data']} devices without data)")
    print(f"  alerts            {summary['alerts']} ({summary['episodes']} episodes)")
    print(f"  MTTA              {show(summary['mtta_s'], ' s')}")
    print(f"  MTTR              {show(summary['mttr_s'], ' s')}")
