"""The MQTT session's manual acknowledgements and socket options, against the real broker."""

from __future__ import annotations

import socket

import pytest
from services import MosquittoServer
from testkit import unique

from cityhub.mqtt import BrokerAddress, MqttSession, SessionOptions


async def test_unacked_counts_received_messages_until_each_is_acknowledged(mosquitto: MosquittoServer) -> None:
    topic = f"{unique('root')}/acks"
    address = BrokerAddress.from_url(mosquitto.url)
    consumer = MqttSession(
        address, SessionOptions(client_id=unique("consumer-"), subscriptions=[(topic, 1)], manual_ack=True)
    )
    producer = MqttSession(address, SessionOptions(client_id=unique("producer-")))
    async with consumer, producer:
        for number in range(5):
            await producer.publish(topic, str(number).encode())
        received = []
        while len(received) < 5:
            received += await consumer.receive(5, 5)
        assert consumer.unacked == 5
        assert all(consumer.ack(message) for message in received[:3])
        assert consumer.unacked == 2
        assert all(consumer.ack(message) for message in received[3:])
        assert consumer.unacked == 0


@pytest.mark.parametrize("nodelay", [True, False])
async def test_the_socket_sends_each_packet_at_once_unless_told_otherwise(
    mosquitto: MosquittoServer, nodelay: bool
) -> None:
    # paho leaves Nagle's algorithm on; an alarm or an alert must not wait behind the previous packet.
    options = SessionOptions(client_id=unique("nodelay-"), tcp_nodelay=nodelay)
    async with MqttSession(BrokerAddress.from_url(mosquitto.url), options) as session:
        sock = session._client.socket()
        assert sock is not None
        assert bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)) is nodelay
