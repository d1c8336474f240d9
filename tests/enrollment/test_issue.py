from datetime import timedelta

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from devices.choices import DeviceState
from enrollment import keys, services
from enrollment.choices import CheckOutcome
from enrollment.models import VerificationCode
from enrollment.services import (
    verification_code_check,
    verification_code_issue,
    verification_codes_issue,
    verification_codes_sweep,
)
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import DeviceFactory


@pytest.fixture
def actor(admin_a):
    return Actor.of_user(admin_a.user)


def test_a_code_is_six_digits_valid_for_24_hours(waiting_a, actor):
    before = timezone.now()
    issued = verification_code_issue(device=waiting_a, actor=actor)
    assert issued.code.isdigit() and len(issued.code) == 6
    assert issued.device_id == waiting_a.pk and issued.mac == waiting_a.mac
    assert before + timedelta(hours=24) <= issued.expires_at <= timezone.now() + timedelta(hours=24)
    row = VerificationCode.objects.get(device=waiting_a)
    assert row.code == issued.code and row.is_live and row.tenant_id == waiting_a.tenant_id


def test_a_database_dump_shows_no_code(waiting_a, actor):
    issued = verification_code_issue(device=waiting_a, actor=actor)
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM enrollment_verificationcode")
        dumped = " ".join(str(bytes(v) if isinstance(v, memoryview) else v) for v in cursor.fetchone())
        cursor.execute("SELECT encode(digest, 'hex') FROM enrollment_verificationcode")
        dumped += cursor.fetchone()[0]
    assert issued.code not in dumped


def test_the_code_cannot_be_read_with_another_key(waiting_a, actor, settings):
    issued = verification_code_issue(device=waiting_a, actor=actor)
    row = VerificationCode.objects.get(device=waiting_a)
    settings.VERIFICATION_CODE_KEY = "a-key-from-another-installation"
    assert keys.code_decrypt(row.ciphertext) is None
    assert keys.code_digest(issued.code) != bytes(row.digest)


def test_the_key_comes_from_the_setting_when_it_is_set(waiting_a, actor, settings):
    settings.VERIFICATION_CODE_KEY = "operator-chosen-key"
    issued = verification_code_issue(device=waiting_a, actor=actor)
    ciphertext = VerificationCode.objects.get(device=waiting_a).ciphertext
    assert keys.code_decrypt(ciphertext) == issued.code
    settings.VERIFICATION_CODE_KEY = ""
    assert keys.code_decrypt(ciphertext) is None


def test_regenerating_revokes_the_previous_code(waiting_a, actor):
    first = verification_code_issue(device=waiting_a, actor=actor)
    second = verification_code_issue(device=waiting_a, actor=actor)
    assert VerificationCode.objects.filter(device=waiting_a).count() == 1
    assert VerificationCode.objects.get(device=waiting_a).code == second.code
    assert first.code != second.code  # the old code was still live, so it could not be drawn
    result = verification_code_check(mac_or_device=waiting_a.mac, code=first.code, source="10.0.0.1")
    assert result.outcome == CheckOutcome.WRONG
    assert verification_code_check(mac_or_device=waiting_a.mac, code=second.code, source="10.0.0.1").ok


def test_an_enrolled_device_gets_no_code(enrolled_a, actor):
    with pytest.raises(ValidationError, match="already enrolled"):
        verification_code_issue(device=enrolled_a, actor=actor)
    assert not VerificationCode.objects.exists()


def test_the_database_keeps_one_code_row_per_device(waiting_a, actor):
    verification_code_issue(device=waiting_a, actor=actor)
    row = VerificationCode.objects.get(device=waiting_a)
    with pytest.raises(IntegrityError), transaction.atomic():
        VerificationCode.objects.create(
            tenant_id=row.tenant_id, device=waiting_a, ciphertext=None, digest=b"x" * 32,
            issued_at=row.issued_at, expires_at=row.expires_at,
        )


def test_the_database_refuses_two_live_codes_alike_in_one_tenant(tenant_a, tenant_b, actor):
    one, two = DeviceFactory.create_batch(2, tenant=tenant_a)
    other = DeviceFactory(tenant=tenant_b)
    now = timezone.now()
    fields = dict(digest=keys.code_digest("123456"), issued_at=now, expires_at=now + timedelta(hours=1))
    VerificationCode.objects.create(tenant=tenant_a, device=one, ciphertext=keys.code_encrypt("123456"), **fields)
    with pytest.raises(IntegrityError), transaction.atomic():
        VerificationCode.objects.create(tenant=tenant_a, device=two, ciphertext=keys.code_encrypt("123456"), **fields)
    # A dead code (wiped) does not hold its digest, and another organization has its own space.
    VerificationCode.objects.create(tenant=tenant_a, device=two, ciphertext=None, **fields)
    VerificationCode.objects.create(tenant=tenant_b, device=other, ciphertext=keys.code_encrypt("123456"), **fields)


