"""The SIP edge as phones meet it, with SIPp playing the phone: REGISTER bindings stored in the
database, `*55*<code>` enrollment answered and ended (or refused with a reason), the Sign-in key's
pairing code shown in a MESSAGE, the Sign-out key, other numbers refused, garbage survived.

The edge runs in this process on its own event loop thread, with its own database connections:
tests commit their data (transactional), and each test has its own Redis key prefix for lockouts."""

import random
import re
import socket
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from devices.choices import CommandKind, CommandStatus, DeviceState
from devices.models import Device, DeviceCommand
from enrollment.models import PairingRequest, VerificationCode
from enrollment.services import verification_code_issue
from gateway.sip.transaction import Timers
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import DeviceFactory, UserFactory, device_model, registered
from tests.gateway.edge_helpers import SCENARIOS, EdgeThread, phone
from tests.gateway.sip.corpus import crlf

pytestmark = [
    pytest.mark.sipp,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("own_cache_keys", "catalog"),
]

ADMIN = Actor.system("test")


@pytest.fixture
def edge(settings):
    settings.PUBLIC_BASE_URL = "https://portal.contoso.example"
    with EdgeThread(sign_in_code="*70*", sign_out_code="*71*") as running:
        yield running


def run(sipp, timeout: float = 15) -> None:
    with sipp:
        code = sipp.wait(timeout)
    assert code == 0, sipp.report()
    # A check failing in an out-of-call scenario (-oocsf) is logged but leaves the exit code at 0.
    errors = sipp.errors_path.read_text(errors="replace") if sipp.errors_path.exists() else ""
    assert "Failed regexp match" not in errors, errors


def messages(sipp) -> str:
    return sipp.messages_path.read_text(errors="replace")


def device_of(tenant, **fields):
    return DeviceFactory(tenant=tenant, **fields)


# --- REGISTER ----------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_a_phone_registers_and_its_binding_is_stored_with_what_its_user_agent_says(edge, tenant_a, tmp_path, transport):
    device = device_of(tenant_a)
    sipp = phone(
        "edge_register.xml",
        edge=edge.target,
        workdir=tmp_path,
        user=device.sip_user,
        keys={"expires": "1800"},
        transport=transport,
    )
    before = timezone.now()
    run(sipp)

    device.refresh_from_db()
    assert device.contact_uri == f"sip:{device.sip_user}@127.0.0.1:{sipp.port};transport={transport.upper()}"
    assert device.transport == transport
    assert device.source_address.startswith("127.0.0.1:")
    assert device.online
    assert before + timedelta(seconds=1795) < device.registration_expires_at < timezone.now() + timedelta(seconds=1805)
    assert device.last_seen_at >= before
    assert device.user_agent.startswith("Yealink SIP-T54W 96.86.0.70")
    assert (device.model.vendor, device.model.model, device.firmware) == ("Yealink", "T54W", "96.86.0.70")
    assert ";expires=1800" in messages(sipp)


def test_a_phone_asking_for_more_than_an_hour_is_granted_an_hour(edge, tenant_a, tmp_path):
    device = device_of(tenant_a)
    sipp = phone(
        "edge_register.xml", edge=edge.target, workdir=tmp_path, user=device.sip_user, keys={"expires": "86400"}
    )
    run(sipp)
    device.refresh_from_db()
    assert ";expires=3600" in messages(sipp)
    assert device.registration_expires_at < timezone.now() + timedelta(seconds=3601)


def test_expires_0_removes_the_binding(edge, tenant_a, tmp_path):
    device = device_of(tenant_a)
    sipp = phone("edge_unregister.xml", edge=edge.target, workdir=tmp_path, user=device.sip_user)
    registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:{sipp.port};transport=UDP")
    run(sipp)
    device.refresh_from_db()
    assert (device.contact_uri, device.registration_expires_at, device.online) == ("", None, False)


@pytest.mark.parametrize("who", ["unknown MAC", "gateway disabled", "not a MAC"])
def test_a_phone_the_portal_does_not_serve_is_refused_with_a_bare_404(edge, tenant_a, tmp_path, who):
    device = device_of(tenant_a)
    user = {"unknown MAC": "0015650fffff", "not a MAC": "reception", "gateway disabled": device.sip_user}[who]
    if who == "gateway disabled":
        tenant_a.sip_gateway_enabled = False
        tenant_a.save()
    run(phone("edge_register_refused.xml", edge=edge.target, workdir=tmp_path, user=user))
    device.refresh_from_db()
    assert device.contact_uri == ""
    assert edge.edge.stats["register_refused"] == 1


