"""What every benchmark script shares: the import path, the entry point, the report's formatting, CPU
time from /proc and simulators in a process of their own.

Each script stays one command (``.venv/bin/python bench/NAME.py``); Python puts ``bench/`` on the path
when it runs one, so ``import benchlib`` works from any of them.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import multiprocessing
import os
import statistics
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

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


# -- CPU time from /proc (Linux) --------------------------------------------------------------------

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _stat_cpu_seconds(stat: str) -> float:
    """User + system time from a /proc stat line (fields after the command name, which may hold spaces)."""
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _CLOCK_TICKS


def process_cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far."""
    return _stat_cpu_seconds(Path(f"/proc/{pid}/stat").read_text())


def thread_cpu_seconds() -> dict[int, float]:
    """CPU time (user + system) of every thread of this process, by native thread id."""
    out: dict[int, float] = {}
    for task in Path("/proc/self/task").iterdir():
        with contextlib.suppress(OSError):  # the thread may end meanwhile
            out[int(task.name)] = _stat_cpu_seconds((task / "stat").read_text())
    return out


# -- simulators in a process of their own -------------------------------------------------------------


class SimulatorProcess:
    """The parent's handle on a simulator process, so simulators never compete for this process's loop.

    ``target(conn, *args)`` runs in a spawned process: it sends the list of its ports on ``conn`` once
    serving, then serves until it receives anything on ``conn``.
    """

    def __init__(self, target: Callable[..., None], *args: Any) -> None:
        context = multiprocessing.get_context("spawn")
        self._conn, child = context.Pipe()
        self._process = context.Process(target=target, args=(child, *args), name="bench-sim", daemon=True)
        self._process.start()
        child.close()
        if not self._conn.poll(30):
            self.close()
            raise RuntimeError("the simulator process did not report its ports within 30 s")
        self.ports: list[int] = self._conn.recv()

    def cpu_seconds(self) -> float:
        """User + system CPU time of the simulator process so far."""
        return process_cpu_seconds(self._process.pid or 0)

    def close(self) -> None:
        """Stop the simulators and the process."""
        with contextlib.suppress(OSError):
            self._conn.send(None)
        self._process.join(10)
        if self._process.is_alive():
            self._process.kill()
            self._process.join(5)
