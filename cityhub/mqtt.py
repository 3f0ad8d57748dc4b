"""An asyncio MQTT session on paho-mqtt, with acknowledgements the application controls.

Why paho and not aiomqtt: the hub must send PUBACK only after a message is durably stored, and only
paho-mqtt (2.x, ``manual_ack``) offers that today; aiomqtt does not expose it. paho runs its network loop
in its own thread (``loop_start``) and reconnects by itself with a capped backoff; this module hands
received messages to asyncio in arrival order and turns publish acknowledgements into awaitables.

An acknowledgement is only sent on the connection that received the message: after a reconnect the
broker redelivers every unacknowledged message of a persistent session, so a stale packet id must not
be acknowledged on the new connection (it could name a different message).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode
from paho.mqtt.subscribeoptions import SubscribeOptions

log = logging.getLogger(__name__)


class MqttError(Exception):
    """The broker could not be reached, refused us, or did not acknowledge in time."""


@dataclass(frozen=True, slots=True, kw_only=True)
class BrokerAddress:
    """Where the broker is and who we are to it, from an ``mqtt://`` or ``mqtts://`` URL."""

    host: str
    port: int
    tls: bool = False
    username: str | None = None
    password: str | None = None
    #: The CA that signed the broker's certificate (a private deployment's, docs/broker.md); None: the system's.
    ca_file: str | None = None

    @classmethod
    def from_url(cls, url: str) -> BrokerAddress:
        """Parse ``mqtt[s]://[user[:password]@]host[:port][?cafile=/path/ca.crt]``."""
        parts = urlsplit(url)
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise ValueError(f"MQTT URL {url!r}: scheme must be mqtt:// or mqtts://")
        if not parts.hostname:
            raise ValueError(f"MQTT URL {url!r} has no host")
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port or (8883 if tls else 1883)
        except ValueError as exc:
            raise ValueError(f"MQTT URL {url!r}: {exc}") from None
        query = parse_qs(parts.query)
        unknown = sorted(set(query) - {"cafile"})
        if unknown:
            raise ValueError(f"MQTT URL {url!r}: unknown option {', '.join(unknown)} (known: cafile)")
        ca_file = query.get("cafile", [None])[-1]
        if ca_file is not None and not tls:
            raise ValueError(f"MQTT URL {url!r}: cafile needs mqtts://")
        return cls(
            host=parts.hostname,
            port=port,
            tls=tls,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            ca_file=ca_file,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Will:
    """The last will the broker publishes if the connection is lost."""

    topic: str
    payload: bytes
    qos: int = 1
    retain: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SessionOptions:
    """How to connect: identity, protocol version, session persistence, flow control."""

    client_id: str
    protocol: int = 5  # 5 or 4 (MQTT 3.1.1, e.g. for the embedded demo broker)
    clean_start: bool = True
    session_expiry_s: int = 0
    receive_maximum: int = 65_535
    keepalive_s: int = 30
    connect_timeout_s: float = 10.0
    will: Will | None = None
    subscriptions: Sequence[tuple[str, int]] = ()
    manual_ack: bool = False
    reconnect_min_s: int = 1
    reconnect_max_s: int = 10  # a broker back after an outage is reached within 10 s
    #: Send each packet at once (TCP_NODELAY). paho leaves Nagle's algorithm on, which holds a small
    #: packet (an alarm, a PUBACK, an alert notification) until the previous one is acknowledged:
    #: milliseconds on a loopback, a round trip on a WAN. MQTT packets are whole messages already.
    tcp_nodelay: bool = True


@dataclass(slots=True)
class InboundMessage:
    """A received message; ``ack()`` it on the session once it is safely handled."""

    topic: str
    payload: bytes
    qos: int
    retain: bool
    mid: int
    connection: int


def set_tcp_nodelay(_client: paho.Client, _userdata: Any, sock: Any) -> None:
    """paho's ``on_socket_open`` hook: turn Nagle's algorithm off (see SessionOptions.tcp_nodelay)."""
    with contextlib.suppress(OSError, AttributeError):  # not a TCP socket (a test's socket pair)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


class MqttSession:
    """An MQTT client session driven by paho's network thread, used from asyncio."""

    def __init__(self, address: BrokerAddress, options: SessionOptions) -> None:
        self.address = address
        self.options = options
        self._loop: asyncio.AbstractEventLoop | None = None
        self._inbox: deque[InboundMessage] = deque()
        self._inbox_lock = threading.Lock()
        self._signalled = False
        self._arrived = asyncio.Event()
        self._connected = asyncio.Event()
        self._disconnected = asyncio.Event()
        self._subscribed = asyncio.Event()
        self._pending_subacks: set[int] = set()  # touched by paho's thread only
        self._connection = 0  # increases at every CONNACK; written by paho's thread only
        # QoS 1 messages received on this connection and not yet acknowledged: the broker sends no more
        # than the receive maximum of them, so a value stuck there means the consumer is the bottleneck.
        self._unacked = 0
        self._first_connack: asyncio.Future[ReasonCode] | None = None
        self._publishes: dict[int, asyncio.Future[None]] = {}
        self.session_present = False
        #: Called in the event loop after every successful (re)connection, e.g. to publish a birth again.
        self.on_connected: Callable[[], None] | None = None
        self._client = self._make_client()

    def _make_client(self) -> paho.Client:
        o = self.options
        client = paho.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=o.client_id,
            protocol=paho.MQTTv5 if o.protocol == 5 else paho.MQTTv311,
            clean_session=None if o.protocol == 5 else o.clean_start,
            manual_ack=o.manual_ack,
        )
        if self.address.username:
            client.username_pw_set(self.address.username, self.address.password)
        if self.address.tls:
            client.tls_set(ca_certs=self.address.ca_file)
        if o.will:
            client.will_set(o.will.topic, o.will.payload, qos=o.will.qos, retain=o.will.retain)
        client.reconnect_delay_set(min_delay=o.reconnect_min_s, max_delay=o.reconnect_max_s)
        # paho keeps QoS>0 messages published while disconnected and sends them after reconnecting.
        client.max_queued_messages_set(0)
        client.max_inflight_messages_set(100)
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_publish = self._on_publish
        client.on_subscribe = self._on_subscribe
        if o.tcp_nodelay:
            client.on_socket_open = set_tcp_nodelay
        return client

    # -- lifecycle -------------------------------------------------------------------------------

    async def __aenter__(self) -> MqttSession:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.disconnect()

    def start(self) -> None:
        """Start connecting without waiting: paho keeps trying, with backoff, until the broker answers.

        For publishers that must work while the broker is away (the edge agent buffers meanwhile).
        """
        self._begin()

    def _begin(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._first_connack = self._loop.create_future()
        o = self.options
        properties = None
        if o.protocol == 5:
            properties = Properties(PacketTypes.CONNECT)  # type: ignore[no-untyped-call]
            properties.SessionExpiryInterval = o.session_expiry_s
            properties.ReceiveMaximum = o.receive_maximum
        self._client.connect_async(
            self.address.host,
            self.address.port,
            keepalive=o.keepalive_s,
            clean_start=o.clean_start if o.protocol == 5 else paho.MQTT_CLEAN_START_FIRST_ONLY,
            properties=properties,
        )
        self._client.loop_start()

    async def connect(self) -> None:
        """Connect and wait for the first CONNACK; paho reconnects by itself afterwards."""
        self._begin()
        o = self.options
        assert self._first_connack is not None
        try:
            reason = await asyncio.wait_for(asyncio.shield(self._first_connack), o.connect_timeout_s)
        except TimeoutError:
            self._client.loop_stop()
            raise MqttError(
                f"no answer from MQTT broker {self.address.host}:{self.address.port} within {o.connect_timeout_s} s"
            ) from None
        if reason.is_failure:
            self._client.loop_stop()
            raise MqttError(f"MQTT broker refused the connection: {reason}")
        try:
            # Ready means subscribed: a message published after connect() returns is not missed.
            await asyncio.wait_for(self._subscribed.wait(), o.connect_timeout_s)
        except TimeoutError:
            self._client.loop_stop()
            raise MqttError(f"the broker did not acknowledge the subscriptions in {o.connect_timeout_s} s") from None

    async def disconnect(self, timeout_s: float = 5.0) -> None:
        """Disconnect cleanly (the broker does not publish the will) and stop the network thread."""
        self._client.disconnect()
        # Let paho's thread send DISCONNECT and close the socket before stopping it; stopped too early,
        # the broker would see a dropped connection (and publish the will).
        if self._connected.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._disconnected.wait(), timeout_s)
        await asyncio.to_thread(self._client.loop_stop)
        sock = self._client.socket()
        if sock is not None:
            sock.close()

    @property
    def connected(self) -> bool:
        """Whether the session is connected now."""
        return self._connected.is_set()

    @property
    def connection(self) -> int:
        """Which connection this is: 1 for the first, one more at each reconnection (counted at CONNACK).

        paho sends again the QoS 1 messages still in flight *after* it reports a new connection, so a
        publish made in between goes out ahead of them; a caller that promises order compares this
        number with the one it noted when it published (edge_agent/forwarder.py).
        """
        return self._connection

    async def wait_connected(self, timeout_s: float) -> None:
        """Wait until connected, or raise MqttError."""
        try:
            await asyncio.wait_for(self._connected.wait(), timeout_s)
        except TimeoutError:
            raise MqttError(f"not connected to the MQTT broker after {timeout_s} s") from None

    # -- paho callbacks (network thread) -----------------------------------------------------------

    def _on_connect(self, client: paho.Client, _userdata: Any, flags: Any, reason: ReasonCode, _props: Any) -> None:
        if not reason.is_failure:
            self._connection += 1
            with self._inbox_lock:
                self._unacked = 0  # the broker redelivers the old connection's unacknowledged messages
            self.session_present = bool(flags.session_present)
            for topic_filter, qos in self.options.subscriptions:
                if self.options.protocol == 5:
                    # Retain handling 1: retained messages only on a new subscription, not on every
                    # reconnect of a persistent session.
                    _, mid = client.subscribe(topic_filter, options=SubscribeOptions(qos=qos, retainHandling=1))
                else:
                    _, mid = client.subscribe(topic_filter, qos=qos)
                if mid is not None:
                    self._pending_subacks.add(mid)
            if not self._pending_subacks:
                self._call_soon(self._subscribed.set)
            self._call_soon(self._disconnected.clear)
            self._call_soon(self._connected.set)
            if self.on_connected is not None:
                self._call_soon(self.on_connected)
            log.info(
                "connected to MQTT broker %s:%s (session present: %s)",
                self.address.host,
                self.address.port,
                self.session_present,
            )
        else:
            log.warning("MQTT broker refused the connection: %s", reason)
        if self._first_connack is not None:
            self._call_soon(self._resolve_connack, reason)

    def _resolve_connack(self, reason: ReasonCode) -> None:
        if self._first_connack is not None and not self._first_connack.done():
            self._first_connack.set_result(reason)

    def _on_subscribe(
        self, _client: paho.Client, _userdata: Any, mid: int, reasons: list[ReasonCode], _props: Any
    ) -> None:
        for reason in reasons:
            if reason.is_failure:
                log.error("the broker refused a subscription: %s", reason)
        self._pending_subacks.discard(mid)
        if not self._pending_subacks:
            self._call_soon(self._subscribed.set)

    def _on_disconnect(
        self, _client: paho.Client, _userdata: Any, _flags: Any, reason: ReasonCode, _props: Any
    ) -> None:
        self._call_soon(self._connected.clear)
        self._call_soon(self._disconnected.set)
        if reason.value != 0:
            log.warning("lost the MQTT connection (%s); paho reconnects", reason)

    def _on_message(self, _client: paho.Client, _userdata: Any, message: paho.MQTTMessage) -> None:
        inbound = InboundMessage(
            topic=message.topic,
            payload=bytes(message.payload),
            qos=message.qos,
            retain=message.retain,
            mid=message.mid,
            connection=self._connection,
        )
        with self._inbox_lock:
            self._inbox.append(inbound)
            if message.qos > 0:
                self._unacked += 1
            wake = not self._signalled
            self._signalled = True
        if wake:
            self._call_soon(self._arrived.set)

    def _on_publish(self, _client: paho.Client, _userdata: Any, mid: int, _reason: ReasonCode, _props: Any) -> None:
        self._call_soon(self._resolve_publish, mid)

    def _call_soon(self, callback: Any, *args: Any) -> None:
        if self._loop is not None and not self._loop.is_closed():
            self._loop.call_soon_threadsafe(callback, *args)

    # -- receiving --------------------------------------------------------------------------------

    async def receive(self, max_messages: int, timeout_s: float) -> list[InboundMessage]:
        """Up to ``max_messages`` messages in arrival order; an empty list after ``timeout_s``."""
        batch = self._take(max_messages)
        if batch:
            return batch
        try:
            await asyncio.wait_for(self._arrived.wait(), timeout_s)
        except TimeoutError:
            return []
        return self._take(max_messages)

    def _take(self, max_messages: int) -> list[InboundMessage]:
        with self._inbox_lock:
            count = min(max_messages, len(self._inbox))
            batch = [self._inbox.popleft() for _ in range(count)]
            if not self._inbox:
                # Cleared under the lock: a message arriving after this sets it again.
                self._signalled = False
                self._arrived.clear()
        return batch

    def ack(self, message: InboundMessage) -> bool:
        """Acknowledge a QoS 1 message on the connection that received it; False if that one is gone."""
        if message.qos == 0:
            return True
        if message.connection != self._connection or not self._connected.is_set():
            return False  # the broker redelivers it on the new connection
        if self._client.ack(message.mid, message.qos) != MQTTErrorCode.MQTT_ERR_SUCCESS:
            return False
        with self._inbox_lock:
            self._unacked = max(0, self._unacked - 1)
        return True

    @property
    def unacked(self) -> int:
        """QoS 1 messages received on the current connection and not yet acknowledged."""
        return self._unacked

    # -- publishing -------------------------------------------------------------------------------

    def publish_nowait(self, topic: str, payload: bytes, qos: int = 1, retain: bool = False) -> bool:
        """Send or queue a message without waiting; False if it was dropped (QoS 0 while disconnected)."""
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        return info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (qos > 0 and info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN)

    async def publish(
        self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False, timeout_s: float = 30.0
    ) -> None:
        """Publish and wait until the broker acknowledges (QoS 1) or the message is sent (QoS 0)."""
        acknowledged = self.publish_soon(topic, payload, qos=qos, retain=retain)
        try:
            await asyncio.wait_for(acknowledged, timeout_s)
        except TimeoutError:
            raise MqttError(f"broker did not acknowledge a publish to {topic!r} in {timeout_s} s") from None

    def publish_soon(self, topic: str, payload: bytes, *, qos: int = 1, retain: bool = False) -> asyncio.Future[None]:
        """Hand the message to paho now, before the caller yields; the future resolves on the broker's PUBACK.

        For a caller that must not wait for the event loop's next turn to send (an alert notification
        behind a busy ingest loop), or must not wait for one PUBACK before sending the next. Raises
        MqttError at once if paho refuses the message; cancel the future to stop waiting.
        """
        info = self._client.publish(topic, payload, qos=qos, retain=retain)
        if info.rc not in (MQTTErrorCode.MQTT_ERR_SUCCESS, MQTTErrorCode.MQTT_ERR_NO_CONN):
            raise MqttError(f"publish to {topic!r} failed: {paho.error_string(info.rc)}")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        # Registered before the caller yields, so the resolve callback (queued by paho's thread with
        # call_soon_threadsafe) always finds it. Packet ids are handed out in turn over 65535 values, so
        # a resolve cannot meet a reused id.
        self._publishes[info.mid] = future

        def forget(done: asyncio.Future[None]) -> None:
            if self._publishes.get(info.mid) is done:
                del self._publishes[info.mid]

        future.add_done_callback(forget)
        return future

    def _resolve_publish(self, mid: int) -> None:
        future = self._publishes.get(mid)
        if future is not None and not future.done():
            future.set_result(None)