def test_a_used_code_must_be_wiped(waiting_a, actor):
    verification_code_issue(device=waiting_a, actor=actor)
    with pytest.raises(IntegrityError), transaction.atomic():
        VerificationCode.objects.filter(device=waiting_a).update(used_at=timezone.now())


def test_a_drawn_code_already_live_is_drawn_again(tenant_a, actor, monkeypatch):
    devices = DeviceFactory.create_batch(2, tenant=tenant_a)
    draws = iter([111111, 111111, 222222])
    monkeypatch.setattr(services.secrets, "randbelow", lambda n: next(draws))
    issued = verification_codes_issue(tenant=tenant_a, actor=actor, ids=[d.pk for d in devices])
    assert sorted(i.code for i in issued) == ["111111", "222222"]
    # And against codes already live in the database, not only within one batch.
    third = DeviceFactory(tenant=tenant_a)
    draws = iter([222222, 111111, 333333])
    issued = verification_code_issue(device=third, actor=actor)
    assert issued.code == "333333"


def test_a_tenant_cannot_hold_more_live_codes_than_the_space_allows(tenant_a, actor, monkeypatch):
    devices = DeviceFactory.create_batch(3, tenant=tenant_a)
    monkeypatch.setattr(services, "MAX_LIVE_CODES", 2)
    verification_codes_issue(tenant=tenant_a, actor=actor, ids=[d.pk for d in devices[:2]])
    # Regenerating the same two is fine: their old codes are replaced, not added to.
    verification_codes_issue(tenant=tenant_a, actor=actor, ids=[d.pk for d in devices[:2]])
    with pytest.raises(ValidationError, match="At most 2 devices"):
        verification_code_issue(device=devices[2], actor=actor)


def test_bulk_by_ids_issues_only_this_tenants_devices_waiting_on_activation(tenant_a, waiting_b, enrolled_a, actor):
    waiting = DeviceFactory.create_batch(3, tenant=tenant_a)
    ids = [d.pk for d in waiting] + [enrolled_a.pk, waiting_b.pk, 999_999]
    issued = verification_codes_issue(tenant=tenant_a, actor=actor, ids=ids)
    assert sorted(i.device_id for i in issued) == sorted(d.pk for d in waiting)
    assert set(VerificationCode.objects.values_list("device_id", flat=True)) == {d.pk for d in waiting}
    assert len({i.code for i in issued}) == 3


def test_bulk_by_state_issues_every_device_waiting_on_activation(tenant_a, enrolled_a, waiting_b, actor):
    waiting = DeviceFactory.create_batch(4, tenant=tenant_a)
    issued = verification_codes_issue(tenant=tenant_a, actor=actor, state=DeviceState.WAITING_ON_ACTIVATION)
    assert sorted(i.device_id for i in issued) == sorted(d.pk for d in waiting)


def test_bulk_refuses_a_state_that_has_no_use_for_codes(tenant_a, actor):
    with pytest.raises(ValidationError):
        verification_codes_issue(tenant=tenant_a, actor=actor, state=DeviceState.SIGNED_IN)


def test_each_generation_is_audited_per_device(tenant_a, admin_a, actor):
    devices = DeviceFactory.create_batch(3, tenant=tenant_a, display_name="")
    issued = verification_codes_issue(tenant=tenant_a, actor=actor, state=DeviceState.WAITING_ON_ACTIVATION)
    events = AuditEvent.objects.filter(action="verification_code.issue").order_by("object_id")
    assert [(e.object_type, e.object_id, e.object_repr) for e in events] == [("device", d.pk, d.mac) for d in devices]
    event = events[0]
    assert (event.tenant, event.actor_user, event.actor_type) == (tenant_a, admin_a.user, "user")
    assert event.details == {"expires_at": issued[0].expires_at.isoformat()}
    assert all(issued[0].code not in str(e.details) for e in events)


def test_bulk_issue_costs_the_same_queries_for_any_number_of_devices(tenant_a, actor):
    DeviceFactory.create_batch(2, tenant=tenant_a)
    with CaptureQueriesContext(connection) as few:
        verification_codes_issue(tenant=tenant_a, actor=actor, state=DeviceState.WAITING_ON_ACTIVATION)
    DeviceFactory.create_batch(60, tenant=tenant_a)
    with CaptureQueriesContext(connection) as many:
        issued = verification_codes_issue(tenant=tenant_a, actor=actor, state=DeviceState.WAITING_ON_ACTIVATION)
    assert len(issued) == 62
    assert len(many.captured_queries) == len(few.captured_queries) <= 6


def test_the_sweep_wipes_expired_codes_and_keeps_live_ones(tenant_a, actor):
    old, fresh = DeviceFactory.create_batch(2, tenant=tenant_a)
    verification_codes_issue(tenant=tenant_a, actor=actor, ids=[old.pk, fresh.pk])
    VerificationCode.objects.filter(device=old).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert verification_codes_sweep() == 1
    assert VerificationCode.objects.get(device=old).ciphertext is None
    assert VerificationCode.objects.get(device=fresh).is_live
    assert verification_codes_sweep() == 0
