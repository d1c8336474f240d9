"""A device behind its wanted version gets a policy_sync command when it refreshes its registration,
and from the hourly beat task; a failed sync shows as such and is retried the next hour."""

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from devices.choices import CommandKind, CommandStatus, DeviceState
from devices.models import Device, DeviceCommand
from policies.choices import SyncState
from policies.selectors import device_policy_sync, policy_sync_filter, policy_sync_load, policy_sync_summary
from policies.services import devices_policy_sync_if_behind, policy_assign, policy_sync_fan_out, policy_update
from portal.models import AuditEvent
from portal.services import Actor
from tests.factories import device_model
from tests.policies.conftest import member, phone

ADMIN = Actor.system("test")
HOUR = timedelta(hours=1)


def policy_syncs(device=None):
    commands = DeviceCommand.objects.filter(kind=CommandKind.POLICY_SYNC)
    return commands.filter(device=device) if device is not None else commands


def test_a_device_behind_gets_a_policy_sync_as_soon_as_it_refreshes_its_registration(tenant_a, defaults_a):
    device = phone(tenant_a, user=member(tenant_a), model=device_model("Cisco", "8845"))
    policy_update(policy=defaults_a["ip_phone"], actor=ADMIN, data={"settings": {"language": "pt"}})
    device.refresh_from_db()

    (command,) = devices_policy_sync_if_behind(ids=[device.pk])

    assert (command.kind, command.status, command.event) == ("policy_sync", "queued", "resync")
    assert command.requested_by_label == "policy sync (registration refresh)"


def test_a_refresh_of_a_device_in_sync_asks_nothing(tenant_a, defaults_a):
    assert devices_policy_sync_if_behind(ids=[phone(tenant_a, user=member(tenant_a)).pk]) == []
    assert not policy_syncs().exists()


def test_refreshes_in_quick_succession_send_one_sync(tenant_a, defaults_a):
    device = phone(tenant_a, user=member(tenant_a), in_sync=False)
    (first,) = devices_policy_sync_if_behind(ids=[device.pk])
    assert devices_policy_sync_if_behind(ids=[device.pk]) == []  # pending
    DeviceCommand.objects.filter(pk=first.pk).update(status=CommandStatus.SENT, finished_at=timezone.now())
    assert devices_policy_sync_if_behind(ids=[device.pk]) == []  # sent moments ago: give the phone time to fetch
    later = timezone.now() + timedelta(seconds=settings.POLICY_SYNC_MIN_INTERVAL_SECONDS + 1)
    Device.objects.filter(pk=device.pk).update(registration_expires_at=later + HOUR)
    assert len(devices_policy_sync_if_behind(ids=[device.pk], now=later)) == 1
    assert policy_syncs(device).count() == 2


def test_a_device_whose_registration_lapsed_is_not_asked(tenant_a, defaults_a):
    device = phone(tenant_a, user=member(tenant_a), in_sync=False)
    lapsed = device.registration_expires_at + timedelta(seconds=1)
    assert devices_policy_sync_if_behind(ids=[device.pk], now=lapsed) == []


@pytest.fixture
def mixed_fleet(tenant_a, tenant_b, defaults_a):
    """Eligible: registered, signed in, behind. Everyone else must be left alone."""
    eligible = [phone(tenant_a, user=member(tenant_a), in_sync=False) for _ in range(7)]
    others = {
        "in_sync": phone(tenant_a, user=member(tenant_a)),
        "offline": phone(tenant_a, user=member(tenant_a), in_sync=False, registered=False),
        "not_signed_in": phone(tenant_a, in_sync=False),
        "gateway_off": phone(tenant_b, user=member(tenant_b), in_sync=False),
    }
    tenant_b.sip_gateway_enabled = False
    tenant_b.save()
    return eligible, others


def test_the_hourly_task_queues_one_sync_per_registered_signed_in_device_behind(mixed_fleet, settings, tenant_a):
    settings.POLICY_SYNC_CHUNK = 3  # several transactions, like a big fleet
    eligible, others = mixed_fleet
    assert policy_sync_fan_out() == 7
    assert set(policy_syncs().values_list("device_id", flat=True)) == {d.pk for d in eligible}
    assert not policy_syncs().filter(device__in=others.values()).exists()
    assert set(policy_syncs().values_list("status", "event", "requested_by_label")) == {
        ("queued", "check-sync", "policy sync (hourly)")
    }
    assert AuditEvent.objects.get(tenant=tenant_a, action="policy.sync").details == {"devices": 7}
    # Run again before they were sent: each device keeps its one pending command.
    assert policy_sync_fan_out() == 0
    assert policy_syncs().count() == 7


