"""Restart and resync, from the API down to a real phone (SIPp) and back to the command's status."""

from datetime import timedelta

import pytest
from django.utils import timezone

from devices.choices import CommandStatus, DeviceState
from devices.models import DeviceCommand
from gateway import services
from gateway.services import device_commands_send
from tests.factories import DeviceFactory, device_model, registered
from tests.gateway.sip.sipp import Sipp, free_port

pytestmark = pytest.mark.sipp


@pytest.fixture(autouse=True)
def short_timers(settings):
    settings.SIP_T1 = 0.02  # Timer F = 64·T1 = 1.28 s instead of 32 s


@pytest.fixture(params=["arrays", "orm"])
def storage(request, monkeypatch):
    """Claims and outcomes go to PostgreSQL as arrays, one statement a batch; other databases
    (SQLite under `make run`) take the ORM's way. Both must leave the same rows behind."""
    if request.param == "orm":
        monkeypatch.setattr(services, "_arrays", lambda: False)


def phone(tenant, sipp: Sipp, *, vendor="Yealink", model="T54W", transport="udp"):
    device = DeviceFactory(tenant=tenant, model=device_model(vendor, model), state=DeviceState.SIGNED_IN)
    host, port = sipp.address
    suffix = ";transport=tcp" if transport == "tcp" else ""
    return registered(device, contact=f"sip:{device.sip_user}@{host}:{port}{suffix}", transport=transport)


def restart(caller, device, kind="restart"):
    response = caller.api.post(f"/api/v1/devices/{device.pk}/{kind}/")
    assert response.status_code == 202, response.content
    return response.json()


@pytest.mark.parametrize(
    ("vendor", "model", "scenario"),
    [
        ("Yealink", "T54W", "phone_yealink_reboot.xml"),
        ("Poly", "VVX 450", "phone_poly_check_sync.xml"),
        ("Cisco", "8841", "phone_cisco_reboot_now.xml"),
    ],
)
def test_a_restart_reaches_the_phone_with_its_vendors_reboot_event(admin_a, tmp_path, vendor, model, scenario):
    with Sipp(scenario, workdir=tmp_path) as sipp:
        device = phone(admin_a.tenant, sipp, vendor=vendor, model=model)
        command = restart(admin_a, device)
        assert command["status"] == "queued"
        assert device_commands_send(command_ids=[command["id"]]) == []
        assert sipp.wait() == 0, sipp.report()  # the scenario checked the exact Event: header
    result = admin_a.api.get(f"/api/v1/commands/{command['id']}/").json()
    assert result["status"] == "sent"
    assert result["sip_status"] == 200
    assert result["final"] is True
    assert [a["outcome"] for a in result["attempts"]] == ["sent"]


def test_a_resync_over_tcp_is_sent(admin_a, tmp_path):
    with Sipp("phone_any_check_sync.xml", workdir=tmp_path, transport="tcp") as sipp:
        device = phone(admin_a.tenant, sipp, transport="tcp")
        command = restart(admin_a, device, kind="resync")
        device_commands_send(command_ids=[command["id"]])
        # SIPp aborts the call's linger when we close the connection, so its exit code says
        # nothing here; it answers 200 only after its Event: check has passed.
        assert sipp.received("NOTIFY") == 1
    assert DeviceCommand.objects.get(pk=command["id"]).status == CommandStatus.SENT


def test_a_tcp_phone_no_edge_holds_is_reached_at_its_contact_not_at_the_port_it_registered_from(
    admin_a, tmp_path
):
    """A worker with no edge to hand the NOTIFY to (no Redis, as under `make run`) opens a connection
    of its own: to the port the phone listens on, which its Contact names. Its REGISTER came from a
    port of its own where nothing listens."""
    with Sipp("phone_any_check_sync.xml", workdir=tmp_path, transport="tcp") as sipp:
        device = phone(admin_a.tenant, sipp, transport="tcp")
        device.source_address = f"127.0.0.1:{free_port()}"
        device.save(update_fields=["source_address"])
        command = restart(admin_a, device, kind="resync")
        device_commands_send(command_ids=[command["id"]])
        assert sipp.received("NOTIFY") == 1
    assert DeviceCommand.objects.get(pk=command["id"]).status == CommandStatus.SENT