def test_a_refresh_of_a_phone_behind_its_config_version_queues_a_policy_sync(edge, tenant_a, tmp_path):
    device = device_of(tenant_a, state=DeviceState.SIGNED_IN, model=device_model("Poly", "VVX 450"))
    Device.objects.filter(pk=device.pk).update(wanted_version=3, synced_version=2)
    run(phone("edge_register.xml", edge=edge.target, workdir=tmp_path, user=device.sip_user, keys={"expires": "600"}))
    command = DeviceCommand.objects.get(device=device)
    assert (command.kind, command.status) == (CommandKind.POLICY_SYNC, CommandStatus.QUEUED)
    assert command.event == "check-sync"  # Poly's, from the catalog


def test_a_refresh_of_a_phone_in_sync_queues_nothing(edge, tenant_a, tmp_path):
    device = device_of(tenant_a, state=DeviceState.SIGNED_IN)
    Device.objects.filter(pk=device.pk).update(wanted_version=3, synced_version=3)
    run(phone("edge_register.xml", edge=edge.target, workdir=tmp_path, user=device.sip_user, keys={"expires": "600"}))
    assert not DeviceCommand.objects.filter(device=device).exists()


# --- *55*<code> --------------------------------------------------------------------------------


@pytest.mark.parametrize("transport", ["udp", "tcp"])
def test_dialling_star_55_and_the_code_enrolls_the_phone_in_a_call_answered_and_ended(
    edge, tenant_a, tmp_path, transport
):
    device = device_of(tenant_a, model=device_model("Yealink", "T54W"))
    code = verification_code_issue(device=device, actor=ADMIN).code
    sipp = phone(
        "edge_call_answered.xml",
        edge=edge.target,
        workdir=tmp_path,
        user=device.sip_user,
        dial=f"*55*{code}",
        transport=transport,
    )
    registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:{sipp.port}", transport=transport)
    run(sipp)

    device.refresh_from_db()
    assert device.state == DeviceState.WAITING_FOR_SIGN_IN
    assert device.wanted_version > device.synced_version  # its config changed: the Sign-in key
    assert VerificationCode.objects.get(device=device).used_at is not None
    command = DeviceCommand.objects.get(device=device)
    assert (command.kind, command.status, command.event) == (
        CommandKind.RESYNC,
        CommandStatus.QUEUED,
        "check-sync;reboot=false",
    )
    enroll = AuditEvent.objects.get(action="device.enroll", object_id=device.pk)
    assert enroll.details == {"source": "127.0.0.1"}
    assert edge.edge.stats["calls_answered"] == 1
    assert edge.call(lambda: len(edge.edge.endpoint._calls)) == 0


def _refusal_setup(case, tenant_a):
    device = device_of(tenant_a)
    if case == "not onboarded":
        return "0015650eeeee", "123456", device
    code = verification_code_issue(device=device, actor=ADMIN).code
    if case == "wrong":
        return device.sip_user, f"{(int(code) + 1) % 10**6:06d}", device
    if case == "mistyped":
        return device.sip_user, f"*{code}", device
    if case == "none":
        return device.sip_user, "", device
    if case == "expired":
        VerificationCode.objects.filter(device=device).update(expires_at=timezone.now() - timedelta(minutes=1))
    if case == "used":
        VerificationCode.objects.filter(device=device).update(used_at=timezone.now(), ciphertext=None)
    return device.sip_user, code, device


@pytest.mark.parametrize(
    ("case", "why"),
    [
        ("wrong", "Wrong verification code"),
        ("mistyped", "Wrong verification code"),
        ("none", "Wrong verification code"),
        ("expired", "Verification code expired; ask for a new one"),
        ("used", "Verification code already used"),
        ("not onboarded", "Device is not onboarded"),
    ],
)
def test_a_code_that_cannot_enroll_is_refused_with_403_and_a_warning_saying_why(edge, tenant_a, tmp_path, case, why):
    user, code, device = _refusal_setup(case, tenant_a)
    sipp = phone("edge_call_refused.xml", edge=edge.target, workdir=tmp_path, user=user, dial=f"*55*{code}")
    run(sipp)
    assert f'Warning: 399 127.0.0.1 "{why}"' in messages(sipp)
    device.refresh_from_db()
    assert device.state == DeviceState.WAITING_ON_ACTIVATION
    assert not DeviceCommand.objects.exists()


