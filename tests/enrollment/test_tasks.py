"""The expiry sweep runs from the one beat schedule on a real Celery worker."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from enrollment import tasks
from enrollment.models import VerificationCode
from enrollment.services import verification_codes_issue
from portal.celery import app
from portal.services import Actor
from tests.factories import DeviceFactory
from tests.waiting import wait_until


def test_the_sweep_is_scheduled_every_five_minutes():
    schedule = settings.CELERY_BEAT_SCHEDULE.values()
    assert [e["schedule"] for e in schedule if e["task"] == "enrollment.tasks.verification_codes_sweep"] == [300.0]
    assert tasks.verification_codes_sweep.name in app.tasks


@pytest.mark.worker
@pytest.mark.django_db(transaction=True)
def test_a_worker_wipes_expired_codes_and_leaves_live_ones(celery_worker, tenant_a, admin_a):
    expired, live = DeviceFactory.create_batch(2, tenant=tenant_a)
    verification_codes_issue(tenant=tenant_a, actor=Actor.of_user(admin_a.user), ids=[expired.pk, live.pk])
    VerificationCode.objects.filter(device=expired).update(expires_at=timezone.now() - timedelta(minutes=1))

    tasks.verification_codes_sweep.delay()
    wait_until(
        lambda: VerificationCode.objects.get(device=expired).ciphertext is None,
        what="the expired code wiped",
        timeout=20,
        details=celery_worker.log,
    )
    assert VerificationCode.objects.get(device=live).is_live
