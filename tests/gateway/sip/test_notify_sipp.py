"""NOTIFY against a real SIP peer: SIPp playing the phone on 127.0.0.1 (UDP and TCP).

Each scenario checks the Event header with a regexp (check_it), so a wrong Event makes SIPp exit
non-zero. SIPp missing is a failure, not a skip: CI installs it (`apt-get install sip-tester`).
"""

import asyncio
import time

import pytest

from gateway.sip.notify import NotifyOutcome, NotifyTarget, notify_many, send_notifies
from gateway.sip.transaction import Timers
from gateway.sip.transport import SipEndpoint

from .peers import settled
from .sipp import INSTALL_HINT, Sipp, sipp_path

pytestmark = pytest.mark.sipp

TRANSPORTS = ["udp", "tcp"]


@pytest.fixture
def phone(tmp_path):
    """Start SIPp with a scenario; every SIPp started is stopped when the test ends."""
    if sipp_path() is None:
        pytest.fail(INSTALL_HINT)
    started: list[Sipp] = []

    def start(scenario: str, **options) -> Sipp:
        sipp = Sipp(scenario, workdir=tmp_path, **options).start()
        started.append(sipp)
        return sipp

    yield start
    for sipp in started:
        sipp.stop()


def target_at(sipp: Sipp, *, key: object = "device-1", user: str = "805E0C123456") -> NotifyTarget:
    suffix = ";transport=tcp" if sipp.transport == "tcp" else ""
    return NotifyTarget(key=key, contact_uri=f"sip:{user}@127.0.0.1:{sipp.port}{suffix}", transport=sipp.transport)


def notify(sipp: Sipp, targets: list[NotifyTarget], event: str, *, t1: float, **options) -> list[NotifyOutcome]:
    """Send, then let SIPp finish its scenario; its exit code lands in ``sipp.exit_code``.

    Over TCP the connection stays open until SIPp is done: SIPp fails the calls of a connection
    the other side closes, even calls that are only lingering after their 200 OK.
    """
    if sipp.transport == "udp":
        outcomes = notify_many(targets, event, t1=t1, **options)
        sipp.exit_code = sipp.wait()
        return outcomes

    async def over_open_connection() -> list[NotifyOutcome]:
        async with SipEndpoint(timers=Timers.scaled(t1)) as endpoint:
            outcomes = await send_notifies(targets, event, endpoint=endpoint, **options)
            sipp.exit_code = await asyncio.to_thread(sipp.wait)
        return outcomes

    return asyncio.run(over_open_connection())


@pytest.mark.parametrize("transport", TRANSPORTS)
@pytest.mark.parametrize(
    ("scenario", "event"),
    [
        ("phone_yealink_reboot.xml", "check-sync;reboot=true"),
        ("phone_poly_check_sync.xml", "check-sync"),
        ("phone_cisco_reboot_now.xml", "reboot_now"),
    ],
    ids=["yealink-reboot", "poly-check-sync", "cisco-mpp-reboot-now"],
)
def test_it_reports_sent_when_the_phone_answers_200_to_its_vendor_event(phone, scenario, event, transport):
    sipp = phone(scenario, transport=transport)
    [outcome] = notify(sipp, [target_at(sipp)], event, t1=0.05)
    assert settled(outcome) == NotifyOutcome("device-1", 200, "OK", "sent")
    assert sipp.exit_code == 0, sipp.report()


def test_it_fails_the_scenario_when_the_event_is_not_the_one_the_phone_expects(phone):
    # Proves the scenarios' Event check bites: reboot=false is not a Yealink reboot.
    sipp = phone("phone_yealink_reboot.xml")
    notify_many([target_at(sipp)], "check-sync;reboot=false", t1=0.05)
    assert sipp.wait() != 0
    assert "check-sync;reboot=false" in sipp.report()


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_it_reports_rejected_with_489_when_the_phone_does_not_know_the_event(phone, transport):
    sipp = phone("phone_bad_event.xml", transport=transport)
    [outcome] = notify(sipp, [target_at(sipp)], "check-sync;reboot=true", t1=0.05)
    assert settled(outcome) == NotifyOutcome("device-1", 489, "Bad Event", "rejected", permanent=True)
    assert sipp.exit_code == 0, sipp.report()


def test_it_retransmits_to_a_phone_that_ignores_the_first_two_notifies_and_reports_sent(phone):
    sipp = phone("phone_slow.xml")
    [outcome] = notify_many([target_at(sipp)], "check-sync;reboot=false", t1=0.1)
    assert (outcome.status, outcome.outcome) == (200, "sent")
    assert outcome.retransmissions >= 1
    assert sipp.wait() == 0, sipp.report()
    assert sipp.received("NOTIFY") == 1 + outcome.retransmissions


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_it_reports_a_silent_phone_unreachable_after_timer_f(phone, transport):
    t1 = 0.02  # Timer F = 64·T1 = 1.28 s; the scenario stays silent for 1.5 s
    sipp = phone("phone_silent.xml", transport=transport, linger_ms=1500)
    started = time.monotonic()
    [outcome] = notify_many([target_at(sipp)], "check-sync;reboot=false", t1=t1)
    elapsed = time.monotonic() - started
    assert (outcome.status, outcome.outcome) == (408, "unreachable")
    assert 64 * t1 <= elapsed < 64 * t1 + 0.5
    sipp.stop()  # the trace is complete: nothing more can arrive
    if transport == "udp":
        assert outcome.retransmissions >= 6
        assert sipp.received("NOTIFY") == 1 + outcome.retransmissions
    else:
        assert outcome.retransmissions == 0  # TCP is reliable: Timer F only (§17.1.2.2)
        assert sipp.received("NOTIFY") == 1


@pytest.mark.parametrize("transport", TRANSPORTS)
def test_it_fans_out_to_many_phones_at_once(phone, transport):
    count = 300
    sipp = phone("phone_poly_check_sync.xml", transport=transport, calls=count, trace=False)
    targets = [target_at(sipp, key=i, user=f"phone{i:04d}") for i in range(count)]
    outcomes = notify(sipp, targets, "check-sync", concurrency=100, t1=0.1)
    assert [o.key for o in outcomes] == list(range(count))
    assert {o.outcome for o in outcomes} == {"sent"}
    assert sipp.exit_code == 0, sipp.report()
