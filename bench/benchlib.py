"""What every benchmark script shares: the import path, the entry point, and the report's formatting.

Each script stays one command (``.venv/bin/python bench/NAME.py``); Python puts ``bench/`` on the path
when it runs one, so ``import benchlib`` works from any of them.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The benchmarks start the tests' private servers (tests/services.py) and import the project's packages.
for _path in (REPO / "tests", REPO):
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))


def main(
    parse_args: Callable[[Sequence[str] | None], argparse.Namespace],
    run: Callable[[argparse.Namespace, Path], None],
    argv: Sequence[str] | None = None,
) -> None:
    """Parse the arguments and run in ``--workdir`` if given, else in a temporary folder removed afterwards."""
    args = parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if args.workdir is not None:
        args.workdir.mkdir(parents=True, exist_ok=True)
        run(args, args.workdir.resolve())
        return
    with tempfile.TemporaryDirectory(prefix="cityhub-bench-") as tmp:
        run(args, Path(tmp))


def num(value: float, digits: int = 0) -> str:
    """A figure with thousands separators; ``-`` for NaN (nothing measured)."""
    return "-" if value != value else f"{value:,.{digits}f}"


def median(values: Sequence[float]) -> float:
    """The median of the measured (non-NaN) values; NaN when there are none."""
    finite = [v for v in values if v == v]
    return statistics.median(finite) if finite else float("nan")


def mark(ratio: float, target: float) -> str:
    """PASS or BELOW against a target ratio; n/a when not measured."""
    return "n/a" if ratio != ratio else ("PASS" if ratio >= target else "BELOW")


def table_row(cells: Sequence[tuple[str, int]]) -> str:
    """One right-aligned table row from (text, width) cells."""
    return " ".join(f"{text:>{width}}" for text, width in cells)
