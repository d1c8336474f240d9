import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from devices.choices import DeviceState
from enrollment import services
from enrollment.choices import CheckOutcome
from enrollment.models import VerificationCode
from enrollment.services import verification_code_check, verification_code_issue
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import DeviceFactory

SOURCE = "192.0.2.10"


@pytest.fixture
def issued(waiting_a, admin_a):
    return verification_code_issue(device=waiting_a, actor=Actor.of_user(admin_a.user))


def wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def check(device_or_mac, code, source=SOURCE):
    return verification_code_check(mac_or_device=device_or_mac, code=code, source=source)


def test_the_right_code_enrolls_the_device_and_is_used_up(waiting_a, issued):
    result = check(waiting_a.mac, issued.code)
    assert result.ok and result.outcome == CheckOutcome.ENROLLED and result.device.pk == waiting_a.pk
    waiting_a.refresh_from_db()
    assert waiting_a.state == DeviceState.WAITING_FOR_SIGN_IN
    row = VerificationCode.objects.get(device=waiting_a)
    assert row.ciphertext is None and row.used_at is not None and row.code is None
    event = AuditEvent.objects.get(action="device.enroll")
    assert (event.object_id, event.actor_type, event.details) == (waiting_a.pk, "phone", {"source": SOURCE})


@pytest.mark.parametrize("mac", ["00:15:65:{}", "0015.65{}", "001565{}"])
def test_the_mac_may_come_in_any_format(tenant_a, admin_a, mac):
    device = DeviceFactory(tenant=tenant_a, mac="00-15-65-AB-CD-EF")
    code = verification_code_issue(device=device, actor=Actor.of_user(admin_a.user)).code
    spelled = mac.format({"00:15:65:{}": "ab:cd:ef", "0015.65{}": "ab.cdef", "001565{}": "abcdef"}[mac])
    assert check(spelled, code).ok


def test_a_device_instance_may_be_passed(waiting_a, issued):
    assert check(waiting_a, issued.code).ok


def test_a_code_works_only_once(waiting_a, issued):
    assert check(waiting_a.mac, issued.code).ok
    again = check(waiting_a.mac, issued.code)
    assert again.outcome == CheckOutcome.USED and not again.ok
    assert again.message == "Verification code already used"


def test_a_wrong_code_is_refused_and_changes_nothing(waiting_a, issued):
    result = check(waiting_a.mac, wrong(issued.code))
    assert result.outcome == CheckOutcome.WRONG and result.message == "Wrong verification code"
    waiting_a.refresh_from_db()
    assert waiting_a.state == DeviceState.WAITING_ON_ACTIVATION
    assert VerificationCode.objects.get(device=waiting_a).is_live
    event = AuditEvent.objects.get(action="verification_code.reject")
    assert event.details == {"outcome": "wrong", "source": SOURCE}


@pytest.mark.parametrize("garbage", ["", "12345", "1234567", "12345a", "１２３４５６", "*55*", "9" * 5000])
def test_malformed_codes_are_wrong_codes(waiting_a, issued, garbage):
    assert check(waiting_a.mac, garbage).outcome == CheckOutcome.WRONG


def test_an_expired_code_is_refused_and_wiped(waiting_a, issued):
    VerificationCode.objects.filter(device=waiting_a).update(expires_at=timezone.now() - timedelta(seconds=1))
    result = check(waiting_a.mac, issued.code)
    assert result.outcome == CheckOutcome.EXPIRED
    assert VerificationCode.objects.get(device=waiting_a).ciphertext is None
    # After the sweep too: the phone still hears "expired", not "wrong".
    assert check(waiting_a.mac, issued.code).outcome == CheckOutcome.EXPIRED
    waiting_a.refresh_from_db()
    assert waiting_a.state == DeviceState.WAITING_ON_ACTIVATION


def test_a_device_without_a_code_says_so(waiting_a):
    assert check(waiting_a.mac, "123456").outcome == CheckOutcome.NO_CODE


@pytest.mark.parametrize("mac", ["00-15-65-FF-FF-FF", "not a mac", ""])
def test_a_device_not_onboarded_says_so(db, mac):
    result = check(mac, "123456")
    assert result.outcome == CheckOutcome.NOT_ONBOARDED and result.device is None
    assert result.message == "Device is not onboarded"


def test_another_devices_code_does_not_enroll(tenant_a, waiting_a, issued):
    other = DeviceFactory(tenant=tenant_a)
    assert check(other.mac, issued.code).outcome == CheckOutcome.NO_CODE


def test_five_wrong_codes_lock_the_device_for_15_minutes(waiting_a, issued):
    for _ in range(4):
        assert check(waiting_a.mac, wrong(issued.code)).outcome == CheckOutcome.WRONG
    assert not AuditEvent.objects.filter(action="verification_code.lockout").exists()
    assert check(waiting_a.mac, wrong(issued.code)).outcome == CheckOutcome.WRONG
    locked = check(waiting_a.mac, issued.code)  # even the right code, from anywhere
    assert locked.outcome == CheckOutcome.LOCKED
    assert 14 * 60 < locked.retry_after <= 15 * 60
    assert locked.message == "Too many wrong codes; try again in 15 min"
    assert check(waiting_a.mac, issued.code, source="198.51.100.7").outcome == CheckOutcome.LOCKED
    lockout = AuditEvent.objects.get(action="verification_code.lockout")
    assert lockout.object_id == waiting_a.pk
    assert lockout.details == {"source": SOURCE, "failures": 5, "minutes": 15}
    # Refusals while locked are not compared, not counted and not audited one by one.
    assert AuditEvent.objects.filter(action="verification_code.reject").count() == 5
    waiting_a.refresh_from_db()
    assert waiting_a.state == DeviceState.WAITING_ON_ACTIVATION


