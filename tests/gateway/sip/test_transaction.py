"""Non-INVITE client transaction timing (RFC 3261 §17.1.2.2) against in-process fake phones.

Real clocks with T1 shortened to tens of milliseconds; tolerances allow a loaded CI machine to
fire timers late, never early.
"""

import asyncio

import pytest

from gateway.sip.message import make_response
from gateway.sip.notify import build_notify
from gateway.sip.transaction import ClientTransaction, State, Timers, TransactionTimeout
from gateway.sip.transport import SipEndpoint, TransportError

from .peers import FakeTcpPhone, answer, async_test, silent, udp_phone

LATE = 0.06  # how late a timer may fire on a busy machine
EARLY = 0.005  # clock granularity; a retransmission must never come sooner than this


def notify(endpoint: SipEndpoint, address: tuple[str, int], transport: str = "udp"):
    return build_notify(
        f"sip:1001@{address[0]}:{address[1]}",
        "check-sync",
        transport=transport,
        local_host=endpoint.host,
        local_port=endpoint.port,
    )


def schedule(timers: Timers, *, provisional_after: int | None = None) -> list[float]:
    """Expected gaps between copies of a request until Timer F (§17.1.2.2)."""
    gaps, interval, elapsed, sent = [], timers.t1, 0.0, 1
    while elapsed + interval < timers.timer_f:
        gaps.append(interval)
        elapsed += interval
        sent += 1
        proceeding = provisional_after is not None and sent > provisional_after
        interval = timers.t2 if proceeding else min(2 * interval, timers.t2)
    return gaps


def assert_gaps(actual: list[float], expected: list[float]) -> None:
    for number, (got, want) in enumerate(zip(actual, expected, strict=False), start=1):
        assert want - EARLY <= got <= want + LATE, f"gap {number}: {got:.3f}s, wanted {want:.3f}s ({actual})"


@async_test
async def test_it_retransmits_from_t1_doubling_up_to_t2_and_times_out_at_64_t1():
    timers = Timers(t1=0.025, t2=0.2, t4=0.25)
    phone = await udp_phone(silent)
    loop = asyncio.get_running_loop()
    async with SipEndpoint(timers=timers) as endpoint:
        started = loop.time()
        with pytest.raises(TransactionTimeout):
            await endpoint.send_request(notify(endpoint, phone.address), phone.address)
        elapsed = loop.time() - started
        await asyncio.sleep(3 * timers.t1)
    phone.close()

    assert timers.timer_f <= elapsed <= timers.timer_f + LATE
    expected = schedule(timers)  # 0.025, 0.05, 0.1, 0.2, 0.2, ...
    assert expected[:5] == pytest.approx([0.025, 0.05, 0.1, 0.2, 0.2])
    gaps = phone.gaps()
    # The last retransmission is due one T1 before Timer F: a late timer may lose it.
    assert len(gaps) in (len(expected) - 1, len(expected))
    assert_gaps(gaps, expected)
    assert endpoint.stats.retransmissions == len(gaps)


@async_test
async def test_it_holds_retransmissions_at_t2_once_a_provisional_response_arrived():
    # T2 well above 2·T1, so that "hold at T2" and "keep doubling" cannot be confused.
    timers = Timers(t1=0.03, t2=0.3, t4=0.3)
    phone = await udp_phone(answer(200, after=4, provisional=100))
    async with SipEndpoint(timers=timers) as endpoint:
        transaction = await endpoint.start_transaction(notify(endpoint, phone.address), phone.address)
        response = await transaction.result()
    phone.close()

    assert response.status == 200
    assert transaction.provisional is not None and transaction.provisional.status == 100
    # Timer E was already set to T1 when the 100 came; from its next firing on, T2 each time.
    assert_gaps(phone.gaps(), [0.03, 0.3, 0.3])
    assert len(phone.arrivals) == 4


@async_test
async def test_it_still_times_out_at_64_t1_after_a_provisional_response():
    timers = Timers(t1=0.01, t2=0.08, t4=0.1)
    phone = await udp_phone(answer(200, after=10_000, provisional=180))
    loop = asyncio.get_running_loop()
    async with SipEndpoint(timers=timers) as endpoint:
        started = loop.time()
        with pytest.raises(TransactionTimeout) as caught:
            await endpoint.send_request(notify(endpoint, phone.address), phone.address)
        elapsed = loop.time() - started
    phone.close()
    assert caught.value.status == 408
    assert timers.timer_f <= elapsed <= timers.timer_f + LATE