def test_five_wrong_codes_lock_the_phone_out_even_with_the_right_one(edge, tenant_a, tmp_path):
    device = device_of(tenant_a)
    code = verification_code_issue(device=device, actor=ADMIN).code
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    # One call at a time (-l 1): the order of the answers is the order of the attempts.
    sipp = phone(
        "edge_call_refused.xml",
        edge=edge.target,
        workdir=tmp_path,
        user=device.sip_user,
        dial=f"*55*{wrong}",
        linger_ms=20,
        extra=("-m", "5", "-l", "1", "-r", "100"),
    )
    run(sipp)
    assert messages(sipp).count('"Wrong verification code"') == 5
    right = phone("edge_call_refused.xml", edge=edge.target, workdir=tmp_path, user=device.sip_user, dial=f"*55*{code}")
    run(right)
    assert re.search(r'Warning: 399 127\.0\.0\.1 "Too many wrong codes; try again in 1[45] min"', messages(right))
    device.refresh_from_db()
    assert device.state == DeviceState.WAITING_ON_ACTIVATION
    assert AuditEvent.objects.filter(action="verification_code.lockout", object_id=device.pk).count() == 1


def test_any_other_number_is_not_found(edge, tenant_a, tmp_path):
    device = device_of(tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN)
    run(phone("edge_call_not_found.xml", edge=edge.target, workdir=tmp_path, user=device.sip_user, dial="5551234"))
    assert edge.edge.stats["calls_answered"] == 0


# --- Sign-in and Sign-out keys -----------------------------------------------------------------


def test_the_sign_in_key_answers_and_then_shows_the_pairing_url_and_code_in_a_message(edge, tenant_a, tmp_path):
    device = device_of(tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN)
    sipp = phone(
        "edge_call_answered.xml",
        edge=edge.target,
        workdir=tmp_path,
        user=device.sip_user,
        dial="*70*",
        linger_ms=1000,
        extra=("-oocsf", str(SCENARIOS / "edge_text_message.xml")),
    )
    registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:{sipp.port}")
    Device.objects.filter(pk=device.pk).update(source_address=f"127.0.0.1:{sipp.port}")
    run(sipp)

    assert "Received out-of-call MESSAGE" in sipp.errors_path.read_text()  # checked by edge_text_message.xml
    text = re.search(
        r"Sign in at (\S+) with code ([BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4})", messages(sipp)
    )
    assert text is not None, messages(sipp)
    assert text.group(1) == "https://portal.contoso.example/pair/"
    request = PairingRequest.objects.get(device=device)
    assert request.status == "pending"
    assert request.requested_by_label == f"phone {device.mac}"


def test_the_sign_in_key_from_elsewhere_than_the_registered_phone_is_refused(edge, tenant_a, tmp_path):
    device = device_of(tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN)
    registered(device, contact=f"sip:{device.sip_user}@10.1.2.3:5060")
    Device.objects.filter(pk=device.pk).update(source_address="10.1.2.3:5060")
    sipp = phone("edge_call_refused.xml", edge=edge.target, workdir=tmp_path, user=device.sip_user, dial="*70*")
    run(sipp)
    assert '"Register with the SIP gateway first"' in messages(sipp)
    assert not PairingRequest.objects.exists()


def test_the_sign_out_key_signs_the_phone_out_and_check_syncs_it(edge, tenant_a, tmp_path):
    user = UserFactory(first_name="Ada", phone_number="+14255550100")
    device = device_of(tenant_a, state=DeviceState.SIGNED_IN, signed_in_user=user, phone_number=user.phone_number)
    sipp = phone("edge_call_answered.xml", edge=edge.target, workdir=tmp_path, user=device.sip_user, dial="*71*")
    registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:{sipp.port}")
    Device.objects.filter(pk=device.pk).update(source_address=f"127.0.0.1:{sipp.port}")
    run(sipp)
    device.refresh_from_db()
    assert (device.state, device.signed_in_user, device.phone_number) == (DeviceState.WAITING_FOR_SIGN_IN, None, "")
    command = DeviceCommand.objects.get(device=device)
    assert (command.kind, command.status) == (CommandKind.RESYNC, CommandStatus.QUEUED)
    assert AuditEvent.objects.filter(action="device.sign_out", object_id=device.pk).exists()


