from datetime import timedelta

import pytest
from django.utils import timezone

from devices.choices import DeviceState
from devices.models import Device
from policies.services import policy_defaults_ensure
from portal.choices import Role
from tests.factories import DeviceFactory, MembershipFactory


def phone(tenant, *, user=None, registered=True, in_sync=True, **fields) -> Device:
    """A signed-in phone (or waiting for sign-in, without a user), registered, in sync by default."""
    device = DeviceFactory(
        tenant=tenant,
        state=DeviceState.SIGNED_IN if user else DeviceState.WAITING_FOR_SIGN_IN,
        signed_in_user=user,
        wanted_version=3,
        synced_version=3 if in_sync else 2,
        **fields,
    )
    if registered:
        device.contact_uri = f"sip:{device.sip_user}@127.0.0.1:5099"
        device.transport = "udp"
        device.registration_expires_at = timezone.now() + timedelta(minutes=30)
        device.save()
    return device


def member(tenant, role=Role.USER):
    return MembershipFactory(tenant=tenant, role=role).user


def versions(*devices) -> list[int]:
    ids = [d.pk for d in devices]
    by_id = dict(Device.objects.filter(pk__in=ids).values_list("pk", "wanted_version"))
    return [by_id[pk] for pk in ids]


@pytest.fixture
def defaults_a(tenant_a):
    return policy_defaults_ensure(tenant=tenant_a)
