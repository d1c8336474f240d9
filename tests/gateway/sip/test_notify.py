"""NOTIFY building and fan-out against in-process fake phones (SIPp runs in test_notify_sipp)."""

import asyncio
import sys
import threading

import pytest

from gateway.sip.message import make_response
from gateway.sip.notify import NotifyOutcome, NotifyTarget, build_notify, notify_many, send_notifies
from gateway.sip.parser import StreamFramer, parse_message
from gateway.sip.transaction import Timers
from gateway.sip.transport import SipEndpoint

from .peers import FakeTcpPhone, answer, async_test, settled, silent, udp_phone


def test_it_builds_the_notify_the_design_asks_for():
    request = build_notify(
        "sip:805E0C123456@192.168.1.23:5062;transport=udp?subject=ignored",
        "check-sync;reboot=true",
        transport="udp",
        local_host="127.0.0.1",
        local_port=5060,
    )
    parsed = parse_message(request.to_bytes())  # our own strict parser accepts it
    assert parsed.method == "NOTIFY"
    assert parsed.uri == "sip:805E0C123456@192.168.1.23:5062;transport=udp"  # no URI headers (§19.1.5)
    assert [name for name, _ in parsed.headers] == [
        "Via",
        "Max-Forwards",
        "From",
        "To",
        "Call-ID",
        "CSeq",
        "Contact",
        "Event",
        "Subscription-State",
        "User-Agent",
        "Content-Length",
    ]
    via = parsed.via
    assert (via.transport, via.host, via.port, via.has_rport) == ("UDP", "127.0.0.1", 5060, True)
    assert via.branch.startswith("z9hG4bK") and len(via.branch) > 7 + 8
    assert parsed.headers.get("Max-Forwards") == "70"
    assert parsed.from_.uri == "sip:portal@127.0.0.1" and parsed.from_.tag
    assert str(parsed.to) == "<sip:805E0C123456@192.168.1.23:5062;transport=udp>"
    assert parsed.to.tag is None
    assert parsed.cseq.number == 1 and parsed.cseq.method == "NOTIFY"
    assert parsed.headers.get("Contact") == "<sip:portal@127.0.0.1:5060>"
    assert parsed.headers.get("Event") == "check-sync;reboot=true"
    assert parsed.headers.get("Subscription-State") == "terminated"
    assert parsed.headers.get("User-Agent") == "SIPGatewayPortal/1.0"
    assert parsed.headers.get("Content-Length") == "0"


def test_it_uses_the_aor_in_to_and_tcp_in_via_and_contact_when_asked():
    request = build_notify(
        "sip:0004F2ABCDEF@10.0.0.51:5060;transport=tcp",
        "check-sync",
        transport="TCP",
        local_host="127.0.0.1",
        local_port=5070,
        aor="sip:0004F2ABCDEF@sip.example.com",
    )
    assert request.via.transport == "TCP"
    assert request.headers.get("To") == "<sip:0004F2ABCDEF@sip.example.com>"
    assert request.headers.get("Contact") == "<sip:portal@127.0.0.1:5070;transport=tcp>"


def test_it_makes_every_notify_a_new_transaction_and_dialog():
    first, second = (
        build_notify("sip:a@127.0.0.1", "resync", transport="udp", local_host="127.0.0.1", local_port=5060)
        for _ in range(2)
    )
    assert first.via.branch != second.via.branch
    assert first.call_id != second.call_id
    assert first.from_.tag != second.from_.tag


@pytest.mark.parametrize(
    "event",
    ["", "check-sync\r\nX-Evil: 1", "check sync", "check-sync;", "check-sync;reboot=", ";reboot=true"],
)
def test_it_refuses_an_event_that_is_not_a_valid_event_header(event):
    with pytest.raises(ValueError, match="invalid Event"):
        build_notify("sip:a@127.0.0.1", event, transport="udp", local_host="127.0.0.1", local_port=5060)