# --- what phones must never be able to do to the edge ---------------------------------------------


def register_bytes(user: str, port: int, *, expires: int = 600, branch: str = "z9hG4bKreg1") -> bytes:
    return crlf(
        f"""REGISTER sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport
Max-Forwards: 70
From: <sip:{user}@127.0.0.1>;tag=t1
To: <sip:{user}@127.0.0.1>
Call-ID: reg-{branch}
CSeq: 1 REGISTER
Contact: <sip:{user}@127.0.0.1:{port}>
Expires: {expires}
Content-Length: 0

"""
    )


class Socket:
    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(3)
        self.port = self.sock.getsockname()[1]

    def ask(self, data: bytes, address) -> bytes:
        self.sock.sendto(data, address)
        return self.sock.recv(65536)

    def close(self) -> None:
        self.sock.close()


def test_a_registration_shorter_than_a_minute_is_too_brief(edge, tenant_a):
    device = device_of(tenant_a)
    client = Socket()
    answer = client.ask(register_bytes(device.sip_user, client.port, expires=30), edge.address)
    client.close()
    assert answer.startswith(b"SIP/2.0 423 Interval Too Brief")
    assert b"\r\nMin-Expires: 60\r\n" in answer


def options_bytes(port: int, method: str = "OPTIONS", extra: str = "") -> bytes:
    return crlf(
        f"""{method} sip:127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{port};branch=z9hG4bK{method.lower()}{len(extra)};rport
Max-Forwards: 70
From: <sip:monitor@127.0.0.1>;tag=m1
To: <sip:127.0.0.1>
Call-ID: {method.lower()}-{len(extra)}
CSeq: 1 {method}
{extra}Content-Length: 0

"""
    )


def test_keepalive_options_are_answered_and_methods_we_do_not_serve_get_405(edge):
    client = Socket()
    options = client.ask(options_bytes(client.port), edge.address)
    subscribe = client.ask(options_bytes(client.port, "SUBSCRIBE"), edge.address)
    client.close()
    assert options.startswith(b"SIP/2.0 200 OK")
    assert subscribe.startswith(b"SIP/2.0 405 Method Not Allowed")
    assert b"\r\nAllow: INVITE, ACK, CANCEL, BYE, OPTIONS, REGISTER\r\n" in subscribe


def test_a_method_sip_does_not_define_is_not_implemented_and_a_bye_outside_a_call_names_no_call(edge):
    client = Socket()
    unknown = client.ask(options_bytes(client.port, "FOO"), edge.address)
    bye = client.ask(options_bytes(client.port, "BYE"), edge.address)
    client.close()
    assert unknown.startswith(b"SIP/2.0 501 Not Implemented")  # RFC 3261 §21.5.2
    assert bye.startswith(b"SIP/2.0 481 Call/Transaction Does Not Exist")  # §15.1.2


def test_a_request_that_requires_an_extension_is_refused_naming_it(edge, tenant_a):
    client = Socket()
    options = client.ask(options_bytes(client.port, extra="Require: foo-bar, 100rel\n"), edge.address)
    plain = client.ask(options_bytes(client.port, extra="Supported: replaces\n"), edge.address)
    client.close()
    assert options.startswith(b"SIP/2.0 420 Bad Extension")  # §8.2.2.3
    assert b"\r\nUnsupported: foo-bar, 100rel\r\n" in options
    assert plain.startswith(b"SIP/2.0 200 OK")


def test_an_edge_with_too_much_on_its_hands_asks_phones_to_come_back_later(tenant_a):
    device = device_of(tenant_a)
    with EdgeThread(max_pending=0) as busy:
        client = Socket()
        answer = client.ask(register_bytes(device.sip_user, client.port), busy.address)
        client.close()
    assert answer.startswith(b"SIP/2.0 503 Service Unavailable")
    assert b"\r\nRetry-After: 5\r\n" in answer
    device.refresh_from_db()
    assert not device.online


