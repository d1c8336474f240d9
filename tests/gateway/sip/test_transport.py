"""The endpoint a SIP edge will reuse: incoming requests, garbage, server transactions."""

import asyncio
import os
import socket

import pytest

from gateway.sip.parser import StreamFramer, parse_message
from gateway.sip.transaction import Timers
from gateway.sip.transport import IncomingRequest, SipEndpoint, TransportError

from .corpus import NOTIFY, crlf
from .peers import async_test


def options(branch: str = "z9hG4bKopt1", *, rport: bool = True, via_host: str = "10.9.9.9") -> bytes:
    return crlf(
        f"""OPTIONS sip:edge@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP {via_host}:5062;branch={branch}{";rport" if rport else ""}
Max-Forwards: 70
From: <sip:805E0C123456@127.0.0.1>;tag=ph1
To: <sip:edge@127.0.0.1>
Call-ID: opt-{branch}
CSeq: 1 OPTIONS
Content-Length: 0

"""
    )


class Client:
    """A plain UDP socket playing the phone."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, data: bytes, address: tuple[str, int]) -> None:
        self.sock.sendto(data, address)

    async def receive(self, timeout: float = 1.0):
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
        return parse_message(data)

    def close(self) -> None:
        self.sock.close()


@async_test
async def test_it_drops_garbage_datagrams_and_keeps_serving():
    seen: list[IncomingRequest] = []

    def handler(incoming: IncomingRequest) -> None:
        seen.append(incoming)
        incoming.respond(200)

    client = Client()
    async with SipEndpoint(handler=handler) as endpoint:
        garbage = [
            os.urandom(300),
            b"\xff" * 40,
            NOTIFY[:60],
            NOTIFY.replace(b"CSeq: 1 NOTIFY", b"CSeq: x"),
            b"GET / HTTP/1.0\r\n\r\n",
        ]
        for datagram in garbage:
            client.send(datagram, endpoint.address)
        client.send(b"\r\n\r\n", endpoint.address)  # keepalive: ignored, not an error
        client.send(b"\x00\x01\x00\x00" + os.urandom(16), endpoint.address)  # STUN binding request
        client.send(options(), endpoint.address)
        response = await client.receive()
        assert endpoint.stats.dropped == len(garbage)
    client.close()
    assert response.status == 200
    assert [incoming.request.method for incoming in seen] == ["OPTIONS"]


@async_test
async def test_it_answers_to_the_source_address_and_stamps_received_and_rport():
    def handler(incoming: IncomingRequest) -> None:
        assert incoming.source == ("127.0.0.1", client.port)
        incoming.respond(200)

    client = Client()
    async with SipEndpoint(handler=handler) as endpoint:
        # The Via says 10.9.9.9:5062 (a phone behind NAT); the answer must come back to us anyway.
        client.send(options(), endpoint.address)
        response = await client.receive()
    assert response.via.received == "127.0.0.1"
    assert response.via.rport == client.port
    assert response.to.tag
    client.close()


@async_test
async def test_it_answers_a_retransmitted_request_from_its_transaction_without_calling_the_handler_again():
    calls = []

    async def handler(incoming: IncomingRequest) -> None:
        calls.append(incoming.request.method)
        await asyncio.sleep(0)
        incoming.respond(202, "Accepted")

    client = Client()
    async with SipEndpoint(handler=handler, timers=Timers(t1=0.02)) as endpoint:
        client.send(options(), endpoint.address)
        first = await client.receive()
        client.send(options(), endpoint.address)
        again = await client.receive()
    client.close()
    assert calls == ["OPTIONS"]
    assert first.to_bytes() == again.to_bytes()


@async_test
async def test_it_answers_500_when_the_handler_fails_and_501_without_a_handler():
    def broken(incoming: IncomingRequest) -> None:
        raise RuntimeError("bug in the edge")

    client = Client()
    async with SipEndpoint(handler=broken) as endpoint:
        client.send(options("z9hG4bKbroken"), endpoint.address)
        assert (await client.receive()).status == 500
    async with SipEndpoint() as endpoint:
        client.send(options("z9hG4bKnohandler"), endpoint.address)
        assert (await client.receive()).status == 501
    client.close()


@async_test
async def test_it_serves_requests_over_an_accepted_tcp_connection_and_closes_it_on_garbage():
    def handler(incoming: IncomingRequest) -> None:
        assert incoming.transport == "tcp"
        incoming.respond(200)

    async with SipEndpoint(handler=handler, tcp_listen=True) as endpoint:
        reader, writer = await asyncio.open_connection(*endpoint.address)
        writer.write(b"\r\n\r\n" + options().replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        framer = StreamFramer()
        responses = []
        while not responses:
            responses = framer.feed(await asyncio.wait_for(reader.read(65536), 1))
        assert responses[0].status == 200

        writer.write(b"this is not SIP at all\r\n\r\n")
        assert await asyncio.wait_for(reader.read(), 1) == b""  # closed by the endpoint
        writer.close()
        assert endpoint.stats.dropped == 1


@async_test
async def test_it_refuses_transports_it_does_not_speak_as_permanent_errors():
    async with SipEndpoint() as endpoint:
        request = parse_message(NOTIFY)
        with pytest.raises(TransportError) as caught:
            await endpoint.send_request(request, ("127.0.0.1", 5060), transport="tls")
    assert caught.value.permanent is True


@async_test
async def test_it_reports_a_busy_port_as_a_permanent_transport_error():
    async with SipEndpoint() as first:
        with pytest.raises(TransportError) as caught:
            await SipEndpoint(port=first.port).start()
    assert caught.value.permanent is True
