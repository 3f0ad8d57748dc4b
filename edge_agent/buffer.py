"""The edge agent's store-and-forward queue: every outgoing MQTT message, on disk, oldest first.

Every message the agent publishes is appended here first, and the forwarder (``edge_agent/forwarder.py``)
drains the queue to the broker in order, removing a message once the broker has acknowledged it
(PUBACK). The queue is one SQLite file in WAL mode; an append is committed with ``synchronous=FULL``, so a
message survives SIGKILL and a power cut once ``append`` has returned. The only messages a crash can lose
are those whose ``append`` had not returned yet. Design, bounds and metrics: docs/edge-buffer.md.

Bounds, both explicit:

* ``max_bytes``: topic and payload bytes held (not the file size). An append that would exceed it drops the
  **oldest** messages until the new ones fit, in the same transaction (reason ``overflow``).
* ``max_age_s``: a message older than this when the forwarder reaches it is dropped (reason ``expired``).

Drops are counted by reason (``dropped``, and the ``on_drop`` callback the agent turns into a metric) and
logged once per backlog episode: a warning at the first drop of each reason, one summary when the queue is
empty again.

Errors (the sqlite3 errors are mapped here, once)::

    QueueError               the queue's file cannot be used (I/O error, disk full, not open)
    ├── QueueLocked          another process (a second agent?) holds the file
    └── QueueCorrupt         the file is not an SQLite database, or it is damaged: move it aside

A message larger than ``max_bytes`` can never fit: ``append`` refuses it with ``ValueError``.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TypeVar

from hub.storage.sqlitedb import SqliteDatabase, transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

# AUTOINCREMENT: ids are never reused, not even after the queue has been emptied, so the forwarder's
# "everything after id N" cursor stays valid for the life of the file.
_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbound (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    enqueued_at REAL NOT NULL,
    topic TEXT NOT NULL,
    payload BLOB NOT NULL,
    qos INTEGER NOT NULL,
    retain INTEGER NOT NULL,
    size INTEGER NOT NULL
);
"""

_COLUMNS = "id, enqueued_at, topic, payload, qos, retain"
_Row = tuple[float, str, bytes, int, int, int]  # enqueued_at, topic, payload, qos, retain, size
_MAX_PARAMS = 500
_WAL_LIMIT_BYTES = 4 * 1024 * 1024  # ids per DELETE ... IN (...): well under SQLite's limit on bound parameters


class QueueError(Exception):
    """The queue's file cannot be used."""


class QueueLocked(QueueError):
    """Another process holds the queue's file."""


class QueueCorrupt(QueueError):
    """The queue's file is not an SQLite database, or it is damaged."""


class DropReason(StrEnum):
    """Why queued messages were dropped before reaching the broker."""

    OVERFLOW = "overflow"  # the queue was full: the oldest messages made room for new ones
    EXPIRED = "expired"  # older than max_age_s when the forwarder reached it


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundMessage:
    """An MQTT message the agent wants published."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = False

    def __post_init__(self) -> None:
        if not self.topic:
            raise ValueError("an outbound message needs a topic")
        if self.qos not in (0, 1, 2):
            raise ValueError(f"QoS must be 0, 1 or 2, not {self.qos!r}")

    @property
    def size(self) -> int:
        """The bytes it counts for against ``max_bytes``: topic (UTF-8) and payload."""
        return len(self.topic.encode()) + len(self.payload)


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedMessage:
    """A message in the queue, with its id (the order) and when it was appended (queue clock, seconds)."""

    id: int
    enqueued_at: float
    message: OutboundMessage

    def delay_s(self, now: float) -> float:
        """How long it has waited at ``now`` (never negative, even if the clock went back)."""
        return max(0.0, now - self.enqueued_at)

    def is_historical(self, now: float, after_s: float) -> bool:
        """Whether, sent at ``now``, it waited more than ``after_s`` (it is replayed, not live)."""
        return self.delay_s(now) > after_s


@dataclass(frozen=True, slots=True, kw_only=True)
class QueueDepth:
    """How much waits in the queue."""

    messages: int
    bytes: int
    oldest_age_s: float  # 0 when empty


@dataclass(frozen=True, slots=True)
class _State:
    """The queue's totals, written by the database thread only, after each commit."""

    messages: int
    bytes: int
    head_enqueued_at: float | None
    last_id: int


