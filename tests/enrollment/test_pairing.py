"""Pairing (sign-in) and sign-out services: what the SIP edge's Sign-in and Sign-out keys, the
pairing page and the admin's "Sign in a user" all go through."""

import re
import threading
import time
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.core.exceptions import ValidationError
from django.db import connection, transaction
from django.utils import timezone

from devices.choices import CommandKind, CommandStatus, DeviceState
from devices.models import Device, DeviceCommand
from enrollment import services, tasks
from enrollment.choices import PairingOutcome, PairingStatus
from enrollment.models import PairingRequest
from enrollment.services import device_sign_out, pairing_approve, pairing_request_start
from portal.choices import Role
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import DeviceFactory, MembershipFactory, device_model, registered
from tests.waiting import wait_for_lock_waiters

SOURCE = "192.0.2.44"
CODE = re.compile(r"^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$")


@pytest.fixture
def phone(enrolled_a):
    """An enrolled Yealink with a live registration: check-syncs to it are queued, not unreachable."""
    enrolled_a.model = device_model("Yealink", "T54W")
    return registered(enrolled_a, contact=f"sip:{enrolled_a.sip_user}@192.0.2.80:5060")


@pytest.fixture
def started(phone, admin_a):
    return pairing_request_start(device=phone, actor=Actor.of_user(admin_a.user))


def approve(caller, code, **kwargs):
    return pairing_approve(user=caller.user, code=code, source=SOURCE, **kwargs)


def wrong(code: str) -> str:
    """Another code of the same shape (the last letter moved on by one)."""
    alphabet = services.PAIRING_ALPHABET
    return code[:-1] + alphabet[(alphabet.index(code[-1]) + 1) % len(alphabet)]


def resyncs(device) -> list[DeviceCommand]:
    return list(DeviceCommand.objects.filter(device=device, kind=CommandKind.RESYNC))


# Starting ---------------------------------------------------------------------------------------


def test_a_start_gives_an_eight_letter_code_valid_15_minutes_and_the_pairing_url(phone, admin_a, settings):
    settings.PUBLIC_BASE_URL = "https://portal.example.com"
    before = timezone.now()
    started = pairing_request_start(device=phone, actor=Actor.of_user(admin_a.user))
    assert CODE.match(started.user_code)
    assert started.verification_url == "https://portal.example.com/pair/"
    assert started.verification_url_complete == f"https://portal.example.com/pair/?code={started.user_code}"
    assert 14 * 60 < started.expires_in <= 15 * 60
    request = PairingRequest.objects.get()
    assert (request.device_id, request.tenant_id, request.status) == (phone.pk, phone.tenant_id, PairingStatus.PENDING)
    assert before + timedelta(minutes=15) <= request.expires_at <= timezone.now() + timedelta(minutes=15)
    assert (request.requested_by, request.requested_by_label) == (admin_a.user, admin_a.user.username)
    event = AuditEvent.objects.get(action="pairing.start")
    assert (event.object_id, event.actor_user) == (phone.pk, admin_a.user)


def test_only_a_keyed_digest_of_the_code_is_stored(started):
    row = PairingRequest.objects.filter(pk=started.request.pk).values()[0]
    plain = started.user_code.replace("-", "")
    stored = " ".join(str(bytes(v)) if isinstance(v, memoryview | bytes) else str(v) for v in row.values())
    assert plain not in stored and started.user_code not in stored
    assert len(bytes(row["digest"])) == 32


def test_the_digest_depends_on_the_configured_key(started, settings):
    code = started.user_code.replace("-", "")
    digest = services.pairing_code_digest(code)
    settings.PAIRING_CODE_KEY = "another key"
    assert services.pairing_code_digest(code) != digest


def test_codes_are_drawn_from_the_whole_alphabet(phone, admin_a):
    actor = Actor.of_user(admin_a.user)
    letters = set()
    for _ in range(40):
        letters |= set(pairing_request_start(device=phone, actor=actor).user_code.replace("-", ""))
    # 320 letters drawn uniformly from 20: missing any one is a ~1e-7 chance.
    assert letters == set(services.PAIRING_ALPHABET)


def test_a_phone_waiting_on_activation_cannot_start_a_sign_in(waiting_a, admin_a):
    with pytest.raises(ValidationError, match=r"not enrolled yet: dial \*55\*"):
        pairing_request_start(device=waiting_a, actor=Actor.of_user(admin_a.user))
    assert not PairingRequest.objects.exists()


