"""The store-and-forward queue and its forwarder, on real files, real processes and a real Mosquitto."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from services import MosquittoServer
from testkit import unique

from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions
from edge_agent.buffer import (
    DropReason,
    OutboundMessage,
    OutboundQueue,
    QueueCorrupt,
    QueueError,
    QueueLocked,
)
from edge_agent.forwarder import Forwarder

REPO = Path(__file__).resolve().parents[2]
TOPIC = "cityhub/v1/test-site/dev-1/telemetry"


class FakeClock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1_767_225_600.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def message(i: int, topic: str = TOPIC) -> OutboundMessage:
    return OutboundMessage(topic=topic, payload=f"{i:06d}".encode())


def queue_at(path: Path, **kwargs: object) -> OutboundQueue:
    options: dict[str, object] = {"max_bytes": 10_000_000, "max_age_s": None} | kwargs
    return OutboundQueue(path, **options)  # type: ignore[arg-type]


async def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        await asyncio.sleep(0.05)


# -- the queue on its own ------------------------------------------------------------------------------


async def test_append_peek_remove_in_order_with_exact_depth(tmp_path: Path) -> None:
    clock = FakeClock()
    async with queue_at(tmp_path / "q.sqlite", clock=clock) as queue:
        first = await queue.append(message(0))
        clock.now += 10
        ids = await queue.append_many([message(i) for i in range(1, 5)])
        assert ids == list(range(first + 1, first + 5))
        assert queue.depth.messages == 5
        assert queue.depth.bytes == 5 * (len(TOPIC) + 6)
        assert queue.depth.oldest_age_s == 10

        head = await queue.peek(3)
        assert [q.message.payload for q in head] == [b"000000", b"000001", b"000002"]
        assert head[0].enqueued_at == clock.now - 10
        assert [q.id for q in await queue.peek(10, after_id=head[-1].id)] == ids[2:]

        assert await queue.remove([first, ids[0], 999_999]) == 2
        assert queue.depth.messages == 3
        assert queue.depth.oldest_age_s == 0  # the new head was appended "now"
        assert [q.id for q in await queue.peek(10)] == ids[1:]


async def test_reopen_keeps_messages_and_never_reuses_ids(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    async with queue_at(path) as queue:
        ids = await queue.append_many([message(i) for i in range(10)])
        await queue.remove(ids[:10])
        kept = await queue.append_many([message(i) for i in range(10, 15)])
    async with queue_at(path) as queue:
        assert queue.depth.messages == 5
        assert queue.last_id == kept[-1]
        assert [q.message.payload for q in await queue.peek(10)] == [f"{i:06d}".encode() for i in range(10, 15)]
        await queue.remove(kept)
        assert await queue.append(message(99)) > kept[-1]


_APPENDER = """
import asyncio, sys
from pathlib import Path
from edge_agent.buffer import OutboundMessage, OutboundQueue

async def main() -> None:
    async with OutboundQueue(Path(sys.argv[1]), max_bytes=10**9, max_age_s=None) as queue:
        i = 0
        while True:
            if i % 10 == 0:
                batch = [OutboundMessage(topic="t/kill", payload=str(i + k).encode()) for k in range(5)]
                ids = await queue.append_many(batch)
                i += 5
            else:
                ids = [await queue.append(OutboundMessage(topic="t/kill", payload=str(i).encode()))]
                i += 1
            print(" ".join(map(str, ids)), flush=True)