@async_test
async def test_it_sends_the_notify_build_notify_describes():
    phone = await udp_phone(answer(200))
    contact = f"sip:805E0C123456@127.0.0.1:{phone.address[1]};transport=udp?subject=ignored"
    async with SipEndpoint(advertised_host="gw.example.com") as endpoint:
        await send_notifies([NotifyTarget(key=1, contact_uri=contact)], "check-sync;reboot=false", endpoint=endpoint)
        expected = build_notify(
            contact, "check-sync;reboot=false", transport="udp", local_host="gw.example.com", local_port=endpoint.port
        )
    phone.close()
    sent = phone.arrivals[0].request
    # Everything but the random branch, From tag and Call-ID (every NOTIFY is a new dialog).
    for request in (sent, expected):
        request.headers.set("Via", request.headers.get("Via").replace(request.via.branch, "z9hG4bKx"))
        request.headers.set("From", request.headers.get("From").replace(request.from_.tag, "x"))
        request.headers.set("Call-ID", "x")
    assert sent.to_bytes() == expected.to_bytes()


@async_test
async def test_it_reports_every_target_of_a_closed_endpoint_without_going_deeper_for_each():
    # Each send fails at once, inside the call that starts it: the next must not start deeper down
    # (a fleet of 100,000 would exhaust the stack).
    depths = []

    def event_for(target: NotifyTarget) -> str:
        frame, depth = sys._getframe(), 0
        while frame is not None:
            frame, depth = frame.f_back, depth + 1
        depths.append(depth)
        return "check-sync"

    endpoint = SipEndpoint()
    await endpoint.start()
    await endpoint.close()
    targets = [NotifyTarget(key=i, contact_uri=f"sip:{i}@127.0.0.1:9") for i in range(50)]
    outcomes = await send_notifies(targets, event_for, endpoint=endpoint, concurrency=50)
    assert {(o.status, o.reason, o.outcome, o.permanent) for o in outcomes} == {
        (None, "UDP socket is closed", "unreachable", False)
    }
    assert [o.key for o in outcomes] == list(range(50))
    assert max(depths) == min(depths)


@async_test
async def test_it_returns_one_outcome_per_target_in_order():
    ok = await udp_phone(answer(200))
    bad_event = await udp_phone(answer(489))
    busy = await udp_phone(answer(503))
    quiet = await udp_phone(silent)
    phones = {"ok": ok, "489": bad_event, "503": busy, "quiet": quiet}
    targets = [
        NotifyTarget(key=(name, i), contact_uri=f"sip:{name}@127.0.0.1:{phone.address[1]}")
        for i in range(3)
        for name, phone in phones.items()
    ]
    outcomes = await send_notifies(targets, "check-sync", t1=0.02)
    for phone in phones.values():
        phone.close()

    assert [o.key for o in outcomes] == [t.key for t in targets]
    by_name = {o.key[0]: o for o in outcomes}
    assert settled(by_name["ok"]) == NotifyOutcome(("ok", 2), 200, "OK", "sent")
    assert settled(by_name["489"]) == NotifyOutcome(("489", 2), 489, "Bad Event", "rejected", permanent=True)
    assert settled(by_name["503"]) == NotifyOutcome(("503", 2), 503, "Service Unavailable", "rejected", permanent=False)
    timed_out = by_name["quiet"]
    assert (timed_out.status, timed_out.outcome, timed_out.permanent) == (408, "unreachable", False)
    assert timed_out.retransmissions >= 5


@async_test
async def test_it_sends_to_the_registration_source_address_instead_of_the_contact():
    phone = await udp_phone(answer(200))
    # Behind NAT the contact holds a private address; port 9 on loopback has nobody listening.
    target = NotifyTarget(key=1, contact_uri="sip:1001@127.0.0.1:9", source=phone.address)
    [outcome] = await send_notifies([target], "check-sync", t1=0.01)
    phone.close()
    assert outcome.outcome == "sent"
    assert phone.arrivals[0].request.uri == "sip:1001@127.0.0.1:9"