def test_a_phone_already_signed_in_must_be_signed_out_first(phone, admin_a, user_a):
    Device.objects.filter(pk=phone.pk).update(state=DeviceState.SIGNED_IN, signed_in_user=user_a.user)
    with pytest.raises(ValidationError, match=r"already signed in\. Sign it out first"):
        pairing_request_start(device=phone, actor=Actor.phone(phone.mac))


def test_a_new_request_revokes_the_previous_one(phone, started, user_a):
    newer = pairing_request_start(device=phone, actor=Actor.phone(phone.mac))
    assert PairingRequest.objects.get(pk=started.request.pk).status == PairingStatus.REVOKED
    assert PairingRequest.objects.filter(device=phone, status=PairingStatus.PENDING).get().pk == newer.request.pk
    refused = approve(user_a, started.user_code)
    assert refused.outcome == PairingOutcome.REVOKED
    assert "replaced by a newer one" in refused.message
    assert approve(user_a, newer.user_code).ok


def test_a_new_request_marks_an_expired_one_expired_not_revoked(phone, started):
    later = timezone.now() + timedelta(minutes=16)
    pairing_request_start(device=phone, actor=Actor.phone(phone.mac), now=later)
    assert PairingRequest.objects.get(pk=started.request.pk).status == PairingStatus.EXPIRED


def test_the_database_allows_one_pending_request_per_device(phone, started):
    from django.db import IntegrityError

    with pytest.raises(IntegrityError), transaction.atomic():
        PairingRequest.objects.create(
            tenant=phone.tenant, device=phone, digest=b"x" * 32, created_at=timezone.now(),
            expires_at=timezone.now() + timedelta(minutes=15), requested_by_label="test",
        )


# Approving --------------------------------------------------------------------------------------


def test_the_right_code_signs_the_user_in_with_their_number(phone, started, user_a):
    user_a.user.first_name, user_a.user.last_name, user_a.user.phone_number = "Ada", "Lovelace", "+14255550100"
    user_a.user.save()
    wanted = phone.wanted_version
    result = approve(user_a, started.user_code)
    assert result.ok and result.outcome == PairingOutcome.PAIRED and result.device.pk == phone.pk
    phone.refresh_from_db()
    assert (phone.state, phone.signed_in_user, phone.phone_number) == (
        DeviceState.SIGNED_IN, user_a.user, "+14255550100",
    )
    assert phone.wanted_version == wanted + 1 and phone.sync_pending_since is not None
    request = PairingRequest.objects.get(pk=started.request.pk)
    assert (request.status, request.approved_by, request.approved_from) == (
        PairingStatus.APPROVED, user_a.user, SOURCE,
    )
    assert request.approved_at is not None
    event = AuditEvent.objects.get(action="device.sign_in")
    assert (event.object_id, event.actor_user) == (phone.pk, user_a.user)
    assert event.details["user"] == user_a.user.username and event.details["source"] == SOURCE


