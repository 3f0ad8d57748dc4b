"""One SQLite database owned by one worker thread, used from asyncio.

sqlite3 is blocking and a connection belongs to the thread that uses it, so every call runs on a
single dedicated thread; the event loop never waits on a disk flush.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class SqliteDatabase:
    """A WAL-mode SQLite file with ``synchronous=FULL``: a committed transaction survives a power cut."""

    def __init__(self, path: Path, schema: str, *, private: bool = False) -> None:
        self.path = path
        self.private = private  # readable by this user only: the file holds secrets or personal data
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"sqlite-{path.stem}")
        self._schema = schema
        self._conn: sqlite3.Connection | None = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.private:
            # SQLite creates the -wal and -shm files with the main file's mode, so this covers them too.
            self.path.touch(mode=0o600, exist_ok=True)
            os.chmod(self.path, 0o600)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(self._schema)
        self._conn = conn

    async def open(self) -> None:
        """Open the file and create the schema."""
        await self.run(lambda _conn: None)

    def _call(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if self._conn is None:
            self._open()
        assert self._conn is not None
        return fn(self._conn)

    async def run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn(connection)`` on the database thread."""
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._call, fn)

    def _close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    async def aclose(self) -> None:
        """Close the connection and stop the thread."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._close)
        self._executor.shutdown(wait=True)


def transaction(conn: sqlite3.Connection, statements: Callable[[sqlite3.Connection], T]) -> T:
    """Run ``statements`` in one IMMEDIATE transaction, rolled back on error."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        result = statements(conn)
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return result