def test_after_a_policy_change_every_registered_signed_in_phone_is_asked_within_the_hour(
    tenant_a, defaults_a, settings
):
    """Beat runs the task every POLICY_SYNC_SECONDS (≤ 1 h); the clock is passed in as `now`."""
    settings.POLICY_SYNC_CHUNK = 4
    period = timedelta(seconds=settings.CELERY_BEAT_SCHEDULE["policy-sync"]["schedule"])
    assert period <= HOUR
    start = timezone.now()
    phones = [phone(tenant_a, user=member(tenant_a)) for _ in range(10)]
    # Phones refresh their registrations, so they stay registered all along.
    Device.objects.filter(tenant=tenant_a).update(registration_expires_at=start + 3 * HOUR)
    ticks = [start + i * period for i in range(4)]

    assert policy_sync_fan_out(now=ticks[0]) == 0  # all in sync before the change
    changed_at = ticks[0] + period * 0.9  # just after a tick: the longest wait there is
    policy_update(policy=defaults_a["calling"], actor=ADMIN, data={"settings": {"voicemail": False}})

    next_tick = next(t for t in ticks if t >= changed_at)
    assert policy_sync_fan_out(now=next_tick) == len(phones)
    asked = dict(policy_syncs().values_list("device_id", "created_at"))
    assert set(asked) == {p.pk for p in phones}
    assert all(at - changed_at <= HOUR for at in asked.values())


def test_a_failed_sync_shows_as_failed_and_is_retried_the_next_hour(tenant_a, defaults_a):
    device = phone(tenant_a, user=member(tenant_a), in_sync=False)
    Device.objects.filter(pk=device.pk).update(registration_expires_at=timezone.now() + 3 * HOUR)
    first_hour = timezone.now()
    assert policy_sync_fan_out(now=first_hour) == 1
    command = policy_syncs(device).get()
    assert device_policy_sync(device=device).state == SyncState.PENDING
    # The worker got no answer from the phone (as gateway.services records it).
    DeviceCommand.objects.filter(pk=command.pk).update(
        status=CommandStatus.UNREACHABLE, reason="no response (timed out)", finished_at=first_hour
    )
    info = device_policy_sync(device=device)
    assert (info.state, info.command.reason) == (SyncState.FAILED, "no response (timed out)")

    assert policy_sync_fan_out(now=first_hour + HOUR) == 1
    assert policy_syncs(device).count() == 2
    assert device_policy_sync(device=device).state == SyncState.PENDING


def test_a_device_that_fetched_its_config_is_in_sync_and_left_alone(tenant_a, defaults_a):
    device = phone(tenant_a, user=member(tenant_a), in_sync=False)
    Device.objects.filter(pk=device.pk).update(synced_version=device.wanted_version)  # what serving its config does
    assert policy_sync_fan_out() == 0
    assert device_policy_sync(device=Device.objects.get(pk=device.pk)).state == SyncState.IN_SYNC


def test_the_sync_filter_and_the_column_agree(tenant_a, defaults_a):
    users = [member(tenant_a) for _ in range(4)]
    in_sync = phone(tenant_a, user=users[0])
    pending = phone(tenant_a, user=users[1], in_sync=False)
    failed = phone(tenant_a, user=users[2], in_sync=False)
    retried = phone(tenant_a, user=users[3], in_sync=False)
    now = timezone.now()
    for device, status in ((failed, CommandStatus.REJECTED), (retried, CommandStatus.UNREACHABLE)):
        DeviceCommand.objects.create(
            tenant=tenant_a,
            device=device,
            kind=CommandKind.POLICY_SYNC,
            event="check-sync",
            status=status,
            requested_by_label="t",
            finished_at=now,
        )
    DeviceCommand.objects.create(
        tenant=tenant_a, device=retried, kind=CommandKind.POLICY_SYNC, event="check-sync", requested_by_label="t"
    )
    # An old failure of a device now in sync does not make it failed.
    DeviceCommand.objects.create(
        tenant=tenant_a,
        device=in_sync,
        kind=CommandKind.POLICY_SYNC,
        event="check-sync",
        status=CommandStatus.UNREACHABLE,
        requested_by_label="t",
        finished_at=now,
    )
    devices = Device.objects.filter(tenant=tenant_a)
    expected = {
        SyncState.IN_SYNC: {in_sync.pk},
        SyncState.PENDING: {pending.pk, retried.pk},
        SyncState.FAILED: {failed.pk},
    }
    for state, ids in expected.items():
        assert set(policy_sync_filter(devices, state).values_list("pk", flat=True)) == ids, state
    loaded = {d.pk: d.policy_sync.state for d in policy_sync_load(tenant=tenant_a, devices=list(devices))}
    assert loaded == {pk: state for state, ids in expected.items() for pk in ids}
    summary = policy_sync_summary(tenant=tenant_a)
    assert (summary["total"], summary["in_sync"], summary["pending"], summary["failed"]) == (4, 1, 2, 1)
    assert summary["in_sync_percent"] == 25.0


def test_assigning_a_policy_makes_the_devices_pending_until_they_fetch_their_config(tenant_a, defaults_a):
    device = phone(tenant_a, user=member(tenant_a))
    assert device_policy_sync(device=device).state == SyncState.IN_SYNC
    policy_assign(policy=defaults_a["calling"], actor=ADMIN, devices=[device.pk])  # the same policy: no change
    device.refresh_from_db()
    assert device_policy_sync(device=device).state == SyncState.IN_SYNC
    policy_update(policy=defaults_a["calling"], actor=ADMIN, data={"settings": {"voicemail": False}})
    device.refresh_from_db()
    info = device_policy_sync(device=device)
    assert info.state == SyncState.PENDING
    assert info.since is not None
    assert device.state == DeviceState.SIGNED_IN