def test_approving_queues_a_check_sync_sent_once_committed(phone, started, user_a, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks() as callbacks:
        assert approve(user_a, started.user_code).ok
    (command,) = resyncs(phone)
    assert (command.status, command.event, command.requested_by) == (
        CommandStatus.QUEUED, "check-sync;reboot=false", user_a.user,
    )
    assert len(callbacks) == 1  # device_commands_send, once the sign-in is committed


@pytest.mark.parametrize("spelled", ["{}", "{lower}", "{plain}", "{plain_lower}", " {a} {b} ", "{a} - {b}"])
def test_the_code_is_accepted_in_any_case_with_or_without_the_dash(started, user_a, spelled):
    code = started.user_code
    a, b = code.split("-")
    text = spelled.format(code, lower=code.lower(), plain=a + b, plain_lower=(a + b).lower(), a=a, b=b)
    assert approve(user_a, text).ok


def test_a_code_works_once(started, user_a, admin_a):
    assert approve(user_a, started.user_code).ok
    again = approve(admin_a, started.user_code)
    assert again.outcome == PairingOutcome.USED and not again.ok
    assert again.message.startswith("That code was already used.")


def test_a_code_expires_after_15_minutes(started, user_a):
    created = started.request.created_at
    late = approve(user_a, started.user_code, now=created + timedelta(minutes=15))
    assert late.outcome == PairingOutcome.EXPIRED and late.message.startswith("That code has expired.")
    assert PairingRequest.objects.get(pk=started.request.pk).status == PairingStatus.EXPIRED
    # Expired stays expired, whatever the clock says next.
    assert approve(user_a, started.user_code, now=created).outcome == PairingOutcome.EXPIRED


def test_a_code_still_works_just_before_it_expires(started, user_a):
    assert approve(user_a, started.user_code, now=started.request.created_at + timedelta(minutes=14, seconds=59)).ok


def test_a_wrong_code_changes_nothing_and_is_audited_without_naming_a_device(phone, started, user_a):
    result = approve(user_a, wrong(started.user_code))
    assert result.outcome == PairingOutcome.WRONG and result.device is None
    phone.refresh_from_db()
    assert phone.state == DeviceState.WAITING_FOR_SIGN_IN and phone.signed_in_user is None
    assert PairingRequest.objects.get().status == PairingStatus.PENDING
    event = AuditEvent.objects.get(action="pairing.reject")
    assert (event.object_id, event.details) == (None, {"outcome": "wrong", "source": SOURCE})
    assert not resyncs(phone)


def test_a_code_of_another_tenant_is_as_wrong_as_a_made_up_one(tenant_b, admin_b, user_a):
    theirs = DeviceFactory(tenant=tenant_b, state=DeviceState.WAITING_FOR_SIGN_IN)
    code = pairing_request_start(device=theirs, actor=Actor.of_user(admin_b.user)).user_code
    result = approve(user_a, code)
    assert result.outcome == PairingOutcome.WRONG and result.device is None
    assert result.message == approve(user_a, wrong(code)).message
    theirs.refresh_from_db()
    assert theirs.state == DeviceState.WAITING_FOR_SIGN_IN and theirs.signed_in_user is None
    assert not AuditEvent.objects.filter(tenant=tenant_b, action="pairing.reject").exists()


@pytest.mark.parametrize(
    "garbage", ["", "   ", "BCDF-GHJ", "BCDF-GHJKL", "BCDA-GHJK", "1234-5678", "BCDF_GHJK", "Ｂ" * 8]
)
def test_text_that_cannot_be_a_code_is_told_so_and_not_counted(started, user_a, garbage):
    for _ in range(6):
        result = approve(user_a, garbage)
        assert result.outcome == PairingOutcome.MALFORMED
        assert result.message == "That is not a pairing code: it has 8 letters, like BCDF-GHJK."
    assert approve(user_a, started.user_code).ok


def test_a_phone_not_enrolled_is_told_plainly_and_the_code_stays_usable(phone, started, user_a):
    Device.objects.filter(pk=phone.pk).update(state=DeviceState.WAITING_ON_ACTIVATION)
    result = approve(user_a, started.user_code)
    assert result.outcome == PairingOutcome.NOT_ENROLLED
    assert "not enrolled yet" in result.message
    assert PairingRequest.objects.get().status == PairingStatus.PENDING
    Device.objects.filter(pk=phone.pk).update(state=DeviceState.WAITING_FOR_SIGN_IN)
    assert approve(user_a, started.user_code).ok


def test_a_member_of_no_organization_cannot_pair(started):
    from tests.factories import UserFactory

    with pytest.raises(ValidationError):
        pairing_approve(user=UserFactory(), code=started.user_code, source=SOURCE)


# Lockout ----------------------------------------------------------------------------------------


def test_five_wrong_codes_lock_the_user_out_for_15_minutes(phone, started, user_a):
    for _ in range(5):
        assert approve(user_a, wrong(started.user_code)).outcome == PairingOutcome.WRONG
    locked = approve(user_a, started.user_code)
    assert locked.outcome == PairingOutcome.LOCKED and 14 * 60 < locked.retry_after <= 15 * 60
    assert locked.message == "Too many wrong codes. Try again in 15 minutes."
    phone.refresh_from_db()
    assert phone.state == DeviceState.WAITING_FOR_SIGN_IN
    (event,) = AuditEvent.objects.filter(action="pairing.lockout")
    assert (event.actor_user, event.object_type, event.object_id) == (user_a.user, "user", user_a.user.pk)
    assert event.details == {"source": SOURCE, "failures": 5, "minutes": 15}
    # Even well-formed input is refused unchecked while locked, and not audited again.
    assert approve(user_a, "not a code").outcome == PairingOutcome.LOCKED
    assert AuditEvent.objects.filter(action="pairing.lockout").count() == 1


def test_the_lockout_is_per_user(tenant_a, started, user_a):
    for _ in range(5):
        approve(user_a, wrong(started.user_code))
    colleague = MembershipFactory(tenant=tenant_a, role=Role.USER)
    assert pairing_approve(user=colleague.user, code=started.user_code, source=SOURCE).ok


def test_dead_codes_do_not_count_toward_the_lockout(phone, started, user_a, admin_a):
    assert approve(admin_a, started.user_code).ok
    for _ in range(6):
        assert approve(user_a, started.user_code).outcome == PairingOutcome.USED
    device_sign_out(device=phone, actor=Actor.of_user(admin_a.user))
    newer = pairing_request_start(device=phone, actor=Actor.phone(phone.mac))
    assert approve(user_a, newer.user_code).ok


def test_the_lockout_lives_in_the_shared_cache(started, user_a):
    """Redis, not process memory: every web process sees the same count and lock."""
    for _ in range(5):
        approve(user_a, wrong(started.user_code))
    assert cache.get(f"enrollment:locked:pairing-user:{user_a.user.pk}") is not None
    cache.delete(f"enrollment:locked:pairing-user:{user_a.user.pk}")
    assert approve(user_a, started.user_code).ok


def test_the_lockout_ends(started, user_a, monkeypatch):
    monkeypatch.setattr(services, "LOCKOUT", 1)
    for _ in range(5):
        approve(user_a, wrong(started.user_code))
    assert approve(user_a, started.user_code).outcome == PairingOutcome.LOCKED
    time.sleep(1.2)
    assert approve(user_a, started.user_code).ok


# Signing out ------------------------------------------------------------------------------------


@pytest.fixture
def signed_in(phone, started, user_a):
    user_a.user.phone_number = "+14255550100"
    user_a.user.save()
    assert approve(user_a, started.user_code).ok
    phone.refresh_from_db()
    return phone


def test_signing_out_clears_the_user_and_number_and_check_syncs(signed_in, admin_a, user_a):
    DeviceCommand.objects.all().delete()
    wanted = signed_in.wanted_version
    assert device_sign_out(device=signed_in, actor=Actor.of_user(admin_a.user)) is True
    # The instance passed in is refreshed.
    assert (signed_in.state, signed_in.signed_in_user_id, signed_in.phone_number) == (
        DeviceState.WAITING_FOR_SIGN_IN, None, "",
    )
    assert signed_in.wanted_version == wanted + 1
    (command,) = resyncs(signed_in)
    assert command.status == CommandStatus.QUEUED
    event = AuditEvent.objects.get(action="device.sign_out")
    assert (event.object_id, event.actor_user, event.details) == (
        signed_in.pk, admin_a.user, {"user": user_a.user.username},
    )


def test_the_phones_sign_out_key_signs_out_as_the_phone(signed_in):
    assert device_sign_out(device=signed_in, actor=Actor.phone(signed_in.mac)) is True
    assert AuditEvent.objects.get(action="device.sign_out").actor_label == f"phone {signed_in.mac}"


@pytest.mark.parametrize("state", [DeviceState.WAITING_FOR_SIGN_IN, DeviceState.WAITING_ON_ACTIVATION])
def test_signing_out_a_phone_nobody_is_signed_in_to_changes_nothing(phone, admin_a, state):
    Device.objects.filter(pk=phone.pk).update(state=state)
    phone.refresh_from_db()
    wanted = phone.wanted_version
    assert device_sign_out(device=phone, actor=Actor.of_user(admin_a.user)) is False
    phone.refresh_from_db()
    assert (phone.state, phone.wanted_version) == (state, wanted)
    assert not resyncs(phone) and not AuditEvent.objects.filter(action="device.sign_out").exists()


def test_signing_out_twice_is_harmless(signed_in, admin_a):
    actor = Actor.of_user(admin_a.user)
    assert device_sign_out(device=signed_in, actor=actor) is True
    assert device_sign_out(device=signed_in, actor=actor) is False
    assert AuditEvent.objects.filter(action="device.sign_out").count() == 1


def test_after_signing_out_the_phone_can_be_signed_in_again(signed_in, admin_a, user_a):
    device_sign_out(device=signed_in, actor=Actor.of_user(admin_a.user))
    again = pairing_request_start(device=signed_in, actor=Actor.phone(signed_in.mac))
    assert approve(admin_a, again.user_code).ok
    signed_in.refresh_from_db()
    assert signed_in.signed_in_user == admin_a.user


# Concurrency ------------------------------------------------------------------------------------


def _in_threads(calls, *, before_release=None):
    """Run each call in a thread of its own (its own database connection), started together."""
    barrier = threading.Barrier(len(calls) + 1)
    results = [None] * len(calls)

    def run(index, call):
        try:
            barrier.wait()
            results[index] = call()
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, call)) for i, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    barrier.wait()
    if before_release is not None:
        before_release()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.django_db(transaction=True)
