import pytest
from django.test import Client

from devices.choices import CommandStatus
from devices.models import DeviceCommand
from tests.conftest import login
from tests.factories import DeviceFactory, registered

pytestmark = pytest.mark.django_db


@pytest.fixture
def online_device(tenant_a):
    device = DeviceFactory(tenant=tenant_a)
    return registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:5999")


def test_an_admin_restarts_a_device_from_its_page_and_sees_the_command(admin_a, online_device):
    client = login(Client(), admin_a)
    response = client.post(f"/devices/{online_device.pk}/restart/", follow=True)
    command = DeviceCommand.objects.get(device=online_device)
    assert (command.kind, command.status, command.event) == ("restart", CommandStatus.QUEUED, "check-sync;reboot=true")
    page = response.content.decode()
    assert "Restart requested" in page
    assert f'data-command="{command.pk}"' in page
    assert "not that it has restarted" in page  # the page says what `sent` means


def test_restarting_an_unregistered_device_says_it_cannot_be_reached(admin_a, tenant_a):
    device = DeviceFactory(tenant=tenant_a)
    response = login(Client(), admin_a).post(f"/devices/{device.pk}/restart/", follow=True)
    assert "is not registered" in response.content.decode()
    assert DeviceCommand.objects.get(device=device).status == CommandStatus.UNREACHABLE


def test_bulk_sync_from_the_list_queues_one_command_per_selected_device(admin_a, tenant_a, admin_b):
    devices = [registered(DeviceFactory(tenant=tenant_a), contact="sip:x@127.0.0.1:5999") for _ in range(3)]
    foreign = DeviceFactory(tenant=admin_b.tenant)
    response = login(Client(), admin_a).post(
        "/devices/commands/", {"kind": "resync", "ids": [d.pk for d in devices] + [foreign.pk]}, follow=True
    )
    assert "Sync config requested for 3 phones." in response.content.decode()
    assert DeviceCommand.objects.filter(kind="resync", status=CommandStatus.QUEUED).count() == 3
    assert not DeviceCommand.objects.filter(device=foreign).exists()
    # the list shows each row's command status, polling while it is pending
    listing = response.content.decode()
    assert listing.count('hx-trigger="every 1s"') == 3


def test_an_unknown_bulk_command_is_refused(admin_a):
    assert login(Client(), admin_a).post("/devices/commands/", {"kind": "format-disk"}).status_code == 400


def test_technicians_and_other_tenants_cannot_send_commands(tech_a, admin_b, online_device):
    assert login(Client(), tech_a).post(f"/devices/{online_device.pk}/restart/").status_code == 403
    assert login(Client(), admin_b).post(f"/devices/{online_device.pk}/restart/").status_code == 404
    assert not DeviceCommand.objects.exists()


def test_the_status_chip_polls_until_the_command_is_final(admin_a, admin_b, online_device):
    client = login(Client(), admin_a)
    client.post(f"/devices/{online_device.pk}/restart/")
    command = DeviceCommand.objects.get()
    assert 'hx-trigger="every 1s"' in client.get(f"/devices/commands/{command.pk}/status/").content.decode()
    DeviceCommand.objects.filter(pk=command.pk).update(status=CommandStatus.SENT, sip_status=200)
    final = client.get(f"/devices/commands/{command.pk}/status/").content.decode()
    assert "hx-trigger" not in final
    assert "Restart: sent" in final
    assert login(Client(), admin_b).get(f"/devices/commands/{command.pk}/status/").status_code == 404
