"""Answering and ending a call (RFC 3261 §13.3.1.4, §15, §17.2.1) against a phone played by a
plain socket: 100 Trying, a rejected INVITE's final response until the ACK, a 2xx until its
ACK, the BYE, CANCEL and requests for dialogs we do not have."""

import asyncio
import itertools
import socket

import pytest

from gateway.sip.message import Response
from gateway.sip.parser import StreamFramer, parse_message
from gateway.sip.transaction import InviteServerTransaction, State, Timers
from gateway.sip.transport import IncomingRequest, SipEndpoint

from .corpus import crlf
from .peers import async_test
from .test_transaction import LATE, assert_gaps

TIMERS = Timers(t1=0.02, t2=0.16, t4=0.1)
SDP = b"v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=inactive\r\n"


class Phone:
    """A UDP socket that speaks for the phone and keeps what it hears, with arrival times."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.setblocking(False)
        self.port: int = self.sock.getsockname()[1]
        self.heard: list[tuple[float, object]] = []

    def send(self, data: bytes, address) -> None:
        self.sock.sendto(data, address)

    async def receive(self, timeout: float = 1.0):
        loop = asyncio.get_running_loop()
        data = await asyncio.wait_for(loop.sock_recv(self.sock, 65536), timeout)
        message = parse_message(data)
        self.heard.append((loop.time(), message))
        return message

    async def listen(self, seconds: float) -> list:
        """Everything heard for ``seconds``."""
        got = []
        loop = asyncio.get_running_loop()
        deadline = loop.time() + seconds
        while (left := deadline - loop.time()) > 0:
            try:
                got.append(await self.receive(left))
            except TimeoutError:
                break
        return got

    def close(self) -> None:
        self.sock.close()


def invite(port: int, *, branch="z9hG4bKinv1", call_id="call-1", uri="sip:*55*123456@127.0.0.1", extra="") -> bytes:
    return crlf(
        f"""INVITE {uri} SIP/2.0
Via: SIP/2.0/UDP 192.168.1.23:{port};branch={branch};rport
Max-Forwards: 70
From: "Reception" <sip:805e0c123456@127.0.0.1>;tag=phone-tag
To: <{uri}>
Call-ID: {call_id}
CSeq: 7 INVITE
Contact: <sip:805e0c123456@192.168.1.23:{port}>
{extra}Content-Length: 0

"""
    )


def ack(port: int, response: Response, *, branch: str, uri="sip:edge@127.0.0.1") -> bytes:
    return crlf(
        f"""ACK {uri} SIP/2.0
Via: SIP/2.0/UDP 192.168.1.23:{port};branch={branch};rport
Max-Forwards: 70
From: {response.headers.get("From")}
To: {response.headers.get("To")}
Call-ID: {response.call_id}
CSeq: {response.cseq.number} ACK
Content-Length: 0

"""
    )


def in_dialog(method: str, port: int, *, to: str, call_id="call-1", branch="z9hG4bKbye1") -> bytes:
    return crlf(
        f"""{method} sip:edge@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 192.168.1.23:{port};branch={branch};rport
Max-Forwards: 70
From: <sip:805e0c123456@127.0.0.1>;tag=phone-tag
To: {to}
Call-ID: {call_id}
CSeq: 8 {method}
Content-Length: 0