@async_test
async def test_it_absorbs_retransmitted_final_responses_until_timer_k():
    timers = Timers(t1=0.02, t2=0.16, t4=0.2)

    def three_times_ok(request, copy):
        return [make_response(request, 200, to_tag="p")] * 3

    phone = await udp_phone(three_times_ok)
    async with SipEndpoint(timers=timers) as endpoint:
        transaction = await endpoint.start_transaction(notify(endpoint, phone.address), phone.address)
        response = await transaction.result()
        await asyncio.sleep(4 * timers.t1)
        assert transaction.state is State.COMPLETED
        assert transaction.absorbed == endpoint.stats.absorbed == 2
        assert len(phone.arrivals) == 1  # no retransmission after the final response

        await asyncio.sleep(timers.t4)
        assert transaction.state is State.TERMINATED
        # Past Timer K the transaction is gone: a late copy is a stray, dropped quietly.
        assert phone.transport is not None
        phone.transport.sendto(response.to_bytes(), endpoint.address)
        await asyncio.sleep(0.05)
        assert endpoint.stats.stray_responses == 1
    phone.close()
    assert response.status == 200


@async_test
async def test_it_matches_responses_by_top_via_branch_and_cseq_method():
    timers = Timers(t1=0.02, t2=0.16, t4=0.05)

    def confusing(request, copy):
        other_branch = make_response(request, 500)
        other_branch.headers.set("Via", request.headers.get("Via").replace("branch=z9hG4bK", "branch=z9hG4bKx"))
        other_method = make_response(request, 501)
        other_method.headers.set("CSeq", "1 INVITE")
        return [other_branch, other_method, make_response(request, 202, to_tag="p")]

    phone = await udp_phone(confusing)
    async with SipEndpoint(timers=timers) as endpoint:
        response = await endpoint.send_request(notify(endpoint, phone.address), phone.address)
        assert endpoint.stats.stray_responses == 2
    phone.close()
    assert response.status == 202


@async_test
async def test_it_never_retransmits_over_tcp_but_still_times_out_at_64_t1():
    timers = Timers(t1=0.02, t2=0.16, t4=0.2)
    phone = await FakeTcpPhone(silent).start()
    loop = asyncio.get_running_loop()
    async with SipEndpoint(timers=timers) as endpoint:
        started = loop.time()
        with pytest.raises(TransactionTimeout):
            await endpoint.send_request(notify(endpoint, phone.address, "tcp"), phone.address, transport="tcp")
        elapsed = loop.time() - started
    await phone.close()
    assert timers.timer_f <= elapsed <= timers.timer_f + LATE
    assert len(phone.requests) == 1
    assert endpoint.stats.retransmissions == 0


@async_test
async def test_it_reuses_one_tcp_connection_for_several_transactions():
    phone = await FakeTcpPhone(answer(200)).start()
    async with SipEndpoint(timers=Timers(t1=0.02)) as endpoint:
        requests = [notify(endpoint, phone.address, "tcp") for _ in range(5)]
        responses = await asyncio.gather(*(endpoint.send_request(r, phone.address, transport="tcp") for r in requests))
    await phone.close()
    assert [r.status for r in responses] == [200] * 5
    assert phone.connections == 1


@async_test
async def test_it_reports_a_refused_tcp_connection_as_a_transport_error():
    phone = await FakeTcpPhone().start()
    address = phone.address
    await phone.close()  # nothing listens there any more
    async with SipEndpoint(timers=Timers(t1=0.02)) as endpoint:
        with pytest.raises(TransportError) as caught:
            await endpoint.send_request(notify(endpoint, address, "tcp"), address, transport="tcp")
    assert caught.value.permanent is False
    assert "failed" in str(caught.value)


@async_test
async def test_it_reports_a_transport_error_when_the_phone_drops_the_connection():
    def hang_up(request, copy):
        raise ConnectionResetError("phone reboots")

    phone = await FakeTcpPhone(hang_up).start()
    async with SipEndpoint(timers=Timers(t1=0.05)) as endpoint:
        with pytest.raises(TransportError, match="lost"):
            await endpoint.send_request(notify(endpoint, phone.address, "tcp"), phone.address, transport="tcp")
    await phone.close()


@async_test
async def test_it_refuses_to_start_a_transaction_without_an_rfc_3261_branch():
    async with SipEndpoint() as endpoint:
        request = notify(endpoint, ("127.0.0.1", 9))
        request.headers.set("Via", "SIP/2.0/UDP 127.0.0.1:5060;branch=1234")
        with pytest.raises(ValueError, match="branch"):
            ClientTransaction(request, send=lambda data: None, reliable=False)


def test_it_keeps_the_rfc_ratios_when_t1_is_shortened():
    assert Timers.scaled(0.05) == Timers(t1=0.05, t2=0.4, t4=0.5)
    assert Timers.scaled(0.5) == Timers()
    assert Timers().timer_f == 32