def test_a_phone_that_refuses_the_event_leaves_the_command_rejected_with_its_code(admin_a, tmp_path, storage):
    with Sipp("phone_bad_event.xml", workdir=tmp_path) as sipp:
        device = phone(admin_a.tenant, sipp)
        command = restart(admin_a, device)
        device_commands_send(command_ids=[command["id"]])
        sipp.wait()
    stored = DeviceCommand.objects.get(pk=command["id"])
    assert (stored.status, stored.sip_status) == (CommandStatus.REJECTED, 489)


def test_a_phone_that_drops_the_first_notifies_gets_them_again_and_the_command_is_sent(
    admin_a, tmp_path, settings, storage
):
    settings.SIP_T1 = 0.1  # the scenario answers between the 2nd and 3rd copy
    with Sipp("phone_slow.xml", workdir=tmp_path) as sipp:
        device = phone(admin_a.tenant, sipp, model="T54W")
        command = restart(admin_a, device, kind="resync")
        device_commands_send(command_ids=[command["id"]])
        assert sipp.wait() == 0, sipp.report()
    stored = DeviceCommand.objects.get(pk=command["id"])
    assert stored.status == CommandStatus.SENT
    assert stored.attempts.get().retransmissions >= 1


def test_a_silent_phone_is_unreachable_after_timer_f(admin_a, tmp_path, settings, storage):
    with Sipp("phone_silent.xml", workdir=tmp_path) as sipp:
        device = phone(admin_a.tenant, sipp)
        command = restart(admin_a, device)
        started = timezone.now()
        device_commands_send(command_ids=[command["id"]])
    stored = DeviceCommand.objects.get(pk=command["id"])
    assert stored.status == CommandStatus.UNREACHABLE
    assert stored.reason == "no response (timed out)"
    # Finished when Timer F ran out, not when the send started.
    assert stored.finished_at - started >= timedelta(seconds=64 * settings.SIP_T1)


def test_a_device_without_a_registration_is_unreachable_at_once(admin_a):
    device = DeviceFactory(tenant=admin_a.tenant)
    command = restart(admin_a, device)
    assert (command["status"], command["reason"]) == ("unreachable", "not registered")
    assert command["final"] is True


def test_a_device_whose_registration_lapsed_before_the_send_is_unreachable_without_an_attempt(admin_a, storage):
    device = registered(DeviceFactory(tenant=admin_a.tenant), contact="sip:a@127.0.0.1:9")
    command = restart(admin_a, device)
    registered(device, contact=device.contact_uri, minutes=-1)
    assert device_commands_send(command_ids=[command["id"]]) == []
    stored = DeviceCommand.objects.get(pk=command["id"])
    assert (stored.status, stored.reason, stored.attempt_count) == (CommandStatus.UNREACHABLE, "not registered", 0)
    assert stored.finished_at is not None
    assert not stored.attempts.exists()


def test_asking_again_while_a_restart_is_in_flight_returns_the_same_command(admin_a, tmp_path):
    with Sipp("phone_any_check_sync.xml", workdir=tmp_path) as sipp:
        device = phone(admin_a.tenant, sipp)
        first = restart(admin_a, device)
        second = restart(admin_a, device)
        assert second["id"] == first["id"]
        resync = restart(admin_a, device, kind="resync")
        assert resync["id"] != first["id"]
    assert DeviceCommand.objects.filter(device=device).count() == 2


def test_bulk_restart_makes_one_command_per_device_of_the_tenant_only(admin_a, admin_b, tmp_path):
    mine = [DeviceFactory(tenant=admin_a.tenant) for _ in range(3)]
    theirs = DeviceFactory(tenant=admin_b.tenant)
    response = admin_a.api.post("/api/v1/devices/restart/", {"ids": [d.pk for d in mine] + [theirs.pk]}, format="json")
    assert response.status_code == 202
    assert sorted(c["device"] for c in response.json()["results"]) == sorted(d.pk for d in mine)
    assert not DeviceCommand.objects.filter(device=theirs).exists()