def test_expired_and_used_codes_count_toward_the_lockout(waiting_a, issued):
    VerificationCode.objects.filter(device=waiting_a).update(expires_at=timezone.now() - timedelta(seconds=1))
    for _ in range(5):
        assert check(waiting_a.mac, issued.code).outcome == CheckOutcome.EXPIRED
    assert check(waiting_a.mac, issued.code).outcome == CheckOutcome.LOCKED


def test_the_lockout_ends(waiting_a, issued, monkeypatch):
    monkeypatch.setattr(services, "LOCKOUT", 1)
    for _ in range(5):
        check(waiting_a.mac, wrong(issued.code))
    assert check(waiting_a.mac, issued.code).outcome == CheckOutcome.LOCKED
    time.sleep(1.2)
    assert check(waiting_a.mac, issued.code).ok


def test_wrong_codes_count_within_a_window(waiting_a, issued, monkeypatch):
    monkeypatch.setattr(services, "FAILURE_WINDOW", 1)
    for _ in range(4):
        check(waiting_a.mac, wrong(issued.code))
    time.sleep(1.2)
    for _ in range(4):
        assert check(waiting_a.mac, wrong(issued.code)).outcome == CheckOutcome.WRONG
    assert check(waiting_a.mac, issued.code).ok


def test_a_success_gives_its_attempt_back(tenant_a, admin_a):
    """Four wrong tries and then the right code leave the device's count where it was."""
    actor = Actor.of_user(admin_a.user)
    device = DeviceFactory(tenant=tenant_a)
    code = verification_code_issue(device=device, actor=actor).code
    for _ in range(4):
        check(device.mac, wrong(code))
    assert check(device.mac, code).ok
    # A fifth counted try would lock the device; with the attempt given back it is told the code is spent.
    assert check(device.mac, code).outcome == CheckOutcome.USED


def test_wrong_codes_for_one_device_do_not_lock_another(tenant_a, waiting_a, issued, admin_a):
    other = DeviceFactory(tenant=tenant_a)
    other_code = verification_code_issue(device=other, actor=Actor.of_user(admin_a.user)).code
    for source in range(5):
        check(waiting_a.mac, wrong(issued.code), source=f"10.0.0.{source}")
    assert check(waiting_a.mac, issued.code).outcome == CheckOutcome.LOCKED
    assert check(other.mac, other_code).ok


def test_twenty_wrong_codes_from_one_source_lock_the_source(tenant_a, admin_a):
    actor = Actor.of_user(admin_a.user)
    devices = DeviceFactory.create_batch(5, tenant=tenant_a)
    codes = [verification_code_issue(device=d, actor=actor).code for d in devices]
    for device, code in zip(devices[:4], codes[:4], strict=True):
        for _ in range(4):  # stays under each device's limit
            assert check(device.mac, wrong(code)).outcome == CheckOutcome.WRONG
    assert check("00-15-65-FF-FF-FF", "123456").outcome == CheckOutcome.NOT_ONBOARDED  # the 17th failure
    for _ in range(3):
        check("00-15-65-FF-FF-FF", "123456")
    refused = check(devices[4].mac, codes[4])
    assert refused.outcome == CheckOutcome.LOCKED and refused.retry_after > 14 * 60
    assert check(devices[4].mac, codes[4], source="198.51.100.7").ok


def test_unknown_macs_count_toward_the_source_lockout(db):
    for n in range(20):
        assert check(f"00-15-65-FF-FF-{n:02X}", "123456").outcome == CheckOutcome.NOT_ONBOARDED
    assert check("00-15-65-FF-FF-FF", "123456").outcome == CheckOutcome.LOCKED


def _concurrently(calls):
    """Run the calls in threads, each on its own database connection, released together."""
    barrier = threading.Barrier(len(calls))
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
    for thread in threads:
        thread.join()
    return results


@pytest.mark.django_db(transaction=True)
def test_phones_racing_with_the_same_code_enroll_exactly_once(tenant_a, admin_a):
    device = DeviceFactory(tenant=tenant_a)
    code = verification_code_issue(device=device, actor=Actor.of_user(admin_a.user)).code
    # Five: as many as the device's attempt limit lets through to the compare at once.
    results = _concurrently([lambda n=n: check(device.mac, code, source=f"10.1.0.{n}") for n in range(5)])
    assert sorted(r.outcome for r in results) == [CheckOutcome.ENROLLED] + [CheckOutcome.USED] * 4
    assert AuditEvent.objects.filter(action="device.enroll").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_burst_of_guesses_gets_no_more_than_five_compares(tenant_a, admin_a):
    device = DeviceFactory(tenant=tenant_a)
    code = verification_code_issue(device=device, actor=Actor.of_user(admin_a.user)).code
    results = _concurrently([lambda n=n: check(device.mac, wrong(code), source=f"10.2.0.{n}") for n in range(12)])
    outcomes = [r.outcome for r in results]
    assert outcomes.count(CheckOutcome.WRONG) == 5
    assert outcomes.count(CheckOutcome.LOCKED) == 7
    assert AuditEvent.objects.filter(action="verification_code.reject").count() == outcomes.count(CheckOutcome.WRONG)
    assert check(device.mac, code).outcome == CheckOutcome.LOCKED