def test_two_approvals_of_one_code_at_once_sign_in_exactly_one_user(tenant_a):
    """Both approvals find the pending request, then queue on the device's row lock (held here until
    both wait): the first signs in, the second reads the request again and finds it used."""
    device = DeviceFactory(tenant=tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN)
    users = [MembershipFactory(tenant=tenant_a, role=Role.USER).user for _ in range(2)]
    code = pairing_request_start(device=device, actor=Actor.phone(device.mac)).user_code
    holder = connection  # the test's own connection holds the lock while the threads line up
    with transaction.atomic(using=holder.alias):
        Device.objects.select_for_update().get(pk=device.pk)
        results = [None, None]
        done = threading.Event()

        def race():
            results[:] = _in_threads(
                [lambda u=u: pairing_approve(user=u, code=code, source=SOURCE) for u in users]
            )
            done.set()

        racer = threading.Thread(target=race)
        racer.start()
        wait_for_lock_waiters(2, what="2 approvals queued on the device's row lock")
    racer.join(timeout=30)
    assert done.is_set()
    assert sorted(r.outcome for r in results) == [PairingOutcome.PAIRED, PairingOutcome.USED]
    winner = next(r for r in results if r.ok)
    device.refresh_from_db()
    assert device.signed_in_user == winner.request.approved_by
    assert AuditEvent.objects.filter(action="device.sign_in").count() == 1
    assert DeviceCommand.objects.filter(device=device, kind=CommandKind.RESYNC).count() == 1