@async_test
async def test_it_advertises_the_configured_host_rather_than_the_bound_one():
    phone = await udp_phone(answer(200))
    target = NotifyTarget(key=1, contact_uri=f"sip:a@127.0.0.1:{phone.address[1]}")
    [outcome] = await send_notifies([target], "check-sync", t1=0.01, advertised_host="gw.example.com")
    phone.close()
    request = phone.arrivals[0].request
    assert outcome.outcome == "sent"
    assert request.via.host == "gw.example.com"
    assert request.from_.uri == "sip:portal@gw.example.com"
    assert request.contacts[0].sip_uri.host == "gw.example.com"


@async_test
async def test_it_picks_the_event_per_target():
    phone = await udp_phone(answer(200))
    port = phone.address[1]
    targets = [
        NotifyTarget(key="yealink", contact_uri=f"sip:a@127.0.0.1:{port}"),
        NotifyTarget(key="cisco", contact_uri=f"sip:b@127.0.0.1:{port}"),
    ]
    events = {"yealink": "check-sync;reboot=true", "cisco": "reboot_now"}
    await send_notifies(targets, lambda target: events[target.key], t1=0.01)
    phone.close()
    assert {a.request.uri: a.request.headers.get("Event") for a in phone.arrivals} == {
        f"sip:a@127.0.0.1:{port}": "check-sync;reboot=true",
        f"sip:b@127.0.0.1:{port}": "reboot_now",
    }


@async_test
async def test_it_reports_targets_it_cannot_address_as_permanently_unreachable_without_sending():
    targets = [
        NotifyTarget(key="garbage", contact_uri="not a uri"),
        NotifyTarget(key="tls", contact_uri="sips:a@127.0.0.1"),
        NotifyTarget(key="transport", contact_uri="sip:a@127.0.0.1:9", transport="sctp"),
    ]
    outcomes = await send_notifies(targets, "check-sync")
    assert [(o.key, o.status, o.outcome, o.permanent) for o in outcomes] == [
        ("garbage", None, "unreachable", True),
        ("tls", None, "unreachable", True),
        ("transport", None, "unreachable", True),
    ]
    assert all(o.reason.startswith("cannot address target") for o in outcomes)


@async_test
async def test_it_survives_an_event_lookup_that_raises_for_one_target():
    phone = await udp_phone(answer(200))
    port = phone.address[1]
    events = {"known": "check-sync"}
    targets = [NotifyTarget(key=k, contact_uri=f"sip:{k}@127.0.0.1:{port}") for k in ("unknown", "known")]
    outcomes = await send_notifies(targets, lambda target: events[target.key], t1=0.02)
    phone.close()
    assert [(o.key, o.outcome) for o in outcomes] == [("unknown", "unreachable"), ("known", "sent")]
    assert outcomes[0].reason == "internal error: KeyError('unknown')"


@async_test
async def test_it_resolves_a_host_name_in_the_contact():
    phone = await udp_phone(answer(200))
    target = NotifyTarget(key=1, contact_uri=f"sip:a@localhost:{phone.address[1]}")
    [outcome] = await send_notifies([target], "check-sync", t1=0.02)
    phone.close()
    assert outcome.outcome == "sent"


@async_test
async def test_it_reports_a_closed_tcp_port_as_unreachable_with_no_status():
    phone = await FakeTcpPhone().start()
    port = phone.address[1]
    await phone.close()
    [outcome] = await send_notifies(
        [NotifyTarget(key=1, contact_uri=f"sip:a@127.0.0.1:{port};transport=tcp", transport="tcp")],
        "check-sync",
        t1=0.01,
    )
    assert (outcome.status, outcome.outcome, outcome.permanent) == (None, "unreachable", False)
    assert "TCP connect" in outcome.reason