"""
    )


def ok_to(request) -> bytes:
    from gateway.sip.message import make_response

    return make_response(request, 200).to_bytes()


@async_test
async def test_an_invite_gets_100_trying_at_once_and_its_retransmission_never_reaches_the_handler_twice():
    seen: list[IncomingRequest] = []
    release = asyncio.Event()

    async def handler(incoming: IncomingRequest) -> None:
        seen.append(incoming)
        await release.wait()  # the database is slow today
        incoming.respond(404)

    phone = Phone()
    async with SipEndpoint(handler=handler, timers=TIMERS) as endpoint:
        phone.send(invite(phone.port), endpoint.address)
        trying = await phone.receive()
        phone.send(invite(phone.port), endpoint.address)
        trying_again = await phone.receive()
        release.set()
        final = await phone.receive()
    phone.close()
    assert (trying.status, trying_again.status, final.status) == (100, 100, 404)
    assert trying.to.tag is None  # 100 Trying creates no dialog
    assert final.to.tag
    assert len(seen) == 1


@async_test
async def test_a_rejected_invite_is_answered_again_from_t1_doubling_to_t2_until_the_ack():
    phone = Phone()
    async with SipEndpoint(handler=lambda incoming: incoming.respond(403), timers=TIMERS) as endpoint:
        phone.send(invite(phone.port), endpoint.address)
        heard = await phone.listen(0.02 + 0.04 + 0.08 + 0.16 + 0.1)
        finals = [m for m in heard if m.status == 403]
        times = [t for t, m in phone.heard if m.status == 403]
        assert_gaps([b - a for a, b in itertools.pairwise(times)], [0.02, 0.04, 0.08, 0.16])
        assert len(finals) >= 4
        # The ACK of a non-2xx response reuses the INVITE's branch and ends the retransmissions.
        phone.send(ack(phone.port, finals[0], branch="z9hG4bKinv1"), endpoint.address)
        await asyncio.sleep(0.01)
        assert await phone.listen(0.4) == []
        assert endpoint.stats.stray_acks == 0
        server = next(iter(endpoint._servers.values()), None)
        assert server is None or server.state is State.CONFIRMED
    phone.close()


@async_test
async def test_a_retransmitted_invite_after_the_final_response_gets_that_response_again():
    timers = Timers(t1=0.5, t2=4.0, t4=5.0)  # Timer G far away: every copy heard is an answer
    phone = Phone()
    async with SipEndpoint(handler=lambda incoming: incoming.respond(404), timers=timers) as endpoint:
        phone.send(invite(phone.port), endpoint.address)
        assert [(await phone.receive()).status for _ in range(2)] == [100, 404]
        phone.send(invite(phone.port), endpoint.address)
        again = await phone.receive()
    phone.close()
    assert again.status == 404


@async_test
async def test_timer_h_gives_up_on_a_missing_ack_after_64_t1():
    timers = Timers(t1=0.005, t2=0.04, t4=0.05)
    phone = Phone()
    loop = asyncio.get_running_loop()
    async with SipEndpoint(handler=lambda incoming: incoming.respond(486), timers=timers) as endpoint:
        started = loop.time()
        phone.send(invite(phone.port), endpoint.address)
        await phone.receive()
        await asyncio.sleep(0.01)
        (server,) = endpoint._servers.values()
        assert isinstance(server, InviteServerTransaction)
        await phone.listen(timers.timer_f + 0.15)
        assert server.state is State.TERMINATED
        assert server.timed_out
        assert endpoint._servers == {}
    phone.close()
    last = max(t for t, m in phone.heard if m.status == 486)
    assert last <= started + timers.timer_f + LATE
    assert server.response_retransmissions >= 5


@async_test
async def test_an_answered_call_is_acked_then_ended_with_a_bye_in_its_dialog():
    calls = []

    async def handler(incoming: IncomingRequest) -> None:
        call = endpoint.answer(incoming, body=SDP)
        calls.append(call)
        assert await call.wait_confirmed()
        calls.append(await call.hang_up())

    phone = Phone()
    async with SipEndpoint(handler=handler, timers=Timers(t1=0.5, t2=4.0, t4=5.0)) as endpoint:
        # A loose-routing proxy on the path (played by the phone's socket too): the BYE goes via it.
        route = f"<sip:127.0.0.1:{phone.port};lr>"
        phone.send(invite(phone.port, extra=f"Record-Route: {route}\n"), endpoint.address)
        assert (await phone.receive()).status == 100
        ok = await phone.receive()
        assert ok.status == 200
        assert ok.body == SDP
        assert ok.headers.get("Content-Type") == "application/sdp"
        assert ok.contacts[0].uri == f"sip:edge@127.0.0.1:{endpoint.port}"
        local_tag = ok.to.tag
        phone.send(ack(phone.port, ok, branch="z9hG4bKack1"), endpoint.address)
        bye = await phone.receive()
        phone.send(ok_to(bye), endpoint.address)
        await asyncio.sleep(0.05)
        assert endpoint._calls == {}
    phone.close()

    # §12.2.1.1: remote target in the Request-URI, the route set in Route, tags and Call-ID of the
    # dialog, our CSeq.
    assert bye.method == "BYE"
    assert bye.uri == f"sip:805e0c123456@192.168.1.23:{phone.port}"
    assert bye.headers.get_all("Route") == [f"<sip:127.0.0.1:{phone.port};lr>"]
    assert bye.from_.tag == local_tag
    assert bye.to.tag == "phone-tag"
    assert bye.call_id == "call-1"
    assert bye.cseq.method == "BYE"
    assert bye.headers.get("Max-Forwards") == "70"
    assert bye.via.branch.startswith("z9hG4bK")
    call, bye_response = calls
    assert call.acked and call.retransmissions == 0
    assert bye_response.status == 200


@async_test
async def test_the_2xx_is_retransmitted_until_its_ack_and_no_bye_goes_out_before_it():
    hung_up = asyncio.Event()

    async def handler(incoming: IncomingRequest) -> None:
        call = endpoint.answer(incoming, body=SDP)
        await call.hang_up()
        hung_up.set()

    phone = Phone()
    async with SipEndpoint(handler=handler, timers=TIMERS) as endpoint:
        phone.send(invite(phone.port), endpoint.address)
        heard = await phone.listen(0.02 + 0.04 + 0.08 + 0.05)
        oks = [m for m in heard if isinstance(m, Response) and m.status == 200]
        assert len(oks) >= 3
        assert all(ok.to_bytes() == oks[0].to_bytes() for ok in oks)
        assert not any(getattr(m, "method", None) == "BYE" for m in heard)
        phone.send(ack(phone.port, oks[0], branch="z9hG4bKack2"), endpoint.address)
        bye = await phone.receive()
        while isinstance(bye, Response):  # a 200 already in flight when the ACK came
            bye = await phone.receive()
        phone.send(ok_to(bye), endpoint.address)
        await asyncio.wait_for(hung_up.wait(), 1)
    phone.close()
    assert bye.method == "BYE"


@async_test
async def test_without_an_ack_the_call_is_still_ended_with_a_bye_after_64_t1():
    timers = Timers(t1=0.005, t2=0.04, t4=0.05)
    outcome = []

    async def handler(incoming: IncomingRequest) -> None:
        call = endpoint.answer(incoming, body=SDP)
        outcome.append(await call.wait_confirmed())
        outcome.append(await call.hang_up())

    phone = Phone()
    async with SipEndpoint(handler=handler, timers=timers) as endpoint:
        phone.send(invite(phone.port), endpoint.address)
        heard = await phone.listen(timers.timer_f + 0.1)
        bye = next(m for m in heard if getattr(m, "method", None) == "BYE")
        phone.send(ok_to(bye), endpoint.address)
        await asyncio.sleep(0.05)
    phone.close()
    assert outcome[0] is False
    assert outcome[1].status == 200


@async_test
async def test_a_bye_from_the_phone_ends_the_call_and_we_send_none():
    results = []

    async def handler(incoming: IncomingRequest) -> None:
        call = endpoint.answer(incoming, body=SDP)
        await call.wait_confirmed()
        await asyncio.sleep(0.1)  # the phone hangs up meanwhile
        results.append(await call.hang_up())

    phone = Phone()
    async with SipEndpoint(handler=handler, timers=Timers(t1=0.5, t2=4.0, t4=5.0)) as endpoint:
        phone.send(invite(phone.port), endpoint.address)
        await phone.receive()
        ok = await phone.receive()
        phone.send(ack(phone.port, ok, branch="z9hG4bKack3"), endpoint.address)
        phone.send(in_dialog("BYE", phone.port, to=ok.headers.get("To")), endpoint.address)
        bye_ok = await phone.receive()
        assert await phone.listen(0.2) == []
    phone.close()
    assert (bye_ok.status, bye_ok.cseq.method) == (200, "BYE")
    assert results == [None]


@async_test
async def test_requests_for_a_dialog_we_do_not_have_get_481_and_stray_acks_are_dropped():
    phone = Phone()
    handled = []
    async with SipEndpoint(handler=handled.append, timers=TIMERS) as endpoint:
        phone.send(in_dialog("BYE", phone.port, to="<sip:edge@127.0.0.1>;tag=gone"), endpoint.address)
        answer = await phone.receive()
        stray = Response(status=200, headers=answer.headers.copy())
        phone.send(ack(phone.port, stray, branch="z9hG4bKstray"), endpoint.address)
        assert await phone.listen(0.1) == []
        assert endpoint.stats.stray_acks == 1
    phone.close()
    assert answer.status == 481
    assert handled == []


@async_test
async def test_a_cancel_before_the_answer_gets_200_and_the_invite_487():
    release = asyncio.Event()

    async def handler(incoming: IncomingRequest) -> None:
        await release.wait()
        if not incoming.final_sent:  # the phone gave up meanwhile
            endpoint.answer(incoming, body=SDP)

    phone = Phone()
    async with SipEndpoint(handler=handler, timers=Timers(t1=0.5, t2=4.0, t4=5.0)) as endpoint:
        phone.send(invite(phone.port), endpoint.address)
        assert (await phone.receive()).status == 100
        cancel = invite(phone.port).replace(b"INVITE sip:", b"CANCEL sip:").replace(b"7 INVITE", b"7 CANCEL")
        phone.send(cancel, endpoint.address)
        answers = {(m.cseq.method, m.status) for m in [await phone.receive(), await phone.receive()]}
        release.set()
        assert await phone.listen(0.1) == []
    phone.close()
    assert answers == {("CANCEL", 200), ("INVITE", 487)}


@async_test
async def test_a_call_over_tcp_is_answered_and_ended_on_the_connection_the_phone_opened():
    async def handler(incoming: IncomingRequest) -> None:
        call = endpoint.answer(incoming, body=SDP)
        await call.wait_confirmed()
        await call.hang_up()

    async with SipEndpoint(handler=handler, tcp_listen=True, timers=Timers(t1=0.5, t2=4.0, t4=5.0)) as endpoint:
        reader, writer = await asyncio.open_connection(*endpoint.address)
        port = writer.get_extra_info("sockname")[1]
        framer = StreamFramer()

        async def next_message():
            while True:
                if framer_queue:
                    return framer_queue.pop(0)
                framer_queue.extend(framer.feed(await asyncio.wait_for(reader.read(65536), 1)))

        framer_queue: list = []
        writer.write(invite(port).replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        assert (await next_message()).status == 100
        ok = await next_message()
        assert ok.contacts[0].uri.endswith(";transport=tcp")
        writer.write(ack(port, ok, branch="z9hG4bKtcpack").replace(b"SIP/2.0/UDP", b"SIP/2.0/TCP"))
        bye = await next_message()
        assert bye.method == "BYE"
        assert bye.via.transport == "TCP"
        writer.write(ok_to(bye))
        await asyncio.sleep(0.05)
        assert endpoint._calls == {}
        writer.close()


@async_test
async def test_an_invite_without_a_contact_cannot_be_answered_with_a_call():
    errors = []

    def handler(incoming: IncomingRequest) -> None:
        try:
            endpoint.answer(incoming)
        except ValueError as exc:
            errors.append(exc)
            incoming.respond(400)

    phone = Phone()
    async with SipEndpoint(handler=handler, timers=TIMERS) as endpoint:
        no_contact = b"\r\n".join(line for line in invite(phone.port).split(b"\r\n") if not line.startswith(b"Contact"))
        phone.send(no_contact, endpoint.address)
        statuses = [(await phone.receive()).status for _ in range(2)]
    phone.close()
    assert statuses == [100, 400]
    assert errors


@async_test
async def test_the_admission_check_drops_packets_before_they_are_parsed():
    phone = Phone()
    allowed = {"open": False}
    async with SipEndpoint(handler=lambda i: i.respond(404), admit=lambda ip: allowed["open"]) as endpoint:
        phone.send(invite(phone.port), endpoint.address)
        assert await phone.listen(0.1) == []
        allowed["open"] = True
        phone.send(invite(phone.port, branch="z9hG4bKinv2"), endpoint.address)
        assert (await phone.receive()).status == 100
    phone.close()
    assert endpoint.stats.throttled == 1


def test_the_100_trying_of_an_invite_server_transaction_needs_an_invite():
    async def build():
        request = parse_message(
            invite(5060).replace(b"INVITE sip:", b"OPTIONS sip:").replace(b"7 INVITE", b"7 OPTIONS")
        )
        InviteServerTransaction(request, send=lambda r: None, reliable=False)

    with pytest.raises(ValueError):
        asyncio.run(build())