@pytest.mark.django_db(transaction=True)
def test_many_approvals_of_one_code_racing_freely_sign_in_exactly_once(tenant_a):
    device = DeviceFactory(tenant=tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN)
    users = [MembershipFactory(tenant=tenant_a, role=Role.USER).user for _ in range(6)]
    code = pairing_request_start(device=device, actor=Actor.phone(device.mac)).user_code
    results = _in_threads([lambda u=u: pairing_approve(user=u, code=code, source=SOURCE) for u in users])
    outcomes = sorted(r.outcome for r in results)
    assert outcomes == [PairingOutcome.PAIRED] + [PairingOutcome.USED] * 5
    assert PairingRequest.objects.get().status == PairingStatus.APPROVED


@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_leave_one_pending_request(tenant_a):
    device = DeviceFactory(tenant=tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN)
    results = _in_threads([lambda: pairing_request_start(device=device, actor=Actor.phone(device.mac))] * 4)
    assert PairingRequest.objects.filter(device=device).count() == 4
    (pending,) = PairingRequest.objects.filter(device=device, status=PairingStatus.PENDING)
    assert pending.pk == max(r.request.pk for r in results)


# The expiry sweep -----------------------------------------------------------------------------------


def test_the_sweep_marks_pending_requests_past_their_15_minutes_expired_and_nothing_else(started, tenant_a, admin_a):
    lapsed = PairingRequest.objects.get()
    other = DeviceFactory(tenant=tenant_a, state=DeviceState.WAITING_FOR_SIGN_IN)
    live = pairing_request_start(device=other, actor=Actor.of_user(admin_a.user)).request
    later = lapsed.expires_at + timedelta(seconds=1)
    PairingRequest.objects.filter(pk=live.pk).update(expires_at=later + timedelta(minutes=5))  # still live then

    assert services.pairing_requests_sweep(now=later) == 1
    assert services.pairing_requests_sweep(now=later) == 0  # idempotent
    statuses = dict(PairingRequest.objects.values_list("pk", "status"))
    assert statuses == {lapsed.pk: PairingStatus.EXPIRED, live.pk: PairingStatus.PENDING}
    # Entered afterwards, the lapsed code says so, as before the sweep.
    assert approve(admin_a, started.user_code).outcome == PairingOutcome.EXPIRED


def test_the_sweep_is_on_the_beat_schedule(settings):
    entry = settings.CELERY_BEAT_SCHEDULE["pairing-requests-sweep"]
    assert (entry["task"], entry["schedule"]) == (tasks.pairing_requests_sweep.name, 300.0)