def test_garbage_and_oversized_input_never_stop_the_edge_answering(edge, tenant_a, tmp_path):
    device = device_of(tenant_a)
    client = Socket()
    garbage = [b"\x16\x03\x01\x02\x00" + bytes(300), b"INVITE garbage\r\n\r\n", b"SIP/2.0 200\r\n", bytes(60_000)]
    for datagram in garbage:
        client.sock.sendto(datagram, edge.address)
    client.close()
    with socket.create_connection(edge.address) as tcp:
        tcp.sendall(b"REGISTER sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n" + b"x" * 70_000)
        tcp.settimeout(3)
        try:
            while tcp.recv(65536):
                pass
        except ConnectionResetError:
            pass  # closed with our bytes unread: a reset rather than a FIN
    run(phone("edge_register.xml", edge=edge.target, workdir=tmp_path, user=device.sip_user, keys={"expires": "600"}))
    assert edge.edge.endpoint.stats.dropped >= 4
    device.refresh_from_db()
    assert device.online


def invite_bytes(user: str, port: int, dial: str, *, branch: str) -> bytes:
    return crlf(
        f"""INVITE sip:{dial}@127.0.0.1 SIP/2.0
Via: SIP/2.0/UDP 127.0.0.1:{port};branch={branch};rport
Max-Forwards: 70
From: <sip:{user}@127.0.0.1>;tag=f1
To: <sip:{dial}@127.0.0.1>
Call-ID: inv-{branch}
CSeq: 1 INVITE
Contact: <sip:{user}@127.0.0.1:{port}>
Content-Type: application/sdp
Content-Length: 0

"""
    )


ODD = [*'abcXYZ019:;,.<>@"\\=[]?&%+*!~ \t-_/#', "sip:", "tel:", "*55*", "*70*", "z9hG4bK", "é", "0", "99999999999"]


def test_requests_that_parse_but_say_odd_things_get_an_answer_never_a_500(tenant_a, caplog):
    """The parser lets through many well-formed oddities (the fuzz of tests/gateway/sip covers the
    rest): whatever a header or the Request-URI says, the edge answers without failing."""
    device = device_of(tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN)
    # Short timers: the calls it answers (nobody ACKs them) end in well under a second.
    with EdgeThread(timers=Timers.scaled(0.01)) as edge:
        _fuzz(edge, device, caplog)


def _fuzz(edge, device, caplog):
    client = Socket()
    rng = random.Random(5060)
    seeds = [
        register_bytes(device.sip_user, client.port),
        invite_bytes(device.sip_user, client.port, "*55*123456", branch="z9hG4bKx"),
        invite_bytes(device.sip_user, client.port, "*70*", branch="z9hG4bKy"),
    ]
    sent = 0
    for number in range(300):
        lines = rng.choice(seeds).replace(b"z9hG4bK", f"z9hG4bK{number}-".encode()).split(b"\r\n")
        index = rng.randrange(0, lines.index(b""))
        odd = "".join(rng.choice(ODD) for _ in range(rng.randrange(0, 25))).encode()
        if index == 0:
            method = lines[0].partition(b" ")[0]
            lines[0] = method + b" sip:" + odd + b"@127.0.0.1 SIP/2.0"
        elif b"Via:" not in lines[index]:
            lines[index] = lines[index].split(b":", 1)[0] + b": " + odd
        client.sock.sendto(b"\r\n".join(lines), edge.address)
        sent += 1
    answers = []
    client.sock.settimeout(1.5)
    try:
        while True:
            answers.append(client.sock.recv(65536))
    except TimeoutError:
        pass
    client.close()
    finals = [a.split(b"\r\n", 1)[0] for a in answers if not a.startswith(b"SIP/2.0 100")]
    assert finals, "nothing got through the parser: the test proves nothing"
    assert not [f for f in finals if f.startswith(b"SIP/2.0 5")], finals
    assert "SIP handler failed" not in caplog.text
    assert edge.edge.endpoint.stats.requests_received + edge.edge.endpoint.stats.dropped == sent


def test_a_flooding_source_is_throttled_and_the_edge_keeps_serving(tenant_a, tmp_path):
    from gateway.sip.flood import TokenBuckets

    device = device_of(tenant_a)
    with EdgeThread(flood=TokenBuckets(rate=20, burst=20)) as throttled:
        client = Socket()
        for number in range(200):
            client.sock.sendto(b"OPTIONS flood " + str(number).encode(), throttled.address)
        time.sleep(1.2)  # the bucket fills again
        answer = client.ask(register_bytes(device.sip_user, client.port), throttled.address)
        client.close()
        assert throttled.edge.endpoint.stats.throttled >= 150
    assert answer.startswith(b"SIP/2.0 200 OK")