asyncio.run(main())
"""


async def test_sigkill_right_after_append_loses_nothing_appended(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    env = os.environ | {"PYTHONPATH": str(REPO)}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _APPENDER, str(path), cwd=REPO, env=env, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdout is not None
    acknowledged: list[int] = []
    while len(acknowledged) < 300:
        line = await asyncio.wait_for(proc.stdout.readline(), 30)
        assert line, "the appender died"
        acknowledged.extend(int(i) for i in line.split())
    proc.send_signal(signal.SIGKILL)
    rest, _ = await asyncio.wait_for(proc.communicate(), 30)  # printed before it died: acknowledged too
    acknowledged.extend(int(i) for i in rest.split())
    assert proc.returncode == -signal.SIGKILL

    async with queue_at(path) as queue:
        stored = await queue.peek(len(acknowledged) + 1_000)
    stored_ids = [q.id for q in stored]
    assert stored_ids[: len(acknowledged)] == acknowledged  # every acknowledged append, in order
    assert [q.message.payload for q in stored] == [str(i).encode() for i in range(len(stored))]


async def test_full_queue_drops_the_oldest_counted_and_logged_once_per_episode(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    size = message(0).size
    drops: list[tuple[DropReason, int]] = []
    queue = queue_at(tmp_path / "q.sqlite", max_bytes=10 * size, on_drop=lambda r, n: drops.append((r, n)))
    caplog.set_level(logging.INFO, logger="edge_agent.buffer")
    async with queue:
        for i in range(25):
            await queue.append(message(i))
        assert queue.dropped == {DropReason.OVERFLOW: 15, DropReason.EXPIRED: 0}
        assert sum(n for _, n in drops) == 15
        assert queue.depth.messages == 10
        assert queue.depth.bytes == 10 * size
        remaining = await queue.peek(100)
        assert [q.message.payload for q in remaining] == [f"{i:06d}".encode() for i in range(15, 25)]

        # One batch bigger than the whole queue keeps only its newest messages.
        await queue.append_many([message(i) for i in range(100, 115)])
        assert queue.dropped[DropReason.OVERFLOW] == 15 + 15
        assert [q.message.payload for q in await queue.peek(100)] == [f"{i:06d}".encode() for i in range(105, 115)]

        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "full" in warnings[0].getMessage()

        await queue.remove([q.id for q in await queue.peek(100)])
        assert [r.getMessage() for r in caplog.records if r.levelno == logging.INFO][-1].endswith("30 overflow")
        await queue.append_many([message(i) for i in range(11)])  # a new episode, a new warning
        assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 2


async def test_a_message_larger_than_the_queue_is_refused(tmp_path: Path) -> None:
    async with queue_at(tmp_path / "q.sqlite", max_bytes=100) as queue:
        with pytest.raises(ValueError, match="can never fit"):
            await queue.append(OutboundMessage(topic="t", payload=b"x" * 100))
        assert queue.depth.messages == 0


async def test_messages_older_than_max_age_are_dropped_when_drained(tmp_path: Path) -> None:
    clock = FakeClock()
    async with queue_at(tmp_path / "q.sqlite", max_age_s=3600, clock=clock) as queue:
        old = await queue.append_many([message(i) for i in range(7)])
        clock.now += 1800
        fresh = await queue.append_many([message(i) for i in range(7, 10)])
        clock.now += 1801  # the first seven are now 3601 s old, the last three 1801 s
        assert queue.dropped[DropReason.EXPIRED] == 0  # nothing expires before the drain reaches it
        assert [q.id for q in await queue.peek(2, after_id=old[2])] == fresh[:2]  # skips the 4 expired after id 3
        assert queue.dropped[DropReason.EXPIRED] == 4
        assert [q.id for q in await queue.peek(10)] == fresh  # and the 3 before it
        assert queue.dropped == {DropReason.OVERFLOW: 0, DropReason.EXPIRED: 7}
        assert queue.depth.messages == 3
        assert queue.depth.oldest_age_s == 1801


async def test_garbage_file_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    path.write_bytes(b"this is not a database" * 500)
    with pytest.raises(QueueCorrupt, match=r"move it aside") as caught:
        await queue_at(path).open()
    assert str(path) in str(caught.value)


async def test_damaged_pages_are_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    async with queue_at(path) as queue:
        await queue.append_many([OutboundMessage(topic="t", payload=os.urandom(900)) for _ in range(200)])
    with path.open("r+b") as file:  # keep page 1 (the header), wreck the table's pages
        file.seek(4096 * 2)
        file.write(b"\xff" * 4096 * 20)
    with pytest.raises(QueueCorrupt, match=r"damaged"):
        await open_and_read(queue_at(path))


async def open_and_read(queue: OutboundQueue) -> None:
    """Open the queue and read it whole (damage shows at open or when a damaged page is read)."""
    try:
        await queue.open()
        await queue.peek(1_000_000)
    finally:
        await queue.aclose()


async def test_second_opener_of_the_same_file_gets_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    async with queue_at(path) as first:
        await first.append(message(1))
        with pytest.raises(QueueLocked, match=r"another process"):
            await queue_at(path).open()  # after SQLite's 5 s busy timeout
    async with queue_at(path) as again:  # free once the first one closed
        assert again.depth.messages == 1


async def test_a_closed_queue_refuses_work(tmp_path: Path) -> None:
    queue = queue_at(tmp_path / "q.sqlite")
    with pytest.raises(QueueError, match="not open"):
        await queue.append(message(1))


async def test_wait_for_append_wakes_on_append(tmp_path: Path) -> None:
    async with queue_at(tmp_path / "q.sqlite") as queue:
        assert not await queue.wait_for_append(queue.last_id, 0.05)
        waiting = asyncio.create_task(queue.wait_for_append(queue.last_id, 10))
        await asyncio.sleep(0.05)
        await queue.append(message(1))
        assert await asyncio.wait_for(waiting, 5)


# -- the forwarder on a real broker -----------------------------------------------------------------------


def session(url: str, client_id: str, **options: object) -> MqttSession:
    settings: dict[str, object] = {"client_id": client_id, "reconnect_max_s": 2} | options
    return MqttSession(BrokerAddress.from_url(url), SessionOptions(**settings))  # type: ignore[arg-type]


def subscriber(url: str, topic_filter: str) -> MqttSession:
    """A persistent session (it keeps receiving across a broker restart), subscribed before anything is sent."""
    return session(url, unique("sub-"), clean_start=False, session_expiry_s=3600, subscriptions=[(topic_filter, 1)])


async def receive(sub: MqttSession, count: int, timeout_s: float) -> list[bytes]:
    """At least ``count`` payloads, then whatever else arrives within half a second (duplicates would)."""
    payloads: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    while len(payloads) < count:
        assert time.monotonic() < deadline, f"received {len(payloads)} of {count} messages in {timeout_s} s"
        payloads += [m.payload for m in await sub.receive(1_000, 0.5)]
    while extra := await sub.receive(1_000, 0.5):
        payloads += [m.payload for m in extra]
    return payloads


@contextlib.asynccontextmanager
async def forwarding(forwarder: Forwarder) -> AsyncIterator[Forwarder]:
    task = asyncio.create_task(forwarder.run())
    try:
        yield forwarder
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def expected(numbers: range) -> list[bytes]:
    return [message(i).payload for i in numbers]


async def test_order_preserved_exactly_once_across_a_broker_outage(
    tmp_path: Path, fresh_mosquitto: MosquittoServer
) -> None:
    clock = FakeClock(time.time())
    root = unique("t")
    queue = queue_at(tmp_path / "q.sqlite", max_age_s=7 * 86_400, clock=clock)
    sub = subscriber(fresh_mosquitto.url, f"{root}/#")
    pub = session(fresh_mosquitto.url, unique("agent-"))
    async with queue, sub, pub:
        forwarder = Forwarder(queue, pub, rate=None, window=64, historical_after_s=600)
        async with forwarding(forwarder):
            for i in range(100):  # live: one append per message
                await queue.append(message(i, f"{root}/x"))
            assert await receive(sub, 100, 30) == expected(range(100))
            await wait_until(lambda: queue.depth.messages == 0 and forwarder.in_flight == 0, 10, "an empty queue")

            await asyncio.to_thread(fresh_mosquitto.stop)
            await wait_until(lambda: not pub.connected, 10, "the agent to see the outage")
            for start in range(100, 3_000, 100):
                await queue.append_many([message(i, f"{root}/x") for i in range(start, start + 100)])
            for i in range(3_000, 3_100):
                await queue.append(message(i, f"{root}/x"))
            await asyncio.sleep(0.5)
            assert queue.depth.messages == 3_000  # nothing left while the broker was down

            clock.now += 3_600  # the backlog is an hour old when it goes out
            await asyncio.to_thread(fresh_mosquitto.start)
            assert await receive(sub, 3_000, 90) == expected(range(100, 3_100))  # once each, in order
            await wait_until(lambda: queue.depth.messages == 0, 10, "an empty queue")
        assert forwarder.stats.forwarded == 3_100
        assert forwarder.stats.historical == 3_000
        assert forwarder.stats.republished == 0
        assert queue.dropped == {DropReason.OVERFLOW: 0, DropReason.EXPIRED: 0}


@pytest.mark.parametrize("outage_s", [0.0, 4.0], ids=["restart", "outage-longer-than-ack-timeout"])
async def test_broker_restart_mid_drain_loses_nothing_and_keeps_first_arrivals_in_order(
    tmp_path: Path, fresh_mosquitto: MosquittoServer, outage_s: float
) -> None:
    root = unique("t")
    queue = queue_at(tmp_path / "q.sqlite")
    sub = subscriber(fresh_mosquitto.url, f"{root}/#")
    pub = session(fresh_mosquitto.url, unique("agent-"))
    async with queue, sub, pub:
        await queue.append_many([message(i, f"{root}/x") for i in range(2_000)])
        forwarder = Forwarder(queue, pub, rate=500, window=64, ack_timeout_s=2.0)
        async with forwarding(forwarder):
            await wait_until(lambda: forwarder.stats.forwarded > 300, 30, "the drain to start")
            await asyncio.to_thread(fresh_mosquitto.stop)
            await asyncio.sleep(outage_s)
            await asyncio.to_thread(fresh_mosquitto.start)
            payloads = await receive(sub, 2_000 - 300, 90)
            await wait_until(lambda: queue.depth.messages == 0, 30, "an empty queue")
    received = list(dict.fromkeys(payloads))  # first arrivals
    assert received == expected(range(2_000))[-len(received) :]
    assert len(received) >= 2_000 - 300
    assert len(payloads) - len(received) <= 3 * forwarder.window  # QoS 1: a few sent twice, bounded
    assert forwarder.stats.republished == 0  # the PUBACK timeout counts connected time only


async def test_after_a_reconnection_nothing_new_overtakes_the_messages_paho_sends_again(
    tmp_path: Path, fresh_mosquitto: MosquittoServer
) -> None:
    """paho tells of a new connection (on_connect) before it sends again the messages still in flight.

    A publish made in between goes out first. The test widens that gap, as a loaded machine does now and
    then, and checks that the forwarder holds new messages back until the old ones are acknowledged.
    """
    root = unique("t")
    queue = queue_at(tmp_path / "q.sqlite")
    sub = subscriber(fresh_mosquitto.url, f"{root}/#")
    pub = session(fresh_mosquitto.url, unique("agent-"))
    database = fresh_mosquitto.workdir / "mosquitto.db"
    assert fresh_mosquitto.pid is not None
    async with queue, sub, pub:
        subscribed_at = time.time()
        # The broker saves its state every second: the subscriber's session must be on disk before the crash.
        await wait_until(lambda: database.exists() and database.stat().st_mtime > subscribed_at + 0.1, 10, "a save")
        await queue.append_many([message(i, f"{root}/x") for i in range(500)])
        os.kill(fresh_mosquitto.pid, signal.SIGSTOP)  # connected, reading nothing: no PUBACK comes
        forwarder = Forwarder(queue, pub, rate=100, window=256, ack_timeout_s=1.0)
        async with forwarding(forwarder):
            # Some messages in flight, the window far from full: the forwarder is still publishing.
            await wait_until(lambda: forwarder.in_flight >= 20, 10, "messages in flight")
            await asyncio.to_thread(fresh_mosquitto.kill)  # what it had not read is gone: paho sends it again
            client = pub._client  # the seam: paho's own on_connect hook, to hold its thread after it
            tell = client.on_connect

            def slow_on_connect(*args: object) -> None:
                tell(*args)  # type: ignore[misc]
                time.sleep(0.3)  # paho's thread, between on_connect and sending the messages in flight again

            client.on_connect = slow_on_connect
            await asyncio.sleep(1.5)  # down for longer than the PUBACK timeout
            await asyncio.to_thread(fresh_mosquitto.start)
            payloads = await receive(sub, 500, 60)
            await wait_until(lambda: queue.depth.messages == 0, 30, "an empty queue")
    assert list(dict.fromkeys(payloads)) == expected(range(500))  # every message, first copies in order
    assert forwarder.stats.republished == 0  # their PUBACKs are due from the reconnection on, not from the send


async def test_missing_pubacks_make_the_forwarder_send_again_in_order(
    tmp_path: Path, fresh_mosquitto: MosquittoServer
) -> None:
    root = unique("t")
    queue = queue_at(tmp_path / "q.sqlite")
    sub = subscriber(fresh_mosquitto.url, f"{root}/#")
    pub = session(fresh_mosquitto.url, unique("agent-"))
    assert fresh_mosquitto.pid is not None
    async with queue, sub, pub:
        await queue.append_many([message(i, f"{root}/x") for i in range(1_000)])
        forwarder = Forwarder(queue, pub, rate=500, window=16, ack_timeout_s=1.0)
        async with forwarding(forwarder):
            await wait_until(lambda: forwarder.stats.forwarded > 200, 30, "the drain to start")
            os.kill(fresh_mosquitto.pid, signal.SIGSTOP)  # frozen: connected, but no PUBACK comes
            try:
                await wait_until(lambda: forwarder.stats.republished > 0, 10, "a PUBACK timeout")
            finally:
                os.kill(fresh_mosquitto.pid, signal.SIGCONT)
            payloads = await receive(sub, 1_000, 60)
            await wait_until(lambda: queue.depth.messages == 0, 30, "an empty queue")
    received = list(dict.fromkeys(payloads))
    assert received == expected(range(1_000))  # every message, first copies in order
    assert 0 < len(payloads) - len(received) <= forwarder.stats.republished  # the duplicates are the resent ones


async def test_drain_rate_is_bounded_and_live_messages_flow_behind_the_backlog(
    tmp_path: Path, mosquitto: MosquittoServer
) -> None:
    root = unique("t")
    queue = queue_at(tmp_path / "q.sqlite")
    sub = subscriber(mosquitto.url, f"{root}/#")
    pub = session(mosquitto.url, unique("agent-"))
    async with queue, sub, pub:
        await queue.append_many([message(i, f"{root}/x") for i in range(300)])
        forwarder = Forwarder(queue, pub, rate=100, window=64)
        started = time.monotonic()
        async with forwarding(forwarder):
            slowest_append = 0.0
            for i in range(300, 320):  # live messages during the drain: never held up by it
                before = time.monotonic()
                await queue.append(message(i, f"{root}/x"))
                slowest_append = max(slowest_append, time.monotonic() - before)
                await asyncio.sleep(0.1)
            await wait_until(lambda: queue.depth.messages == 0, 60, "an empty queue")
            elapsed = time.monotonic() - started
        assert await receive(sub, 320, 30) == expected(range(320))
    assert 2.2 < elapsed < 20.0  # 320 messages at 100/s: about 3.2 s (a 5-message burst aside)
    assert slowest_append < 1.0


async def test_forwarder_drops_expired_messages_and_sends_the_rest(tmp_path: Path, mosquitto: MosquittoServer) -> None:
    clock = FakeClock(time.time())
    root = unique("t")
    queue = queue_at(tmp_path / "q.sqlite", max_age_s=600, clock=clock)
    sub = subscriber(mosquitto.url, f"{root}/#")
    pub = session(mosquitto.url, unique("agent-"))
    async with queue, sub, pub:
        await queue.append_many([message(i, f"{root}/x") for i in range(10)])
        clock.now += 601
        await queue.append_many([message(i, f"{root}/x") for i in range(10, 15)])
        async with forwarding(Forwarder(queue, pub, rate=None)):
            assert await receive(sub, 5, 30) == expected(range(10, 15))
        assert queue.dropped == {DropReason.OVERFLOW: 0, DropReason.EXPIRED: 10}
        assert queue.depth.messages == 0


async def test_queue_file_is_sqlite_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "q.sqlite"
    async with queue_at(path) as queue:
        await queue.append(message(1))
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        assert conn.execute("SELECT count(*) FROM outbound").fetchone() == (1,)