def test_bulk_restart_answers_in_the_same_number_of_queries_for_3_or_30_devices(admin_a):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def queries_for(count: int) -> int:
        ids = [DeviceFactory(tenant=admin_a.tenant).pk for _ in range(count)]
        with CaptureQueriesContext(connection) as captured:
            response = admin_a.api.post("/api/v1/devices/restart/", {"ids": ids}, format="json")
        assert (response.status_code, len(response.json()["results"])) == (202, count)
        return len(captured.captured_queries)

    queries_for(1)  # the first request of the token also records its use
    assert queries_for(30) == queries_for(3)


def test_only_admins_of_the_tenant_may_restart(admin_a, tech_a, user_a, admin_b, anon_api):
    device = DeviceFactory(tenant=admin_a.tenant)
    command = restart(admin_a, device)
    assert tech_a.api.post(f"/api/v1/devices/{device.pk}/restart/").status_code == 403
    assert user_a.api.post(f"/api/v1/devices/{device.pk}/restart/").status_code == 403
    assert admin_b.api.post(f"/api/v1/devices/{device.pk}/restart/").status_code == 404
    assert anon_api.post(f"/api/v1/devices/{device.pk}/restart/").status_code == 401
    assert tech_a.api.get(f"/api/v1/commands/{command['id']}/").status_code == 200
    assert admin_b.api.get(f"/api/v1/commands/{command['id']}/").status_code == 404


def test_a_restart_is_audited_with_who_asked(admin_a):
    device = DeviceFactory(tenant=admin_a.tenant)
    restart(admin_a, device)
    event = admin_a.tenant.audit_events.get(action="device.restart")
    assert event.object_id == device.pk
    assert event.actor_type == "token"


def test_a_transport_error_is_retried_and_then_the_command_is_unreachable(admin_a, settings, storage):
    settings.DEVICE_COMMAND_MAX_ATTEMPTS = 3
    device = DeviceFactory(tenant=admin_a.tenant, model=device_model())
    port = free_port()  # nothing listens there: the TCP connection is refused
    registered(device, contact=f"sip:{device.sip_user}@127.0.0.1:{port};transport=tcp", transport="tcp")
    command = restart(admin_a, device)
    for attempt in (1, 2):
        assert device_commands_send(command_ids=[command["id"]]) == [command["id"]]
        stored = DeviceCommand.objects.get(pk=command["id"])
        assert (stored.status, stored.attempt_count) == (CommandStatus.QUEUED, attempt)
    assert device_commands_send(command_ids=[command["id"]]) == []
    stored = DeviceCommand.objects.get(pk=command["id"])
    assert (stored.status, stored.attempt_count) == (CommandStatus.UNREACHABLE, 3)
    assert stored.attempts.count() == 3


def test_a_command_another_worker_took_over_is_not_recorded_twice(admin_a, tmp_path, storage):
    with Sipp("phone_any_check_sync.xml", workdir=tmp_path) as sipp:
        device = phone(admin_a.tenant, sipp)
        command = restart(admin_a, device, kind="resync")
        # Another worker claimed it after our lease ran out: its claim time differs from ours.
        DeviceCommand.objects.filter(pk=command["id"]).update(
            status=CommandStatus.SENDING, claimed_at=timezone.now() - timedelta(hours=1)
        )
        device_commands_send(command_ids=[command["id"]])  # takes it over, sends, records
        stored = DeviceCommand.objects.get(pk=command["id"])
        assert stored.status == CommandStatus.SENT
        assert stored.attempts.count() == 1
        # A late second run finds nothing it may claim and records nothing.
        assert device_commands_send(command_ids=[command["id"]]) == []
    assert DeviceCommand.objects.get(pk=command["id"]).attempts.count() == 1