class OutboundQueue:
    """A durable FIFO of outbound MQTT messages in one SQLite file, bounded in bytes and in age."""

    def __init__(
        self,
        path: Path,
        *,
        max_bytes: int,
        max_age_s: float | None,
        clock: Callable[[], float] = time.time,
        on_drop: Callable[[DropReason, int], None] | None = None,
    ) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        if max_age_s is not None and max_age_s <= 0:
            raise ValueError("max_age_s must be positive (or None for no age limit)")
        self.path = path
        self.max_bytes = max_bytes
        self.max_age_s = max_age_s
        self.clock = clock
        self._on_drop = on_drop
        self._db = SqliteDatabase(path, _SCHEMA)
        self._state = _State(messages=0, bytes=0, head_enqueued_at=None, last_id=0)
        self._dropped = {reason: 0 for reason in DropReason}
        self._episode: dict[DropReason, int] = {}  # drops since the queue was last empty
        self._appended = asyncio.Event()
        self._open = False

    # -- lifecycle ----------------------------------------------------------------------------------

    async def open(self) -> None:
        """Open (or create) the file, lock it for this process, and load what a previous run left.

        After a failed open, make a new ``OutboundQueue`` to try again.
        """
        try:
            await self._db.open()
            await self._db.run(self._lock_and_load)
        except (sqlite3.Error, OSError) as exc:  # OSError: the directory cannot be created
            await self._db.aclose()
            raise _mapped(exc, self.path) from exc
        self._open = True
        if self._state.messages:
            log.info(
                "outbound queue %s holds %d messages (%d bytes) from a previous run",
                self.path,
                self._state.messages,
                self._state.bytes,
            )

    async def aclose(self) -> None:
        """Close the file (everything appended is already on disk)."""
        if self._open:
            self._open = False
            await self._db.aclose()

    async def __aenter__(self) -> OutboundQueue:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _lock_and_load(self, conn: sqlite3.Connection) -> None:
        # One writer per file: an exclusive lock, taken now and held until close, makes a second agent on
        # the same path fail at open (QueueLocked) instead of sending every message twice.
        conn.execute("PRAGMA locking_mode=EXCLUSIVE")
        # The WAL keeps its largest size unless told otherwise; after a big transaction (a large
        # append_many, a mass expiry) it is cut back to this at the next checkpoint.
        conn.execute(f"PRAGMA journal_size_limit={_WAL_LIMIT_BYTES}")
        transaction(conn, lambda _conn: None)
        count, size = conn.execute("SELECT count(*), coalesce(sum(size), 0) FROM outbound").fetchone()
        row = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'outbound'").fetchone()
        self._state = _State(messages=count, bytes=size, head_enqueued_at=_head(conn), last_id=row[0] if row else 0)

    # -- the queue ----------------------------------------------------------------------------------

    @property
    def depth(self) -> QueueDepth:
        """Messages and bytes waiting, and the age of the oldest (by the queue's clock)."""
        state = self._state
        head = state.head_enqueued_at
        age = max(0.0, self.clock() - head) if head is not None else 0.0
        return QueueDepth(messages=state.messages, bytes=state.bytes, oldest_age_s=age)

    @property
    def dropped(self) -> dict[DropReason, int]:
        """Messages dropped since open, by reason."""
        return dict(self._dropped)

    @property
    def last_id(self) -> int:
        """The id of the newest message ever appended (0 for a new file)."""
        return self._state.last_id

    async def append(self, message: OutboundMessage) -> int:
        """Append one message; durable when this returns. Returns its id."""
        (message_id,) = await self.append_many([message])
        return message_id

    async def append_many(self, messages: Sequence[OutboundMessage]) -> list[int]:
        """Append messages in one transaction (one disk flush); durable when this returns. Returns their ids."""
        if not messages:
            return []
        for message in messages:
            if message.size > self.max_bytes:
                raise ValueError(f"a message of {message.size} bytes can never fit a queue of {self.max_bytes} bytes")
        now = self.clock()
        rows = [(now, m.topic, m.payload, m.qos, int(m.retain), m.size) for m in messages]
        ids, dropped = await self._run(lambda conn: self._insert(conn, rows))
        self._count_drops(DropReason.OVERFLOW, dropped)
        self._appended.set()
        return ids

    async def peek(self, limit: int, after_id: int = 0) -> list[QueuedMessage]:
        """Up to ``limit`` messages with an id above ``after_id``, oldest first, without removing them.

        Messages older than ``max_age_s`` met on the way are dropped (reason ``expired``) instead.
        """
        cutoff = self.clock() - self.max_age_s if self.max_age_s is not None else None
        messages, expired = await self._run(lambda conn: self._select(conn, limit, after_id, cutoff))
        self._count_drops(DropReason.EXPIRED, expired)
        self._end_episode_if_empty()
        return messages

    async def remove(self, ids: Sequence[int]) -> int:
        """Remove messages (once the broker has acknowledged them); returns how many were still queued."""
        if not ids:
            return 0
        removed = await self._run(lambda conn: self._delete(conn, list(ids)))
        self._end_episode_if_empty()
        return removed

    async def wait_for_append(self, after_id: int, timeout_s: float) -> bool:
        """Wait until a message with an id above ``after_id`` has been appended; False after ``timeout_s``."""
        try:
            async with asyncio.timeout(timeout_s):
                while self._state.last_id <= after_id:
                    self._appended.clear()
                    await self._appended.wait()
        except TimeoutError:
            return False
        return True

    # -- on the database thread ---------------------------------------------------------------------

    async def _run(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if not self._open:
            raise QueueError(f"outbound queue {self.path} is not open")
        try:
            return await self._db.run(fn)
        except sqlite3.Error as exc:
            raise _mapped(exc, self.path) from exc

    def _insert(self, conn: sqlite3.Connection, rows: list[_Row]) -> tuple[list[int], int]:
        state = self._state

        def statements(conn: sqlite3.Connection) -> tuple[list[int], int, int]:
            insert = "INSERT INTO outbound (enqueued_at, topic, payload, qos, retain, size) VALUES (?, ?, ?, ?, ?, ?)"
            ids = [int(conn.execute(insert, row).lastrowid or 0) for row in rows]
            excess = state.bytes + sum(row[5] for row in rows) - self.max_bytes
            dropped, freed = _drop_oldest(conn, excess) if excess > 0 else (0, 0)
            return ids, dropped, freed

        ids, dropped, freed = transaction(conn, statements)
        head = state.head_enqueued_at if state.messages and not dropped else _head(conn)
        self._state = _State(
            messages=state.messages + len(rows) - dropped,
            bytes=state.bytes + sum(row[5] for row in rows) - freed,
            head_enqueued_at=head,
            last_id=ids[-1],
        )
        return ids, dropped

    def _select(
        self, conn: sqlite3.Connection, limit: int, after_id: int, cutoff: float | None
    ) -> tuple[list[QueuedMessage], int]:
        found: list[QueuedMessage] = []
        expired: list[int] = []
        cursor = conn.execute(f"SELECT {_COLUMNS} FROM outbound WHERE id > ? ORDER BY id", (after_id,))
        while len(found) < limit and (rows := cursor.fetchmany(max(limit - len(found), 64))):
            for id_, enqueued_at, topic, payload, qos, retain in rows:
                if len(found) == limit:
                    break
                if cutoff is not None and enqueued_at < cutoff:
                    expired.append(id_)
                else:
                    message = OutboundMessage(topic=topic, payload=bytes(payload), qos=qos, retain=bool(retain))
                    found.append(QueuedMessage(id=id_, enqueued_at=enqueued_at, message=message))
        cursor.close()
        return found, self._delete(conn, expired) if expired else 0

    def _delete(self, conn: sqlite3.Connection, ids: list[int]) -> int:
        # Removing needs no flush of its own: a removal lost to a power cut only sends a message again
        # (at least once), and the next append's flush makes it durable anyway (the WAL is sequential).
        conn.execute("PRAGMA synchronous=NORMAL")
        try:
            counts, sizes = transaction(conn, lambda conn: _delete_ids(conn, ids))
        finally:
            conn.execute("PRAGMA synchronous=FULL")
        state = self._state
        self._state = _State(
            messages=state.messages - counts,
            bytes=state.bytes - sizes,
            head_enqueued_at=_head(conn) if counts else state.head_enqueued_at,
            last_id=state.last_id,
        )
        return counts

    # -- drops and their log ------------------------------------------------------------------------

    def _count_drops(self, reason: DropReason, count: int) -> None:
        if not count:
            return
        self._dropped[reason] += count
        if reason not in self._episode:
            if reason is DropReason.OVERFLOW:
                what = f"is full ({self.max_bytes} bytes): dropping the oldest messages"
            else:
                what = f"holds messages older than {self.max_age_s:g} s: dropping them"
            log.warning("outbound queue %s %s (logged once until the queue is empty again)", self.path, what)
        self._episode[reason] = self._episode.get(reason, 0) + count
        if self._on_drop is not None:
            self._on_drop(reason, count)

    def _end_episode_if_empty(self) -> None:
        if self._episode and self._state.messages == 0:
            summary = ", ".join(f"{count} {reason}" for reason, count in self._episode.items())
            log.info("outbound queue %s is empty again; dropped meanwhile: %s", self.path, summary)
            self._episode.clear()


def _head(conn: sqlite3.Connection) -> float | None:
    row = conn.execute("SELECT enqueued_at FROM outbound ORDER BY id LIMIT 1").fetchone()
    return float(row[0]) if row else None


def _drop_oldest(conn: sqlite3.Connection, excess: int) -> tuple[int, int]:
    """Delete the oldest rows until at least ``excess`` bytes are freed; returns (rows, bytes)."""
    count = freed = last_id = 0
    cursor = conn.execute("SELECT id, size FROM outbound ORDER BY id")
    while freed < excess and (rows := cursor.fetchmany(256)):
        for id_, size in rows:
            count, freed, last_id = count + 1, freed + size, id_
            if freed >= excess:
                break
    cursor.close()
    conn.execute("DELETE FROM outbound WHERE id <= ?", (last_id,))
    return count, freed


def _delete_ids(conn: sqlite3.Connection, ids: list[int]) -> tuple[int, int]:
    """Delete the rows with these ids (those still there); returns (rows, bytes)."""
    count = freed = 0
    for start in range(0, len(ids), _MAX_PARAMS):
        chunk = ids[start : start + _MAX_PARAMS]
        marks = ",".join("?" * len(chunk))
        for (size,) in conn.execute(f"DELETE FROM outbound WHERE id IN ({marks}) RETURNING size", chunk).fetchall():
            count, freed = count + 1, freed + size
    return count, freed


def _mapped(exc: sqlite3.Error | OSError, path: Path) -> QueueError:
    """The queue's own error for an sqlite3 error, naming the file and what to do."""
    name = getattr(exc, "sqlite_errorname", "")
    if name in ("SQLITE_NOTADB", "SQLITE_CORRUPT") or "malformed" in str(exc):
        return QueueCorrupt(
            f"outbound queue {path} is damaged or not an SQLite database ({exc}); "
            "move it aside to start with an empty queue (its messages are lost)"
        )
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
        return QueueLocked(f"outbound queue {path} is locked by another process (a second agent?): {exc}")
    return QueueError(f"outbound queue {path}: {exc}")
