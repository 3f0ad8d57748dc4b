"""Cost of the edge agent's store-and-forward queue, side by side with a bare ``MqttSession``.

Run ``.venv/bin/python bench/buffer.py`` (``--help`` for the knobs).

What is measured
================
A private Mosquitto 2.x (``tests/services.py``) is started in a temporary directory, and ``--messages``
telemetry payloads (default 5,000; ``--readings`` readings each, default 10, about 1 KB) are built once with
the contract's models, round-robin over 20 devices. Queue files live in the same temporary directory
(``$TMPDIR``: put it on the disk the agent would use, since a durable append costs one flush). Each round
runs every measurement below, in an order that rotates from round to round:

``enqueue``          ``OutboundQueue.append`` per message into an empty queue (one flushed commit each).
``enqueue-batch``    ``append_many`` in batches of ``--batch`` (default 100): one commit per batch.
``bare``             The baseline: a bare ``MqttSession`` publishes the messages directly, QoS 1, with up to
                     ``--window`` (default 64) PUBACKs awaited at once, in order. Rate = messages / (last
                     PUBACK - first publish).
``drain``            A queue filled beforehand (not timed) is drained by a ``Forwarder`` (no rate limit, the
                     same window): messages / (empty queue - start).
``live``             The "always append" rule end to end: each message is appended (one commit each) while a
                     forwarder drains concurrently; messages / (empty queue - first append).
``live-batch``       The same with ``append_many`` batches of ``--batch``.

Then, once, the latency of one message on an idle link (``--latency`` messages, sent one after another):
``bare`` = ``publish`` until PUBACK; ``queued`` = ``append`` until the forwarder has removed it after its
PUBACK (measured by wrapping ``remove`` on the bench's queue instance).

Ratios are medians of rates over ``--rounds`` rounds (default 5): drain / bare, live / bare, live-batch /
bare. No subscriber is attached: the broker acknowledges and discards, for both paths alike. The forwarder's
production rate bound (100 messages/s by default) is lifted here: the figures are the ceiling it bounds.

Type-check with ``MYPYPATH=tests .venv/bin/mypy --strict bench/buffer.py`` (it imports tests' helpers).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
import time
import uuid
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

import benchlib
from services import MosquittoServer

from cityhub.contract import MessageKind, Reading, TelemetryMessage, Topics
from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions
from edge_agent.buffer import OutboundMessage, OutboundQueue
from edge_agent.forwarder import Forwarder

DEVICES = 20
MEASUREMENTS = ("enqueue", "enqueue-batch", "bare", "drain", "live", "live-batch")
RATIOS = (("drain", "bare"), ("live", "bare"), ("live-batch", "bare"))


def make_workload(messages: int, readings: int) -> list[OutboundMessage]:
    """``messages`` telemetry messages of ``readings`` readings, round-robin over the devices."""
    topics = Topics("bench")
    now_ms = int(time.time() * 1000)
    out: list[OutboundMessage] = []
    for i in range(messages):
        device, seq = f"dev-{i % DEVICES:02d}", i // DEVICES + 1
        payload = TelemetryMessage(
            device=device,
            site="bench-site",
            kind="bench_sensor",
            boot=1_700_000_000_000,
            seq=seq,
            readings=[
                Reading(metric=f"environment.m{k}", value=20.0 + (i + k) % 17 / 10, unit="Cel", ts=now_ms + seq)
                for k in range(readings)
            ],
        )
        topic = topics.device("bench-site", device, MessageKind.TELEMETRY)
        out.append(OutboundMessage(topic=topic, payload=payload.model_dump_json(exclude_defaults=True).encode()))
    return out


class Bench:
    """One broker, one workload, fresh queue files and sessions per measurement."""

    def __init__(self, broker: MosquittoServer, workdir: Path, args: argparse.Namespace) -> None:
        self.address = BrokerAddress.from_url(broker.url)
        self.workdir = workdir
        self.args = args
        self.workload = make_workload(args.messages, args.readings)

    def queue(self) -> OutboundQueue:
        return OutboundQueue(self.workdir / f"q-{uuid.uuid4().hex}.sqlite", max_bytes=2**31, max_age_s=None)

    def session(self) -> MqttSession:
        return MqttSession(self.address, SessionOptions(client_id=f"bench-{uuid.uuid4().hex[:12]}"))

    @contextlib.asynccontextmanager
    async def forwarding(self, queue: OutboundQueue, session: MqttSession) -> AsyncIterator[Forwarder]:
        forwarder = Forwarder(queue, session, rate=None, window=self.args.window)
        task = asyncio.create_task(forwarder.run())
        try:
            yield forwarder
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def until_empty(self, queue: OutboundQueue) -> None:
        # The queue has no "empty" event; a 1 ms poll adds at most 1 ms to a measurement of seconds.
        while queue.depth.messages:  # noqa: ASYNC110
            await asyncio.sleep(0.001)

    # -- measurements: each returns messages/s -----------------------------------------------------------

    async def enqueue(self) -> float:
        async with self.queue() as queue:
            started = time.perf_counter()
            for message in self.workload:
                await queue.append(message)
            return len(self.workload) / (time.perf_counter() - started)

    async def enqueue_batch(self) -> float:
        async with self.queue() as queue:
            started = time.perf_counter()
            for batch in self.batches():
                await queue.append_many(batch)
            return len(self.workload) / (time.perf_counter() - started)

    async def bare(self) -> float:
        async with self.session() as session:
            pending: deque[asyncio.Task[None]] = deque()
            started = time.perf_counter()
            for m in self.workload:
                if len(pending) >= self.args.window:
                    await pending.popleft()
                pending.append(asyncio.create_task(session.publish(m.topic, m.payload, qos=m.qos, retain=m.retain)))
            for task in pending:
                await task
            return len(self.workload) / (time.perf_counter() - started)

    async def drain(self) -> float:
        async with self.queue() as queue, self.session() as session:
            for batch in self.batches():
                await queue.append_many(batch)
            started = time.perf_counter()
            async with self.forwarding(queue, session):
                await self.until_empty(queue)
            return len(self.workload) / (time.perf_counter() - started)

    async def live(self) -> float:
        async with self.queue() as queue, self.session() as session, self.forwarding(queue, session):
            started = time.perf_counter()
            for message in self.workload:
                await queue.append(message)
            await self.until_empty(queue)
            return len(self.workload) / (time.perf_counter() - started)

    async def live_batch(self) -> float:
        async with self.queue() as queue, self.session() as session, self.forwarding(queue, session):
            started = time.perf_counter()
            for batch in self.batches():
                await queue.append_many(batch)
            await self.until_empty(queue)
            return len(self.workload) / (time.perf_counter() - started)

    def batches(self) -> list[list[OutboundMessage]]:
        size = self.args.batch
        return [self.workload[i : i + size] for i in range(0, len(self.workload), size)]

    def measurement(self, name: str) -> Callable[[], Awaitable[float]]:
        return {
            "enqueue": self.enqueue,
            "enqueue-batch": self.enqueue_batch,
            "bare": self.bare,
            "drain": self.drain,
            "live": self.live,
            "live-batch": self.live_batch,
        }[name]

    # -- latency -------------------------------------------------------------------------------------------

    async def latency(self) -> tuple[list[float], list[float]]:
        """Seconds per message, one at a time: (bare publish to PUBACK, append to removal after PUBACK)."""
        samples = self.workload[: self.args.latency]
        bare: list[float] = []
        async with self.session() as session:
            for m in samples:
                started = time.perf_counter()
                await session.publish(m.topic, m.payload, qos=m.qos)
                bare.append(time.perf_counter() - started)
        queued: list[float] = []
        removed = asyncio.Event()
        async with self.queue() as queue, self.session() as session:
            remove = queue.remove

            async def signalling_remove(ids: Sequence[int]) -> int:
                count = await remove(ids)
                removed.set()
                return count

            queue.remove = signalling_remove  # type: ignore[method-assign]
            async with self.forwarding(queue, session):
                for m in samples:
                    removed.clear()
                    started = time.perf_counter()
                    await queue.append(m)
                    await removed.wait()
                    queued.append(time.perf_counter() - started)
        return bare, queued


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def run(args: argparse.Namespace, workdir: Path) -> None:
    with MosquittoServer(workdir / "mosquitto") as broker:
        bench = Bench(broker, workdir, args)
        size = statistics.mean(m.size for m in bench.workload)
        print(
            f"{args.messages} messages of {size:.0f} bytes (topic + payload), {args.rounds} rounds, "
            f"window {args.window}, batches of {args.batch}; queue files in {workdir}"
        )
        rates: dict[str, list[float]] = {name: [] for name in MEASUREMENTS}
        for r in range(args.rounds):
            order = MEASUREMENTS[r % len(MEASUREMENTS) :] + MEASUREMENTS[: r % len(MEASUREMENTS)]
            for name in order:
                rates[name].append(await bench.measurement(name)())
            print(f"round {r + 1}: " + ", ".join(f"{name} {rates[name][-1]:,.0f}/s" for name in MEASUREMENTS))
        print()
        print(f"{'measurement':<15}{'median msgs/s':>15}{'min':>10}{'max':>10}")
        for name in MEASUREMENTS:
            values = rates[name]
            print(f"{name:<15}{statistics.median(values):>15,.0f}{min(values):>10,.0f}{max(values):>10,.0f}")
        print()
        for name, base in RATIOS:
            ratio = statistics.median(rates[name]) / statistics.median(rates[base])
            per_round = " ".join(f"{a / b:.2f}" for a, b in zip(rates[name], rates[base], strict=True))
            print(f"{name} / {base}: {ratio:.2f}   (per round: {per_round})")
        if args.latency:
            bare, queued = await bench.latency()
            print()
            print(f"latency, {args.latency} messages one at a time (ms):  p50     p99")
            for label, values in (("bare publish -> PUBACK", bare), ("queued append -> removed", queued)):
                print(f"  {label:<26}{percentile(values, 0.5) * 1e3:>8.2f}{percentile(values, 0.99) * 1e3:>8.2f}")


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--messages", type=int, default=5_000, help="messages per measurement (default 5000)")
    parser.add_argument("--readings", type=int, default=10, help="readings per message (default 10)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; medians are over these (default 5)")
    parser.add_argument("--batch", type=int, default=100, help="messages per append_many (default 100)")
    parser.add_argument("--window", type=int, default=64, help="PUBACKs awaited at once (default 64)")
    parser.add_argument("--latency", type=int, default=300, help="messages for the latency figures (0: skip)")
    parser.add_argument("--workdir", type=Path, help="where the broker and the queue files go (default: a temp dir)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point."""
    benchlib.main(parse_args, lambda args, workdir: asyncio.run(run(args, workdir)), argv)


if __name__ == "__main__":
    main()
