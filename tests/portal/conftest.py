import pytest

from devices.choices import CommandKind
from devices.models import DeviceCommand, ImportJob
from policies.services import policy_create, policy_defaults_ensure
from portal.services import Actor
from tests.factories import DeviceFactory


@pytest.fixture
def objects_of(db):
    """Every kind of object a v1 URL names by id, made in the given tenant."""

    def make(tenant) -> dict[str, int]:
        device = DeviceFactory(tenant=tenant)
        policy_defaults_ensure(tenant=tenant)
        return {
            "device": device.pk,
            "command": DeviceCommand.objects.create(
                tenant=tenant, device=device, kind=CommandKind.RESTART, event="check-sync", requested_by_label="t"
            ).pk,
            "job": ImportJob.objects.create(tenant=tenant, created_by_label="t", file_name="a.csv").pk,
            "policy": policy_create(tenant=tenant, actor=Actor.system(), kind="calling", name="Sales").pk,
        }

    return make