@async_test
async def test_it_never_has_more_than_concurrency_notifies_in_flight():
    in_flight: set[str] = set()  # by branch: a retransmission is not one more NOTIFY
    peak = 0

    class SlowPhone(asyncio.DatagramProtocol):
        def connection_made(self, transport):
            self.transport = transport

        def datagram_received(self, data, addr):
            nonlocal peak
            request = parse_message(data)
            in_flight.add(request.via.branch)
            peak = max(peak, len(in_flight))

            def reply():
                in_flight.discard(request.via.branch)
                self.transport.sendto(make_response(request, 200, to_tag="s").to_bytes(), addr)

            asyncio.get_running_loop().call_later(0.02, reply)

    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(SlowPhone, local_addr=("127.0.0.1", 0))
    port = transport.get_extra_info("sockname")[1]
    targets = [NotifyTarget(key=i, contact_uri=f"sip:{i}@127.0.0.1:{port}") for i in range(60)]
    outcomes = await send_notifies(targets, "check-sync", concurrency=7)
    transport.close()
    assert [o.outcome for o in outcomes] == ["sent"] * 60
    assert peak == 7


def test_it_offers_a_blocking_call_for_celery_tasks():
    async def start_phone():
        return await udp_phone(answer(200))

    # The phone needs a loop of its own running in the background while notify_many blocks.
    ready = threading.Event()
    holder = {}

    def serve():
        loop = asyncio.new_event_loop()
        holder["loop"] = loop
        holder["phone"] = loop.run_until_complete(start_phone())
        ready.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ready.wait(5)
    port = holder["phone"].address[1]
    try:
        outcomes = notify_many([NotifyTarget(key="d1", contact_uri=f"sip:a@127.0.0.1:{port}")], "check-sync", t1=0.05)
    finally:
        holder["loop"].call_soon_threadsafe(holder["phone"].close)
        holder["loop"].call_soon_threadsafe(holder["loop"].stop)
        thread.join(5)
    assert [settled(o) for o in outcomes] == [NotifyOutcome("d1", 200, "OK", "sent")]


def test_it_returns_nothing_for_no_targets():
    assert notify_many([], "check-sync") == []


@async_test
async def test_it_reaches_a_tcp_phone_over_the_connection_the_phone_opened_to_the_edge():
    # A phone behind NAT accepts nothing inbound: the edge must reuse the phone's own connection.
    async with SipEndpoint(tcp_listen=True, timers=Timers.scaled(0.05)) as edge:
        edge.handler = lambda incoming: incoming.respond(200)
        reader, writer = await asyncio.open_connection(*edge.address)
        phone_address = writer.get_extra_info("sockname")[:2]
        framer = StreamFramer()

        async def next_message():
            while True:
                messages = framer.feed(await asyncio.wait_for(reader.read(65536), 2))
                if messages:
                    return messages[0]

        register = REGISTER_OVER_TCP.replace(b"PHONEPORT", str(phone_address[1]).encode())
        writer.write(register)
        assert (await next_message()).status == 200

        target = NotifyTarget(
            key=1,
            contact_uri=f"sip:0004F2ABCDEF@10.0.0.51:{phone_address[1]};transport=tcp",  # private, unroutable
            transport="tcp",
            source=phone_address,
        )
        sending = asyncio.ensure_future(send_notifies([target], "check-sync", endpoint=edge))
        notify = await next_message()
        assert notify.method == "NOTIFY"
        writer.write(make_response(notify, 200, to_tag="p").to_bytes())
        [outcome] = await sending
        writer.close()
    assert outcome.outcome == "sent"


REGISTER_OVER_TCP = (
    b"REGISTER sip:127.0.0.1 SIP/2.0\r\n"
    b"Via: SIP/2.0/TCP 10.0.0.51:PHONEPORT;branch=z9hG4bKreg1;rport\r\n"
    b"Max-Forwards: 70\r\n"
    b"From: <sip:0004F2ABCDEF@127.0.0.1>;tag=r1\r\n"
    b"To: <sip:0004F2ABCDEF@127.0.0.1>\r\n"
    b"Call-ID: reg-tcp-1\r\n"
    b"CSeq: 1 REGISTER\r\n"
    b"Contact: <sip:0004F2ABCDEF@10.0.0.51:PHONEPORT;transport=tcp>\r\n"
    b"Content-Length: 0\r\n\r\n"
)
