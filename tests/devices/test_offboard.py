"""Auto-offboarding (DESIGN.md, Device states): an enrolled phone nobody signed in to, unseen 14
days, and a signed-in phone unseen 30 days leave the inventory; the beat task runs it daily."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from devices import tasks
from devices.choices import DeviceState
from devices.models import Device
from devices.services import devices_offboard_unseen
from portal.models import AuditEvent
from portal.services import Actor, audit_record
from tests.factories import DeviceFactory, TenantFactory

pytestmark = pytest.mark.django_db

NOW = timezone.now()
ENROLLED, SIGNED_IN, WAITING = DeviceState.WAITING_FOR_SIGN_IN, DeviceState.SIGNED_IN, DeviceState.WAITING_ON_ACTIVATION


def phone(tenant, state, *, seen_days_ago=None, provisioned_days_ago=None, changed_days_ago=400) -> Device:
    def ago(days):
        return None if days is None else NOW - timedelta(days=days)

    device = DeviceFactory(tenant=tenant, state=state)
    Device.objects.filter(pk=device.pk).update(  # update(): auto_now would stamp updated_at with today
        last_seen_at=ago(seen_days_ago), last_provisioned_at=ago(provisioned_days_ago), updated_at=ago(changed_days_ago)
    )
    return device


def test_phones_unseen_past_their_states_limit_leave_and_the_others_stay(tenant_a):
    leave = [
        phone(tenant_a, ENROLLED, seen_days_ago=15),
        phone(tenant_a, ENROLLED, seen_days_ago=20, provisioned_days_ago=15),
        phone(tenant_a, ENROLLED, changed_days_ago=15),  # enrolled and never seen since
        phone(tenant_a, SIGNED_IN, seen_days_ago=31),
        phone(tenant_a, SIGNED_IN, changed_days_ago=31),
    ]
    stay = [
        phone(tenant_a, ENROLLED, seen_days_ago=13),
        phone(tenant_a, ENROLLED, seen_days_ago=20, provisioned_days_ago=2),  # fetched its config lately
        phone(tenant_a, ENROLLED, changed_days_ago=13),
        phone(tenant_a, ENROLLED, seen_days_ago=20, changed_days_ago=2),  # signed out two days ago
        phone(tenant_a, SIGNED_IN, seen_days_ago=29),
        phone(tenant_a, SIGNED_IN, seen_days_ago=15),  # past the enrolled limit, not the signed-in one
        phone(tenant_a, WAITING),  # onboarded on purpose, never enrolled
    ]

    assert devices_offboard_unseen(now=NOW) == len(leave)

    assert set(Device.objects.values_list("pk", flat=True)) == {d.pk for d in stay}
    events = AuditEvent.objects.filter(action="device.offboard")
    assert sorted(e.object_id for e in events) == sorted(d.pk for d in leave)
    assert {(e.tenant_id, e.actor_label, e.details["unseen_days"]) for e in events} == {
        (tenant_a.pk, "auto-offboarding", 14),
        (tenant_a.pk, "auto-offboarding", 30),
    }


def test_phones_of_a_tenant_whose_gateway_is_off_or_was_off_lately_stay(tenant_a):
    """Phones cannot register with a gateway that is off: unseen then says nothing about them."""
    off, back_on_lately, back_on_long_ago = TenantFactory(sip_gateway_enabled=False), TenantFactory(), TenantFactory()
    for tenant in (off, back_on_lately, back_on_long_ago):
        phone(tenant, ENROLLED, seen_days_ago=40)
    turned_on = {back_on_lately: 3, back_on_long_ago: 20}
    for tenant, days_ago in turned_on.items():
        audit_record(tenant=tenant, actor=Actor.system("test"), action="tenant.gateway_enabled", obj=tenant)
        AuditEvent.objects.filter(tenant=tenant).update(created_at=NOW - timedelta(days=days_ago))

    assert devices_offboard_unseen(now=NOW) == 1
    assert set(Device.objects.values_list("tenant", flat=True)) == {off.pk, back_on_lately.pk}


def test_each_tenants_phones_are_audited_in_that_tenant_and_chunks_take_them_all(tenant_a):
    tenant_b = TenantFactory()
    for tenant in (tenant_a, tenant_b):
        for _ in range(3):
            phone(tenant, ENROLLED, seen_days_ago=40)

    assert devices_offboard_unseen(now=NOW, chunk=2) == 6

    assert not Device.objects.exists()
    per_tenant = AuditEvent.objects.filter(action="device.offboard").values_list("tenant_id", flat=True)
    assert sorted(per_tenant) == sorted([tenant_a.pk] * 3 + [tenant_b.pk] * 3)


def test_the_beat_runs_it_daily():
    entry = settings.CELERY_BEAT_SCHEDULE["devices-offboard-unseen"]
    assert (entry["task"], entry["schedule"]) == (tasks.devices_offboard_unseen.name, 86400.0)
